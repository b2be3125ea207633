// Package cognitolocal runs the cognito-local emulator (npm) for flip's
// tests, and puts a fault-injecting proxy in front of it.
//
// Shared(t) gives every test in a binary the same emulator: on first use it
// runs `npm ci` in testdata if needed, starts cognito-local on a free
// loopback port in a fresh temporary directory, and waits until /health
// answers. Tests keep apart by each creating their own user pool
// (NewUserPool). The emulator watches its standard input, which only this
// process holds: however the test binary exits, the emulator removes its
// directory and quits, so no TestMain is needed to clean up.
// SharedPlainUsernames gives a second emulator, whose pools take any
// username (CreateUserNamed), so that two accounts can hold one email.
//
// When node or npm is missing, or the emulator does not start, Shared skips
// the test, except under CI=true, where it fails it: a CI run must never
// pass by skipping. COGNITO_LOCAL_URL names an emulator that is already
// running instead.
package cognitolocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Emulator is a running cognito-local.
type Emulator struct {
	URL string // base URL, e.g. http://127.0.0.1:41234, for a client's BaseEndpoint

	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it makes the emulator quit
	exited chan struct{}
	mu     sync.Mutex    // guards out
	out    *bytes.Buffer // what it prints (nil: not ours); see logWriter
}

// watchdog runs the emulator's start script (argv[1]) and quits, removing
// its working directory, when standard input closes.
const watchdog = `const fs = require('fs'), dir = process.cwd();
const quit = () => { try { fs.rmSync(dir, {recursive: true, force: true}); } catch (e) {} process.exit(0); };
process.stdin.on('end', quit).on('error', quit).resume();
require(process.argv[1]);`

// Start installs cognito-local if needed and starts it on a free loopback
// port in a new temporary directory, returning once it answers /health.
func Start(ctx context.Context) (*Emulator, error) { return StartWithConfig(ctx, nil) }

// PlainUsernames is an emulator configuration under which new user pools
// have no username attributes: a username is whatever AdminCreateUser
// names, not the email, so two accounts can hold one email, as in a
// Cognito pool created that way.
const PlainUsernames = `{"UserPoolDefaults":{"UsernameAttributes":[]}}`

// StartWithConfig is Start with config (JSON, e.g. PlainUsernames) written
// to .cognito/config.json before the emulator starts; nil writes none.
func StartWithConfig(ctx context.Context, config []byte) (*Emulator, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node is needed to run cognito-local: %w", err)
	}
	dir := PackageDir()
	if err := Install(dir); err != nil {
		return nil, err
	}
	var errs []error
	for range 3 { // a free port can be taken between choosing and binding it
		e, err := start(ctx, node, filepath.Join(dir, "node_modules", "cognito-local", "lib", "bin", "start.js"), config)
		if err == nil {
			return e, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func start(ctx context.Context, node, script string, config []byte) (e *Emulator, err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "cognito-local-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(work)
		}
	}()
	if config != nil {
		if err = os.Mkdir(filepath.Join(work, ".cognito"), 0o700); err == nil {
			err = os.WriteFile(filepath.Join(work, ".cognito", "config.json"), config, 0o600)
		}
		if err != nil {
			return nil, err
		}
	}
	e = &Emulator{URL: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{}), out: &bytes.Buffer{}}
	e.cmd = exec.Command(node, "-e", watchdog, script)
	e.cmd.Dir, e.cmd.Stdout, e.cmd.Stderr = work, logWriter{e}, logWriter{e}
	e.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1")
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err = e.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = e.cmd.Wait()
		os.RemoveAll(work) // in case node could not
		close(e.exited)
	}()
	// Half a second on an idle machine, twenty seconds once on a loaded
	// one. The bound is for an emulator that never answers: one that
	// starts late must not skip (or, under CI, fail) every test using it.
	if err = e.waitHealthy(ctx, 2*time.Minute); err != nil {
		e.Stop()
		return nil, fmt.Errorf("cognito-local on port %d: %w\n%s", port, err, e.Log())
	}
	return e, nil
}

func (e *Emulator) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second} // a stuck request, not a slow one
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+"/health", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-e.exited:
			return errors.New("exited before answering /health")
		case <-ctx.Done():
			return fmt.Errorf("no answer from /health: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop makes the emulator quit and waits for it (killing it after five
// seconds). A stopped emulator's state is gone.
func (e *Emulator) Stop() {
	if e.cmd == nil {
		return // not ours (COGNITO_LOCAL_URL)
	}
	_ = e.stdin.Close()
	select {
	case <-e.exited:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

// Log returns what the emulator printed so far.
func (e *Emulator) Log() string {
	if e.out == nil {
		return "" // not ours (COGNITO_LOCAL_URL)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.String()
}

// sharedEmulator is an emulator a test binary starts once (get).
type sharedEmulator struct {
	once sync.Once
	emu  *Emulator
	err  error
}

var shared, sharedPlain sharedEmulator

// Shared returns the test binary's emulator, starting it on first use. It
// skips t when the emulator cannot run, or fails it under CI=true.
func Shared(t testing.TB) *Emulator {
	t.Helper()
	return shared.get(t, func(ctx context.Context) (*Emulator, error) {
		if url := os.Getenv("COGNITO_LOCAL_URL"); url != "" {
			e := &Emulator{URL: url, exited: make(chan struct{})}
			return e, e.waitHealthy(ctx, 2*time.Minute)
		}
		return Start(ctx)
	})
}

// SharedPlainUsernames returns the test binary's second emulator, with the
// PlainUsernames configuration. It is always started here, as
// COGNITO_LOCAL_URL names an emulator whose configuration is unknown; it
// skips or fails t as Shared does.
func SharedPlainUsernames(t testing.TB) *Emulator {
	t.Helper()
	return sharedPlain.get(t, func(ctx context.Context) (*Emulator, error) {
		return StartWithConfig(ctx, []byte(PlainUsernames))
	})
}

func (s *sharedEmulator) get(t testing.TB, start func(context.Context) (*Emulator, error)) *Emulator {
	t.Helper()
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		s.emu, s.err = start(ctx)
	})
	if s.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cognitolocal: the Cognito emulator is required under CI=true: %v", s.err)
		}
		t.Skipf("cognitolocal: Cognito emulator unavailable (install node and npm, or set COGNITO_LOCAL_URL): %v", s.err)
	}
	return s.emu
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logWriter appends the emulator's output to its log, which it clears past
// 1 MiB to keep memory bounded: the emulator logs every request.
type logWriter struct{ e *Emulator }

func (w logWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	if w.e.out.Len() > 1<<20 {
		w.e.out.Reset()
	}
	return w.e.out.Write(p)
}

// Version is the cognito-local release the tests run against, pinned in
// testdata/package.json and testdata/package-lock.json.
const Version = "5.3.0"

// PackageDir returns the directory of package.json, package-lock.json and
// node_modules: $COGNITO_LOCAL_DIR if set, else this package's testdata,
// where the go command never walks node_modules.
func PackageDir() string {
	if d := os.Getenv("COGNITO_LOCAL_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
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
