// Package dbexec is the one executor flip's core sends every statement
// through, so that database/sql and pgx callers share one core: the
// statements, the duplicate-check ordering and the undo policy exist once,
// and each driver is a small adapter beside them (FromSQL here for
// database/sql), in the way River keeps riverdriver apart from
// riverdatabasesql and riverpgxv5.
//
// The interfaces are the smallest both database/sql and pgx v5 satisfy
// with a few lines each and without an allocation per statement. An
// adapter hands errors back as the driver made them (sql.ErrNoRows,
// sql.ErrTxDone, a driver error with its SQLState method): the core
// decides what a failure means (a duplicate, a retry, a transaction that
// is gone) from those values, and a replaced error would change the
// answer. The one translation allowed adds, never replaces: an adapter
// whose driver says "this transaction is over" in errors of its own (pgx's
// ErrTxClosed, a closed connection) returns an error that also matches
// database/sql's sentinel for it (sql.ErrTxDone, sql.ErrConnDone), so the
// core tells a transaction that is gone by those alone and imports no
// driver.
//
// It is internal: the public API is flip's Registry, Verifier and Seeder,
// which take the caller's handle and adapt it once per call, and the
// driver adapters of this module (flippgx), which reach the same core
// through internal/bridge.
package dbexec

import "context"

// Executor sends statements on one database handle: the caller's
// transaction, a connection, or (for the Verifier's lookups and a seeding
// run that owns its transactions) a pool.
type Executor interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, query string, args ...any) (Result, error)
	// Query runs a statement and returns its rows, to be closed by the
	// caller.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a statement expected to return at most one row; its
	// error, or sql.ErrNoRows (which pgx.ErrNoRows also matches), comes
	// from Scan.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Result is what Exec reports about a statement. It is read only by the
// seeder, which counts rows, so an adapter can return what its driver
// already has (sql.Result; a pgx command tag) and compute nothing up front.
type Result interface {
	RowsAffected() (int64, error)
}

// Rows is the result of Query. Close reports nothing, as pgx.Rows' does:
// an error that ends the rows is Err's to report, and database/sql's Close
// error is never read by the core.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow.
type Row interface {
	Scan(dest ...any) error
}

// Beginner begins transactions, for the operations that own theirs:
// RegisterTrustDB, and a seeding run given a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (Tx, error)
}

// Tx is a transaction a Beginner began. Commit and Rollback take a
// context as pgx's do; database/sql's ignore it. Rollback after Commit
// does nothing but return an error, so a deferred Rollback is safe.
type Tx interface {
	Executor
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}
