package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// kitFile is the private file --out-file names. It is prepared before
// anything is registered, so that a path the command cannot write is
// found out before keys are minted that would then be lost; the records
// go to a temporary file beside it, renamed over it only once complete,
// so PATH never holds part of a kit, and no other user can read it.
type kitFile struct {
	path string
	tmp  *os.File // nil once committed or discarded
	// write writes the kit to the temporary file: (*os.File).Write, a
	// seam for tests that need a write to fail halfway.
	write func(f *os.File, p []byte) (int, error)
}

// openKitFile refuses a path that is a symlink (writing through it would
// put the keys wherever it points), a directory or anything else that is
// not a regular file, then creates the temporary file in the same
// directory (a rename is atomic only within one file system).
func openKitFile(path string) (*kitFile, error) {
	if err := checkKitPath(path); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("--out-file: cannot create a file beside %s: %w", path, err)
	}
	return &kitFile{path: path, tmp: tmp, write: (*os.File).Write}, nil
}

// checkKitPath returns an error unless path is missing or a regular file.
// Lstat, not Stat: a symlink is refused, not followed.
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
	return nil
}

// commit writes data to the temporary file, makes it durable and private
// (mode 0600), and renames it over the path. On any failure the temporary
// file is removed and the path is left as it was.
func (k *kitFile) commit(data []byte) (err error) {
	defer func() {
		if err != nil {
			k.discard()
		}
	}()
	if _, err := k.write(k.tmp, data); err != nil {
		return fmt.Errorf("writing %s: %w", k.tmp.Name(), err)
	}
	if err := k.tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", k.tmp.Name(), err)
	}
	// CreateTemp already makes it 0600; saying so keeps the mode from
	// depending on that.
	if err := k.tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", k.tmp.Name(), err)
	}
	if err := k.tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", k.tmp.Name(), err)
	}
	if err := checkKitPath(k.path); err != nil { // replaced while we registered?
		return err
	}
	if err := os.Rename(k.tmp.Name(), k.path); err != nil {
		return err
	}
	k.tmp = nil
	syncDir(filepath.Dir(k.path))
	return nil
}

// discard removes the temporary file, if it is still there.
func (k *kitFile) discard() {
	if k.tmp == nil {
		return
	}
	_ = k.tmp.Close() // may already be closed
	_ = os.Remove(k.tmp.Name())
	k.tmp = nil
}

// syncDir makes a rename in dir durable. It is best effort: the file is
// complete and in place whether or not the directory entry reached the
// disk yet, so a failure is not the run's.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
