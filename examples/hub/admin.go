package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// What every admin write shares, registration (TrustsHandler) and the
// trust changes (TrustChangeHandler) alike: the caller's identity checked
// first, and a transaction of the request's own.

// authoriseAdmin answers the request itself (401, 403 or 500) and reports
// false unless the caller is an admin with an id for the audit trail.
// action completes the 403's "only FLIP admins may …".
func authoriseAdmin(w http.ResponseWriter, r *http.Request, a Authoriser, log *slog.Logger, action string) (uuid.UUID, bool) {
	adminID, err := a.AuthoriseAdmin(r)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, http.StatusUnauthorized, "authentication required")
		return uuid.Nil, false
	case err != nil:
		writeError(w, http.StatusForbidden, "only FLIP admins may "+action)
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

// inAdminTx runs fn in a transaction of its own on db: committed on
// success, rolled back on any error (the deferred Rollback is a no-op after
// Commit). lockTimeout, if set, becomes the transaction's lock_timeout, so
// that a lock held elsewhere fails fn with a retryable error instead of
// holding a connection until the deadline. Everything runs under ctx, the
// commit too: once ctx has ended, database/sql rolls the transaction back
// and refuses the commit, so work past its deadline leaves nothing behind.
// The commit is the last step; the caller answers the client after it.
func inAdminTx[T any](ctx context.Context, db flip.TxBeginner, lockTimeout time.Duration, fn func(tx *sql.Tx) (T, error)) (T, error) {
	var zero T
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return zero, contextCause(ctx, err)
	}
	defer func() { _ = tx.Rollback() }()
	if lockTimeout > 0 {
		ms := strconv.FormatInt(max(lockTimeout.Milliseconds(), 1), 10)
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.set_config('lock_timeout', $1::pg_catalog.text, true)`, ms+"ms"); err != nil {
			return zero, contextCause(ctx, err)
		}
	}
	res, err := fn(tx)
	if err != nil {
		return zero, err // flip's errors match ctx's once ctx has ended
	}
	if err := tx.Commit(); err != nil {
		if errors.Is(err, sql.ErrTxDone) {
			// database/sql rolled the transaction back when ctx ended.
			err = contextCause(ctx, err)
		}
		// Any other commit error leaves the outcome unknown: a 500.
		return zero, err
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
