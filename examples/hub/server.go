package main

import (
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/londonaicentre/flip/internal/cmddb"
)

// The hub's pools, bounds and timeouts. They live together because each is
// sized against another (the package comment explains the design).
const (
	// DefaultWriteTimeout is the server's WriteTimeout: how long a handler
	// has, from the moment the request's headers were read, to write its
	// response. A registration's deadline is derived from it
	// (RegistrationTimeout).
	DefaultWriteTimeout = 30 * time.Second
	// VerifyPoolSize is the number of connections of the pool that key
	// verification and /healthz use.
	VerifyPoolSize = 20
	// AdminPoolSize is the number of connections of the separate pool that
	// registrations use. It is also the default bound on registrations in
	// flight: each holds one connection, so none queues for one.
	AdminPoolSize = 4
	// DefaultLockTimeout is each registration transaction's lock_timeout:
	// a lock held elsewhere turns into a retryable 503 after this long
	// instead of holding a connection until the deadline.
	DefaultLockTimeout = 2 * time.Second
	// HealthTimeout bounds the ping of the verification pool by /healthz.
	HealthTimeout = time.Second
)

// RegistrationTimeout returns the deadline of a registration, from the
// start of its handler to its commit, on a server whose WriteTimeout is
// write: write less a margin of a fifth (at most 5 seconds) left for
// writing the response. The server's write deadline starts when the
// request's headers have been read, just before the handler runs, so a
// registration that has not committed by its deadline is rolled back while
// the client can still be told so.
func RegistrationTimeout(write time.Duration) time.Duration {
	return write - min(write/5, 5*time.Second)
}

// OpenPools opens the hub's two connection pools on the database at url:
// verify (VerifyPoolSize connections) for key verification, /healthz and
// the boot's migration, and admin (AdminPoolSize) for registrations and
// seeding. Registrations stuck behind a lock can then use up only their own
// pool, never the connections a trust's request needs. A malformed url is
// refused without being echoed (cmddb.Open).
func OpenPools(url string) (verify, admin *sql.DB, err error) {
	verify, err = cmddb.Open(url, VerifyPoolSize)
	if err != nil {
		return nil, nil, err
	}
	admin, err = cmddb.Open(url, AdminPoolSize)
	if err != nil {
		verify.Close()
		return nil, nil, err
	}
	return verify, admin, nil
}

// NewServer returns the hub's HTTP server: NewHandler(cfg) with the
// server's timeouts. cfg.WriteTimeout (default DefaultWriteTimeout)
// becomes both the server's WriteTimeout and, through RegistrationTimeout,
// the registrations' deadline, so the two cannot drift apart. Serve the
// handler through NewServer rather than an http.Server of your own.
func NewServer(cfg Config) *http.Server {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	srv := &http.Server{
		Handler:           NewHandler(cfg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.WriteTimeout,
	}
	if cfg.Logger != nil {
		srv.ErrorLog = slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)
	}
	return srv
}
