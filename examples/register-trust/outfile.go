package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// kitFile is the private file --out-file names. The order in which it is
// written is what keeps a trust's keys from being lost: they are on disk
// before they exist in the database, and once they exist there the file
// that holds them is never removed.
//
//  1. openKitFile, before anything is registered, refuses a PATH the kit
//     could not safely be put at (see checkKitPath and checkKitDir), one
//     that holds another trust's keys, and a directory where an earlier
//     run left a kit with keys it could not put in place; then it creates
//     the temporary file beside PATH (a rename is atomic only within one
//     file system).
//  2. stage, before COMMIT, writes the complete kit to the temporary file,
//     syncs it, makes it 0600 and syncs the directory, so that the kit
//     survives a crash under the temporary name. If it fails, the command
//     rolls the registration back.
//  3. keep, at COMMIT: from then on the temporary file is never deleted.
//  4. install, after COMMIT, renames it over PATH and syncs the directory.
//     If that fails, the kit stays where it is, and the command names it.
type kitFile struct {
	path    string
	tmp     *os.File // open until staged
	tmpName string   // "" once renamed or removed
	kept    bool     // never to be removed: the keys in it may be in force
	// write and syncDir are (*os.File).Write and syncDir, seams for tests
	// that need a write or a directory sync to fail.
	write   func(f *os.File, p []byte) (int, error)
	syncDir func(dir string) error
}

// keptPrefix is how the temporary files of a kit at path begin; a file so
// named that holds keys is a kit an earlier run could not put in place.
func keptPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// openKitFile prepares the kit file at path for a run about the trust
// named trustName (canonical), refusing before anything is registered
// whatever would later lose keys or put them where others control.
func openKitFile(path, trustName string) (*kitFile, error) {
	if err := checkKitPath(path); err != nil {
		return nil, err
	}
	if err := checkKitDir(path); err != nil {
		return nil, err
	}
	recs, err := readKit(path)
	if err == nil && holdsKeys(recs) && !strings.EqualFold(recs[0].TrustName, trustName) {
		return nil, fmt.Errorf("--out-file: %s holds the keys of the trust %q; refusing to replace them with a kit of %q: move that file away, or choose another path",
			path, recs[0].TrustName, trustName)
	}
	if err := checkLeftovers(path); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), keptPrefix(path)+"*")
	if err != nil {
		return nil, fmt.Errorf("--out-file: cannot create a file beside %s: %w", path, err)
	}
	return &kitFile{path: path, tmp: tmp, tmpName: tmp.Name(), write: (*os.File).Write, syncDir: syncDir}, nil
}

// checkKitPath returns an error unless path is missing or a regular file
// of the caller's. Lstat, not Stat: a symlink is refused, not followed
// (writing through it would put the keys wherever it points). A file of
// another user's is refused: someone else controls that name, and in a
// sticky directory the rename over it would fail after the commit.
func checkKitPath(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--out-file: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("--out-file: %s is a symbolic link; refusing to write keys through it", path)
	case fi.IsDir():
		return fmt.Errorf("--out-file: %s is a directory", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("--out-file: %s is not a regular file", path)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("--out-file: %s belongs to another user (uid %d); refusing to replace it", path, uid)
	}
	return nil
}

// checkKitDir refuses path when its directory is missing, or is a sticky
// directory (like /tmp) that the caller does not own: anyone may create names there, so another user could put a
// file or a link at PATH after the checks, and the rename, due after the
// commit, would then fail or land where they chose.
func checkKitDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("--out-file: cannot create a file beside %s: %w", path, err)
	}
	if uid, ok := fileOwner(fi); ok && fi.Mode()&fs.ModeSticky != 0 && uid != os.Geteuid() {
		return fmt.Errorf("--out-file: %s is a sticky directory (like /tmp) that belongs to uid %d, where other users can create names; put the kit in a directory of your own (mktemp -d makes one)", dir, uid)
	}
	return nil
}

// checkLeftovers refuses a run while a kit that holds keys, left by an
// earlier run that could not put it at path, lies beside it: a new run
// would otherwise go ahead as if those keys did not exist (a re-run of a
// registration would print a keyless record and succeed). Temporary files
// without keys (a run that crashed before it wrote the kit) are passed
// over.
func checkLeftovers(path string) error {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("--out-file: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), keptPrefix(path)) || !e.Type().IsRegular() {
			continue
		}
		kept := filepath.Join(filepath.Dir(path), e.Name())
		if recs, err := readKit(kept); err == nil && holdsKeys(recs) {
			return fmt.Errorf("--out-file: an earlier run left the kit of trust %q, with its keys, at %s, having failed to put it at %s: move it there (or, if the trust's keys have been replaced since, delete it), then run again",
				recs[0].TrustName, kept, path)
		}
	}
	return nil
}

// readKit reads the kit records at path: none when it is missing or
// empty (as mktemp leaves it), an error when it holds something else.
func readKit(path string) ([]record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bytes.TrimSpace(data)) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []record
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("%s does not hold kit records: %w", path, err)
	}
	return recs, nil
}

// holdsKeys says whether recs carry any of a trust's own secrets.
func holdsKeys(recs []record) bool {
	for _, r := range recs {
		if r.TrustAPIKey != "" || r.TrustInternalServiceKey != "" || r.TrustAESKey != "" {
			return true
		}
	}
	return false
}

// stage writes data to the temporary file and makes it durable and
// private (mode 0600), directory entry included, checking PATH again in
// case it became a link or a directory meanwhile. On failure the
// temporary file is removed: nothing has been committed.
func (k *kitFile) stage(data []byte) (err error) {
	defer func() {
		if err != nil {
			k.discard()
		}
	}()
	if _, err := k.write(k.tmp, data); err != nil {
		return fmt.Errorf("writing %s: %w", k.tmpName, err)
	}
	if err := k.tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", k.tmpName, err)
	}
	// CreateTemp already makes it 0600; saying so keeps the mode from
	// depending on that.
	if err := k.tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", k.tmpName, err)
	}
	err = k.tmp.Close()
	k.tmp = nil
	if err != nil {
		return fmt.Errorf("closing %s: %w", k.tmpName, err)
	}
	if err := checkKitPath(k.path); err != nil {
		return err
	}
	if err := k.syncDir(filepath.Dir(k.path)); err != nil {
		return fmt.Errorf("syncing the directory of %s: %w", k.tmpName, err)
	}
	return nil
}

// keep marks the staged file as one never to remove: called at COMMIT,
// after which the keys in it may be the trust's only copy.
func (k *kitFile) keep() { k.kept = true }

// install renames the staged file over PATH and syncs the directory. On
// failure it returns where the kit is now: still the temporary file when
// the rename did not happen, or PATH when only the directory sync failed
// (after a crash the kit could then be found under either name, both
// synced).
func (k *kitFile) install() (string, error) {
	if err := checkKitPath(k.path); err != nil {
		return k.tmpName, err
	}
	if err := os.Rename(k.tmpName, k.path); err != nil {
		return k.tmpName, err
	}
	tmp := k.tmpName
	k.tmpName = "" // nothing left to discard
	if err := k.syncDir(filepath.Dir(k.path)); err != nil {
		return k.path, fmt.Errorf("the kit is at %s, but syncing its directory failed, so after a crash it may be back at %s: %w", k.path, tmp, err)
	}
	return k.path, nil
}

// discard removes the temporary file, unless it has been kept or put in
// place: a failed run leaves no file behind that holds no keys in force.
func (k *kitFile) discard() {
	if k.kept || k.tmpName == "" {
		return
	}
	if k.tmp != nil {
		_ = k.tmp.Close()
		k.tmp = nil
	}
	_ = os.Remove(k.tmpName)
	k.tmpName = ""
}

// syncDir makes the entries of dir (a new file, a rename) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
