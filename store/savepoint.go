package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
)

const savepointName = "flip_register_trust"

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
}

func (s savepoint) Release(ctx context.Context) error { return s.exec(ctx, s.release) }

func (s savepoint) Rollback(ctx context.Context) error { return s.exec(ctx, s.rollback) }

func (s savepoint) exec(ctx context.Context, stmts []string) error {
	for _, q := range stmts {
		if _, err := s.tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
