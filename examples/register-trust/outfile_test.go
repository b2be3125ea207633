package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/londonaicentre/flip/fliptest"
)

// asRoot skips t unless it runs as root, which mounting and chown need.
// Under CI=true it fails instead: CI runs as root, and must never pass
// without these tests.
func asRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (mount, chown), and CI=true: it must run")
	}
	t.Skip("needs root (mount, chown); CI runs it")
}

// A re-run never writes a record without keys over a kit that holds
// them. This trust's kit, its key still in force, is kept and named as
// the run's kit (exit 0); a kit whose keys were since replaced is left
// alone and the run fails; an empty file (as mktemp leaves it) or a skip
// record is replaced.
func TestOutFileRerunKeepsKeys(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_002")
	dir := t.TempDir()
	path := filepath.Join(dir, "kit.json")

	r := register(t, db, "--name", "Kept Trust", "--code", "KEPT", "--out-file", path)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	kit, _ := os.ReadFile(path)
	for _, args := range [][]string{{"--code", "KEPT"}, {"--code", "KEPT", "--require-existing"}} {
		r = register(t, db, append([]string{"--name", "Kept Trust", "--out-file", path}, args...)...)
		if now, _ := os.ReadFile(path); r.code != exitOK || r.stdout != path+"\n" || !bytes.Equal(now, kit) || !strings.Contains(r.stderr, "kit file kept") {
			t.Errorf("%q: exit %d, stdout %q, kit kept %v; want 0, the path, the kit as it was\nstderr: %s", args, r.code, r.stdout, bytes.Equal(now, kit), r.stderr)
		}
	}

	// Re-keyed into another file: the old kit's keys no longer work, but
	// they are still not overwritten.
	other := filepath.Join(dir, "rotated.json")
	if r = register(t, db, "--name", "Kept Trust", "--rotate", "--out-file", other); r.code != exitOK {
		t.Fatalf("rotation: exit %d\nstderr: %s", r.code, r.stderr)
	}
	r = register(t, db, "--name", "Kept Trust", "--code", "KEPT", "--out-file", path)
	if now, _ := os.ReadFile(path); r.code != exitFail || r.stdout != "" || !bytes.Equal(now, kit) || !strings.Contains(r.stderr, "no longer authenticate") {
		t.Errorf("stale kit: exit %d, stdout %q, kit kept %v; want 1, nothing, the kit as it was\nstderr: %s", r.code, r.stdout, bytes.Equal(now, kit), r.stderr)
	}

	// A rotation replaces this trust's own kit: its old keys are dead.
	if r = register(t, db, "--name", "Kept Trust", "--rotate", "--out-file", path); r.code != exitOK {
		t.Errorf("rotation over its own kit: exit %d\nstderr: %s", r.code, r.stderr)
	}

	// Files without keys are replaced by the skip record.
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // an empty file, then the skip record it became
		r = register(t, db, "--name", "Kept Trust", "--code", "KEPT", "--out-file", empty)
		data, _ := os.ReadFile(empty)
		if rec, _ := wantOne(t, result{stdout: string(data)}); r.code != exitOK || rec.Status != "existing" {
			t.Errorf("over a file without keys: exit %d, record %+v\nstderr: %s", r.code, rec, r.stderr)
		}
	}

	// Something that is not a kit: whether it holds keys cannot be told.
	notKit := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notKit, []byte("flip_ak_handwritten"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = register(t, db, "--name", "Kept Trust", "--code", "KEPT", "--out-file", notKit)
	if data, _ := os.ReadFile(notKit); r.code != exitFail || string(data) != "flip_ak_handwritten" {
		t.Errorf("over a file that is not a kit: exit %d, file %q", r.code, data)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"empty.json", "kit.json", "notes.txt", "rotated.json"}) {
		t.Errorf("directory holds %q", names)
	}
}

// A path that becomes a directory while the registration waits is found
// before the commit: nothing is registered, no temporary file is left.
func TestOutFileSwappedDuringRegistration(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	dir := t.TempDir()
	path := filepath.Join(dir, "kit.json")
	release := waitingRun(t, db, "--name", "Swapped", "--code", "SWP", "--out-file", path)
	// The checks are done; the registration waits for the pool.
	if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	if r := release(); r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, "nothing was committed") {
		t.Errorf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts registered, want 0", n)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"kit.json"}) {
		t.Errorf("directory holds %q, want only the directory kit.json", names)
	}
}

// A path in a sticky directory the caller does not own (like /tmp) is
// refused before anything is registered: another user could put a file
// or a link there before the rename.
func TestOutFileStickyDirectory(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	var dir string
	if os.Geteuid() == 0 {
		dir = filepath.Join(t.TempDir(), "shared")
		if err := os.Mkdir(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777|fs.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	} else {
		// Not root: the system's /tmp, if it is sticky and not ours.
		dir = os.TempDir()
		fi, err := os.Stat(dir)
		if uid, ok := fileOwner(fi); err != nil || !ok || fi.Mode()&fs.ModeSticky == 0 || uid == os.Geteuid() {
			t.Skipf("%s is not a sticky directory of another user's", dir)
		}
	}
	path := filepath.Join(dir, "register-trust-sticky-"+strings.ReplaceAll(t.Name(), "/", "-")+".json")
	r := register(t, db, "--name", "Sticky", "--code", "STK", "--out-file", path)
	if r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, "sticky directory") {
		t.Errorf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts registered, want 0", n)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s was created", path)
	}
}

// A path that holds another user's file is refused before anything is
// registered, and the file is left as it was.
func TestOutFileOtherOwner(t *testing.T) {
	t.Parallel()
	asRoot(t)
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	path := filepath.Join(t.TempDir(), "kit.json")
	if err := os.WriteFile(path, []byte("someone else's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	r := register(t, db, "--name", "Owned", "--code", "OWN", "--out-file", path)
	if r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, "belongs to another user") {
		t.Errorf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts registered, want 0", n)
	}
	if data, _ := os.ReadFile(path); string(data) != "someone else's" {
		t.Errorf("the file now holds %q", data)
	}
}
