// Package fliptest helps tests that use flip, the way net/http/httptest
// helps tests of HTTP code: one call gives a test its own migrated
// PostgreSQL database, dropped when the test ends.
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		db := fliptest.NewDB(t)          // migrated, isolated, dropped at cleanup
//		fliptest.AddSlots(t, db, "Trust_001..Trust_010")
//		res := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "A", Code: "A"})
//		_ = res
//	}
//
// The server is found through DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable); the role needs
// CREATEDB. Databases are cloned from a template built once per migration
// set, so a new one costs a CREATE DATABASE (about 43 ms), not a migration
// run; the templates (flip_tmpl_v<version>_<hash>) stay on the server as
// that cache. Checkouts with different migrations (branches sharing a
// server) each keep their own; one that no test has used for a day is
// dropped when another of its version is built, and one dropped while in
// use is built again.
// FromSQL starts a database from SQL of the test's choosing (the hub's own
// schema, say) before flip's migrations, with a template per fixture. When
// nothing listens at the server's address, the test is skipped, except
// under CI=true, where it fails: a CI run must never pass by skipping its
// database tests. Any other failure to connect (a refused role or
// password, a missing database, TLS) fails the test, CI or not: a wrong
// DATABASE_URL must not turn `go test` green having run nothing. When a
// test fails, its database's name and URL are logged; with
// FLIPTEST_KEEP_FAILED=1 the database is kept for inspection instead of
// dropped.
//
// Everything that depends on PostgreSQL (locks, visibility, savepoints) is
// tested on PostgreSQL: there is no in-memory store. What is not
// PostgreSQL has small fakes: IdentityProvider, a directory of users for
// seeding without Cognito, and KeyMinter, which mints the same keys in
// every run or calls a function of the test's. Importing fliptest never
// pulls in the AWS SDK (only lib/pq, for NewDB).
package fliptest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the driver NewDB opens databases with
	"github.com/londonaicentre/flip/internal/cmddb"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// defaultDatabaseURL is used when DATABASE_URL is not set.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DB is a test's own database. Its *sql.DB serves database/sql code as it
// is; code written for sqlx wraps it: sqlx.NewDb(db.DB, "postgres").
type DB struct {
	*sql.DB        // open on the test database (lib/pq unless WithDriver says otherwise)
	Name    string // database name, e.g. flip_test_3f9c…
	URL     string // connection URL of the test database, for commands and other drivers
}

type config struct {
	version int
	driver  string
	sql     []string // run before migrating, in order
}

// Option adjusts NewDB.
type Option func(*config)

// AtVersion migrates the test database only up to version instead of the
// latest. Version 1 is the FLIP hub's own schema without flip's extra
// indexes, for proving code works on a database the hub created. Version
// 0 is a database flip never touched: no migration runs at all, so not
// even flip's tracking table exists.
func AtVersion(version int) Option { return func(c *config) { c.version = version } }

// FromSQL starts the test database from the given SQL, each string run as
// one multi-statement script in order, before flip's migrations (up to
// AtVersion's version, the latest by default) are applied on top. It is for
// databases flip finds rather than makes, such as the hub's own:
//
//	db := fliptest.NewDB(t, fliptest.FromSQL(hubSchema), fliptest.AtVersion(0)) // the hub as it is
//	db := fliptest.NewDB(t, fliptest.FromSQL(hubSchema, legacyRows))            // the hub after flip's migrations
//
// The SQL is part of the template's identity: each distinct fixture gets
// a template of its own (flip_tmpl_v<version>f<sql hash>_<hash>), built
// once and cloned per test like the others. Repeated FromSQL options add
// to the list.
func FromSQL(sql ...string) Option {
	return func(c *config) { c.sql = append(c.sql, sql...) }
}

// WithDriver opens the test database with another registered database/sql
// driver name (e.g. "pgx" after importing github.com/jackc/pgx/v5/stdlib).
func WithDriver(name string) Option { return func(c *config) { c.driver = name } }

// ServerURL returns DATABASE_URL, or the machine's local server
// (postgres://postgres@127.0.0.1:5432/test) when it is unset.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}

// RequireServer returns an open connection pool on the database of
// ServerURL. It skips the test when nothing listens there (ServerAbsent),
// except under CI=true, and fails it on any other connection error.
func RequireServer(t testing.TB) *sql.DB {
	t.Helper()
	admin, err := adminPool()
	switch {
	case err == nil:
		return admin
	case !ServerAbsent(err):
		t.Fatalf("fliptest: cannot connect to PostgreSQL at %s: %v (fix DATABASE_URL or the server: only a server that is not there skips the tests)", cmddb.Redact(ServerURL()), err)
	case os.Getenv("CI") == "true":
		t.Fatalf("fliptest: PostgreSQL is required under CI=true but nothing listens at %s: %v", cmddb.Redact(ServerURL()), err)
	default:
		t.Skipf("fliptest: no PostgreSQL at %s (set DATABASE_URL): %v", cmddb.Redact(ServerURL()), err)
	}
	return nil
}

// ServerAbsent reports whether err, from connecting to PostgreSQL, says
// that nothing is there: the connection was refused, the host name does
// not resolve, or the Unix socket does not exist. Only then do fliptest
// (and flip's own TestMains) skip rather than fail. A server that answers
// but refuses the role or the password, a database that does not exist,
// a TLS failure or a timeout is a fault or a misconfiguration to fix, not
// a machine without PostgreSQL.
func ServerAbsent(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	var dns *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.As(err, &dns) && dns.IsNotFound
}

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
)

// adminPool is one pool per test binary on the server's own database, used
// only for CREATE and DROP DATABASE.
func adminPool() (*sql.DB, error) {
	adminOnce.Do(func() {
		db, err := sql.Open("postgres", ServerURL())
		if err != nil {
			adminErr = cmddb.RedactError(ServerURL(), err)
			return
		}
		db.SetMaxOpenConns(4)
		// A bound against a server that never answers, not a measurement:
		// a loaded machine may take a while to connect, and a timeout
		// fails every test of the binary.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			adminErr = cmddb.RedactError(ServerURL(), err) // RequireServer prints it
			return
		}
		adminDB = db
	})
	return adminDB, adminErr
}

// NewDB creates a database for this test only, migrated to the latest
// version (see AtVersion), and drops it when the test and its subtests
// end. When the test failed, it logs the database's name and URL (the
// password redacted); with FLIPTEST_KEEP_FAILED set to anything but "",
// it keeps the database for inspection instead of dropping it.
func NewDB(t testing.TB, opts ...Option) *DB {
	t.Helper()
	cfg := config{version: store.LatestVersion(), driver: "postgres"}
	for _, o := range opts {
		o(&cfg)
	}
	admin := RequireServer(t)
	ctx := context.Background()
	name := "flip_test_" + randomSuffix()
	if err := createDB(ctx, admin, name, cfg.version, cfg.sql); err != nil {
		t.Fatalf("fliptest: %v", err)
	}
	u := databaseURL(ServerURL(), name)
	db, err := sql.Open(cfg.driver, u)
	if err != nil {
		t.Fatalf("fliptest: open %s: %v", name, err)
	}
	// Bounded so that many parallel tests fit in PostgreSQL's default 100
	// connections; a test that needs more raises it with SetMaxOpenConns.
	db.SetMaxOpenConns(8)
	t.Cleanup(func() {
		db.Close()
		if t.Failed() {
			if os.Getenv("FLIPTEST_KEEP_FAILED") != "" {
				t.Logf("fliptest: the test failed; its database %s is kept for inspection at %s (DROP DATABASE %s when done)", name, cmddb.Redact(u), quoteIdent(name))
				return
			}
			t.Logf("fliptest: the test failed on database %s at %s; dropping it (set FLIPTEST_KEEP_FAILED=1 to keep it)", name, cmddb.Redact(u))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("fliptest: drop database %s: %v", name, err)
		}
	})
	return &DB{DB: db, Name: name, URL: u}
}

// templates maps a template's family and hash to its name once this
// process has built or found it.
var templates sync.Map

// templateFormat is mixed into every template's hash; bump it when what a
// template holds changes for reasons other than the migrations or the
// fixture SQL (it did when version 0 stopped creating flip's tracking
// table).
const templateFormat = "fliptest-template-2"

// createDB creates database name from the template for version on top of
// the fixture SQL. The template this process found may have been dropped
// since: fliptest in a checkout with other migration files (another branch,
// on a server several share) drops it as stale. Then it is built again, and
// name is cloned from it before the builders' lock is released, so that no
// other builder can drop it in between.
func createDB(ctx context.Context, admin *sql.DB, name string, version int, fixture []string) error {
	tmpl, err := templateFor(ctx, admin, version, fixture, "")
	if err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	_, err = admin.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)+` TEMPLATE `+quoteIdent(tmpl))
	if pgsql.SQLState(err) != "3D000" { // invalid_catalog_name: the template is gone
		if err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		return nil
	}
	templates.Delete(tmpl)
	if _, err := templateFor(ctx, admin, version, fixture, name); err != nil {
		return fmt.Errorf("template database %s was dropped by another test run; building it again: %w", tmpl, err)
	}
	return nil
}

// templateFor returns the template database for version on top of the
// fixture SQL, building it once per migration set, fixture and server. A
// session advisory lock on the admin database makes concurrent test
// binaries wait for one builder. With clone set, it also creates database
// clone from the template while it holds that lock, and never answers from
// this process's memory of templates.
func templateFor(ctx context.Context, admin *sql.DB, version int, fixture []string, clone string) (string, error) {
	family, name, err := templateName(version, fixture)
	if err != nil {
		return "", err
	}
	if _, ok := templates.Load(name); ok && clone == "" {
		return name, nil
	}

	conn, err := admin.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	const lockKey = 0x666c69702e746d70 // "flip.tmp"
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(lockKey)); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(lockKey)) //nolint:errcheck // released with the connection anyway

	cloned := func() (string, error) {
		if clone != "" {
			if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(clone)+` TEMPLATE `+quoteIdent(name)); err != nil {
				return "", fmt.Errorf("create database: %w", err)
			}
		}
		return name, nil
	}
	var isTemplate bool
	err = conn.QueryRowContext(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		templates.Store(name, true)
		markTakenUp(ctx, conn, name)
		return cloned()
	case err == nil: // a builder died half-way; start again
		if _, err := conn.ExecContext(ctx, `DROP DATABASE `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
			return "", err
		}
	case err != sql.ErrNoRows:
		return "", err
	}
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)); err != nil {
		return "", err
	}
	if err := buildTemplate(ctx, name, version, fixture); err != nil {
		return "", fmt.Errorf("build template %s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(name)+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`); err != nil {
		return "", err
	}
	templates.Store(name, true)
	markTakenUp(ctx, conn, name)
	dropStaleTemplates(ctx, conn, family, name)
	return cloned()
}

// takenUp starts the comment markTakenUp puts on a template; the time
// follows.
const takenUp = "fliptest template, last taken up "

// staleAfter is how long a template of its family built from other
// migration files may go untaken before it counts as stale.
const staleAfter = 24 * time.Hour

// markTakenUp records in the template's comment that a test binary has
// started to use it, which dropStaleTemplates reads. Failures are ignored,
// as there.
func markTakenUp(ctx context.Context, conn *sql.Conn, name string) {
	stamp := takenUp + time.Now().UTC().Format(time.RFC3339) // no quote to escape
	_, _ = conn.ExecContext(ctx, `COMMENT ON DATABASE `+quoteIdent(name)+` IS '`+stamp+`'`)
}

// templateName returns the family and name of the template for version
// on top of the fixture SQL. The family is what templates of one kind
// share (version and fixture); within a family, a template of another
// migration hash is stale.
func templateName(version int, fixture []string) (family, name string, err error) {
	ups, err := fs.Glob(store.MigrationsFS(), "*.up.sql") // NNN_name.up.sql, in version order
	if err != nil {
		return "", "", err
	}
	if version < 0 || version > len(ups) {
		return "", "", fmt.Errorf("no migration version %d (latest is %d)", version, len(ups))
	}
	family = fmt.Sprintf("flip_tmpl_v%d", version)
	if len(fixture) > 0 {
		fh := sha256.New()
		for _, s := range fixture {
			fmt.Fprintf(fh, "%d\x00%s", len(s), s)
		}
		family += "f" + hex.EncodeToString(fh.Sum(nil))[:8]
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", templateFormat)
	for _, name := range ups[:version] {
		up, err := fs.ReadFile(store.MigrationsFS(), name)
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(h, "%s\x00%s\x00", name, up)
	}
	return family, family + "_" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// buildTemplate runs the fixture SQL, then flip's migrations up to
// version, in the new database name.
func buildTemplate(ctx context.Context, name string, version int, fixture []string) error {
	db, err := sql.Open("postgres", databaseURL(ServerURL(), name))
	if err != nil {
		return err
	}
	defer db.Close()
	for i, s := range fixture {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("fixture SQL %d: %w", i+1, err)
		}
	}
	if version == 0 {
		return nil
	}
	return store.Migrate(ctx, db, store.ToVersion(version))
}

// dropStaleTemplates removes templates of the same family (version and
// fixture) built from other migration files, so that changing a migration
// does not leave a database behind on every developer's server. Only
// those no test binary has taken up for staleAfter go: another checkout
// sharing the server (another branch) may be using its own right now, and
// a template without the mark (an older fliptest's) is left for the same
// reason. A changed fixture starts a new family and leaves its old
// template behind. Drop flip_tmpl_* databases by hand to reclaim the disk
// at once. Failures are ignored: a stale template costs disk, not
// correctness.
func dropStaleTemplates(ctx context.Context, conn *sql.Conn, family, keep string) {
	rows, err := conn.QueryContext(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE datname LIKE $1 AND datname <> $2`,
		strings.ReplaceAll(family, "_", `\_`)+`\_%`, keep)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var n, comment string
		if rows.Scan(&n, &comment) != nil {
			continue
		}
		stamp, marked := strings.CutPrefix(comment, takenUp)
		if at, err := time.Parse(time.RFC3339, stamp); marked && err == nil && time.Since(at) > staleAfter {
			stale = append(stale, n)
		}
	}
	rows.Close()
	for _, n := range stale {
		_, _ = conn.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(n)+` WITH IS_TEMPLATE false`)
		_, _ = conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(n)+` WITH (FORCE)`)
	}
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// databaseURL returns server with its database replaced by name.
func databaseURL(server, name string) string {
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		// key=value DSN
		return server + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}
