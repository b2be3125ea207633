package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// Internals the store's tests check directly.
var (
	Migrations = migrations
	SlotNumber = pgsql.SlotNumber
)

const (
	MigrationTable    = migrationTable
	UnnumberedSlot    = pgsql.UnnumberedSlot
	MaxSlotNameLength = pgsql.MaxSlotNameLength
)

// AppliedVersion returns the highest version Migrate recorded in db, or 0.
func AppliedVersion(ctx context.Context, db DBTX) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT max(version) FROM `+migrationTable).Scan(&v)
	if pgsql.SQLState(err) == "42P01" { // undefined_table: never migrated
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read applied migration version: %w", err)
	}
	return int(v.Int64), nil
}

// FreeSlots lists up to limit free slots in the order they will be claimed
// (limit <= 0 lists all).
func FreeSlots(ctx context.Context, db DBTX, limit int) ([]flip.KitSlot, error) {
	q := `SELECT ` + slotColumns + ` FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL ORDER BY slot_number, slot_name`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list free kit slots: %w", err)
	}
	defer rows.Close()
	var out []flip.KitSlot
	for rows.Next() {
		s, err := scanSlot(rows)
		if err != nil {
			return nil, fmt.Errorf("list free kit slots: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list free kit slots: %w", err)
	}
	return out, nil
}
