package dbexec

import (
	"context"
	"database/sql"
)

// SQL is a database/sql handle: the method set of flip.DBTX, declared
// again here because this package cannot import flip. *sql.Tx, *sql.Conn,
// *sql.DB, *sqlx.Tx and the tests' faultdb.DB have it, and a value of
// either interface converts to the other.
type SQL interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// FromSQL returns the Executor that sends statements on db. The core
// calls it once per operation, at the public boundary; statements then
// cost no allocation of the adapter's own: *sql.Row is returned as it is,
// *sql.Rows as a pointer of another name.
func FromSQL(db SQL) Executor { return sqlExecutor{db} }

// SQLOf returns the database/sql handle an Executor from FromSQL sends
// on, for the one public interface that takes one (flip.SlotStore's
// ClaimSlot); false for any other Executor.
func SQLOf(e Executor) (SQL, bool) {
	s, ok := e.(sqlExecutor)
	return s.db, ok
}

type sqlExecutor struct{ db SQL }

var _ Executor = sqlExecutor{}

func (s sqlExecutor) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if res == nil {
		return nil, err // not a non-nil Result holding a nil sql.Result
	}
	return res, err
}

func (s sqlExecutor) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if rows == nil {
		return nil, err // not a non-nil Rows holding a nil *sql.Rows
	}
	return (*sqlRows)(rows), err
}

func (s sqlExecutor) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.db.QueryRowContext(ctx, query, args...)
}

// sqlRows is *sql.Rows with Rows' Close: a conversion, not a wrapper, so
// returning it allocates nothing.
type sqlRows sql.Rows

func (r *sqlRows) Next() bool             { return (*sql.Rows)(r).Next() }
func (r *sqlRows) Scan(dest ...any) error { return (*sql.Rows)(r).Scan(dest...) }
func (r *sqlRows) Err() error             { return (*sql.Rows)(r).Err() }
func (r *sqlRows) Close()                 { _ = (*sql.Rows)(r).Close() } // Err reports what ended the rows
