package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/faultdb"
)

// The two ways into flip that the store tests run every case through: a
// caller's transaction of database/sql (the Registry's methods on a
// *sql.Tx) or of pgx (flippgx on a pgx.Tx), each able to fault the
// statements flip sends on it with faultdb's Faults. The cases are
// written once against callerTx; a variant's native flag picks the way.

// callerTx is the caller's open transaction, of either driver, with the
// context its calls run under.
type callerTx interface {
	RegisterTrust(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error)
	RotateKeys(reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error)
	RevokeKey(reg *flip.Registry, c flip.TrustChange) (flip.Trust, error)
	DeleteTrust(reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error)
	// Exec runs the caller's own statement in the transaction, never
	// faulted.
	Exec(q string, args ...any) error
	// WithFaults returns the same transaction, whose statements sent
	// through the result's flip calls are faulted as fault says.
	WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx
	Commit() error
	Rollback() error
}

type sqlCallerTx struct {
	ctx context.Context
	tx  *sql.Tx
	via flip.DBTX // faulting tx; nil: tx itself
}

func (t sqlCallerTx) db() flip.DBTX {
	if t.via != nil {
		return t.via
	}
	return t.tx
}

func (t sqlCallerTx) RegisterTrust(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return reg.RegisterTrust(t.ctx, t.db(), p)
}

func (t sqlCallerTx) RotateKeys(reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error) {
	return reg.RotateKeys(t.ctx, t.db(), c)
}

func (t sqlCallerTx) RevokeKey(reg *flip.Registry, c flip.TrustChange) (flip.Trust, error) {
	return reg.RevokeKey(t.ctx, t.db(), c)
}

func (t sqlCallerTx) DeleteTrust(reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error) {
	return reg.DeleteTrust(t.ctx, t.db(), c)
}

func (t sqlCallerTx) Exec(q string, args ...any) error {
	_, err := t.tx.ExecContext(t.ctx, q, args...)
	return err
}

func (t sqlCallerTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx {
	t.via = &faultdb.DB{Next: t.tx, Fault: fault}
	return t
}

func (t sqlCallerTx) Commit() error   { return t.tx.Commit() }
func (t sqlCallerTx) Rollback() error { return t.tx.Rollback() }

type pgxCallerTx struct {
	ctx context.Context
	tx  pgx.Tx
	via pgx.Tx // faulting tx; nil: tx itself
}

func (t pgxCallerTx) db() pgx.Tx {
	if t.via != nil {
		return t.via
	}
	return t.tx
}

func (t pgxCallerTx) RegisterTrust(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RegisterTrust(t.ctx, t.db(), p)
}

func (t pgxCallerTx) RotateKeys(reg *flip.Registry, c flip.TrustChange) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RotateKeys(t.ctx, t.db(), c)
}

func (t pgxCallerTx) RevokeKey(reg *flip.Registry, c flip.TrustChange) (flip.Trust, error) {
	return flippgx.New(reg).RevokeKey(t.ctx, t.db(), c)
}

func (t pgxCallerTx) DeleteTrust(reg *flip.Registry, c flip.TrustChange) (flip.DeletionResult, error) {
	return flippgx.New(reg).DeleteTrust(t.ctx, t.db(), c)
}

func (t pgxCallerTx) Exec(q string, args ...any) error {
	_, err := t.tx.Exec(t.ctx, q, args...)
	return err
}

func (t pgxCallerTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx {
	t.via = &faultdb.PgxTx{Tx: t.tx, Fault: fault}
	return t
}

func (t pgxCallerTx) Commit() error   { return t.tx.Commit(t.ctx) }
func (t pgxCallerTx) Rollback() error { return t.tx.Rollback(t.ctx) }

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
