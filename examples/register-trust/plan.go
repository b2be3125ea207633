package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// plan is what --plan prints: what the same command without --plan would
// do now. It has no field for a key, so no key can reach it.
type plan struct {
	// Action is "register" (a new trust), "skip" (the trust exists: a
	// metadata-only record), "rotate" (--rotate), "revoked" (the trust
	// exists without an API key: the run would fail, and --rotate would
	// re-key it) or "fail".
	Action    string `json:"action"`
	TrustName string `json:"trust_name"` // canonical, as it would be stored
	// TrustExists says whether a trust has the name; TrustID is its id.
	TrustExists bool   `json:"trust_exists"`
	TrustID     string `json:"trust_id,omitempty"`
	// FLKitSlot is the slot a new trust would claim, or the one an
	// existing trust holds; null when none.
	FLKitSlot       *string `json:"fl_kit_slot"`
	FLKitSlotNumber *int    `json:"fl_kit_slot_number"`
	// The pool as the run would find it: after --add-slots (SlotsAdded is
	// how many of those names are new), before the claim.
	SlotsTotal int `json:"slots_total"`
	SlotsFree  int `json:"slots_free"`
	SlotsAdded int `json:"slots_added"`
	// SlotNamesAdded are the names the slot-name source would add to an
	// empty pool for this registration (--slot-names-file, FL_KIT_SLOT_NAMES).
	SlotNamesAdded []string `json:"slot_names_added"`
	// Drift says how an existing trust differs from --code or --region,
	// as in the record; absent when it does not.
	Drift *drift `json:"drift,omitempty"`
	// Error says why the run would fail (Action "fail" or "revoked").
	Error string `json:"error,omitempty"`
}

// failedPlan is the plan of a run that would fail with err before it
// reached the trust, for example because the database does not answer.
func failedPlan(opts options, err error) plan {
	return plan{Action: "fail", TrustName: opts.name, SlotNamesAdded: []string{}, Error: err.Error()}
}

// makePlan runs the real registration (or rotation) path, --add-slots
// included, in one transaction that it always rolls back, and reports what
// it did: the plan is what the real run would do because it is the real
// run, undone. ok is false when that run would fail. The keys the
// rehearsal mints never leave this function.
func makePlan(ctx context.Context, db *sql.DB, log *slog.Logger, opts options) (p plan, ok bool) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return failedPlan(opts, timedOut(ctx, err)), false
	}
	defer func() {
		if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			log.Warn("rolling back the plan's transaction failed; nothing of it was committed", "error", err)
		}
	}()

	p = plan{TrustName: opts.name, SlotNamesAdded: []string{}}
	if len(opts.slots) > 0 {
		if p.SlotsAdded, err = store.AddSlots(ctx, tx, opts.slots...); err != nil {
			return failedPlan(opts, timedOut(ctx, err)), false
		}
	}
	stats, err := store.CountSlots(ctx, tx)
	if err != nil {
		return failedPlan(opts, timedOut(ctx, err)), false
	}
	p.SlotsTotal, p.SlotsFree = stats.Total, stats.Free

	o, err := work(ctx, tx, log, opts)
	if err != nil {
		p.Action, p.Error = "fail", timedOut(ctx, err).Error()
		if hint := hintFor(err); hint != "" {
			p.Error += " (" + hint + ")"
		}
		// Whether the trust exists, as far as the failed run's
		// transaction can still say.
		if name, nerr := flip.CanonicalTrustName(opts.name); nerr == nil {
			p.TrustName = name
			trusts, lerr := store.TrustsByName(ctx, tx, name)
			p.TrustExists = lerr == nil && len(trusts) > 0
		}
		return p, false
	}

	t, slot := o.res.Trust, o.res.KitSlot
	p.TrustName = t.Name
	switch o.status {
	case "registered":
		p.Action = "register"
		if o.res.AddedKitSlots != nil {
			p.SlotNamesAdded = o.res.AddedKitSlots
		}
	case "existing":
		p.Action, p.TrustExists, p.TrustID = "skip", true, t.ID.String()
	case "revoked":
		p.Action, p.TrustExists, p.TrustID = "revoked", true, t.ID.String()
	case "rotated":
		p.Action, p.TrustExists, p.TrustID = "rotate", true, t.ID.String()
	}
	if slot.Name != "" {
		name, n := slot.Name, slot.Number
		p.FLKitSlot, p.FLKitSlotNumber = &name, &n
	}
	p.Drift = o.drift
	if err := o.refusal(); err != nil {
		if p.Action == "skip" { // a revoked trust keeps its own action
			p.Action = "fail"
		}
		p.Error = err.Error()
	}
	log.Info("plan made; rolling it back", "action", p.Action, "trust_name", p.TrustName, "fl_kit_slot", slot.Name)
	return p, p.Error == ""
}
