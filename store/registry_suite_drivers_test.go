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

// The ways into the registration suite: a caller's transaction of
// database/sql (RegisterTrust on a *sql.Tx) or of pgx (flippgx on a
// pgx.Tx), each able to fault the statements flip sends on it with
// faultdb's Faults. The cases are written once against callerTx.

// callerTx is the caller's open transaction, of either driver.
type callerTx interface {
	// RegisterTrust registers p in the transaction with reg.
	RegisterTrust(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error)
	// WithFaults returns the same transaction, whose statements sent
	// through the result's RegisterTrust are faulted as fault says.
	WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx
	Commit() error
	Rollback() error
}

type sqlCallerTx struct {
	ctx context.Context
	tx  *sql.Tx
	via flip.DBTX // faulting tx; nil: tx itself
}

func (t sqlCallerTx) RegisterTrust(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	var db flip.DBTX = t.tx
	if t.via != nil {
		db = t.via
	}
	return reg.RegisterTrust(t.ctx, db, p)
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

func (t pgxCallerTx) RegisterTrust(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	tx := t.tx
	if t.via != nil {
		tx = t.via
	}
	return flippgx.New(reg).RegisterTrust(t.ctx, tx, p)
}

func (t pgxCallerTx) WithFaults(fault func(context.Context, faultdb.Stmt) faultdb.Fault) callerTx {
	t.via = &faultdb.PgxTx{Tx: t.tx, Fault: fault}
	return t
}

func (t pgxCallerTx) Commit() error   { return t.tx.Commit(t.ctx) }
func (t pgxCallerTx) Rollback() error { return t.tx.Rollback(t.ctx) }

// newSuitePool is a pgx pool on db, closed when the test ends.
func newSuitePool(t *testing.T, db *fliptest.DB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
