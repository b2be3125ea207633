package flippgx_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// schemas are the databases registration must work on through pgx:
// flip's (its unique indexes stop a concurrent duplicate) and the hub's
// bare one (the identity lock does, a second statement).
var schemas = []struct {
	name string
	opts []fliptest.Option
}{
	{"flip_schema", nil},
	{"hub_fixture", []fliptest.Option{fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0)}},
}

// pgxBundle is what a test of the pgx entry points needs: a database of
// its own, a pgx pool on it, and the pgx Registry over flip's.
type pgxBundle struct {
	ctx  context.Context
	db   *fliptest.DB
	pool *pgxpool.Pool
	reg  *flippgx.Registry
}

func pgxSetup(t *testing.T, opts ...fliptest.Option) pgxBundle {
	t.Helper()
	db := fliptest.NewDB(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pgxBundle{ctx: ctx, db: db, pool: pool, reg: flippgx.New(flip.NewRegistry(store.New()))}
}

// connect opens a connection of the test's own to its database, as
// configure sets it up, closed at cleanup.
func (b pgxBundle) connect(t *testing.T, configure func(*pgx.ConnConfig)) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(b.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	configure(cfg)
	conn, err := pgx.ConnectConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// begin opens a pgx transaction, rolled back at cleanup if still open.
func (b pgxBundle) begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// committed counts what is committed: trusts, REGISTERED audit rows,
// assigned slots, slots.
func (b pgxBundle) committed(t *testing.T) [4]int {
	t.Helper()
	var c [4]int
	err := b.pool.QueryRow(b.ctx, `SELECT
		(SELECT count(*) FROM trust),
		(SELECT count(*) FROM trusts_audit WHERE action = 'REGISTERED'),
		(SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL),
		(SELECT count(*) FROM fl_kit_slot)`).Scan(&c[0], &c[1], &c[2], &c[3])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// holdTrustLock takes, on a connection of its own, a lock on trust that
// every registration's insert waits for, until the returned func or the
// test's end releases it.
func (b pgxBundle) holdTrustLock(t *testing.T) (release func()) {
	t.Helper()
	holder := b.begin(t)
	if _, err := holder.Exec(b.ctx, `LOCK TABLE trust IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	return func() { _ = holder.Rollback(b.ctx) }
}

// What a registration, a rotation, a revocation and a deletion store and
// refuse inside a pgx.Tx is the store tests' to prove: their suites run
// every case on pgx_native variants too (internal/callertx).
// Here: what only pgx's handles raise.

// A context that ends mid-statement makes pgx close the connection: the
// error says so (ctx's error, and a transaction that is gone rather than
// one flip had to abort), the caller's commit fails, and nothing of the
// transaction is committed.
func TestRegisterTrust_PgxCancelledMidStatementCommitsNothing(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001")
	b.holdTrustLock(t)
	tx := b.begin(t)
	// The caller's own write, on a table the held lock leaves alone (an
	// insert into fl_kit_slot would wait for it: its foreign key to trust).
	role := uuid.New()
	if _, err := tx.Exec(b.ctx, `INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, 'Caller', '', now(), now())`, role); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	go func() {
		waitForLock(t, b)
		cancel()
	}()
	_, err := b.reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: "A", Code: "A"})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, flip.ErrTrustRegistration) {
		t.Fatalf("error = %v, want one matching context.Canceled", err)
	}
	if errors.Is(err, flip.ErrRollbackRequired) || !errors.Is(err, sql.ErrConnDone) {
		t.Fatalf("error = %v, want a transaction that is gone (sql.ErrConnDone), not ErrRollbackRequired", err)
	}
	if err := tx.Commit(b.ctx); err == nil {
		t.Fatal("the caller's commit succeeded after a cancelled registration")
	}
	var roles int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM roles WHERE id = $1`, role).Scan(&roles); err != nil {
		t.Fatal(err)
	}
	if c := b.committed(t); c != [4]int{0, 0, 0, 1} || roles != 0 {
		t.Fatalf("committed %v and %d of the caller's roles, want nothing", c, roles)
	}
}

// The parameter types rule out a pool where a transaction is meant (a
// *pgxpool.Pool is not a pgx.Tx), so the one way to reach
// ErrNotInTransaction is no transaction at all, refused before anything
// is sent.
func TestPgxOperations_NilTxIsNotInTransaction(t *testing.T) {
	t.Parallel()
	reg := flippgx.New(flip.NewRegistry(store.New()))
	ctx := context.Background()
	c := flip.TrustChange{TrustID: uuid.New()}
	_, regErr := reg.RegisterTrust(ctx, nil, flip.TrustParams{Name: "N", Code: "C"})
	_, rotErr := reg.RotateKeys(ctx, nil, c)
	_, revErr := reg.RevokeKey(ctx, nil, c)
	_, delErr := reg.DeleteTrust(ctx, nil, c)
	for i, err := range []error{regErr, rotErr, revErr, delErr} {
		base := flip.ErrTrustChange
		if i == 0 {
			base = flip.ErrTrustRegistration
		}
		if !errors.Is(err, flip.ErrNotInTransaction) || !errors.Is(err, base) {
			t.Errorf("operation %d: error = %v, want ErrNotInTransaction and %v", i, err, base)
		}
	}
	if _, err := reg.RegisterTrust(ctx, nil, flip.TrustParams{Code: "C"}); !errors.Is(err, flip.ErrInvalidTrustParams) {
		t.Errorf("invalid params and no tx: error = %v, want the parameters refused first, as database/sql's", err)
	}
}

// RegisterTrustDB owns its transaction on a pool or a connection: a
// success commits, a refusal leaves nothing.
func TestRegisterTrustDB_PgxPoolAndConn(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
	if _, err := b.reg.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "Pool", Code: "P"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(b.ctx, b.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(b.ctx)
	if _, err := b.reg.RegisterTrustDB(b.ctx, conn, flip.TrustParams{Name: "Conn", Code: "C"}); err != nil {
		t.Fatal(err)
	}
	_, err = b.reg.RegisterTrustDB(b.ctx, conn, flip.TrustParams{Name: "Conn", Code: "C2"})
	if !errors.Is(err, flip.ErrDuplicateTrust) {
		t.Fatalf("error = %v, want ErrDuplicateTrust", err)
	}
	_, err = b.reg.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "No slot", Code: "NS"})
	if !errors.Is(err, flip.ErrNoFreeKitSlot) {
		t.Fatalf("error = %v, want ErrNoFreeKitSlot", err)
	}
	if c := b.committed(t); c != [4]int{2, 2, 2, 2} {
		t.Fatalf("committed %v, want the two registrations", c)
	}
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("the connection is left in a transaction (status %q)", conn.PgConn().TxStatus())
	}
}

// Rotate, revoke and delete inside the caller's pgx.Tx, each committed by
// the test, with a pgx Verifier watching the keys.
func TestLifecycle_PgxTx(t *testing.T) {
	t.Parallel()
	for _, s := range schemas {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			b := pgxSetup(t, s.opts...)
			fliptest.AddSlots(t, b.db, "Trust_001")
			reg, err := b.reg.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "A", Code: "A"})
			if err != nil {
				t.Fatal(err)
			}
			v := flippgx.NewVerifier(b.pool)
			c := flip.TrustChange{TrustID: reg.Trust.ID, AuditUserID: uuid.New()}

			tx := b.begin(t)
			rot, err := b.reg.RotateKeys(b.ctx, tx, c)
			if err != nil || rot.Trust.ID != reg.Trust.ID || rot.KitSlot.Name != "Trust_001" || rot.APIKey.Reveal() == reg.APIKey.Reveal() {
				t.Fatalf("rotate = %+v, %v", rot, err)
			}
			if _, err := v.Verify(b.ctx, reg.APIKey.Reveal()); err != nil {
				t.Fatalf("old key before the rotation commits: %v", err)
			}
			mustCommit(t, b, tx)
			if _, err := v.Verify(b.ctx, reg.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
				t.Fatalf("old key after rotation: %v, want ErrUnknownAPIKey", err)
			}
			if _, err := v.Verify(b.ctx, rot.APIKey.Reveal()); err != nil {
				t.Fatalf("new key: %v", err)
			}

			tx = b.begin(t)
			if tr, err := b.reg.RevokeKey(b.ctx, tx, c); err != nil || tr.ID != reg.Trust.ID {
				t.Fatalf("revoke = %+v, %v", tr, err)
			}
			mustCommit(t, b, tx)
			if _, err := v.Verify(b.ctx, rot.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
				t.Fatalf("revoked key: %v, want ErrUnknownAPIKey", err)
			}

			tx = b.begin(t)
			del, err := b.reg.DeleteTrust(b.ctx, tx, c)
			if err != nil || del.Trust.ID != reg.Trust.ID || len(del.FreedKitSlots) != 1 || del.FreedKitSlots[0].Name != "Trust_001" {
				t.Fatalf("delete = %+v, %v", del, err)
			}
			// A second deletion in the same transaction finds nothing and
			// leaves the first to commit.
			if _, err := b.reg.DeleteTrust(b.ctx, tx, c); !errors.Is(err, flip.ErrTrustNotFound) {
				t.Fatalf("second delete: %v, want ErrTrustNotFound", err)
			}
			if _, err := b.reg.RotateKeys(b.ctx, tx, c); !errors.Is(err, flip.ErrTrustNotFound) {
				t.Fatalf("rotate a deleted trust: %v, want ErrTrustNotFound", err)
			}
			mustCommit(t, b, tx)
			if got := b.committed(t); got != [4]int{0, 1, 0, 1} { // trusts_audit keeps the registration's row
				t.Fatalf("committed %v after the deletion, want only the free slot and the audit row", got)
			}
		})
	}
}

func mustCommit(t *testing.T, b pgxBundle, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(b.ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNewVerifier_PgxPoolVerifiesAndRefuses(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001")
	res := fliptest.RegisterTrust(t, b.db, flip.TrustParams{Name: "A", Code: "A"})
	v := flippgx.NewVerifier(b.pool, flip.WithVerifierCache(time.Minute, 10))
	for range 2 { // a lookup, then the cache
		got, err := v.Verify(b.ctx, res.APIKey.Reveal())
		if err != nil || got.ID != res.Trust.ID || got.Name != "A" || !got.CreatedAt.Equal(res.Trust.CreatedAt) {
			t.Fatalf("verify = %+v, %v; want %+v", got, err, res.Trust)
		}
	}
	unknown, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	if _, err := v.Verify(b.ctx, unknown); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("unknown key: %v, want ErrUnknownAPIKey", err)
	}
	if _, err := v.Verify(b.ctx, res.InternalServiceKey.Reveal()); !errors.Is(err, flip.ErrMalformedKey) {
		t.Errorf("internal-service key: %v, want ErrMalformedKey", err)
	}
	b.pool.Close()
	if _, err := flippgx.NewVerifier(b.pool).Verify(b.ctx, res.APIKey.Reveal()); err == nil || errors.Is(err, flip.ErrUnauthorized) {
		t.Errorf("closed pool: %v, want a failure that is not ErrUnauthorized", err)
	}
	if _, err := flippgx.NewVerifier(nil).Verify(b.ctx, res.APIKey.Reveal()); err == nil || errors.Is(err, flip.ErrUnauthorized) {
		t.Errorf("no database: %v, want a failure that is not ErrUnauthorized", err)
	}
}

func TestSeedMainUsers_PgxPoolAndTx(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	idp := fliptest.NewIdentityProvider()
	ada := idp.AddUser("ada@example.com")
	users := []flip.MainUser{{Email: "ada@example.com", Name: "Ada", Role: "Admin"}}
	report, err := flippgx.SeedMainUsers(b.ctx, flip.NewSeeder(users), b.pool, idp)
	if err != nil || len(report.Users) != 1 || report.Users[0].Result != flip.SeedCreated || report.Users[0].UserID != ada.ID {
		t.Fatalf("seed on the pool = %+v, %v", report, err)
	}
	// In the caller's transaction: written there, visible at its commit.
	bob := idp.AddUser("bob@example.com")
	users = append(users, flip.MainUser{Email: "bob@example.com", Name: "Bob", Role: "Admin"})
	tx := b.begin(t)
	report, err = flippgx.SeedMainUsers(b.ctx, flip.NewSeeder(users), tx, idp)
	if err != nil || len(report.Users) != 2 || report.Users[0].Result != flip.SeedUnchanged || report.Users[1].Result != flip.SeedCreated {
		t.Fatalf("seed in a tx = %+v, %v", report, err)
	}
	profiles := func() (n int) {
		if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM user_profile WHERE user_id = ANY($1)`, []uuid.UUID{ada.ID, bob.ID}).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := profiles(); n != 1 {
		t.Fatalf("%d profiles before the caller's commit, want 1", n)
	}
	mustCommit(t, b, tx)
	if n := profiles(); n != 2 {
		t.Fatalf("%d profiles after the caller's commit, want 2", n)
	}
}

// The same Registry serves both drivers: a trust registered through
// database/sql is a duplicate through pgx, and the other way round.
func TestRegisterTrust_OneCoreForBothDrivers(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
	core := flip.NewRegistry(store.New())
	viaPgx := flippgx.New(core)
	if _, err := core.RegisterTrustDB(b.ctx, b.db, flip.TrustParams{Name: "SQL", Code: "S"}); err != nil {
		t.Fatal(err)
	}
	if _, err := viaPgx.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "sql", Code: "S"}); !errors.Is(err, flip.ErrDuplicateTrust) {
		t.Fatalf("pgx after database/sql: %v, want ErrDuplicateTrust", err)
	}
	if _, err := viaPgx.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "PGX", Code: "P"}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.RegisterTrustDB(b.ctx, b.db, flip.TrustParams{Name: "Other", Code: "p"}); !errors.Is(err, flip.ErrDuplicateTrust) {
		t.Fatalf("database/sql after pgx: %v, want ErrDuplicateTrust", err)
	}
	if c := b.committed(t); c != [4]int{2, 2, 2, 2} {
		t.Fatalf("committed %v, want two registrations", c)
	}
}

// statementLog records what a pgx connection sends: each batch's
// statements, and each statement sent on its own.
type statementLog struct {
	mu   sync.Mutex
	sent []string
}

func (l *statementLog) add(s string) { l.mu.Lock(); l.sent = append(l.sent, s); l.mu.Unlock() }

func (l *statementLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sent
	l.sent = nil
	return out
}

func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.add("alone: " + label(d.SQL))
	return ctx
}
func (l *statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (l *statementLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (l *statementLog) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	l.add("batched: " + label(d.SQL))
}
func (l *statementLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// label names flip's registration statement, and gives any other as it is.
func label(q string) string {
	if q == pgsql.Register {
		return "register"
	}
	return q
}

// A transaction of flip's own on pgx sends BEGIN in one batch with its
// first statement, then COMMIT (or ROLLBACK): a registration is two round
// trips. The connection is idle after each outcome; a context that ends
// during the first statement commits nothing, and the pool drops the
// connection pgx closed and goes on.
func TestRegisterTrustDB_PgxBeginGoesWithTheFirstStatement(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
	log := &statementLog{}
	conn := b.connect(t, func(cfg *pgx.ConnConfig) { cfg.Tracer = log })

	for _, c := range []struct {
		p    flip.TrustParams
		want error
		end  string
	}{
		{flip.TrustParams{Name: "First", Code: "F"}, nil, "commit"},
		{flip.TrustParams{Name: "First", Code: "F2"}, flip.ErrDuplicateTrust, "rollback"},
	} {
		_, err := b.reg.RegisterTrustDB(b.ctx, conn, c.p)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Fatalf("RegisterTrustDB(%+v) = %v, want %v", c.p, err, c.want)
		}
		want := []string{"batched: begin", "batched: register", "alone: " + c.end}
		if got := log.take(); !slices.Equal(got, want) {
			t.Errorf("%s: sent %q, want %q", c.p.Name, got, want)
		}
		if s := conn.PgConn().TxStatus(); s != 'I' {
			t.Errorf("%s: connection left in transaction status %q", c.p.Name, s)
		}
	}

	release := b.holdTrustLock(t)
	ctx, cancel := context.WithCancel(b.ctx)
	go func() {
		waitForLock(t, b)
		cancel()
	}()
	if _, err := b.reg.RegisterTrustDB(ctx, b.pool, flip.TrustParams{Name: "Cancelled", Code: "C"}); !errors.Is(err, context.Canceled) || errors.Is(err, flip.ErrRollbackRequired) {
		t.Fatalf("cancelled during the first statement: %v, want context.Canceled", err)
	}
	release()
	if c := b.committed(t); c != [4]int{1, 1, 1, 2} {
		t.Fatalf("committed %v after the cancelled registration, want the first one only", c)
	}
	if _, err := b.reg.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "After", Code: "A"}); err != nil {
		t.Fatalf("the pool after a cancelled registration: %v", err)
	}
}

// waitForLock waits until some backend of the test's database waits for
// a lock.
func waitForLock(t *testing.T, b pgxBundle) {
	for {
		var waiting bool
		err := b.pool.QueryRow(b.ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting)
		if err != nil {
			t.Error(err)
			return
		}
		if waiting {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The batched BEGIN works in each of pgx's ways of sending a statement,
// the simple protocol (as behind a transaction-pooling proxy) included.
func TestRegisterTrustDB_PgxEveryQueryExecMode(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_005")
	for i, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		conn := b.connect(t, func(cfg *pgx.ConnConfig) { cfg.DefaultQueryExecMode = mode })
		p := flip.TrustParams{Name: fmt.Sprint("Mode ", i), Code: fmt.Sprint("M", i), AuditUserID: uuid.New()}
		if _, err := b.reg.RegisterTrustDB(b.ctx, conn, p); err != nil {
			t.Errorf("%v: %v", mode, err)
		}
		if _, err := b.reg.RegisterTrustDB(b.ctx, conn, p); !errors.Is(err, flip.ErrDuplicateTrust) {
			t.Errorf("%v, again: %v, want ErrDuplicateTrust", mode, err)
		}
	}
	if c := b.committed(t); c != [4]int{5, 5, 5, 5} {
		t.Fatalf("committed %v, want five registrations", c)
	}
}

// A registration whose batched statement fails on the server (here the
// unique index, once a rival of the same name commits) is a duplicate,
// and its connection goes back to the pool clean.
func TestRegisterTrustDB_PgxServerErrorInTheBatch(t *testing.T) {
	t.Parallel()
	b := pgxSetup(t)
	fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
	rival := b.begin(t)
	if _, err := b.reg.RegisterTrust(b.ctx, rival, flip.TrustParams{Name: "Same", Code: "S1"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.reg.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "Same", Code: "S2"})
		done <- err
	}()
	waitForLock(t, b) // on the rival's uncommitted row of the same name
	mustCommit(t, b, rival)
	var dup *flip.DuplicateTrustError
	if err := <-done; !errors.As(err, &dup) || dup.Field != "name" {
		t.Fatalf("RegisterTrustDB after the rival committed: %v, want a DuplicateTrustError on name", err)
	}
	if st := b.pool.Stat(); st.AcquiredConns() != 0 {
		t.Errorf("%d connections still acquired", st.AcquiredConns())
	}
	if _, err := b.reg.RegisterTrustDB(b.ctx, b.pool, flip.TrustParams{Name: "Other", Code: "O"}); err != nil {
		t.Fatalf("the pool afterwards: %v", err)
	}
	if c := b.committed(t); c != [4]int{2, 2, 2, 2} {
		t.Fatalf("committed %v, want the rival and the last registration", c)
	}
}
