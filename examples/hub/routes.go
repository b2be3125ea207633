package main

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Config is what NewHandler and NewServer wire together.
type Config struct {
	// DB is the pool key verification and /healthz use (OpenPools'
	// verify pool). Nothing that can wait on a lock should use it.
	DB *sql.DB
	// AdminDB is the separate, small pool admin writes (registrations and
	// trust changes) use (OpenPools' admin pool). nil means DB, which only
	// tests should do: admin writes could then take the connections key
	// verification needs.
	AdminDB    *sql.DB
	Authoriser Authoriser
	// Registry defaults to flip.NewRegistry(store.New()); the handlers log
	// each outcome themselves.
	Registry *flip.Registry
	// Verifier defaults to DB with a one-minute cache of up to 10,000
	// grants (newVerifier). To hear of other replicas' changes, pass one
	// that ListenForTrustChanges keeps true, as main does.
	Verifier *flip.Verifier
	Logger   *slog.Logger // nil discards
	// WriteTimeout is the server's WriteTimeout (default
	// DefaultWriteTimeout); registrations and trust changes get
	// RegistrationTimeout of it. NewServer sets both from this one value.
	WriteTimeout time.Duration
	// MaxRegistrations bounds the admin writes in flight, registrations
	// and trust changes together, as they share the admin pool (default
	// AdminPoolSize); one more is answered 503 at once.
	MaxRegistrations int
	// LockTimeout is each admin write transaction's lock_timeout (default
	// DefaultLockTimeout).
	LockTimeout time.Duration
}

// NewHandler returns the example hub's routes:
//
//	POST   /admin/trusts                  register a trust (admin only; see TrustsHandler)
//	POST   /admin/trusts/{id}/rotate-key  new keys for a trust (admin only; see TrustChangeHandler)
//	POST   /admin/trusts/{id}/revoke      stop a trust's API key (admin only)
//	DELETE /admin/trusts/{id}             delete a trust (admin only)
//	GET    /trust/me                      the calling trust, by its API key (RequireTrustAPIKey)
//	GET    /healthz                       200 while key verification can get a connection, else 503
//
// Every registration purges the Verifier's cache after it commits; every
// trust change drops that trust's cached grants (Invalidate).
func NewHandler(cfg Config) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = flip.NewRegistry(store.New())
	}
	verifier := cfg.Verifier
	if verifier == nil {
		verifier = newVerifier(cfg.DB)
	}
	admin := cfg.AdminDB
	if admin == nil {
		admin = cfg.DB
	}
	write := cfg.WriteTimeout
	if write <= 0 {
		write = DefaultWriteTimeout
	}
	inFlight := cfg.MaxRegistrations
	if inFlight <= 0 {
		inFlight = AdminPoolSize
	}
	lockTimeout := cfg.LockTimeout
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	bound := NewBound(inFlight) // one for all admin writes: they share the admin pool
	mux := http.NewServeMux()
	mux.Handle("/admin/trusts", &TrustsHandler{
		DB: admin, Registrar: reg, Authoriser: cfg.Authoriser, Logger: log,
		Timeout: RegistrationTimeout(write), InFlight: bound, LockTimeout: lockTimeout,
		AfterCommit: func(flip.RegistrationResult) { verifier.Purge() },
	})
	changes := &TrustChangeHandler{
		DB: admin, Changer: reg, Authoriser: cfg.Authoriser, Logger: log,
		Timeout: RegistrationTimeout(write), InFlight: bound, LockTimeout: lockTimeout,
		AfterCommit: verifier.Invalidate,
	}
	mux.Handle("POST /admin/trusts/{id}/rotate-key", changes.RotateKey())
	mux.Handle("POST /admin/trusts/{id}/revoke", changes.Revoke())
	mux.Handle("DELETE /admin/trusts/{id}", changes.Delete())
	mux.Handle("GET /trust/me", RequireTrustAPIKey(verifier, log, http.HandlerFunc(whoAmI)))
	mux.Handle("GET /healthz", healthz(cfg.DB, log))
	return mux
}

// newVerifier is the hub's Verifier on db: a one-minute cache of up to
// 10,000 grants, kept true to other replicas' changes when
// ListenForTrustChanges runs for it.
func newVerifier(db *sql.DB) *flip.Verifier {
	return flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
}

// healthz answers 200 when a connection of db (the verification pool) can
// be had and answers a ping within HealthTimeout, else 503: a hub whose
// trusts cannot be verified is not healthy, whatever else still works. Use
// it as the readiness probe. Registrations' own pool is not checked: a
// registration backlog is an admin's problem, not the trusts'.
func healthz(db *sql.DB, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), HealthTimeout)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			log.WarnContext(r.Context(), "health check: the verification pool is unavailable", slog.Any("error", err))
			w.Header().Set("Retry-After", retryAfter)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// whoAmI answers with the trust the API key identified: the smallest
// endpoint a trust can call to check its key.
func whoAmI(w http.ResponseWriter, r *http.Request) {
	t, _ := TrustFromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"id": t.ID.String(), "name": t.Name, "code": t.Code})
}
