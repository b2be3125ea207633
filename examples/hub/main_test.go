package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
)

// runMainEnv set to 1 makes the test binary run the hub's main, with the
// process's own environment, instead of the tests.
const runMainEnv = "FLIP_HUB_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// runHub runs the hub's main in a process of its own with the test's
// environment, less DATABASE_URL, plus env; it returns the exit status and
// everything the process wrote.
func runHub(t *testing.T, env ...string) (int, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append(env, runMainEnv+"=1", "HUB_ADDR=127.0.0.1:0")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// The hub's boot stops (exit 1) on a database that refuses it, or a
// connection string that cannot be parsed, and its log shows none of the
// password, in whatever form DATABASE_URL holds it.
func TestRun_BootErrorShowsNoPassword(t *testing.T) {
	t.Parallel()
	for _, c := range cmddbtest.RefusedDSNs {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			code, out := runHub(t, "DATABASE_URL="+c.DSN)
			want := "cannot connect to the database at DATABASE_URL"
			if c.Unparsable {
				want = "the database connection string is not valid"
			}
			if code != 1 || !strings.Contains(out, "hub stopped") || !strings.Contains(out, want) {
				t.Errorf("exit %d; want 1 and a log line saying %q:\n%s", code, want, out)
			}
			cmddbtest.NoPassword(t, c, "the hub's output", out)
		})
	}
}

// Without DATABASE_URL the hub does not start: there is no default
// database.
func TestRun_RefusesToStartWithoutDatabaseURL(t *testing.T) {
	t.Parallel()
	code, out := runHub(t)
	if code != 1 || !strings.Contains(out, "set DATABASE_URL") || strings.Contains(out, "hub starting") {
		t.Errorf("exit %d; want 1 and a message asking for DATABASE_URL:\n%s", code, out)
	}
}
