package main

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// TrustChanger changes a registered trust inside the caller's
// transaction; *flip.Registry is the real one.
type TrustChanger interface {
	RotateKeys(ctx context.Context, tx flip.DBTX, c flip.TrustChange) (flip.RegistrationResult, error)
	RevokeKey(ctx context.Context, tx flip.DBTX, c flip.TrustChange) (flip.Trust, error)
	DeleteTrust(ctx context.Context, tx flip.DBTX, c flip.TrustChange) (flip.DeletionResult, error)
}

// TrustChangeHandler serves the admin endpoints that change a registered
// trust, the one whose id is the path's {id}:
//
//	POST   /admin/trusts/{id}/rotate-key  RotateKey: new API and internal-service keys
//	POST   /admin/trusts/{id}/revoke      Revoke: the API key stops authenticating
//	DELETE /admin/trusts/{id}             Delete: the trust and its rows go
//
// Mount them on ServeMux patterns with the method and {id}, as NewHandler
// does: the mux answers another method with 405. Each change has
// registration's protections: the admin first (401, 403), then a well
// formed id (400), the bound on admin writes in flight (503), and a
// transaction of the request's own, audited as that admin, with
// lock_timeout and under Timeout, committed last, just before the 200,
// and rolled back on every error. A failed request changes nothing.
type TrustChangeHandler struct {
	DB         flip.TxBeginner // *sql.DB or *sqlx.DB: the admin pool
	Changer    TrustChanger    // usually flip.NewRegistry(store.New())
	Authoriser Authoriser
	// Logger receives one line per request outcome; never a key. nil
	// discards.
	Logger *slog.Logger
	// AfterCommit, if set, runs after a change committed, with the trust's
	// id: the Verifier's Invalidate, so that this process stops honouring
	// the trust's old key at once. Other processes hear of the change from
	// their change feed (ListenForTrustChanges).
	AfterCommit func(trustID uuid.UUID)
	// Timeout bounds each request, from the start of the handler to the
	// commit, as TrustsHandler's; 0 means none.
	Timeout time.Duration
	// InFlight bounds the admin writes running at once (NewHandler shares
	// the registrations' Bound); nil means no bound.
	InFlight *Bound
	// LockTimeout, if set, is each change transaction's lock_timeout: a
	// lock held elsewhere (a concurrent change of the same trust, say)
	// fails the change with a retryable 503 after this long.
	LockTimeout time.Duration
}

// revokeResponse is the revocation's 200 body.
type revokeResponse struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Status string    `json:"status"` // "revoked"
}

// deleteResponse is the deletion's 200 body. FreedKitSlot is the first of
// FreedKitSlots, or null for a trust that held none; a legacy trust may
// have held two.
type deleteResponse struct {
	Status               string           `json:"status"` // "deleted"
	TrustID              uuid.UUID        `json:"trust_id"`
	Name                 string           `json:"name"`
	FreedKitSlot         *string          `json:"freed_fl_kit_slot"`
	FreedKitSlots        []string         `json:"freed_fl_kit_slots"`
	DependentRowsDeleted map[string]int64 `json:"dependent_rows_deleted"`
}

// changed is what a change did: the trust, for the log line, and the 200
// body, which the log never sees (a rotation's holds the keys).
type changed struct {
	trust flip.Trust
	body  any
}

// RotateKey serves POST /admin/trusts/{id}/rotate-key: the trust gets a new
// API key and a new internal-service key, both in the 200 body (the only
// copy, as registration's 201). The old API key is refused from the commit
// on; a revoked trust authenticates again with the new one.
func (h *TrustChangeHandler) RotateKey() http.Handler {
	return h.handle("trust keys rotated", func(ctx context.Context, tx *sql.Tx, c flip.TrustChange) (changed, error) {
		res, err := h.Changer.RotateKeys(ctx, tx, c)
		return changed{res.Trust, newRegisterResponse(res)}, err // registration's 201 body
	})
}

// Revoke serves POST /admin/trusts/{id}/revoke: the trust's API key stops
// authenticating; the trust, its kit slot and its data stay, and
// rotate-key brings it back. Revoking a revoked trust succeeds.
func (h *TrustChangeHandler) Revoke() http.Handler {
	return h.handle("trust key revoked", func(ctx context.Context, tx *sql.Tx, c flip.TrustChange) (changed, error) {
		t, err := h.Changer.RevokeKey(ctx, tx, c)
		return changed{t, revokeResponse{ID: t.ID, Name: t.Name, Status: "revoked"}}, err
	})
}

// Delete serves DELETE /admin/trusts/{id}: the trust goes, with its rows
// in every table that references it; its kit slots are freed. The 200
// says what went. A row of the trust's that another table's rows
// reference stops it (409, naming both tables); nothing is deleted then.
func (h *TrustChangeHandler) Delete() http.Handler {
	return h.handle("trust deleted", func(ctx context.Context, tx *sql.Tx, c flip.TrustChange) (changed, error) {
		res, err := h.Changer.DeleteTrust(ctx, tx, c)
		return changed{res.Trust, newDeleteResponse(res)}, err
	})
}

// handle is the one request path of every change; op is the change, run
// in the request's transaction. done is the log line of a success.
func (h *TrustChangeHandler) handle(done string, op func(context.Context, *sql.Tx, flip.TrustChange) (changed, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log := h.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		if h.Timeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), h.Timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		adminID, ok := authoriseAdmin(w, r, h.Authoriser, log, "change trusts")
		if !ok {
			return
		}
		// After the credentials, as registration reads its body: a
		// stranger learns nothing about what the path accepts. 400, not
		// 404: a retried DELETE's 404 means "already gone", which a
		// mistyped id must not be taken for.
		id, err := uuid.Parse(r.PathValue("id"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "the trust id in the path must be a UUID")
			return
		}
		if !h.InFlight.TryEnter() {
			log.WarnContext(r.Context(), done+": refused, too many admin writes in flight",
				slog.Int("max_in_flight", h.InFlight.Cap()), slog.String("trust_id", id.String()), slog.String("admin_id", adminID.String()))
			w.Header().Set("Retry-After", retryAfter)
			writeError(w, http.StatusServiceUnavailable, "too many admin writes in progress; nothing was changed; retry shortly")
			return
		}
		defer h.InFlight.Leave()
		c := flip.TrustChange{TrustID: id, AuditUserID: adminID}
		res, err := inAdminTx(r.Context(), h.DB, h.LockTimeout, func(tx *sql.Tx) (changed, error) {
			return op(r.Context(), tx, c)
		})
		if err != nil {
			writeChangeError(w, r, log, done, c, err)
			return
		}
		log.InfoContext(r.Context(), done, slog.String("trust_id", id.String()),
			slog.String("trust_name", res.trust.Name), slog.String("admin_id", adminID.String()))
		if h.AfterCommit != nil {
			h.AfterCommit(id)
		}
		writeJSON(w, http.StatusOK, res.body)
	})
}

// writeChangeError logs a failed change at the level its status deserves
// and answers with changeStatus's status and message (and Retry-After on
// a 503).
func writeChangeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, done string, c flip.TrustChange, err error) {
	status, msg := changeStatus(err)
	level := slog.LevelInfo
	switch status {
	case http.StatusInternalServerError:
		level = slog.LevelError
	case http.StatusServiceUnavailable:
		level = slog.LevelWarn
		w.Header().Set("Retry-After", retryAfter)
	}
	log.Log(r.Context(), level, done+": failed", slog.Int("status", status),
		slog.String("trust_id", c.TrustID.String()), slog.String("admin_id", c.AuditUserID.String()), slog.Any("error", err))
	writeError(w, status, msg)
}

func newDeleteResponse(res flip.DeletionResult) deleteResponse {
	out := deleteResponse{
		Status: "deleted", TrustID: res.Trust.ID, Name: res.Trust.Name,
		FreedKitSlots: make([]string, 0, len(res.FreedKitSlots)), DependentRowsDeleted: res.DependentRowsDeleted,
	}
	for _, s := range res.FreedKitSlots {
		out.FreedKitSlots = append(out.FreedKitSlots, s.Name)
	}
	if len(out.FreedKitSlots) > 0 {
		out.FreedKitSlot = &out.FreedKitSlots[0]
	}
	if out.DependentRowsDeleted == nil {
		out.DependentRowsDeleted = map[string]int64{}
	}
	return out
}
