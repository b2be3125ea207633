package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// ErrSlotNotFound is returned when a trust holds no kit slot.
var ErrSlotNotFound = errors.New("kit slot not found")

// ErrInvalidSlotName is returned by AddSlots for a blank name or one with
// control characters, invalid UTF-8 or more than 255
// characters. Nothing is added.
var ErrInvalidSlotName = pgsql.ErrInvalidSlotName

// ClaimSlot implements flip.SlotStore on its own statement (a Registry
// given a Store claims within its registration statement instead). When no
// slot can be claimed it tells an empty pool (flip.ErrNoFreeKitSlot: add
// slots) from a busy one (flip.ErrKitSlotsBusy: every free slot is locked
// by a registration in flight; retry), with one more statement on that
// path only.
func (*Store) ClaimSlot(ctx context.Context, tx DBTX, trustID uuid.UUID, at time.Time) (flip.KitSlot, error) {
	slot := flip.KitSlot{AssignedTo: trustID, AssignedAt: at}
	err := tx.QueryRowContext(ctx, pgsql.ClaimSlot, trustID, at).Scan(&slot.Name, &slot.Number)
	if !errors.Is(err, sql.ErrNoRows) {
		return slot, err
	}
	var busy bool
	if err := tx.QueryRowContext(ctx, pgsql.AnyFreeSlot).Scan(&busy); err != nil {
		return flip.KitSlot{}, fmt.Errorf("no free slot could be claimed, and checking for locked ones failed: %w", err)
	}
	if busy {
		return flip.KitSlot{}, flip.ErrKitSlotsBusy
	}
	return flip.KitSlot{}, flip.ErrNoFreeKitSlot
}

const slotColumns = `slot_name, slot_number, assigned_to_trust_id, assigned_at`

func scanSlot(row interface{ Scan(...any) error }) (flip.KitSlot, error) {
	var (
		s  flip.KitSlot
		to uuid.NullUUID
		at sql.NullTime
	)
	if err := row.Scan(&s.Name, &s.Number, &to, &at); err != nil {
		return flip.KitSlot{}, err
	}
	s.AssignedTo = to.UUID
	if at.Valid {
		s.AssignedAt = at.Time.UTC()
	}
	return s, nil
}

var numberedName = regexp.MustCompile(`^(.*?)(\d+)$`)

// AddSlots adds kit slots to the pool and returns how many were new. Each
// argument is a slot name or a range of them, "Trust_001..Trust_050" (see
// SlotRange), the same spelling register-trust --add-slots and
// fliptest.AddSlots take. It only ever adds: names already in the pool are
// left exactly as they are, assigned or not, so it is safe to run with the
// whole list at every deploy and from several processes at once. Names are
// trimmed; a blank or malformed name, or a malformed range, fails the call
// before anything is written.
func AddSlots(ctx context.Context, db DBTX, namesOrRanges ...string) (int, error) {
	var clean []string
	for _, spec := range namesOrRanges {
		names, err := SlotRange(spec)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalidSlotName, err)
		}
		for _, raw := range names {
			name, err := pgsql.CleanSlotName(raw)
			if err != nil {
				return 0, err
			}
			clean = append(clean, name)
		}
	}
	if len(clean) == 0 {
		return 0, nil
	}
	res, err := db.ExecContext(ctx, pgsql.AddSlots, pgsql.SlotRows(clean))
	if err != nil {
		return 0, fmt.Errorf("add kit slots: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("add kit slots: %w", err)
	}
	return int(n), nil
}

// SlotRange expands "Trust_001..Trust_050" into Trust_001, Trust_002, …,
// Trust_050, keeping the first name's zero padding. Both ends must share
// the prefix before their trailing digits. A name without ".." is returned
// as it is.
func SlotRange(spec string) ([]string, error) {
	from, to, ok := strings.Cut(spec, "..")
	if !ok {
		return []string{spec}, nil
	}
	a, b := numberedName.FindStringSubmatch(strings.TrimSpace(from)), numberedName.FindStringSubmatch(strings.TrimSpace(to))
	if a == nil || b == nil || a[1] != b[1] {
		return nil, fmt.Errorf("slot range %q: both ends need the same prefix and a trailing number, as in Trust_001..Trust_050", spec)
	}
	lo, err1 := strconv.Atoi(a[2])
	hi, err2 := strconv.Atoi(b[2])
	if err1 != nil || err2 != nil || lo > hi {
		return nil, fmt.Errorf("slot range %q: the numbers must ascend", spec)
	}
	if hi-lo >= 1_000_000 {
		return nil, fmt.Errorf("slot range %q: more than a million slots", spec)
	}
	names := make([]string, 0, hi-lo+1)
	for n := lo; n <= hi; n++ {
		names = append(names, fmt.Sprintf("%s%0*d", a[1], len(a[2]), n))
	}
	return names, nil
}

// PoolStats counts the slots in the pool.
type PoolStats struct {
	Total    int `json:"total"`
	Free     int `json:"free"`
	Assigned int `json:"assigned"`
}

// CountSlots returns how many slots the pool holds and how many are free.
func CountSlots(ctx context.Context, db DBTX) (PoolStats, error) {
	var s PoolStats
	err := db.QueryRowContext(ctx,
		`SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE assigned_to_trust_id IS NULL) FROM fl_kit_slot`).Scan(&s.Total, &s.Free)
	if err != nil {
		return PoolStats{}, fmt.Errorf("count kit slots: %w", err)
	}
	s.Assigned = s.Total - s.Free
	return s, nil
}
