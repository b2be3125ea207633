package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx", to prove the store is driver-independent
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

// variant is one combination of database schema and driver the
// registration suite must pass on.
type variant struct {
	name    string
	version int      // flip's migration version: 0 is none, 1 the hub's tables without flip's indexes
	driver  string   // database/sql driver name
	sql     []string // fixture the database starts from before migrating (fliptest.FromSQL)
	native  bool     // flip is called through flippgx on pgx's own transactions; else through database/sql on driver
}

// The hub variants start from the hub's own schema (internal/hubfixture),
// not from flip's migration 1, so that a difference between the two shows:
// once as the hub has it, flip never migrated, and once after flip's
// migrations. The pgx_native variants hand flip pgx's own transactions
// (flippgx), on flip's schema and on the hub's unmigrated one, where the
// statements differ most (the advisory-lock path); the test's own queries
// stay on database/sql.
var variants = []variant{
	{"flip_schema/lib_pq", store.LatestVersion(), "postgres", nil, false},
	{"hub_fixture/lib_pq", 0, "postgres", []string{hubfixture.Schema}, false},
	{"hub_fixture_migrated/lib_pq", store.LatestVersion(), "postgres", []string{hubfixture.Schema}, false},
	{"flip_schema/pgx", store.LatestVersion(), "pgx", nil, false},
	{"flip_schema/pgx_native", store.LatestVersion(), "postgres", nil, true},
	{"hub_fixture/pgx_native", 0, "postgres", []string{hubfixture.Schema}, true},
}

// dbOptions are the fliptest.NewDB options that build v's database.
func (v variant) dbOptions() []fliptest.Option {
	opts := []fliptest.Option{fliptest.AtVersion(v.version), fliptest.WithDriver(v.driver)}
	if len(v.sql) > 0 {
		opts = append(opts, fliptest.FromSQL(v.sql...))
	}
	return opts
}

// lockTrust opens a transaction on db that holds a lock on trust in mode
// (EXCLUSIVE: every registration's INSERT waits, readers pass; ROW
// EXCLUSIVE: what a writer mid-transaction holds) until it is rolled back
// or the test ends.
func lockTrust(t *testing.T, ctx context.Context, db *fliptest.DB, mode string) *sql.Tx {
	t.Helper()
	holder, err := db.BeginTx(ctx, nil)
	must(t, err)
	t.Cleanup(func() { _ = holder.Rollback() })
	_, err = holder.ExecContext(ctx, `LOCK TABLE trust IN `+mode+` MODE`)
	must(t, err)
	return holder
}

// eachRow runs q on db and calls scan for every row, failing the test on
// any error: how the suites snapshot a table.
func eachRow(t testing.TB, ctx context.Context, db flip.DBTX, q string, scan func(*sql.Rows) error) {
	t.Helper()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
}

// bundle is what a registration test needs.
type bundle struct {
	// ctx is the test's own context (t.Context()), without a deadline of
	// its own: parallel subtests may share a bundle and wait for a
	// parallel slot after it was made, and a deadline would run during
	// that wait (a store test once failed on a loaded machine that way).
	// A hang is go test's -timeout's to fail.
	ctx context.Context
	db  *fliptest.DB
	reg *flip.Registry
	// The callers' pools: pgx's too for a native variant, whose
	// transactions are then pgx's.
	callertx.Pools
}

func setup(t *testing.T, v variant, opts ...flip.Option) bundle {
	t.Helper()
	db := fliptest.NewDB(t, v.dbOptions()...)
	b := bundle{ctx: t.Context(), db: db, reg: flip.NewRegistry(store.New(), opts...), Pools: callertx.Pools{SQL: db.DB}}
	if v.native {
		b.Pgx = newPgxPool(t, db)
	}
	return b
}

// begin opens a caller's transaction of the variant's kind, failing the
// test if it cannot.
func (b bundle) begin(t *testing.T) callertx.Tx {
	t.Helper()
	tx, err := b.Begin(b.ctx)
	must(t, err)
	return tx
}

// forEachVariant runs fn as a parallel subtest per variant.
func forEachVariant(t *testing.T, fn func(t *testing.T, v variant)) {
	t.Helper()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			fn(t, v)
		})
	}
}

// register runs RegisterTrust in a fresh transaction of the variant's
// kind and commits on success, rolls back on error, as the hub does.
func (b bundle) register(t *testing.T, p flip.TrustParams) (flip.RegistrationResult, error) {
	t.Helper()
	var res flip.RegistrationResult
	err := b.Run(b.ctx, func(tx callertx.Tx) (err error) {
		res, err = tx.RegisterTrust(b.ctx, b.reg, p)
		return err
	})
	return res, err
}

func (b bundle) mustRegister(t *testing.T, p flip.TrustParams) flip.RegistrationResult {
	t.Helper()
	res, err := b.register(t, p)
	if err != nil {
		t.Fatalf("register %q: %v", p.Name, err)
	}
	return res
}

// counts is a snapshot of the registration tables, to prove a failed call
// left nothing behind.
type counts struct{ trusts, audits, assigned, slots int }

func snapshot(t *testing.T, ctx context.Context, db flip.DBTX) counts {
	t.Helper()
	var c counts
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM trust),
		(SELECT count(*) FROM trusts_audit),
		(SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL),
		(SELECT count(*) FROM fl_kit_slot)`).Scan(&c.trusts, &c.audits, &c.assigned, &c.slots)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return c
}

// checkInvariants verifies what must hold after any mix of registrations:
// every trust holds exactly one slot and one REGISTERED audit row, no slot
// points at a missing trust, no trust holds two slots.
func checkInvariants(t *testing.T, ctx context.Context, db flip.DBTX) {
	t.Helper()
	var bad int
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id = t.id) <> 1)
	  + (SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM trusts_audit a WHERE a.trust_id = t.id AND a.action = 'REGISTERED') <> 1)
	  + (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trust t WHERE t.id = s.assigned_to_trust_id))
	  + (SELECT count(*) FROM fl_kit_slot s WHERE (s.assigned_to_trust_id IS NULL) <> (s.assigned_at IS NULL))`).Scan(&bad)
	if err != nil {
		t.Fatalf("invariants: %v", err)
	}
	if bad != 0 {
		t.Fatalf("%d invariant violations (trust without exactly one slot/audit row, dangling slot, or half-assigned slot)", bad)
	}
}

func isOnly(err error, targets ...error) error {
	for _, target := range targets {
		if !errors.Is(err, target) {
			return fmt.Errorf("error %v is not %v", err, target)
		}
	}
	return nil
}

// newPgxPool is a pgx pool on db, room for the widest race
// (runConcurrently's 64 callers; connections open only when used), closed
// when the test ends, before the database is dropped.
func newPgxPool(t *testing.T, db *fliptest.DB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 64
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
