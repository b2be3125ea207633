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
// set, so a new one costs a CREATE DATABASE, not a migration run; the
// templates (flip_tmpl_v<version>_<hash>) stay on the server as that cache,
// and a changed migration replaces its stale template. When no
// server answers, the test is skipped, except under CI=true, where it
// fails: a CI run must never pass by skipping its database tests.
//
// For tests that need behaviour rather than a database, the package has
// in-memory fakes of every interface flip defines, each with knobs to make
// the next call fail: Store (flip.Store and flip.APIKeyLookup), KeyMinter,
// IdentityProvider and UserStore. They need no server, and importing
// fliptest never pulls in the AWS SDK (only lib/pq, for NewDB). The
// behaviour suites TestStore, TestIdentityProvider and
// TestUserStore run against both the fakes and the real implementations
// (PostgreSQL, the Cognito adapter on an emulator), so the fakes cannot
// drift from what they stand in for.
package fliptest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver NewDB opens databases with
	"github.com/londonaicentre/flip/store"
)

// DefaultDatabaseURL is used when DATABASE_URL is not set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DB is a test's own database.
type DB struct {
	*sqlx.DB        // open on the test database (driver "postgres", lib/pq)
	Name     string // database name, e.g. flip_test_3f9c…
	URL      string // connection URL of the test database, for commands and other drivers
}

type config struct {
	version int
	driver  string
}

// Option adjusts NewDB.
type Option func(*config)

// AtVersion migrates the test database only up to version instead of the
// latest. Version 1 is the FLIP hub's own schema without flip's extra
// indexes, for proving code works on a database the hub created.
func AtVersion(version int) Option { return func(c *config) { c.version = version } }

// WithDriver opens the test database with another registered database/sql
// driver name (e.g. "pgx" after importing github.com/jackc/pgx/v5/stdlib).
func WithDriver(name string) Option { return func(c *config) { c.driver = name } }

// ServerURL returns DATABASE_URL or DefaultDatabaseURL.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// RequireServer returns an open connection pool on the server's maintenance
// database, skipping the test when the server is unreachable (failing
// under CI=true).
func RequireServer(t testing.TB) *sql.DB {
	t.Helper()
	admin, err := adminPool()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("fliptest: PostgreSQL is required under CI=true but unreachable at %s: %v", redactURL(ServerURL()), err)
		}
		t.Skipf("fliptest: PostgreSQL unreachable at %s (set DATABASE_URL): %v", redactURL(ServerURL()), err)
	}
	return admin
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
			adminErr = err
			return
		}
		db.SetMaxOpenConns(4)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			adminErr = err
			return
		}
		adminDB = db
	})
	return adminDB, adminErr
}

// NewDB creates a database for this test only, migrated to the latest
// version (see AtVersion), and drops it when the test and its subtests
// end. With FLIPTEST_KEEP_FAILED set, a failed test keeps its database for
// inspection and logs its name.
func NewDB(t testing.TB, opts ...Option) *DB {
	t.Helper()
	cfg := config{version: store.LatestVersion(), driver: "postgres"}
	for _, o := range opts {
		o(&cfg)
	}
	admin := RequireServer(t)
	ctx := context.Background()
	tmpl, err := templateFor(ctx, admin, cfg.version)
	if err != nil {
		t.Fatalf("fliptest: template database: %v", err)
	}
	name := "flip_test_" + randomSuffix()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)+` TEMPLATE `+quoteIdent(tmpl)); err != nil {
		t.Fatalf("fliptest: create database: %v", err)
	}
	u := databaseURL(ServerURL(), name)
	db, err := sqlx.Open(cfg.driver, u)
	if err != nil {
		t.Fatalf("fliptest: open %s: %v", name, err)
	}
	// Bounded so that many parallel tests fit in PostgreSQL's default 100
	// connections; a test that needs more raises it with SetMaxOpenConns.
	db.SetMaxOpenConns(8)
	t.Cleanup(func() {
		db.Close()
		if t.Failed() && os.Getenv("FLIPTEST_KEEP_FAILED") != "" {
			t.Logf("fliptest: kept database %s for inspection", name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("fliptest: drop database %s: %v", name, err)
		}
	})
	return &DB{DB: db, Name: name, URL: u}
}

var templates sync.Map // version → template name, once built by this process

// templateFor returns the template database for version, building it
// once per migration set and server. A session advisory lock on the admin
// database makes concurrent test binaries wait for one builder.
func templateFor(ctx context.Context, admin *sql.DB, version int) (string, error) {
	if name, ok := templates.Load(version); ok {
		return name.(string), nil
	}
	migs, err := store.Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range migs[:version] {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00", m.Version, m.Name, m.Up)
	}
	name := fmt.Sprintf("flip_tmpl_v%d_%s", version, hex.EncodeToString(h.Sum(nil))[:12])

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

	var isTemplate bool
	err = conn.QueryRowContext(ctx, `SELECT datistemplate FROM pg_database WHERE datname = $1`, name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		templates.Store(version, name)
		return name, nil
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
	db, err := sql.Open("postgres", databaseURL(ServerURL(), name))
	if err != nil {
		return "", err
	}
	err = store.MigrateTo(ctx, db, version)
	db.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template %s: %w", name, err)
	}
	if _, err := conn.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(name)+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`); err != nil {
		return "", err
	}
	templates.Store(version, name)
	dropStaleTemplates(ctx, conn, version, name)
	return name, nil
}

// dropStaleTemplates removes templates of the same version built from other
// migration files, so that changing a migration does not leave a database
// behind on every developer's server. Failures are ignored: a stale
// template costs disk, not correctness.
func dropStaleTemplates(ctx context.Context, conn *sql.Conn, version int, keep string) {
	rows, err := conn.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2`,
		fmt.Sprintf("flip\\_tmpl\\_v%d\\_%%", version), keep)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
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

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable DATABASE_URL)"
	}
	return u.Redacted()
}
