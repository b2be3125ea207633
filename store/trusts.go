package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// The statements of a registration, in the order flip.Registry runs them.
// They are exported so benchmarks (pgbench) and DBAs can run exactly what
// the library runs.
const (
	// LockTrustIdentitySQL takes two transaction-scoped advisory locks: one
	// on the exact name and one on the lower-cased code, in that order
	// everywhere, so concurrent registrations of one name or one code queue
	// behind each other until the first transaction ends. $1 name, $2 code.
	LockTrustIdentitySQL = `SELECT pg_advisory_xact_lock(hashtextextended('flip.trust.name:' || $1::text, 0)),
       pg_advisory_xact_lock(hashtextextended('flip.trust.code:' || lower($2::text), 0))`

	// InsertTrustSQL stores a trust; an empty region is stored as NULL.
	InsertTrustSQL = `INSERT INTO trust (id, name, code, region, api_key_hash, created_at)
VALUES ($1, $2, $3, NULLIF($4::text, ''), $5, $6)`

	// InsertAuditSQL stores one trusts_audit row; uuid.Nil user ids are NULL.
	InsertAuditSQL = `INSERT INTO trusts_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date, subject_user_id)
VALUES ($1, $2, $3, $4::trustauditaction, $5, $6, $7)`
)

// FindDuplicateSQL finds a trust whose name has the same canonical form as
// $1, else one whose code has the same canonical form as $2
// case-insensitively (see canonicalNameSQL: stored rows written before
// flip, with invisible characters or decomposed accents, still collide).
// $1 and $2 are canonical already (flip.TrustParams.Normalize). flip's
// name and code indexes (migration 002) are built on the same
// expressions, so the check is two index probes.
var FindDuplicateSQL = `SELECT id, name, coalesce(code, ''), coalesce(region, ''), created_at, ` + byCanonicalName + ` AS same_name
FROM trust
WHERE ` + byCanonicalName + ` OR ` + canonicalCodeSQL("code") + ` = lower($2::text)
ORDER BY same_name DESC, created_at
LIMIT 1`

// LockTrustIdentity implements flip.TrustStore.
func (*Store) LockTrustIdentity(ctx context.Context, tx DBTX, name, code string) error {
	_, err := tx.ExecContext(ctx, LockTrustIdentitySQL, name, code)
	return err
}

// FindDuplicate implements flip.TrustStore.
func (*Store) FindDuplicate(ctx context.Context, tx DBTX, name, code string) (*flip.Trust, string, error) {
	var (
		t        flip.Trust
		sameName bool
	)
	err := tx.QueryRowContext(ctx, FindDuplicateSQL, name, code).
		Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt, &sameName)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if sameName {
		return &t, "name", nil
	}
	return &t, "code", nil
}

// InsertTrust implements flip.TrustStore. A unique violation of flip's name
// or code index (migration 2) becomes a *flip.DuplicateTrustError.
func (*Store) InsertTrust(ctx context.Context, tx DBTX, t flip.Trust, apiKeyHash string) error {
	_, err := tx.ExecContext(ctx, InsertTrustSQL, t.ID, t.Name, t.Code, t.Region, apiKeyHash, t.CreatedAt)
	switch {
	case err == nil:
		return nil
	case violatedConstraint(err, "flip_trust_name_key"):
		return flip.NewDuplicateTrustError("name", t.Name, t.Code, err)
	case violatedConstraint(err, "flip_trust_code_key"):
		return flip.NewDuplicateTrustError("code", t.Name, t.Code, err)
	}
	return err
}

// InsertAudit implements flip.TrustStore.
func (*Store) InsertAudit(ctx context.Context, tx DBTX, a flip.TrustAudit) error {
	_, err := tx.ExecContext(ctx, InsertAuditSQL,
		a.ID, a.TrustID, a.TrustName, string(a.Action), nullUUID(a.ModifiedBy), a.AuditDate, nullUUID(a.Subject))
	return err
}

// nullUUID maps uuid.Nil to SQL NULL.
func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

const trustColumns = `id, name, coalesce(code, ''), coalesce(region, ''), created_at`

func scanTrust(row interface{ Scan(...any) error }) (flip.Trust, error) {
	var t flip.Trust
	err := row.Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt)
	t.CreatedAt = t.CreatedAt.UTC()
	return t, err
}

// ErrTrustNotFound is returned by the trust lookups when no trust matches.
var ErrTrustNotFound = errors.New("trust not found")

// TrustByName returns the trust whose name has the same canonical form as
// name, the oldest if several do, or ErrTrustNotFound. Pass a name cleaned
// by TrustParams.Normalize: it matches what RegisterTrust stored and the
// legacy rows RegisterTrust would refuse as duplicates. The deploy command
// uses it to report an existing trust without re-keying it.
func TrustByName(ctx context.Context, db DBTX, name string) (flip.Trust, error) {
	return trustWhere(ctx, db, byCanonicalName, name)
}

// TrustByCode returns the trust whose code has the same canonical form as
// code, compared case-insensitively (the oldest if several do), or
// ErrTrustNotFound.
func TrustByCode(ctx context.Context, db DBTX, code string) (flip.Trust, error) {
	return trustWhere(ctx, db, byCanonicalCode, code)
}

// TrustByID returns the trust with that id, or ErrTrustNotFound.
func TrustByID(ctx context.Context, db DBTX, id uuid.UUID) (flip.Trust, error) {
	return trustWhere(ctx, db, `id = $1`, id)
}

// The lookups' conditions, built once: the canonical expressions are long.
var (
	byCanonicalName = canonicalNameSQL("name") + ` = $1::text`
	byCanonicalCode = canonicalCodeSQL("code") + ` = lower($1::text)`
)

func trustWhere(ctx context.Context, db DBTX, where string, arg any) (flip.Trust, error) {
	t, err := scanTrust(db.QueryRowContext(ctx, `SELECT `+trustColumns+` FROM trust WHERE `+where+` ORDER BY created_at LIMIT 1`, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return flip.Trust{}, ErrTrustNotFound
	}
	if err != nil {
		return flip.Trust{}, fmt.Errorf("look up trust: %w", err)
	}
	return t, nil
}

// KitSlotOf returns the kit slot assigned to trustID, or ErrSlotNotFound.
func KitSlotOf(ctx context.Context, db DBTX, trustID uuid.UUID) (flip.KitSlot, error) {
	s, err := scanSlot(db.QueryRowContext(ctx,
		`SELECT `+slotColumns+` FROM fl_kit_slot WHERE assigned_to_trust_id = $1 ORDER BY slot_number, slot_name LIMIT 1`, trustID))
	if errors.Is(err, sql.ErrNoRows) {
		return flip.KitSlot{}, ErrSlotNotFound
	}
	if err != nil {
		return flip.KitSlot{}, fmt.Errorf("look up kit slot: %w", err)
	}
	return s, nil
}
