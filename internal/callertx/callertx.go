// Package callertx is a caller's open transaction of either driver flip
// serves: database/sql's (a *sql.Tx or *sqlx.Tx, handed to the Registry's
// methods) or pgx's own (a pgx.Tx, handed to flippgx). flip's store and
// reliability tests write each case once against Tx, opened from Pools,
// so that a pgx-native variant runs the same case, not a copy, and can
// fault what flip sends on either with faultdb's meaning. It is
// internal: only flip's tests use it.
package callertx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/internal/faultdb"
)

// Tx is the caller's open transaction. The operations take the context
// of the call, which may differ from the one the transaction was begun
// with (a test may cancel one or the other).
type Tx interface {
	RegisterTrust(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error)
	RotateKeys(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error)
	RevokeKey(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.Trust, error)
	DeleteTrust(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error)
	// WithFaults returns the same transaction, whose statements sent by
	// the operations above are recorded and faulted as fault says (nil:
	// recorded only).
	WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) Tx
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

// SQLTx is a database/sql transaction: *sql.Tx, or *sqlx.Tx as the hub
// opens them.
type SQLTx interface {
	flip.DBTX
	Commit() error
	Rollback() error
}

// SQL is tx as a Tx whose operations are the Registry's own.
func SQL(tx SQLTx) Tx { return sqlTx{tx: tx} }

// Pgx is tx as a Tx whose operations are flippgx's.
func Pgx(tx pgx.Tx) Tx { return pgxTx{tx: tx} }

type sqlTx struct {
	tx  SQLTx
	via *faultdb.DB // faulting tx; nil: tx itself
}

func (t sqlTx) db() flip.DBTX {
	if t.via != nil {
		return t.via
	}
	return t.tx
}

func (t sqlTx) RegisterTrust(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return reg.RegisterTrust(ctx, t.db(), p)
}

func (t sqlTx) RotateKeys(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error) {
	return reg.RotateKeys(ctx, t.db(), c)
}

func (t sqlTx) RevokeKey(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.Trust, error) {
	return reg.RevokeKey(ctx, t.db(), c)
}

func (t sqlTx) DeleteTrust(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error) {
	return reg.DeleteTrust(ctx, t.db(), c)
}

func (t sqlTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) Tx {
	t.via = &faultdb.DB{Next: t.tx, Fault: fault}
	return t
}

func (t sqlTx) Queries() []string {
	if t.via == nil {
		return nil
	}
	return t.via.Queries()
}

func (t sqlTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqlTx) PID(ctx context.Context) (int, error) {
	var pid int
	err := t.tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	return pid, err
}

func (t sqlTx) Ended(err error) bool {
	return errors.Is(err, sql.ErrTxDone) || errors.Is(err, driver.ErrBadConn)
}

func (t sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }

type pgxTx struct {
	tx  pgx.Tx
	via *faultdb.PgxTx // faulting tx; nil: tx itself
}

func (t pgxTx) db() pgx.Tx {
	if t.via != nil {
		return t.via
	}
	return t.tx
}

func (t pgxTx) RegisterTrust(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RegisterTrust(ctx, t.db(), p)
}

func (t pgxTx) RotateKeys(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RotateKeys(ctx, t.db(), c)
}

func (t pgxTx) RevokeKey(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.Trust, error) {
	return flippgx.New(reg).RevokeKey(ctx, t.db(), c)
}

func (t pgxTx) DeleteTrust(ctx context.Context, reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error) {
	return flippgx.New(reg).DeleteTrust(ctx, t.db(), c)
}

func (t pgxTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) Tx {
	t.via = &faultdb.PgxTx{Tx: t.tx, Fault: fault}
	return t
}

func (t pgxTx) Queries() []string {
	if t.via == nil {
		return nil
	}
	return t.via.Queries()
}

func (t pgxTx) Exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgxTx) PID(context.Context) (int, error) {
	return int(t.tx.Conn().PgConn().PID()), nil
}

func (t pgxTx) Ended(err error) bool {
	return err != nil && (errors.Is(err, pgx.ErrTxClosed) || t.tx.Conn().IsClosed())
}

func (t pgxTx) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgxTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// Pools are a test database's pools for the callers under test: Pgx, when
// set, makes every caller pgx-native (flippgx); else they go through SQL.
// A test's own queries use neither, so that what checks an outcome never
// changes with the driver checked.
type Pools struct {
	SQL *sql.DB
	Pgx *pgxpool.Pool
}

// Begin opens a caller's transaction at the default isolation level,
// begun with ctx.
func (p Pools) Begin(ctx context.Context) (Tx, error) { return p.BeginTx(ctx, sql.LevelDefault) }

// BeginTx opens a caller's transaction at iso (sql.LevelDefault or
// sql.LevelRepeatableRead), begun with ctx.
func (p Pools) BeginTx(ctx context.Context, iso sql.IsolationLevel) (Tx, error) {
	if p.Pgx != nil {
		var opts pgx.TxOptions
		if iso == sql.LevelRepeatableRead {
			opts.IsoLevel = pgx.RepeatableRead
		}
		tx, err := p.Pgx.BeginTx(ctx, opts)
		return Pgx(tx), err
	}
	tx, err := p.SQL.BeginTx(ctx, &sql.TxOptions{Isolation: iso})
	return SQL(tx), err
}

// Run runs op in a transaction of its own, committed when op returns nil
// and rolled back otherwise, and returns op's error or the commit's.
func (p Pools) Run(ctx context.Context, op func(Tx) error) error {
	tx, err := p.Begin(ctx)
	if err != nil {
		return err
	}
	if err := op(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

// RegisterTrustDB is reg's RegisterTrustDB (or flippgx's) on the pool.
func (p Pools) RegisterTrustDB(ctx context.Context, reg *flip.Registry, params flip.TrustParams) (flip.RegistrationResult, error) {
	if p.Pgx != nil {
		return flippgx.New(reg).RegisterTrustDB(ctx, p.Pgx, params)
	}
	return reg.RegisterTrustDB(ctx, p.SQL, params)
}

// Verifier is a Verifier whose lookups run on the pool.
func (p Pools) Verifier(opts ...flip.VerifierOption) *flip.Verifier {
	if p.Pgx != nil {
		return flippgx.NewVerifier(p.Pgx, opts...)
	}
	return flip.NewVerifier(p.SQL, opts...)
}
