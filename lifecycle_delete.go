package flip

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// DeletionResult is what DeleteTrust removed.
type DeletionResult struct {
	// Trust is the deleted trust as it was.
	Trust Trust `json:"trust"`
	// FreedKitSlots are the kit slots the trust held, free again: one, or
	// none for a trust that never got one (a legacy row may hold two).
	FreedKitSlots []KitSlot `json:"freed_fl_kit_slots"`
	// DependentRowsDeleted is, for every table with a foreign key to trust
	// (fl_kit_slot aside, whose rows are freed, not deleted), how many of
	// the trust's rows were deleted from it, zeros included. A table is
	// named as SQL would write it: bare when found first on the
	// search_path, else schema.table, each part quoted as an identifier
	// when it needs to be ("Site Reports", other."fl.logs"), so that no two
	// tables share a name here.
	DependentRowsDeleted map[string]int64 `json:"dependent_rows_deleted"`
}

// DeleteTrust deletes the trust c.TrustID, inside the caller's open
// transaction tx (as RegisterTrust: never commits; on any error tx is as
// before), with the meaning of the reference hub's delete_trust script:
// it frees the trust's kit slots (assigned_to_trust_id and assigned_at
// become NULL; the slots go back to the pool), deletes the trust's rows
// from every table that references trust(id), writes a DELETED row to
// trusts_audit naming c.AuditUserID (NULL from the deploy tooling),
// deletes the trust and announces it to listening Verifiers.
//
// The dependent tables are found in the catalog, not from a list, so a
// hub with all of its tables, some, none, or others of its own is handled
// alike; only their foreign keys to trust are read, never their other
// columns. The trust-scoped grants in user_role are deleted with the rest
// (the reference script misses them and fails on their foreign key). The
// trust's row is locked first, so a concurrent deletion, rotation or new
// dependent row waits for this transaction; a second deletion then finds
// nothing.
//
// A row of the trust's that other rows reference in turn (a foreign key
// from a table that does not itself reference the trust) stops the
// deletion with a *DeletionBlockedError (ErrTrustDeletionBlocked) naming
// both tables: deleting it would break that reference or cascade into
// data flip does not know. Nothing is deleted then. Rows that reference
// each other within the trust's own rows are no obstacle: everything is
// deleted in one statement, and PostgreSQL checks the foreign keys at its
// end.
//
// A trust that does not exist is ErrTrustNotFound. Every error matches
// ErrTrustChange; the retryable ones ErrRetryable too.
func (r *Registry) DeleteTrust(ctx context.Context, tx DBTX, c TrustChange) (DeletionResult, error) {
	ex, err := txExecutor(tx, ErrTrustChange)
	if err != nil {
		return DeletionResult{}, err
	}
	return r.deleteTrust(ctx, ex, c)
}

// deleteTrust is DeleteTrust on the caller's transaction ex, whatever its
// driver (see registerTrust).
func (r *Registry) deleteTrust(ctx context.Context, ex dbexec.Executor, c TrustChange) (DeletionResult, error) {
	if ex == nil {
		return DeletionResult{}, errNilTx(ErrTrustChange)
	}
	var res DeletionResult
	err := underSavepoint(ctx, ex, ErrTrustChange, func() error {
		deps, blockers, err := lockForDelete(ctx, ex, c.TrustID, &res.Trust)
		if err != nil {
			return err
		}
		if err := checkBlockers(ctx, ex, c.TrustID, deps, blockers); err != nil {
			return err
		}
		return r.deleteLocked(ctx, ex, c, deps, &res)
	})
	r.logChange(ctx, "trust deleted", c, res.Trust, err)
	if err != nil {
		return DeletionResult{}, err
	}
	return res, nil
}

// lockForDelete locks the trust, reads it into t, and returns the tables
// whose rows reference it and the foreign keys that could block deleting
// those rows.
func lockForDelete(ctx context.Context, tx dbexec.Executor, id uuid.UUID, t *Trust) ([]pgsql.Dependent, []pgsql.Blocker, error) {
	var (
		trustOID, slotOID sql.NullInt64
		keysJSON          string
	)
	err := tx.QueryRow(ctx, pgsql.LockTrustForDelete, id).
		Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt, &trustOID, &slotOID, &keysJSON)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil, notFound(id)
	case err != nil:
		return nil, nil, changeError(ctx, "lock trust", err)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	var keys []pgsql.ForeignKey
	if err := json.Unmarshal([]byte(keysJSON), &keys); err != nil {
		return nil, nil, changeError(ctx, "read the foreign keys to trust", err)
	}
	deps, blockers := planDelete(keys, uint32(trustOID.Int64), uint32(slotOID.Int64))
	return deps, blockers, nil
}

// planDelete sorts keys (each pointing at trust or at a table that does)
// into the dependents of trust, one per table, and the foreign keys into
// those dependents. fl_kit_slot is not a dependent: its rows are freed.
// A foreign key from trust to itself is left to the database, which
// refuses the deletion if another trust points at this one.
func planDelete(keys []pgsql.ForeignKey, trustOID, slotOID uint32) ([]pgsql.Dependent, []pgsql.Blocker) {
	var deps []pgsql.Dependent
	index := map[uint32]int{}
	for _, k := range keys {
		if k.To != trustOID || k.From == slotOID || k.From == trustOID {
			continue
		}
		i, ok := index[k.From]
		if !ok {
			i = len(deps)
			index[k.From] = i
			deps = append(deps, pgsql.Dependent{Schema: k.Schema, Table: k.Table, Label: k.Label, OID: k.From})
		}
		deps[i].Keys = append(deps[i].Keys, k)
	}
	var blockers []pgsql.Blocker
	for _, k := range keys {
		dep, isDep := index[k.To]
		if k.To == trustOID || !isDep {
			continue
		}
		referrer, ok := index[k.From]
		if !ok {
			referrer = -1
		}
		blockers = append(blockers, pgsql.Blocker{Dependent: dep, Key: k, Referrer: referrer})
	}
	return deps, blockers
}

// checkBlockers fails with a *DeletionBlockedError if a row outside the
// trust's own references one of the trust's dependent rows.
func checkBlockers(ctx context.Context, tx dbexec.Executor, id uuid.UUID, deps []pgsql.Dependent, blockers []pgsql.Blocker) error {
	if len(blockers) == 0 {
		return nil
	}
	var i int
	err := tx.QueryRow(ctx, pgsql.CheckBlockers(deps, blockers), id).Scan(&i)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return changeError(ctx, "check references to the trust's rows", err)
	}
	b := blockers[i]
	return &DeletionBlockedError{TrustID: id, Table: deps[b.Dependent].Label, ReferencedFrom: b.Key.Label}
}

// deleteLocked deletes the locked trust and its dependent rows in one
// statement and fills res with what went.
func (r *Registry) deleteLocked(ctx context.Context, tx dbexec.Executor, c TrustChange, deps []pgsql.Dependent, res *DeletionResult) error {
	var (
		countsJSON, freedJSON string
		deleted               int
	)
	err := tx.QueryRow(ctx, pgsql.DeleteTrust(deps), c.TrustID, uuid.New(), nullUUID(c.AuditUserID), r.stamp()).
		Scan(&countsJSON, &freedJSON, &deleted)
	switch state := pgsql.SQLState(err); {
	case state == "23503" || state == "23001": // foreign_key_violation, restrict_violation
		return &DeletionBlockedError{TrustID: c.TrustID, cause: err}
	case err != nil:
		return changeError(ctx, "delete trust", err)
	case deleted == 0: // the row was locked: only a bug gets here
		return notFound(c.TrustID)
	}
	var counts []int64
	var freed []struct {
		Name   string `json:"name"`
		Number int    `json:"number"`
	}
	if err := errors.Join(json.Unmarshal([]byte(countsJSON), &counts), json.Unmarshal([]byte(freedJSON), &freed)); err != nil || len(counts) != len(deps) {
		return changeError(ctx, "read what was deleted", fmt.Errorf("%d counts for %d tables: %w", len(counts), len(deps), err))
	}
	res.DependentRowsDeleted = make(map[string]int64, len(deps))
	for i, d := range deps {
		res.DependentRowsDeleted[d.Label] = counts[i]
	}
	res.FreedKitSlots = make([]KitSlot, 0, len(freed))
	for _, s := range freed {
		res.FreedKitSlots = append(res.FreedKitSlots, KitSlot{Name: s.Name, Number: s.Number})
	}
	return nil
}
