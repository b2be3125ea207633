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

// growPool is a registration's second chance when the pool had no free
// slot (see WithSlotNameSource): it asks the source once, adds the names
// the pool lacks and claims again, once, for trustID, which the
// registration statement has already written. It returns the slot and the
// names it added. Sent on tx: the insert (when the source gave any valid
// name), the claim, and on a miss the busy check.
func (r *Registry) growPool(ctx context.Context, tx dbexec.Executor, trustID uuid.UUID, now time.Time) (KitSlot, []string, error) {
	source := describeSource(r.source)
	names, err := r.source.SlotNames(ctx)
	held := fmt.Sprintf("it held %d names", len(names))
	if err != nil {
		held = "it could not be used: " + err.Error()
		r.logger.LogAttrs(ctx, slog.LevelWarn, "slot-name source unusable; taking it as empty",
			slog.String("source", source), slog.Any("error", err))
	}
	clean := make([]string, 0, len(names))
	for _, n := range names {
		c, err := pgsql.CleanSlotName(n)
		if err != nil {
			r.logger.LogAttrs(ctx, slog.LevelWarn, "slot-name source: name skipped", slog.String("source", source), slog.Any("error", err))
			continue
		}
		clean = append(clean, c)
	}
	added, err := addSlots(ctx, tx, clean)
	if err != nil {
		return KitSlot{}, nil, registrationError(ctx, "add kit slots from "+source, err)
	}
	if len(added) > 0 {
		r.logger.LogAttrs(ctx, slog.LevelInfo, "kit slots added to the pool from the slot-name source",
			slog.String("source", source), slog.Int("added", len(added)))
	}
	slot := KitSlot{AssignedTo: trustID, AssignedAt: now}
	err = tx.QueryRow(ctx, pgsql.ClaimSlot, trustID, now).Scan(&slot.Name, &slot.Number)
	if err == nil {
		return slot, added, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return KitSlot{}, nil, registrationError(ctx, "claim kit slot", err)
	}
	var busy bool
	if err := tx.QueryRow(ctx, pgsql.AnyFreeSlot).Scan(&busy); err != nil {
		return KitSlot{}, nil, registrationError(ctx, "check for locked kit slots", err)
	}
	if busy {
		return KitSlot{}, nil, ErrKitSlotsBusy
	}
	return KitSlot{}, nil, fmt.Errorf("%w (the slot-name source, %s, was consulted: %s, %d added)", ErrNoFreeKitSlot, source, held, len(added))
}

// addSlots inserts the names the pool lacks and returns those it inserted.
func addSlots(ctx context.Context, tx dbexec.Executor, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, pgsql.AddSlots, pgsql.SlotRows(names))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var added []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		added = append(added, name)
	}
	return added, rows.Err()
}
