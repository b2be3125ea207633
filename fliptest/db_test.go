package fliptest_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for WithDriver

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

func TestNewDB_GivesEachTestItsOwnMigratedDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a, b := fliptest.NewDB(t), fliptest.NewDB(t, fliptest.WithDriver("pgx"))
	if a.Name == b.Name || !strings.HasPrefix(a.Name, "flip_test_") || !strings.Contains(a.URL, a.Name) {
		t.Fatalf("databases %s (%s) and %s", a.Name, a.URL, b.Name)
	}
	fliptest.AddSlots(t, a, "Trust_001..Trust_003")
	var inA, inB int
	if err := a.QueryRowContext(ctx, `SELECT count(*) FROM fl_kit_slot`).Scan(&inA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRowContext(ctx, `SELECT count(*) FROM fl_kit_slot`).Scan(&inB); err != nil {
		t.Fatal(err)
	}
	if inA != 3 || inB != 0 {
		t.Errorf("slots: %d in one database, %d in the other; want 3 and 0", inA, inB)
	}
	for _, db := range []*fliptest.DB{a, b} {
		var v int
		err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM flip_schema_migrations`).Scan(&v)
		if err != nil || v != store.LatestVersion() {
			t.Errorf("%s: version %d, %v; want %d", db.Name, v, err, store.LatestVersion())
		}
	}
	untouched := fliptest.NewDB(t, fliptest.AtVersion(0))
	var tables int
	if err := untouched.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("AtVersion(0): %d tables, %v; want none", tables, err)
	}
}

// A failed test logs its database's name and URL; FLIPTEST_KEEP_FAILED
// keeps the database. The failing test runs in a child process of this
// test binary.
func TestNewDB_FailedTestLogsItsDatabaseAndKeepsItOnRequest(t *testing.T) {
	t.Parallel()
	admin := fliptest.RequireServer(t)
	for _, keep := range []bool{false, true} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNewDB_FailingChild$", "-test.v")
		cmd.Env = append(os.Environ(), "FLIPTEST_CHILD=1", "FLIPTEST_KEEP_FAILED=")
		if keep {
			cmd.Env = append(cmd.Env, "FLIPTEST_KEEP_FAILED=1")
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("the failing child passed:\n%s", out)
		}
		m := regexp.MustCompile(`database (flip_test_[0-9a-f]+)(?: is kept for inspection)? at (\S+)`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("keep=%v: the child's log names no database and URL:\n%s", keep, out)
		}
		name, url := m[1], m[2]
		t.Cleanup(func() { _, _ = admin.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`) })
		if !strings.HasSuffix(strings.SplitN(url, "?", 2)[0], "/"+name) || strings.Contains(string(out), "kept") != keep {
			t.Errorf("keep=%v: log names %s at %s:\n%s", keep, name, url, out)
		}
		var exists bool
		if err := admin.QueryRowContext(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != keep {
			t.Errorf("keep=%v: database %s exists: %v", keep, name, exists)
		}
	}
}

// What fliptest logs about the server (a failed test's database, a server
// that does not answer) never shows a password given in DATABASE_URL: the
// failing child runs with one added as a URL parameter (or keyword) to the
// real server, which a server that trusts local connections ignores, and
// to a port where nothing listens.
func TestNewDB_LogsNoPassword(t *testing.T) {
	t.Parallel()
	fliptest.RequireServer(t)
	const password = "fliptest-pw-7"
	withPassword := func(server string) string {
		if strings.HasPrefix(server, "postgres://") || strings.HasPrefix(server, "postgresql://") {
			return server + map[bool]string{true: "&", false: "?"}[strings.Contains(server, "?")] + "password=" + password
		}
		return server + " password=" + password
	}
	for _, server := range []string{
		withPassword(fliptest.ServerURL()),
		"postgres://flip:" + password + "@127.0.0.1:1/none?sslmode=disable",
		"host=127.0.0.1 port=1 sslmode=disable password='" + password + "'",
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNewDB_FailingChild$", "-test.v")
		cmd.Env = append(os.Environ(), "FLIPTEST_CHILD=1", "FLIPTEST_KEEP_FAILED=", "DATABASE_URL="+server)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "fliptest: ") || strings.Contains(string(out), password) {
			t.Errorf("DATABASE_URL=%s: the child's output says nothing of the server, or shows the password:\n%s", server, out)
		}
	}
}

// TestNewDB_FailingChild fails on purpose when run as the child of the
// test above; otherwise it does nothing.
func TestNewDB_FailingChild(t *testing.T) {
	t.Parallel()
	if os.Getenv("FLIPTEST_CHILD") != "1" {
		return
	}
	fliptest.NewDB(t)
	t.Error("failing on purpose")
}

func TestDumpTables_RendersEveryRowOfEveryTable(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	if n := fliptest.AddSlots(t, db, "Trust_001..Trust_002", "Spare"); n != 3 {
		t.Fatalf("AddSlots added %d slots, want 3", n)
	}
	res := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Dumped Trust", Code: "DT"})
	dump := fliptest.DumpTables(t, db)
	for _, want := range []string{"Dumped Trust", flip.HashAPIKey(res.APIKey.Reveal()), "Trust_002", "Spare", "REGISTERED", res.Trust.ID.String()} {
		if !strings.Contains(dump, want) {
			t.Errorf("the dump lacks %q:\n%s", want, dump)
		}
	}
	if strings.Contains(dump, res.APIKey.Reveal()) || strings.Contains(dump, res.InternalServiceKey.Reveal()) {
		t.Error("a plaintext key is stored")
	}
}

// Only a server that is not there skips the tests: one that answers but
// refuses the connection fails them, with or without CI=true, so that a
// wrong role or password cannot give a green `go test` that ran nothing.
func TestServerAbsent_OnlyWhenNothingListens(t *testing.T) {
	t.Parallel()
	fliptest.RequireServer(t) // the refusals below need a server that answers
	// The server's own URL with another user or database.
	with := func(key, value string) string {
		u, err := url.Parse(fliptest.ServerURL())
		switch {
		case err != nil || u.Scheme == "": // a key=value DSN, where the last value wins
			return fliptest.ServerURL() + " " + key + "=" + value
		case key == "user":
			u.User = url.User(value)
		default:
			u.Path = "/" + value
		}
		return u.String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	for _, c := range []struct {
		name, url string
		absent    bool
	}{
		{"connection refused", "postgres://postgres@" + closed + "/test?sslmode=disable", true},
		{"socket missing", "host=" + filepath.Join(t.TempDir(), "none") + " user=postgres dbname=test sslmode=disable", true},
		{"role does not exist", with("user", "flip_no_such_role"), false},
		{"database does not exist", with("dbname", "flip_no_such_database"), false},
	} {
		db, err := sql.Open("postgres", c.url)
		if err != nil {
			t.Fatal(err)
		}
		err = db.PingContext(t.Context())
		db.Close()
		if err == nil || fliptest.ServerAbsent(err) != c.absent {
			t.Errorf("%s: ServerAbsent(%v) = %v, want %v", c.name, err, !c.absent, c.absent)
		}
	}

	for _, c := range []struct {
		name   string
		err    error
		absent bool
	}{
		{"no such host", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "db.invalid", IsNotFound: true}}, true},
		{"resolver failing", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "db.example", IsTemporary: true}}, false},
		{"timeout", fmt.Errorf("dial: %w", context.DeadlineExceeded), false},
		{"refused read, not dial", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNREFUSED}, false},
		{"no error", nil, false},
	} {
		if got := fliptest.ServerAbsent(c.err); got != c.absent {
			t.Errorf("%s: ServerAbsent(%v) = %v, want %v", c.name, c.err, got, c.absent)
		}
	}
}
