package pgsql

import "errors"

// SQLState returns the SQLSTATE of a PostgreSQL error, or "" for any other
// error. Drivers expose it through a SQLState() method (lib/pq's *pq.Error
// and pgx's *pgconn.PgError both do), which keeps flip free of any driver
// import.
func SQLState(err error) string {
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		return coded.SQLState()
	}
	return ""
}
