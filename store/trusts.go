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

// TrustByName returns the trust with the name name (see TrustsByName), the
// first if several have it, or ErrTrustNotFound. register-trust uses it to
// report an existing trust instead of registering it again.
func TrustByName(ctx context.Context, db DBTX, name string) (flip.Trust, error) {
	trusts, err := TrustsByName(ctx, db, name)
	if err != nil {
		return flip.Trust{}, err
	}
	return trusts[0], nil
}

// TrustsByName returns every trust whose name matches name as
// RegisterTrust's duplicate check compares them (the canonical form,
// flip.CanonicalTrustName, compared case-insensitively with Unicode case
// folding: what RegisterTrust stored, and the legacy rows it would refuse
// as duplicates), those spelt exactly as the canonical name first, then
// oldest first; or ErrTrustNotFound, or the
// error CanonicalTrustName returns for a name no trust can have. A legacy
// hub may hold several trusts with one name: a caller about to change or
// delete one should refuse to guess, as the deploy commands do.
func TrustsByName(ctx context.Context, db DBTX, name string) ([]flip.Trust, error) {
	name, err := flip.CanonicalTrustName(name)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, pgsql.TrustsByName, name, pgsql.FoldName(name))
	if err != nil {
		return nil, fmt.Errorf("look up trust: %w", err)
	}
	defer rows.Close()
	var trusts []flip.Trust
	for rows.Next() {
		var t flip.Trust
		if err := rows.Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt); err != nil {
			return nil, fmt.Errorf("look up trust: %w", err)
		}
		t.CreatedAt = t.CreatedAt.UTC()
		trusts = append(trusts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up trust: %w", err)
	}
	if len(trusts) == 0 {
		return nil, ErrTrustNotFound
	}
	return trusts, nil
}

// TrustAPIKeyHash returns the api_key_hash stored for the trust trustID,
// "" when it is NULL: the trust holds no API key (RevokeKey cleared it, or
// a legacy row never had one), so no key authenticates it until RotateKeys
// gives it one; or ErrTrustNotFound. The lookups above leave the hash out
// (flip.Trust never carries it); register-trust needs it to tell a revoked
// trust from a working one, and a kit file's key from the trust's current
// one.
func TrustAPIKeyHash(ctx context.Context, db DBTX, trustID uuid.UUID) (string, error) {
	var hash sql.NullString
	err := db.QueryRowContext(ctx, pgsql.APIKeyHashOf, trustID).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: no trust has id %s", ErrTrustNotFound, trustID)
	}
	if err != nil {
		return "", fmt.Errorf("look up API-key hash: %w", err)
	}
	return hash.String, nil
}

// KitSlotOf returns the kit slot assigned to trustID, or ErrSlotNotFound.
func KitSlotOf(ctx context.Context, db DBTX, trustID uuid.UUID) (flip.KitSlot, error) {
	s, err := scanSlot(db.QueryRowContext(ctx,
		`SELECT `+slotColumns+` FROM fl_kit_slot WHERE assigned_to_trust_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid ORDER BY slot_number, slot_name LIMIT 1`, trustID))
	if errors.Is(err, sql.ErrNoRows) {
		return flip.KitSlot{}, ErrSlotNotFound
	}
	if err != nil {
		return flip.KitSlot{}, fmt.Errorf("look up kit slot: %w", err)
	}
	return s, nil
}
