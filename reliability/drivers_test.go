package reliability

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/internal/faultdb"
)

// The ways the callers under test reach the database: database/sql (an
// *sqlx.Tx, as the hub opens its transactions, on the variant's driver)
// or pgx's own (a pgx.Tx from a *pgxpool.Pool, calling flip through
// flippgx). Every check is written once, against callerTx and the
// bundle's methods below, so that a pgx-native variant runs the same
// harness and the same rounds rather than a copy; the test's own queries
// (b.admin: dumps, locks, kills, invariants) stay on database/sql
// whatever the variant, so what checks the outcome never changes with
// what is checked.

// callerTx is the caller's open transaction, of either driver. The
// operations take the context of the call, which may differ from the one
// the transaction was begun with (the fault harness cancels one or the
// other).
type callerTx interface {
	RegisterTrust(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error)
	RotateKeys(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error)
	RevokeKey(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.Trust, error)
	DeleteTrust(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error)
	// WithFaults returns the same transaction, whose statements sent by
	// the operations above are recorded and faulted as fault says (nil:
	// recorded only), with faultdb's meaning on either driver.
	WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx
	// Queries returns the statements sent through WithFaults's result so
	// far, and nil on a transaction without faults.
	Queries() []string
	// Exec runs a statement of the caller's own, never faulted.
	Exec(ctx context.Context, q string, args ...any) error
	// PID returns the process id of the transaction's backend.
	PID(ctx context.Context) (int, error)
	// Ended reports whether err, from a statement of the caller's own,
	// says the transaction had ended before it: database/sql's ErrTxDone
	// (it rolls back a transaction whose context ends) or a connection
	// gone bad, pgx's ErrTxClosed or a connection it has closed.
	Ended(err error) bool
	// Commit and Rollback end the transaction; database/sql's use the
	// context the transaction was begun with and ignore ctx.
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

type sqlCallerTx struct {
	tx  *sqlx.Tx
	via *faultdb.DB // faulting tx; nil: tx itself
}

func (t sqlCallerTx) db() flip.DBTX {
	if t.via != nil {
		return t.via
	}
	return t.tx
}

func (t sqlCallerTx) RegisterTrust(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return reg.RegisterTrust(ctx, t.db(), p)
}

func (t sqlCallerTx) RotateKeys(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error) {
	return reg.RotateKeys(ctx, t.db(), c)
}

func (t sqlCallerTx) RevokeKey(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.Trust, error) {
	return reg.RevokeKey(ctx, t.db(), c)
}

func (t sqlCallerTx) DeleteTrust(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error) {
	return reg.DeleteTrust(ctx, t.db(), c)
}

func (t sqlCallerTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx {
	t.via = &faultdb.DB{Next: t.tx, Fault: fault}
	return t
}

func (t sqlCallerTx) Queries() []string {
	if t.via == nil {
		return nil
	}
	return t.via.Queries()
}

func (t sqlCallerTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqlCallerTx) PID(ctx context.Context) (int, error) {
	var pid int
	err := t.tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	return pid, err
}

func (t sqlCallerTx) Ended(err error) bool {
	return errors.Is(err, sql.ErrTxDone) || errors.Is(err, driver.ErrBadConn)
}

func (t sqlCallerTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlCallerTx) Rollback(context.Context) error { return t.tx.Rollback() }

type pgxCallerTx struct {
	tx  pgx.Tx
	via *faultdb.PgxTx // faulting tx; nil: tx itself
}

func (t pgxCallerTx) db() pgx.Tx {
	if t.via != nil {
		return t.via
	}
	return t.tx
}

func (t pgxCallerTx) RegisterTrust(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RegisterTrust(ctx, t.db(), p)
}

func (t pgxCallerTx) RotateKeys(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RotateKeys(ctx, t.db(), c)
}

func (t pgxCallerTx) RevokeKey(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.Trust, error) {
	return flippgx.New(reg).RevokeKey(ctx, t.db(), c)
}

func (t pgxCallerTx) DeleteTrust(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error) {
	return flippgx.New(reg).DeleteTrust(ctx, t.db(), c)
}

func (t pgxCallerTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx {
	t.via = &faultdb.PgxTx{Tx: t.tx, Fault: fault}
	return t
}

func (t pgxCallerTx) Queries() []string {
	if t.via == nil {
		return nil
	}
	return t.via.Queries()
}

func (t pgxCallerTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgxCallerTx) PID(context.Context) (int, error) {
	return int(t.tx.Conn().PgConn().PID()), nil
}

func (t pgxCallerTx) Ended(err error) bool {
	return err != nil && (errors.Is(err, pgx.ErrTxClosed) || t.tx.Conn().IsClosed())
}

func (t pgxCallerTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgxCallerTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// begin opens a caller's transaction of the variant's kind, begun with
// ctx.
func (b *bundle) begin(ctx context.Context) (callerTx, error) {
	if b.pool != nil {
		tx, err := b.pool.Begin(ctx)
		return pgxCallerTx{tx: tx}, err
	}
	tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(ctx, nil)
	return sqlCallerTx{tx: tx}, err
}

// registerDB is reg's RegisterTrustDB on the variant's pool.
func (b *bundle) registerDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	if b.pool != nil {
		return flippgx.New(reg).RegisterTrustDB(ctx, b.pool, p)
	}
	return reg.RegisterTrustDB(ctx, b.db, p)
}

// verifier is a Verifier on the variant's pool.
func (b *bundle) verifier(opts ...flip.VerifierOption) *flip.Verifier {
	if b.pool != nil {
		return flippgx.NewVerifier(b.pool, opts...)
	}
	return flip.NewVerifier(b.db, opts...)
}

// heldConn is one connection taken from the variant's pool for a
// registration of its own, whose backend the test may kill.
type heldConn interface {
	PID() int
	RegisterTrustDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error)
	// Discard closes the connection and gives it back to its pool, which
	// will not hand it out again: its backend is dead, or may be.
	Discard()
}

type sqlHeldConn struct {
	conn *sql.Conn
	pid  int
}

func (c sqlHeldConn) PID() int { return c.pid }

func (c sqlHeldConn) RegisterTrustDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return reg.RegisterTrustDB(ctx, c.conn, p)
}

func (c sqlHeldConn) Discard() {
	_ = c.conn.Raw(func(any) error { return driver.ErrBadConn })
	c.conn.Close()
}

type pgxHeldConn struct{ conn *pgxpool.Conn }

func (c pgxHeldConn) PID() int { return int(c.conn.Conn().PgConn().PID()) }

func (c pgxHeldConn) RegisterTrustDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RegisterTrustDB(ctx, c.conn, p)
}

func (c pgxHeldConn) Discard() {
	_ = c.conn.Conn().Close(context.Background()) // a closed connection is destroyed on Release
	c.conn.Release()
}

// conn takes a connection from the variant's pool.
func (b *bundle) conn(ctx context.Context) (heldConn, error) {
	if b.pool != nil {
		c, err := b.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		return pgxHeldConn{c}, nil
	}
	c, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	held := sqlHeldConn{conn: c}
	if err := c.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&held.pid); err != nil {
		held.Discard()
		return nil, err
	}
	return held, nil
}
