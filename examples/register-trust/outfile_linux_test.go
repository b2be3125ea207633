package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// fullDir mounts a small tmpfs under a new temporary directory, fills it,
// and returns it: a real file system with no room for a kit.
func fullDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); errors.Is(err, syscall.ENOSPC) {
			return dir
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// On a full file system the kit cannot be written before the commit, so
// nothing is committed: no trust registered, no keys replaced, exit 1,
// nothing left behind. Once there is room the same run registers.
func TestOutFileFullDisk(t *testing.T) {
	t.Parallel()
	asRoot(t)
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_002")
	dir := fullDir(t)
	path := filepath.Join(dir, "kit.json")

	r := register(t, db, "--name", "Full Disk", "--code", "FULL", "--aes-key", "--out-file", path)
	if r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, "nothing was committed") {
		t.Errorf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts registered, want 0", n)
	}

	// A rotation is held to the same rule: the old key stays in force.
	old, _ := wantOne(t, register(t, db, "--name", "Standing", "--code", "STAND"))
	r = register(t, db, "--name", "Standing", "--rotate", "--out-file", path)
	if r.code != exitFail || r.stdout != "" {
		t.Errorf("rotation: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if _, err := flip.NewVerifier(db).Verify(context.Background(), old.TrustAPIKey); err != nil {
		t.Errorf("the old key after a rotation that could not write its kit: %v", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"filler"}) {
		t.Errorf("the full file system holds %q, want only the filler", names)
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if r = register(t, db, "--name", "Full Disk", "--code", "FULL", "--aes-key", "--out-file", path); r.code != exitOK {
		t.Fatalf("with room: exit %d\nstderr: %s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(path)
	if rec, _ := wantOne(t, result{stdout: string(data)}); rec.Status != "registered" {
		t.Errorf("with room: record %+v, want registered", rec)
	}
}

// A rename refused after the commit (the path is a mount point: rename
// answers EBUSY) keeps the synced kit where it is and names it: the trust
// is registered and its keys are there. A re-run refuses to start while
// that kit lies beside the path; once it is moved into place, a re-run
// keeps it.
func TestOutFileRenameRefused(t *testing.T) {
	t.Parallel()
	asRoot(t)
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	dir := t.TempDir()
	path, over := filepath.Join(dir, "kit.json"), filepath.Join(dir, "mounted-over")
	for _, p := range []string{path, over} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount(over, path, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if err := syscall.Unmount(path, 0); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(unmount)

	r := register(t, db, "--name", "Renamed", "--code", "REN", "--out-file", path)
	kept := strings.TrimSpace(r.stdout)
	if r.code != exitFail || filepath.Dir(kept) != dir || !strings.HasPrefix(filepath.Base(kept), ".kit.json.tmp-") || !strings.Contains(r.stderr, "the trust IS registered") {
		t.Fatalf("exit %d, stdout %q; want 1 and the kept kit's path\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fi, err := os.Stat(kept)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept kit: %v, mode %v", err, fi.Mode())
	}
	data, _ := os.ReadFile(kept)
	rec, _ := wantOne(t, result{stdout: string(data)})
	if got, err := flip.NewVerifier(db).Verify(context.Background(), rec.TrustAPIKey); err != nil || got.ID.String() != rec.TrustID {
		t.Errorf("the kept kit's key does not authenticate its trust: %v", err)
	}
	noSecrets(t, "stderr", r.stderr, rec.TrustAPIKey, rec.TrustInternalServiceKey)

	// A retry does not go ahead as if the keys did not exist.
	r = register(t, db, "--name", "Renamed", "--code", "REN", "--out-file", path)
	if r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, "an earlier run left the kit") {
		t.Errorf("re-run beside the kept kit: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	unmount()
	if err := os.Rename(kept, path); err != nil {
		t.Fatal(err)
	}
	r = register(t, db, "--name", "Renamed", "--code", "REN", "--out-file", path)
	if now, _ := os.ReadFile(path); r.code != exitOK || r.stdout != path+"\n" || string(now) != string(data) {
		t.Errorf("re-run after the kit was moved into place: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
