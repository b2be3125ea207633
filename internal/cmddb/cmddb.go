// Package cmddb is how flip's deploy commands (examples/register-trust,
// examples/delete-trust, examples/seed-users) and the example hub find and
// open their PostgreSQL database. It exists so that they share one answer
// to where the URL comes from, one way of opening it that never echoes a
// malformed URL (it may hold a password), one redaction for logs and one
// message for a database that does not answer.
package cmddb

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"

	_ "github.com/lib/pq" // PostgreSQL driver, registered as "postgres"
)

// DefaultURL is the database used when neither --database-url nor
// DATABASE_URL is set: the local development server.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Source is a database URL and where it came from, for error messages.
type Source struct {
	URL  string
	From string // "--database-url", "DATABASE_URL" or a sentence naming the default
}

// Resolve returns flagURL (the --database-url flag) when it is set, else
// getenv("DATABASE_URL"), else DefaultURL, each with where it came from.
func Resolve(flagURL string, getenv func(string) string) Source {
	if flagURL != "" {
		return Source{flagURL, "--database-url"}
	}
	if u := getenv("DATABASE_URL"); u != "" {
		return Source{u, "DATABASE_URL"}
	}
	return Source{DefaultURL, "the default (neither --database-url nor DATABASE_URL is set)"}
}

// Open opens a pool of at most conns connections, all kept when idle, on
// rawURL. A malformed URL is reported without echoing it, since it may
// hold a password. Nothing is dialled yet.
func Open(rawURL string, conns int) (*sql.DB, error) {
	if strings.Contains(rawURL, "://") {
		if _, err := url.Parse(rawURL); err != nil {
			return nil, errors.New("the database URL is not a valid URL")
		}
	}
	db, err := sql.Open("postgres", rawURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// Connect opens src (as Open, with conns connections) and makes sure the
// database answers. On failure it returns a message for the log along with
// the error: which step failed and, for a database that does not answer,
// the redacted URL and where it came from.
func Connect(ctx context.Context, src Source, conns int) (*sql.DB, string, error) {
	db, err := Open(src.URL, conns)
	if err != nil {
		return nil, "cannot open database", err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, "cannot connect to the database at " + Redact(src.URL) + ", taken from " + src.From +
			"; check that PostgreSQL is running there and the URL is right", err
	}
	return db, "", nil
}

// Redact returns rawURL fit for a log: the password of a URL is masked,
// and a key=value connection string (or anything else that is not a URL)
// is not shown at all.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return "(connection string not shown)"
	}
	return u.Redacted()
}
