package flip

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// A trust's later life
//
// After registration a trust lives for years. Its API key may leak, or be
// lost with a commit answer that never arrived: RotateKeys replaces both
// keys. It may have to stop authenticating for a while: RevokeKey clears
// the stored hash, and a later RotateKeys brings it back. It may leave the
// platform: DeleteTrust removes it and everything of the hub's that
// references it, as the reference hub's delete_trust script does.
//
// Each runs inside the caller's transaction with RegisterTrust's contract:
// it never begins, commits or rolls back; on any error the transaction is
// as it was before the call and still usable. Each announces the change
// with a NOTIFY on flip's channel (flip_trust_changes, payload the trust's
// id), which PostgreSQL delivers only when the caller commits: a Verifier
// that listens (Verifier.Listen) forgets the trust's cached grant then, in
// every process.
//
// Auditing. A deletion writes a DELETED row to the hub's trusts_audit, as
// the reference script does. The hub's trustauditaction type has no value
// for a rotation or a revocation, and flip never adds one (the hub's ORM
// fails on values it does not know), so those are recorded in flip's own
// table flip_trust_key_audit (migration 3; action "ROTATED" or
// "REVOKED", with the trust, its name, the admin's id and the time). On a
// database store.Migrate has not brought to version 3, the change is made
// and the Registry's log records it at warning level instead.

// TrustChange names the trust a rotation, revocation or deletion acts on
// and who asks for it.
type TrustChange struct {
	TrustID uuid.UUID
	// AuditUserID is the admin's identity-provider id (Cognito sub), as in
	// TrustParams; uuid.Nil (recorded as NULL) from the deploy tooling.
	AuditUserID uuid.UUID
}

// The actions flip_trust_key_audit records.
const (
	auditRotated = "ROTATED"
	auditRevoked = "REVOKED"
)

// RotateKeys gives the trust c.TrustID a new trust API key and a new
// internal-service key, inside the caller's open transaction tx (as
// RegisterTrust: never commits; on any error tx is as before). The stored
// hash is replaced, so the old API key is refused from the commit on (by
// every listening Verifier, within moments); a revoked trust authenticates
// again with the new key. The old internal-service key is the trust's to
// discard: flip never stored it.
//
// The result has the same shape as a registration's: the trust, its kit
// slot (zero if it holds none) and both plaintext keys, returned here and
// nowhere else. Rotation is also the way back from a registration whose
// commit answer was lost: the trust exists, nobody has its keys.
//
// A trust that does not exist is ErrTrustNotFound. Every error matches
// ErrTrustChange; the retryable ones ErrRetryable too.
func (r *Registry) RotateKeys(ctx context.Context, tx DBTX, c TrustChange) (RegistrationResult, error) {
	ex, err := txExecutor(tx, ErrTrustChange)
	if err != nil {
		return RegistrationResult{}, err
	}
	return r.rotateKeys(ctx, ex, c)
}

// rotateKeys is RotateKeys on the caller's transaction ex, whatever its
// driver (see registerTrust).
func (r *Registry) rotateKeys(ctx context.Context, ex dbexec.Executor, c TrustChange) (RegistrationResult, error) {
	if ex == nil {
		return RegistrationResult{}, errNilTx(ErrTrustChange)
	}
	apiKey, serviceKey, err := r.mintKeys(ctx, ErrTrustChange)
	if err != nil {
		return RegistrationResult{}, err
	}
	res, err := r.setKeyHash(ctx, ex, c, HashAPIKey(apiKey), auditRotated, "trust keys rotated")
	if err != nil {
		return RegistrationResult{}, err
	}
	res.APIKey, res.InternalServiceKey = NewSecret(apiKey), NewSecret(serviceKey)
	return res, nil
}

// RevokeKey stops the trust c.TrustID's API key from authenticating,
// inside the caller's open transaction tx (as RegisterTrust: never
// commits; on any error tx is as before). The trust, its kit slot and its
// data stay; its stored hash becomes NULL, which no key matches (the hub's
// own verifier skips such rows too). RotateKeys brings it back with new
// keys. Revoking a revoked trust changes nothing and succeeds.
//
// A trust that does not exist is ErrTrustNotFound. Every error matches
// ErrTrustChange; the retryable ones ErrRetryable too.
func (r *Registry) RevokeKey(ctx context.Context, tx DBTX, c TrustChange) (Trust, error) {
	ex, err := txExecutor(tx, ErrTrustChange)
	if err != nil {
		return Trust{}, err
	}
	return r.revokeKey(ctx, ex, c)
}

// revokeKey is RevokeKey on the caller's transaction ex, whatever its
// driver (see registerTrust).
func (r *Registry) revokeKey(ctx context.Context, ex dbexec.Executor, c TrustChange) (Trust, error) {
	if ex == nil {
		return Trust{}, errNilTx(ErrTrustChange)
	}
	res, err := r.setKeyHash(ctx, ex, c, nil, auditRevoked, "trust key revoked")
	if err != nil {
		return Trust{}, err
	}
	return res.Trust, nil
}

// setKeyHash stores hash (a string, or nil to revoke) for c.TrustID under
// a savepoint, audits it as action and logs the outcome as done.
func (r *Registry) setKeyHash(ctx context.Context, tx dbexec.Executor, c TrustChange, hash any, action, done string) (RegistrationResult, error) {
	var (
		res     RegistrationResult
		audited bool // flip_trust_key_audit exists
	)
	err := underSavepoint(ctx, tx, ErrTrustChange, func() error {
		var (
			hadKey     bool
			slotName   sql.NullString
			slotNumber sql.NullInt64
			t          = &res.Trust
		)
		err := tx.QueryRow(ctx, pgsql.SetAPIKeyHash, c.TrustID, hash).
			Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt, &hadKey, &slotName, &slotNumber, &audited)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFound(c.TrustID)
		case err != nil:
			return changeError(ctx, "store API-key hash", err)
		}
		t.CreatedAt = t.CreatedAt.UTC()
		if slotName.Valid {
			res.KitSlot = KitSlot{Name: slotName.String, Number: int(slotNumber.Int64), AssignedTo: t.ID}
		}
		if !audited {
			return nil
		}
		_, err = tx.Exec(ctx, pgsql.InsertKeyAudit, uuid.New(), t.ID, t.Name, action, nullUUID(c.AuditUserID), r.stamp())
		if err != nil {
			return changeError(ctx, "write key audit row", err)
		}
		return nil
	})
	r.logChange(ctx, done, c, res.Trust, err)
	if err != nil {
		return RegistrationResult{}, err
	}
	if !audited {
		r.logger.LogAttrs(ctx, slog.LevelWarn, "flip_trust_key_audit is missing (run store.Migrate); this log line is the only record of the change",
			slog.String("action", action), slog.String("trust_id", res.Trust.ID.String()), slog.String("trust_name", res.Trust.Name),
			slog.String("audit_user_id", c.AuditUserID.String()))
	}
	return res, nil
}

func notFound(id uuid.UUID) error { return fmt.Errorf("%w: no trust has id %s", ErrTrustNotFound, id) }

// stamp is the Registry's clock now, as stored: UTC, microseconds.
func (r *Registry) stamp() time.Time { return r.now().UTC().Truncate(time.Microsecond) }

// logChange logs the outcome of a rotation, revocation or deletion; never
// a key.
func (r *Registry) logChange(ctx context.Context, done string, c TrustChange, t Trust, err error) {
	if err != nil {
		r.logger.LogAttrs(ctx, logLevel(ctx, err), done+": refused",
			slog.String("trust_id", c.TrustID.String()), slog.Any("error", err))
		return
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, done,
		slog.String("trust_id", t.ID.String()), slog.String("trust_name", t.Name),
		slog.String("audit_user_id", c.AuditUserID.String()))
}
