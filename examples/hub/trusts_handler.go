package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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
	// MaxInFlight bounds the registrations running at once; one more is
	// answered 503 with Retry-After at once rather than queueing for a
	// connection. 0 means no bound.
	MaxInFlight int
	// LockTimeout, if set, is the registration transaction's lock_timeout:
	// a lock held elsewhere fails the registration with a retryable error
	// (503) after this long.
	LockTimeout time.Duration

	inFlightOnce sync.Once
	inFlight     chan struct{} // a token per registration running
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
// content type (415), body (413/400), the bound on registrations in flight
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
	adminID, ok := h.authorise(w, r, log)
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
	if !h.enter() {
		log.WarnContext(r.Context(), "trust registration refused: too many in flight",
			slog.Int("max_in_flight", h.MaxInFlight), slog.String("admin_id", adminID.String()))
		w.Header().Set("Retry-After", retryAfter)
		writeError(w, http.StatusServiceUnavailable, "too many registrations in progress; nothing was registered; retry shortly")
		return
	}
	defer h.leave()
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

// authorise answers the request itself (401, 403 or 500) and reports false
// unless the caller is an admin with an id for the audit trail.
func (h *TrustsHandler) authorise(w http.ResponseWriter, r *http.Request, log *slog.Logger) (uuid.UUID, bool) {
	adminID, err := h.Authoriser.AuthoriseAdmin(r)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "authentication required")
		return uuid.Nil, false
	case err != nil:
		writeError(w, http.StatusForbidden, "only FLIP admins may register trusts")
		return uuid.Nil, false
	case adminID == uuid.Nil:
		// An authoriser that grants without naming the admin would leave
		// the audit trail blank, as if no person had acted.
		log.ErrorContext(r.Context(), "authoriser granted access without an admin id")
		writeError(w, http.StatusInternalServerError, internalErrorMessage)
		return uuid.Nil, false
	}
	return adminID, true
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

// register runs the registration in a transaction of its own: committed on
// success, rolled back on any error (the deferred Rollback is a no-op after
// Commit). Everything runs under ctx, the commit too: once ctx has ended,
// database/sql rolls the transaction back and refuses the commit, so a
// registration past its deadline leaves nothing behind.
func (h *TrustsHandler) register(ctx context.Context, p flip.TrustParams) (flip.RegistrationResult, error) {
	tx, err := h.DB.BeginTx(ctx, nil)
	if err != nil {
		return flip.RegistrationResult{}, contextCause(ctx, err)
	}
	defer func() { _ = tx.Rollback() }()
	if h.LockTimeout > 0 {
		ms := strconv.FormatInt(max(h.LockTimeout.Milliseconds(), 1), 10)
		if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`, ms+"ms"); err != nil {
			return flip.RegistrationResult{}, contextCause(ctx, err)
		}
	}
	res, err := h.Registrar.RegisterTrust(ctx, tx, p)
	if err != nil {
		return flip.RegistrationResult{}, err // matches ctx's error once ctx has ended
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) {
			// database/sql rolled the transaction back when ctx ended.
			err = contextCause(ctx, err)
		}
		// Any other commit error leaves the outcome unknown: a 500.
		return flip.RegistrationResult{}, err
	}
	return res, nil
}

// contextCause marks err with ctx's error once ctx has ended: the deadline
// is then why the work failed, whatever the driver reported (lib/pq calls a
// cancelled statement "canceling statement due to user request").
func contextCause(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// enter takes a token for one registration, or reports false when
// MaxInFlight are already running; leave gives the token back.
func (h *TrustsHandler) enter() bool {
	if h.MaxInFlight <= 0 {
		return true
	}
	h.inFlightOnce.Do(func() { h.inFlight = make(chan struct{}, h.MaxInFlight) })
	select {
	case h.inFlight <- struct{}{}:
		return true
	default:
		return false
	}
}

func (h *TrustsHandler) leave() {
	if h.MaxInFlight > 0 {
		<-h.inFlight
	}
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
		TrustAPIKey: res.APIKey, TrustInternalServiceKey: res.InternalServiceKey,
		FLKitSlot: res.KitSlot.Name, FLKitSlotNumber: res.KitSlot.Number,
	}
	if res.Trust.Region != "" {
		region := res.Trust.Region
		out.Region = &region
	}
	return out
}
