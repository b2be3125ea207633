// Package cognitolocal runs the cognito-local emulator (npm) for flip's
// tests, and puts a fault-injecting proxy in front of it.
//
// Shared(t) gives every test in a binary the same emulator: on first use it
// runs `npm ci` in testdata if needed, starts
// node_modules/cognito-local/lib/bin/start.js on a free loopback port in a
// fresh temporary directory, and waits until /health answers. Tests keep
// apart by each creating their own user pool (NewUserPool). The emulator
// process watches its standard input, which only this process holds: when
// the test binary exits, however it exits, the emulator removes its
// directory and quits, so no TestMain is needed to clean up.
//
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
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Emulator is a running cognito-local.
type Emulator struct {
	// URL is the emulator's base URL, e.g. http://127.0.0.1:41234, for a
	// client's BaseEndpoint.
	URL string

	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it makes the emulator quit
	exited chan struct{}
	log    *bytes.Buffer
}

// watchdog runs the emulator's start script (argv[1]) and quits, removing
// its working directory, when standard input closes.
const watchdog = `
const fs = require('fs');
const dir = process.cwd();
const quit = () => { try { fs.rmSync(dir, {recursive: true, force: true}); } catch (e) {} process.exit(0); };
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
require(process.argv[1]);
`

// Start installs cognito-local if needed and starts it on a free loopback
// port in a new temporary directory, returning once it answers /health.
func Start(ctx context.Context) (*Emulator, error) { return StartWithConfig(ctx, nil) }

// PlainUsernames is an emulator configuration (.cognito/config.json) under
// which new user pools have no username attributes: a user's username is
// whatever AdminCreateUser names, not its email, so that two accounts can
// hold one email, as in a Cognito pool created that way.
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
		e, err := start(ctx, node, startScript(dir), config)
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

func start(ctx context.Context, node, script string, config []byte) (*Emulator, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "cognito-local-")
	if err != nil {
		return nil, err
	}
	if config != nil {
		err := os.Mkdir(filepath.Join(work, ".cognito"), 0o700)
		if err == nil {
			err = os.WriteFile(filepath.Join(work, ".cognito", "config.json"), config, 0o600)
		}
		if err != nil {
			os.RemoveAll(work)
			return nil, err
		}
	}
	e := &Emulator{URL: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{}), log: &bytes.Buffer{}}
	e.cmd = exec.Command(node, "-e", watchdog, script)
	e.cmd.Dir = work
	e.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "HOST=127.0.0.1")
	e.cmd.Stdout = &syncWriter{w: e.log}
	e.cmd.Stderr = e.cmd.Stdout
	if e.stdin, err = e.cmd.StdinPipe(); err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	if err := e.cmd.Start(); err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	go func() {
		_ = e.cmd.Wait()
		os.RemoveAll(work) // in case node could not
		close(e.exited)
	}()
	if err := e.waitHealthy(ctx, 30*time.Second); err != nil {
		e.Stop()
		return nil, fmt.Errorf("cognito-local on port %d: %w\n%s", port, err, e.Log())
	}
	return e, nil
}

// waitHealthy polls /health until it answers 200.
func (e *Emulator) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
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
	if e.cmd == nil {
		return ""
	}
	w := e.cmd.Stdout.(*syncWriter)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// sharedEmulator is an emulator a test binary starts once.
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
	shared.once.Do(func() {
		if url := os.Getenv("COGNITO_LOCAL_URL"); url != "" {
			e := &Emulator{URL: url, exited: make(chan struct{})}
			shared.emu, shared.err = e, e.waitHealthy(context.Background(), 10*time.Second)
			return
		}
		shared.start(nil)
	})
	return shared.get(t)
}

// SharedPlainUsernames returns the test binary's second emulator, started
// on first use with the PlainUsernames configuration, for tests that need
// a username other than the email (CreateUserNamed). It is always started
// here (COGNITO_LOCAL_URL names an emulator whose configuration is
// unknown); it skips or fails t as Shared does.
func SharedPlainUsernames(t testing.TB) *Emulator {
	t.Helper()
	sharedPlain.once.Do(func() { sharedPlain.start([]byte(PlainUsernames)) })
	return sharedPlain.get(t)
}

func (s *sharedEmulator) start(config []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s.emu, s.err = StartWithConfig(ctx, config)
}

func (s *sharedEmulator) get(t testing.TB) *Emulator {
	t.Helper()
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

// syncWriter serialises writes from the process's stdout and stderr
// copiers with reads by Log.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w.Len() > 1<<20 { // keep memory bounded: the emulator logs every request
		s.w.Reset()
	}
	return s.w.Write(p)
}
