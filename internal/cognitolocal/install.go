package cognitolocal

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Version is the cognito-local release the tests run against, pinned in
// testdata/package.json and testdata/package-lock.json.
const Version = "5.3.0"

// PackageDir returns the directory holding package.json and
// package-lock.json (and, once installed, node_modules): $COGNITO_LOCAL_DIR
// if set, else this package's testdata directory in the source tree. It
// sits under testdata so that the go command never walks node_modules.
func PackageDir() string {
	if d := os.Getenv("COGNITO_LOCAL_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// startScript returns the emulator's entry point under dir.
func startScript(dir string) string {
	return filepath.Join(dir, "node_modules", "cognito-local", "lib", "bin", "start.js")
}

// installed reports whether dir holds a complete install of Version: npm
// writes node_modules/.package-lock.json last.
func installed(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil {
		return false
	}
	data, err := os.ReadFile(filepath.Join(dir, "node_modules", "cognito-local", "package.json"))
	if err != nil {
		return false
	}
	var pkg struct{ Version string }
	return json.Unmarshal(data, &pkg) == nil && pkg.Version == Version
}

// Install runs `npm ci` in dir unless Version is already installed there.
// An exclusive lock on a file in dir makes test binaries that start
// together (go test ./...) install once and wait for each other. Install
// scripts are not run: the emulator needs none.
func Install(dir string) error {
	if installed(dir) {
		return nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".install.lock"))
	if err != nil {
		return fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unlock()
	if installed(dir) { // another binary installed it while we waited
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("npm is needed to install cognito-local: %w", err)
	}
	cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	if !installed(dir) {
		return fmt.Errorf("npm ci in %s finished in %v but cognito-local %s is not there", dir, time.Since(start), Version)
	}
	return nil
}
