package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// cmd is one run of the command with its outputs.
type cmd struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, env map[string]string, args ...string) cmd {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, func(k string) string { return env[k] })
	return cmd{code, stdout.String(), stderr.String()}
}

func writeUsers(t *testing.T, users ...flip.MainUser) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{"main_users": users})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "main-users.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRun_SeedsAgainstTheEmulatorAndReportsJSON(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	db := fliptest.NewDB(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	sub := cognitolocal.CreateUser(t, emu.Client(), pool, "ada.admin@example.com")
	file := writeUsers(t,
		flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
		flip.MainUser{Email: "not.yet@example.com", Role: "Viewer", Name: "Not Yet"},
	)
	args := []string{"--users", file, "--endpoint", emu.URL, "--region", "eu-west-2", "--user-pool-id", pool, "--database-url", db.URL}

	for run, want := range []string{"created", "unchanged"} {
		c := runCmd(t, nil, args...)
		if c.code != exitOK {
			t.Fatalf("run %d: exit %d\n%s", run+1, c.code, c.stderr)
		}
		var report flip.SeedReport
		if err := json.Unmarshal([]byte(c.stdout), &report); err != nil {
			t.Fatalf("stdout is not a report: %v\n%s", err, c.stdout)
		}
		if len(report.Users) != 2 || report.Users[0].Result != flip.SeedResult(want) || report.Users[0].UserID != sub ||
			report.Users[1].Result != flip.SeedSkippedNotFound {
			t.Errorf("run %d: %s", run+1, c.stdout)
		}
		if !strings.Contains(c.stderr, "level=WARN") || !strings.Contains(c.stderr, "not.yet@example.com") {
			t.Errorf("run %d: no warning for the missing user:\n%s", run+1, c.stderr)
		}
	}
}

func TestRun_ReadsUsersFromTheEnvironment(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	db := fliptest.NewDB(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	cognitolocal.CreateUser(t, emu.Client(), pool, "rita.research@example.com")
	env := map[string]string{
		"FLIP_MAIN_USERS":      `[{"email": "rita.research@example.com", "role": "Researcher", "name": "Rita Research", "organisation": "Example University"}]`,
		"COGNITO_USER_POOL_ID": pool,
		"COGNITO_ENDPOINT":     emu.URL,
		"DATABASE_URL":         db.URL,
	}
	c := runCmd(t, env, "--region", "eu-west-2")
	if c.code != exitOK || !strings.Contains(c.stdout, `"result":"created"`) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", c.code, c.stdout, c.stderr)
	}
}

func TestRun_UsageAndConfigurationErrors(t *testing.T) {
	t.Parallel()
	bad := writeUsers(t, flip.MainUser{Email: `x"@example.com`, Role: "Admin", Name: "X"})
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"no pool", nil, []string{"--users", bad}, exitUsage},
		{"stray argument", nil, []string{"--user-pool-id", "p", "extra"}, exitUsage},
		{"unknown flag", nil, []string{"--bogus"}, exitUsage},
		{"no users", nil, []string{"--user-pool-id", "p"}, exitUsage},
		{"invalid email", nil, []string{"--user-pool-id", "p", "--users", bad}, exitFail},
		{"help", nil, []string{"-h"}, exitOK},
	} {
		got := runCmd(t, c.env, c.args...)
		if got.code != c.code || got.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want exit %d and no stdout\n%s", c.name, got.code, got.stdout, c.code, got.stderr)
		}
	}
}

func TestRun_StopsWithExit1OnADefinitiveFailure(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	db := fliptest.NewDB(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	cognitolocal.CreateUser(t, emu.Client(), pool, "ada.admin@example.com")
	proxy := cognitolocal.NewProxy(t, emu.URL)
	proxy.Fail("ada.admin@example.com", cognitolocal.Fault403)
	file := writeUsers(t, flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin"})

	c := runCmd(t, nil, "--users", file, "--endpoint", proxy.URL, "--region", "eu-west-2", "--user-pool-id", pool, "--database-url", db.URL)
	if c.code != exitFail || !strings.Contains(c.stderr, "ada.admin@example.com") || !strings.Contains(c.stderr, "403") {
		t.Errorf("exit %d\nstderr: %s", c.code, c.stderr)
	}
	if strings.TrimSpace(c.stdout) != `{"users":[]}` {
		t.Errorf("stdout = %q, want the (empty) report so far", c.stdout)
	}
}
