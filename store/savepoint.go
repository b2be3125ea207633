package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
)

const savepointName = "flip_register_trust"

// abortSQL raises an error inside the caller's transaction, which puts it
// in the aborted state: every later statement fails and COMMIT rolls back.
const abortSQL = `DO $$ BEGIN RAISE EXCEPTION 'flip: a failed trust registration could not be undone; roll this transaction back'; END $$`

// Savepoint implements flip.TrustStore. Inside a transaction it issues
// SAVEPOINT; on a *sql.Conn or *sqlx.Conn with no transaction open it
// begins one, which Release commits: such a connection would have
// committed every statement on its own, and this keeps the registration
// atomic instead. Any other executor outside a transaction (a pool) gets
// flip.ErrNotInTransaction.
func (*Store) Savepoint(ctx context.Context, tx DBTX) (flip.Savepoint, error) {
	_, err := tx.ExecContext(ctx, "SAVEPOINT "+savepointName)
	if err == nil {
		// Rolling back to a savepoint keeps it defined; releasing it after
		// leaves the caller's transaction exactly as it found it.
		return savepoint{tx: tx,
			release:  []string{"RELEASE SAVEPOINT " + savepointName},
			rollback: []string{"ROLLBACK TO SAVEPOINT " + savepointName, "RELEASE SAVEPOINT " + savepointName},
			abort:    abortSQL,
		}, nil
	}
	if sqlState(err) != codeNoActiveSQLTx {
		return nil, err
	}
	switch tx.(type) {
	case *sql.Conn, *sqlx.Conn:
		if _, err := tx.ExecContext(ctx, "BEGIN"); err != nil {
			return nil, err
		}
		return savepoint{tx: tx, release: []string{"COMMIT"}, rollback: []string{"ROLLBACK"}}, nil
	}
	return nil, fmt.Errorf("%w: %w", flip.ErrNotInTransaction, err)
}

type savepoint struct {
	tx                DBTX
	release, rollback []string
	abort             string // aborts the caller's transaction; "" when flip owns it
}

func (s savepoint) Release(ctx context.Context) error { return s.exec(ctx, s.release) }

// Rollback undoes the registration's work. A failure is tried once more
// (ROLLBACK TO SAVEPOINT may be repeated). If the work still cannot be
// undone, for instance because the savepoint is gone after a RELEASE whose
// answer was lost, the transaction is aborted on purpose, so that the
// caller's COMMIT fails instead of persisting a registration whose keys
// nobody received.
func (s savepoint) Rollback(ctx context.Context) error {
	err := s.exec(ctx, s.rollback)
	if err == nil {
		return nil
	}
	if s.exec(ctx, s.rollback) == nil {
		return nil
	}
	if s.abort != "" {
		_, _ = s.tx.ExecContext(ctx, s.abort) // fails by design
	}
	return fmt.Errorf("%w: %w", flip.ErrRollbackRequired, err)
}

func (s savepoint) exec(ctx context.Context, stmts []string) error {
	for _, q := range stmts {
		if _, err := s.tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
