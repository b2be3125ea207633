package main

import (
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Config is what NewHandler wires together.
type Config struct {
	DB         *sql.DB
	Authoriser Authoriser
	// Registry defaults to flip.NewRegistry(store.New()); the handler logs
	// each outcome itself.
	Registry *flip.Registry
	// Verifier defaults to store.NewAPIKeyLookup(DB) with a one-minute
	// cache of up to 10,000 grants.
	Verifier *flip.Verifier
	Logger   *slog.Logger // nil discards
}

// NewHandler returns the example hub's routes:
//
//	POST /admin/trusts  register a trust (admin only; see TrustsHandler)
//	GET  /trust/me      the calling trust, by its API key (RequireTrustAPIKey)
//	GET  /healthz       200 once serving
//
// Every registration purges the Verifier's cache after it commits.
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
		verifier = flip.NewVerifier(store.NewAPIKeyLookup(cfg.DB), flip.WithCache(time.Minute, 10_000))
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/trusts", &TrustsHandler{
		DB: cfg.DB, Registrar: reg, Authoriser: cfg.Authoriser, Logger: log,
		AfterCommit: func(flip.RegistrationResult) { verifier.Purge() },
	})
	mux.Handle("GET /trust/me", RequireTrustAPIKey(verifier, log, http.HandlerFunc(whoAmI)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// whoAmI answers with the trust the API key identified: the smallest
// endpoint a trust can call to check its key.
func whoAmI(w http.ResponseWriter, r *http.Request) {
	t, _ := TrustFromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{"id": t.ID.String(), "name": t.Name, "code": t.Code})
}
