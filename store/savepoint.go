package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/londonaicentre/flip"
)

const savepointName = "flip_register_trust"

// abortSQL raises an error inside the caller's transaction, which puts it
// in the aborted state: every later statement fails and COMMIT rolls back.
const abortSQL = `DO $$ BEGIN RAISE EXCEPTION 'flip: a failed trust registration could not be undone; roll this transaction back'; END $$`

// Savepoint implements flip.TrustStore: it issues SAVEPOINT in the
// caller's transaction. Outside a transaction (a pool, or a *sql.Conn in
// autocommit mode, where every statement would commit on its own) it
// returns flip.ErrNotInTransaction and nothing is written: flip never
// begins or commits a transaction behind a caller's back.
func (*Store) Savepoint(ctx context.Context, tx DBTX) (flip.Savepoint, error) {
	_, err := tx.ExecContext(ctx, "SAVEPOINT "+savepointName)
	if sqlState(err) == codeNoActiveSQLTx {
		return nil, fmt.Errorf("%w: the connection has no open transaction (begin one, or call RegisterTrustDB): %w", flip.ErrNotInTransaction, err)
	}
	if err != nil {
		return nil, err
	}
	return savepoint{tx: tx}, nil
}

type savepoint struct{ tx DBTX }

func (s savepoint) Release(ctx context.Context) error {
	_, err := s.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+savepointName)
	return err
}

// Rollback undoes the registration's work; rolling back to a savepoint
// keeps it defined, and releasing it after leaves the caller's transaction
// exactly as it was. A failure is tried once more. If the work still
// cannot be undone, for instance because the savepoint is gone after a
// RELEASE whose answer was lost, the transaction is aborted on purpose so
// that the caller's COMMIT fails instead of persisting a registration
// whose keys nobody received, and the error wraps flip.ErrRollbackRequired.
//
// When the transaction itself is already over (database/sql rolled it back
// because its context ended, or the connection died and the server rolled
// it back) nothing of it can be committed any more: that is reported as
// such, without ErrRollbackRequired.
func (s savepoint) Rollback(ctx context.Context) error {
	var err error
	for range 2 {
		if err = s.undo(ctx); err == nil || transactionGone(err) {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case transactionGone(err):
		return fmt.Errorf("the transaction had already ended and was rolled back; nothing of it was committed: %w", err)
	}
	_, _ = s.tx.ExecContext(ctx, abortSQL) // fails by design
	return fmt.Errorf("%w: %w", flip.ErrRollbackRequired, err)
}

func (s savepoint) undo(ctx context.Context) error {
	for _, q := range [...]string{"ROLLBACK TO SAVEPOINT " + savepointName, "RELEASE SAVEPOINT " + savepointName} {
		if _, err := s.tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// transactionGone reports whether err says the transaction can no longer
// commit anything: database/sql ended it (sql.ErrTxDone, after its
// context was cancelled), the connection is broken (driver.ErrBadConn, a
// connection exception, SQLSTATE class 08), or the server ended the
// session (57P01–57P03, e.g. pg_terminate_backend). In each case the
// server has rolled the whole transaction back.
func transactionGone(err error) bool {
	if errors.Is(err, sql.ErrTxDone) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	state := sqlState(err)
	return strings.HasPrefix(state, "08") || state == "57P01" || state == "57P02" || state == "57P03"
}
