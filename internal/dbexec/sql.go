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

// SQLOf returns the database/sql handle an Executor from FromSQL (or a
// Tx from BeginnerFromSQL) sends on, for the one public interface that
// takes one (flip.SlotStore's ClaimSlot); false for any other Executor.
func SQLOf(e Executor) (SQL, bool) {
	switch s := e.(type) {
	case sqlExecutor:
		return s.db, true
	case *sqlTx:
		return (*sql.Tx)(s), true
	}
	return nil, false
}

// SQLBeginner opens database/sql transactions: the method set of
// flip.TxBeginner, declared again for the same reason as SQL.
type SQLBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// BeginnerFromSQL returns the Beginner that begins transactions on db
// with its default options. A Tx it begins is the *sql.Tx under another
// name, so beginning allocates nothing of the adapter's own.
func BeginnerFromSQL(db SQLBeginner) Beginner { return sqlBeginner{db} }

type sqlBeginner struct{ db SQLBeginner }

func (b sqlBeginner) Begin(ctx context.Context) (Tx, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return (*sqlTx)(tx), nil
}

// sqlTx is *sql.Tx as a Tx: a conversion, not a wrapper.
type sqlTx sql.Tx

var _ Tx = (*sqlTx)(nil)

func (t *sqlTx) Exec(ctx context.Context, query string, args ...any) (Result, error) {
	return sqlExecutor{(*sql.Tx)(t)}.Exec(ctx, query, args...)
}

func (t *sqlTx) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return sqlExecutor{(*sql.Tx)(t)}.Query(ctx, query, args...)
}

func (t *sqlTx) QueryRow(ctx context.Context, query string, args ...any) Row {
	return (*sql.Tx)(t).QueryRowContext(ctx, query, args...)
}

func (t *sqlTx) Commit(context.Context) error   { return (*sql.Tx)(t).Commit() }
func (t *sqlTx) Rollback(context.Context) error { return (*sql.Tx)(t).Rollback() }

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
