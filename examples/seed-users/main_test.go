package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// runMainEnv set to 1 makes the test binary run the command's main, with
// the process's own arguments and environment, instead of the tests.
const runMainEnv = "FLIP_SEED_USERS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

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
	noDB := map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/none?sslmode=disable"} // never reached
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"no pool", noDB, []string{"--users", bad}, exitUsage},
		{"stray argument", noDB, []string{"--user-pool-id", "p", "extra"}, exitUsage},
		{"unknown flag", noDB, []string{"--bogus"}, exitUsage},
		{"no users", noDB, []string{"--user-pool-id", "p"}, exitUsage},
		{"invalid email", noDB, []string{"--user-pool-id", "p", "--users", bad}, exitFail},
		{"help", nil, []string{"-h"}, exitOK},
	} {
		got := runCmd(t, c.env, c.args...)
		if got.code != c.code || got.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want exit %d and no stdout\n%s", c.name, got.code, got.stdout, c.code, got.stderr)
		}
	}
}

// Without --database-url and DATABASE_URL the command refuses to run
// (there is no default database), naming both, before it connects
// anywhere.
func TestRun_NoDatabaseGiven(t *testing.T) {
	t.Parallel()
	users := writeUsers(t, flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin"})
	c := runCmd(t, nil, "--user-pool-id", "p", "--users", users, "--endpoint", "http://127.0.0.1:1")
	if c.code != exitUsage || c.stdout != "" || strings.Contains(c.stderr, "connecting") ||
		!strings.Contains(c.stderr, "--database-url") || !strings.Contains(c.stderr, "DATABASE_URL") {
		t.Errorf("exit %d, stdout %q; want exit 2, nothing on stdout, no connection and an error naming both\nstderr: %s", c.code, c.stdout, c.stderr)
	}
}

// A database that refuses the connection stops the run (exit 1, nothing
// seeded, no report) without printing its password, in whatever form the
// URL or connection string holds it.
func TestRun_DatabaseUnreachable(t *testing.T) {
	t.Parallel()
	users := writeUsers(t, flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin"})
	for _, dsn := range cmddbtest.RefusedDSNs {
		for _, env := range []map[string]string{nil, {"DATABASE_URL": dsn.DSN}} {
			args := []string{"--user-pool-id", "p", "--users", users, "--endpoint", "http://127.0.0.1:1", "--migrate"}
			if env == nil {
				args = append(args, "--database-url", dsn.DSN)
			}
			c := runCmd(t, env, args...)
			want := "cannot connect to the database at"
			if dsn.Unparsable {
				want = "the database connection string is not valid"
			}
			if c.code != exitFail || c.stdout != "" || !strings.Contains(c.stderr, want) {
				t.Errorf("%s: exit %d, stdout %q; want exit 1, nothing on stdout and %q\nstderr: %s", dsn.Name, c.code, c.stdout, want, c.stderr)
			}
			cmddbtest.NoPassword(t, dsn, "stderr", c.stderr)
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

func TestRun_ReportsAUserWhoseAccountDoesNotProveTheAddress(t *testing.T) {
	t.Parallel()
	// An account created without a verified address holds Ada's email: it
	// gets nothing, the report says so, and the run goes on (exit 0).
	emu := cognitolocal.Shared(t)
	db := fliptest.NewDB(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	cognitolocal.CreateUserWith(t, emu.Client(), pool, "ada.admin@example.com", cognitolocal.EmailAttributes("ada.admin@example.com", false)...)
	rita := cognitolocal.CreateUser(t, emu.Client(), pool, "rita.research@example.com")
	file := writeUsers(t,
		flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin"},
		flip.MainUser{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research"},
	)
	c := runCmd(t, nil, "--users", file, "--endpoint", emu.URL, "--region", "eu-west-2", "--user-pool-id", pool, "--database-url", db.URL)
	if c.code != exitOK {
		t.Fatalf("exit %d\n%s", c.code, c.stderr)
	}
	var report flip.SeedReport
	if err := json.Unmarshal([]byte(c.stdout), &report); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, c.stdout)
	}
	if len(report.Users) != 2 || report.Users[0].Result != flip.SeedSkippedUnverified || report.Users[0].IgnoredAccounts != 1 ||
		!strings.Contains(report.Users[0].Reason, "email_verified false") || report.Users[1].UserID != rita {
		t.Errorf("report: %s", c.stdout)
	}
	if !strings.Contains(c.stderr, "level=WARN") || !strings.Contains(c.stderr, "status=FORCE_CHANGE_PASSWORD email_verified=false") {
		t.Errorf("no warning naming the account's status and email_verified:\n%s", c.stderr)
	}
}

// exampleUsers is the checked-in main-user file of the README's
// walkthrough.
const exampleUsers = "main-users.example.json"

func TestRun_SeedsTheExampleUsers(t *testing.T) {
	t.Parallel()
	users, err := flip.LoadMainUsersFile(exampleUsers)
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, u := range users {
		if !strings.HasSuffix(u.Email, "@example.com") {
			t.Errorf("%s: the example's addresses are @example.com", u.Email)
		}
		roles = append(roles, u.Role)
	}
	if got := strings.Join(roles, ","); got != "Admin,Researcher,Viewer" {
		t.Errorf("the example's roles are %s, want one user each of Admin,Researcher,Viewer", got)
	}

	emu := cognitolocal.Shared(t)
	db := fliptest.NewDB(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	for _, u := range users {
		cognitolocal.CreateUser(t, emu.Client(), pool, u.Email)
	}
	c := runCmd(t, nil, "--migrate", "--users", exampleUsers, "--endpoint", emu.URL, "--region", "eu-west-2", "--user-pool-id", pool, "--database-url", db.URL)
	if c.code != exitOK {
		t.Fatalf("exit %d\n%s", c.code, c.stderr)
	}
	checkAllCreated(t, c.stdout, users)
}

// The README's walkthrough, command by command (run from the module root),
// except for the scratch database, which fliptest provides.
const (
	walkthroughStart = `eval "$(bash scripts/cognito-local start examples/seed-users/main-users.example.json)"`
	walkthroughSeed  = `go run ./examples/seed-users --migrate --users examples/seed-users/main-users.example.json`
	walkthroughStop  = `bash scripts/cognito-local stop`
)

// TestWalkthrough runs the README's seed-users walkthrough: scripts/cognito-local
// starts an emulator whose pool holds the example users and prints the
// variables to export; the command, given only those and DATABASE_URL,
// seeds the users; stop ends the emulator.
func TestWalkthrough(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{walkthroughStart, walkthroughSeed, walkthroughStop} {
		if !strings.Contains(string(readme), "\n"+line+"\n") {
			t.Errorf("README.md has no line %q: keep the walkthrough and this test the same", line)
		}
	}
	requireEmulatorTools(t)
	users, err := flip.LoadMainUsersFile(exampleUsers)
	if err != nil {
		t.Fatal(err)
	}
	db := fliptest.NewDB(t)

	// A clean environment: none of the developer's AWS, Cognito, database
	// or main-user settings.
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "COGNITO_") && !strings.HasPrefix(k, "FLIP_") && k != "DATABASE_URL" {
			env = append(env, kv)
		}
	}
	env = append(env, "COGNITO_LOCAL_PORT="+strconv.Itoa(freePort(t)), "TMPDIR="+t.TempDir())
	script := func(line string) string {
		t.Helper()
		args := strings.Fields(line)
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = "../.."
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, stderr.String())
		}
		return string(out)
	}
	t.Cleanup(func() { script(walkthroughStop) })

	exports := script(strings.TrimSuffix(strings.TrimPrefix(walkthroughStart, `eval "$(`), `)"`))
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(exports), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || !strings.HasPrefix(line, "export ") {
			t.Fatalf("start printed %q, not an export line", line)
		}
		vars[k] = v
		env = append(env, k+"="+v)
	}
	for _, k := range []string{"COGNITO_ENDPOINT", "COGNITO_USER_POOL_ID", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if vars[k] == "" {
			t.Errorf("start exported no %s:\n%s", k, exports)
		}
	}

	// The command, as `go run` runs it: its main in a process of its own,
	// with the walkthrough's environment.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	seedArgs := strings.Fields(strings.TrimPrefix(walkthroughSeed, "go run ./examples/seed-users"))
	for run := 1; run <= 2; run++ {
		cmd := exec.Command(self, seedArgs...)
		cmd.Dir = "../.."
		cmd.Env = append(env, runMainEnv+"=1", "DATABASE_URL="+db.URL)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, stderr.String())
		}
		if run == 1 {
			checkAllCreated(t, string(out), users)
		} else if n := strings.Count(string(out), `"result":"unchanged"`); n != len(users) {
			t.Errorf("run 2: %d users unchanged, want %d:\n%s", n, len(users), out)
		}
	}

	script(walkthroughStop)
	if resp, err := http.Get(vars["COGNITO_ENDPOINT"] + "/health"); err == nil {
		resp.Body.Close()
		t.Errorf("the emulator still answers after %s", walkthroughStop)
	}
}

// checkAllCreated checks that report (the command's stdout) says every one
// of users was created and given their role.
func checkAllCreated(t *testing.T, report string, users []flip.MainUser) {
	t.Helper()
	var r flip.SeedReport
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		t.Fatalf("stdout is not a report: %v\n%s", err, report)
	}
	if len(r.Users) != len(users) {
		t.Fatalf("%d users in the report, want %d:\n%s", len(r.Users), len(users), report)
	}
	for i, o := range r.Users {
		if o.Email != users[i].Email || o.Result != flip.SeedCreated || !o.RoleGranted || o.Role != users[i].Role {
			t.Errorf("user %d: %+v, want %s created with role %s granted", i+1, o, users[i].Email, users[i].Role)
		}
	}
}

// requireEmulatorTools skips t when bash, node or npm is missing or the
// emulator cannot be installed, or fails it under CI=true, as
// cognitolocal.Shared does.
func requireEmulatorTools(t *testing.T) {
	t.Helper()
	var err error
	for _, tool := range []string{"bash", "node", "npm"} {
		if _, err = exec.LookPath(tool); err != nil {
			break
		}
	}
	if err == nil {
		err = cognitolocal.Install(cognitolocal.PackageDir())
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the Cognito emulator is required under CI=true: %v", err)
		}
		t.Skipf("Cognito emulator unavailable (install bash, node and npm): %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
