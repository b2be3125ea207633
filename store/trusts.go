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
