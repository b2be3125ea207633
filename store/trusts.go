package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// ErrTrustNotFound is returned by the trust lookups when no trust
// matches. It is flip.ErrTrustNotFound, the error RotateKeys, RevokeKey and
// DeleteTrust return for a trust that does not exist.
var ErrTrustNotFound = flip.ErrTrustNotFound

// TrustByName returns the trust whose name has the same canonical form as
// name, or ErrTrustNotFound. Pass a name cleaned by TrustParams.Normalize:
// it matches what RegisterTrust stored and the legacy rows RegisterTrust
// would refuse as duplicates. Where several do (legacy rows), the one
// spelt exactly as name wins, then the oldest. The deploy commands use it
// to find the trust to report, rotate or delete.
func TrustByName(ctx context.Context, db DBTX, name string) (flip.Trust, error) {
	var t flip.Trust
	err := db.QueryRowContext(ctx, `SELECT `+pgsql.TrustColumns+` FROM trust WHERE `+pgsql.ByCanonicalName+` ORDER BY name = $1 DESC, created_at LIMIT 1`, name).
		Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt)
	t.CreatedAt = t.CreatedAt.UTC()
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
