package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// Registrar registers a trust inside the caller's transaction;
// *flip.Registry is the real one.
type Registrar interface {
	RegisterTrust(ctx context.Context, tx flip.DBTX, p flip.TrustParams) (flip.RegistrationResult, error)
}

// TrustsHandler serves POST /admin/trusts: it registers the trust in the
// body in a transaction of the request's own, audited as the admin the
// Authoriser names, and answers with the trust, its kit slot and both keys.
// It commits only on success and rolls back on every error, so a refused
// or failed request leaves nothing behind.
type TrustsHandler struct {
	DB         flip.TxBeginner // *sql.DB or *sqlx.DB
	Registrar  Registrar       // usually flip.NewRegistry(store.New())
	Authoriser Authoriser
	// Logger receives one line per request outcome; never a key. nil
	// discards.
	Logger *slog.Logger
	// MaxBodyBytes bounds the request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AfterCommit, if set, runs after a registration committed, e.g. the
	// API-key Verifier's Purge.
	AfterCommit func(flip.RegistrationResult)
	// Timeout bounds each request, from the start of ServeHTTP to the
	// commit; 0 means none. It must end before the server's WriteTimeout
	// (NewHandler sets RegistrationTimeout of it), so that nothing commits
	// once the client can no longer be given the keys.
	Timeout time.Duration
	// InFlight bounds the registrations running at once, together with
	// the trust changes NewHandler gives the same Bound; one more is
	// answered 503 with Retry-After at once rather than queueing for a
	// connection. nil means no bound.
	InFlight *Bound
	// LockTimeout, if set, is the registration transaction's lock_timeout:
	// a lock held elsewhere fails the registration with a retryable error
	// (503) after this long.
	LockTimeout time.Duration
}

// registerResponse is the 201 body. Region is null when none was given.
type registerResponse struct {
	ID                      uuid.UUID `json:"id"`
	Name                    string    `json:"name"`
	Code                    string    `json:"code"`
	Region                  *string   `json:"region"`
	CreatedAt               time.Time `json:"created_at"`
	TrustAPIKey             string    `json:"trust_api_key"`
	TrustInternalServiceKey string    `json:"trust_internal_service_key"`
	FLKitSlot               string    `json:"fl_kit_slot"`
	FLKitSlotNumber         int       `json:"fl_kit_slot_number"`
}

// ServeHTTP implements http.Handler. Checks run cheapest first and the
// caller's identity before the body: method (405), credentials (401/403),
// content type (415), body (413/400), the bound on admin writes in flight
// (503), then the registration (400/409/503/500).
func (h *TrustsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if h.Timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST to register a trust")
		return
	}
	adminID, ok := authoriseAdmin(w, r, h.Authoriser, log, "register trusts")
	if !ok {
		return
	}
	if err := checkContentType(r); err != nil {
		writeRequestError(w, err)
		return
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	req, err := decodeRegisterRequest(w, r, limit)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	if !h.InFlight.TryEnter() {
		log.WarnContext(r.Context(), "trust registration refused: too many in flight",
			slog.Int("max_in_flight", h.InFlight.Cap()), slog.String("admin_id", adminID.String()))
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusServiceUnavailable, "too many admin writes in progress; nothing was registered; retry shortly")
		return
	}
	defer h.InFlight.Leave()
	p := flip.TrustParams{Name: req.Name, Code: req.Code, Region: req.Region, AuditUserID: adminID}
	res, err := h.register(r.Context(), p)
	if err != nil {
		writeRegistrationError(w, r, log, adminID, err)
		return
	}
	log.InfoContext(r.Context(), "trust registered", slog.Any("result", res), slog.String("admin_id", adminID.String()))
	if h.AfterCommit != nil {
		h.AfterCommit(res)
	}
	w.Header().Set("Location", "/admin/trusts/"+res.Trust.ID.String())
	writeJSON(w, http.StatusCreated, newRegisterResponse(res))
}

// writeRegistrationError logs a failed registration at the level its
// status deserves and answers with registrationStatus's status and
// message (and Retry-After on a 503).
func writeRegistrationError(w http.ResponseWriter, r *http.Request, log *slog.Logger, adminID uuid.UUID, err error) {
	status, msg := registrationStatus(err)
	level := slog.LevelInfo
	switch status {
	case http.StatusInternalServerError:
		level = slog.LevelError
	case http.StatusServiceUnavailable:
		level = slog.LevelWarn
		w.Header().Set("Retry-After", retryAfter)
	}
	log.Log(r.Context(), level, "trust registration failed",
		slog.Int("status", status), slog.String("admin_id", adminID.String()), slog.Any("error", err))
	writeError(w, status, msg)
}

// register runs the registration in a transaction of its own (inAdminTx):
// committed on success, rolled back on any error, all of it, the commit
// too, under ctx.
func (h *TrustsHandler) register(ctx context.Context, p flip.TrustParams) (flip.RegistrationResult, error) {
	return inAdminTx(ctx, h.DB, h.LockTimeout, func(tx *sql.Tx) (flip.RegistrationResult, error) {
		return h.Registrar.RegisterTrust(ctx, tx, p)
	})
}

func writeRequestError(w http.ResponseWriter, err error) {
	var re *requestError
	if errors.As(err, &re) {
		writeError(w, re.status, re.msg)
		return
	}
	writeError(w, http.StatusBadRequest, "bad request")
}

func newRegisterResponse(res flip.RegistrationResult) registerResponse {
	out := registerResponse{
		ID: res.Trust.ID, Name: res.Trust.Name, Code: res.Trust.Code, CreatedAt: res.Trust.CreatedAt,
		TrustAPIKey: res.APIKey.Reveal(), TrustInternalServiceKey: res.InternalServiceKey.Reveal(),
		FLKitSlot: res.KitSlot.Name, FLKitSlotNumber: res.KitSlot.Number,
	}
	if res.Trust.Region != "" {
		region := res.Trust.Region
		out.Region = &region
	}
	return out
}
