package store

import (
	"errors"
)

// PostgreSQL error codes the store reacts to.
const (
	codeForeignKeyViolation = "23503"
	codeDeadlockDetected    = "40P01"
	codeLockNotAvailable    = "55P03" // what lock_timeout raises
	codeUniqueViolation     = "23505"
	codeNoActiveSQLTx       = "25P01"
	codeUndefinedTable      = "42P01"
)

// sqlState returns the SQLSTATE of a PostgreSQL error from any driver that
// exposes it through a SQLState() method (lib/pq's *pq.Error and pgx's
// *pgconn.PgError both do), or "" for any other error.
func sqlState(err error) string {
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		return coded.SQLState()
	}
	return ""
}

func isUndefinedTable(err error) bool { return sqlState(err) == codeUndefinedTable }
