package store

import (
	"errors"
	"strings"
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

// violatedConstraint reports whether err is a unique violation of the named
// constraint. Drivers expose the constraint name in different ways but all
// quote it in the message, which PostgreSQL words the same in every locale
// for the name itself.
func violatedConstraint(err error, name string) bool {
	return sqlState(err) == codeUniqueViolation && strings.Contains(err.Error(), `"`+name+`"`)
}

func isUndefinedTable(err error) bool { return sqlState(err) == codeUndefinedTable }
