package reliability

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// operation is one call the fault harness breaks: a registration, or one
// of a trust's later-life changes. The harness is the same for all of
// them; what differs between them is here.
type operation struct {
	name string
	// base is what every error of the call matches; other is the base of
	// the other family, which none may match.
	base, other error
	// notifies says a committed success announces its trust on
	// flip_trust_changes.
	notifies bool
	// core are the statements the call exists to send: the clean run must
	// send them, or internal/pgsql has drifted from what the harness knows.
	core []string
	// refuses, when set, is the error a clean call returns: the call is a
	// refusal (ErrNoFreeKitSlot after the pool could not grow), which must
	// commit nothing however it is broken.
	refuses error
	// target readies what the call at point p acts on.
	target func(t *testing.T, h *faultHarness, p point) target
	// call runs the operation on tx for tg.
	call func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error)
	// committed checks, after a success the caller committed, that the
	// change is in the database; it returns what is wrong, or "".
	committed func(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error)
}

// target is what one call acts on: a name and code to register, or a
// trust to change. slots are the (clean) names the slot-name source holds
// for a registration that grows the pool.
type target struct {
	name, code string
	trust      uuid.UUID
	slots      []string
}

// outcome is what a call returned: the trust it acted on (or created) and
// the plaintext keys it handed out; for a registration, its slot and the
// slots it added to the pool.
type outcome struct {
	trust    uuid.UUID
	keys     []string
	slot     string
	added    []string
	deletion flip.DeletionResult
}

func registrationOutcome(res flip.RegistrationResult) outcome {
	return outcome{trust: res.Trust.ID, keys: keysOf(res), slot: res.KitSlot.Name, added: res.AddedKitSlots}
}

func keysOf(res flip.RegistrationResult) []string {
	var keys []string
	for _, k := range []string{res.APIKey.Reveal(), res.InternalServiceKey.Reveal()} {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

var operations = []operation{
	{
		name: "register", base: flip.ErrTrustRegistration, other: flip.ErrTrustChange, core: []string{"Register"},
		target: func(t *testing.T, h *faultHarness, p point) target {
			h.keepFreeSlots(t)
			return registrationTarget(p)
		},
		call: func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error) {
			res, err := tx.RegisterTrust(ctx, h.b.reg, flip.TrustParams{Name: tg.name, Code: tg.code, AuditUserID: h.auditBy})
			return registrationOutcome(res), err
		},
		committed: registered,
	},
	{
		// A registration that finds no free slot and grows the pool from
		// its slot-name source: the insert of the missing names and the
		// second claim are sent on top of a registration's statements.
		name: "register_grow", base: flip.ErrTrustRegistration, other: flip.ErrTrustChange, core: []string{"Register", "AddSlots", "ClaimSlot"},
		target: func(t *testing.T, h *faultHarness, p point) target { return h.growTarget(t, p, false) },
		call: func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error) {
			res, err := tx.RegisterTrust(ctx, h.growReg, flip.TrustParams{Name: tg.name, Code: tg.code, AuditUserID: h.auditBy})
			return registrationOutcome(res), err
		},
		committed: func(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error) {
			if msg, err := registered(ctx, h, tg, out); msg != "" || err != nil {
				return msg, err
			}
			var inPool int
			var holder uuid.NullUUID
			err := h.b.admin.QueryRowContext(ctx, `SELECT
				(SELECT count(*) FROM fl_kit_slot WHERE slot_name = ANY($1)),
				(SELECT assigned_to_trust_id FROM fl_kit_slot WHERE slot_name = $2)`, pq.Array(tg.slots), out.slot).Scan(&inPool, &holder)
			added := slices.Sorted(slices.Values(out.added))
			if err != nil || (inPool == len(tg.slots) && slices.Equal(added, tg.slots) && out.slot == tg.slots[0] && holder.UUID == out.trust) {
				return "", err
			}
			return fmt.Sprintf("the registration was committed with slot %q, having added %q; the pool holds %d of the source's %q, and the slot is assigned to %v, want all of them added and the first claimed by trust %s",
				out.slot, out.added, inPool, tg.slots, holder, out.trust), nil
		},
	},
	{
		// The same, with a source whose every name is already in the pool
		// (and taken): the insert adds nothing, the second claim misses,
		// the busy check says none is free, and the registration is refused.
		name: "register_grow_miss", base: flip.ErrTrustRegistration, other: flip.ErrTrustChange, core: []string{"AddSlots", "ClaimSlot", "AnyFreeSlot"},
		refuses: flip.ErrNoFreeKitSlot,
		target:  func(t *testing.T, h *faultHarness, p point) target { return h.growTarget(t, p, true) },
		call: func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error) {
			res, err := tx.RegisterTrust(ctx, h.growReg, flip.TrustParams{Name: tg.name, Code: tg.code, AuditUserID: h.auditBy})
			return registrationOutcome(res), err
		},
		committed: func(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error) {
			return fmt.Sprintf("a registration that must be refused (no free slot, nothing to add) was committed with slot %q", out.slot), nil
		},
	},
	{
		name: "rotate", base: flip.ErrTrustChange, other: flip.ErrTrustRegistration, notifies: true, core: []string{"SetAPIKeyHash"},
		target: func(t *testing.T, h *faultHarness, _ point) target { return target{trust: h.keyTrust} },
		call: func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error) {
			res, err := tx.RotateKeys(ctx, h.b.reg, flip.TrustChange{TrustID: tg.trust, AuditUserID: h.auditBy})
			return outcome{trust: res.Trust.ID, keys: keysOf(res)}, err
		},
		committed: func(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error) {
			hash, err := storedHash(ctx, h.b.admin, tg.trust)
			if err != nil || (len(out.keys) == 2 && hash.String == flip.HashAPIKey(out.keys[0])) {
				return "", err
			}
			return "the rotation was committed, but the trust does not hold the new key's hash", nil
		},
	},
	{
		name: "revoke", base: flip.ErrTrustChange, other: flip.ErrTrustRegistration, notifies: true, core: []string{"SetAPIKeyHash"},
		target: func(t *testing.T, h *faultHarness, _ point) target { return target{trust: h.keyTrust} },
		call: func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error) {
			tr, err := tx.RevokeKey(ctx, h.b.reg, flip.TrustChange{TrustID: tg.trust, AuditUserID: h.auditBy})
			return outcome{trust: tr.ID}, err
		},
		committed: func(ctx context.Context, h *faultHarness, tg target, _ outcome) (string, error) {
			hash, err := storedHash(ctx, h.b.admin, tg.trust)
			if err != nil || !hash.Valid {
				return "", err
			}
			return "the revocation was committed, but the trust still holds a hash", nil
		},
	},
	{
		name: "delete", base: flip.ErrTrustChange, other: flip.ErrTrustRegistration, notifies: true, core: []string{"DeleteTrust"},
		target: func(t *testing.T, h *faultHarness, _ point) target { return target{trust: h.deleteTarget(t)} },
		call: func(ctx context.Context, h *faultHarness, tx callertx.Tx, tg target) (outcome, error) {
			res, err := tx.DeleteTrust(ctx, h.b.reg, flip.TrustChange{TrustID: tg.trust, AuditUserID: h.auditBy})
			return outcome{trust: res.Trust.ID, deletion: res}, err
		},
		committed: func(ctx context.Context, h *faultHarness, tg target, _ outcome) (string, error) {
			var trusts, deleted int
			err := h.b.admin.QueryRowContext(ctx, `SELECT
				(SELECT count(*) FROM trust WHERE id = $1),
				(SELECT count(*) FROM trusts_audit WHERE trust_id = $1 AND action = 'DELETED' AND modified_by_user_id = $2)`,
				tg.trust, h.auditBy).Scan(&trusts, &deleted)
			if err != nil || (trusts == 0 && deleted == 1) {
				return "", err
			}
			return fmt.Sprintf("the deletion was committed, but %d trusts and %d DELETED audit rows have its id, want 0 and 1", trusts, deleted), nil
		},
	},
}

// registrationTarget is a fresh name and code to register.
func registrationTarget(p point) target {
	return target{name: "Fault " + p.String() + " " + uuid.NewString()[:8], code: "F" + uuid.NewString()[:12]}
}

// registered checks a committed registration: one trust of the name, one
// audit row, and the returned API key's hash stored.
func registered(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error) {
	var trusts, audits, hashes int
	err := h.b.admin.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM trust WHERE name = $1),
		(SELECT count(*) FROM trusts_audit WHERE trust_name = $1),
		(SELECT count(*) FROM trust WHERE api_key_hash = $2)`, tg.name, flip.HashAPIKey(out.keys[0])).Scan(&trusts, &audits, &hashes)
	if err != nil || (trusts == 1 && audits == 1 && hashes == 1) {
		return "", err
	}
	return fmt.Sprintf("the registration was committed, but the database holds %d trusts, %d audit rows and %d API key hashes from it, want 1 each", trusts, audits, hashes), nil
}

// growTarget readies a registration that finds no free slot: the pool's
// free slots are deleted (what earlier calls left, the fixture's spares),
// so only trusts' slots remain, and the slot-name source (a file) is
// written anew. With taken, it lists slots the pool already holds, all
// assigned, so there is nothing to add; else three new names, out of
// order, one with spaces around it, and a blank one, which is skipped.
// tg.slots are the names as the pool would hold them, the one to be
// claimed first.
func (h *faultHarness) growTarget(t *testing.T, p point, taken bool) target {
	t.Helper()
	ctx := h.b.ctx
	if _, err := h.b.admin.ExecContext(ctx, `DELETE FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL`); err != nil {
		t.Fatalf("empty the pool: %v", err)
	}
	tg := registrationTarget(p)
	var listed []string
	if taken {
		if err := sqlx.NewDb(h.b.admin, "postgres").SelectContext(ctx, &tg.slots,
			`SELECT slot_name FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL ORDER BY slot_name LIMIT 3`); err != nil || len(tg.slots) == 0 {
			t.Fatalf("taken slots: %q, %v", tg.slots, err)
		}
		listed = tg.slots
	} else {
		id := uuid.NewString()[:8]
		for i := 1; i <= 3; i++ {
			tg.slots = append(tg.slots, fmt.Sprintf("Grow_%s_%d", id, i))
		}
		listed = []string{tg.slots[2], tg.slots[0], " " + tg.slots[1] + " ", ""}
	}
	b, err := json.Marshal(listed)
	if err == nil {
		err = os.WriteFile(h.slotFile, b, 0o600)
	}
	if err != nil {
		t.Fatalf("write the slot-name source: %v", err)
	}
	return tg
}

func storedHash(ctx context.Context, db *sql.DB, id uuid.UUID) (sql.NullString, error) {
	var hash sql.NullString
	err := db.QueryRowContext(ctx, `SELECT api_key_hash FROM trust WHERE id = $1`, id).Scan(&hash)
	return hash, err
}

// label names a statement briefly for messages, and tells the harness
// which statement of internal/pgsql it is.
func label(q string) string {
	switch q {
	case pgsql.LockTrustIdentity:
		return "LockTrustIdentity"
	case pgsql.Register:
		return "Register"
	case pgsql.SetAPIKeyHash:
		return "SetAPIKeyHash"
	case pgsql.InsertKeyAudit:
		return "InsertKeyAudit"
	case pgsql.LockTrustForDelete:
		return "LockTrustForDelete"
	case pgsql.AddSlots:
		return "AddSlots"
	case pgsql.ClaimSlot:
		return "ClaimSlot"
	case pgsql.AnyFreeSlot:
		return "AnyFreeSlot"
	}
	// The two statements DeleteTrust builds from the catalog.
	switch {
	case strings.HasPrefix(q, "SELECT 0 WHERE EXISTS"):
		return "CheckBlockers"
	case strings.HasPrefix(q, "WITH ") && strings.Contains(q, "\ngone AS ("):
		return "DeleteTrust"
	}
	if f := strings.Fields(q); len(f) > 3 {
		return strings.Join(f[:3], " ")
	}
	return q
}

// referrerTable is the table CheckBlockers reads its first referrer from.
var referrerTable = regexp.MustCompile(`SELECT FROM ("[^"]+"\."[^"]+") AS g`)

// blockSQL returns what a second connection runs, in a transaction, to hold
// statement at (1-based) of stmts on a lock, and its arguments, or "" when
// the statement takes no lock that can be held (the savepoint statements).
// Every lock is one the caller's transaction does not hold yet when the
// statement starts: a Register sent again after the identity lock (the
// hub's bare schema) finds the transaction holding every table lock
// already, so nothing can hold it then.
func blockSQL(stmts []string, at int, tg target) (string, []any) {
	q := stmts[at-1]
	if q == pgsql.Register && slices.Contains(stmts[:at-1], q) {
		return "", nil
	}
	switch label(q) {
	case "LockTrustIdentity":
		return q, []any{tg.name, tg.code} // the same advisory locks, with the same name and code
	case "Register":
		// Its first lock is ACCESS SHARE on trust, for the duplicate check.
		return `LOCK TABLE trust IN ACCESS EXCLUSIVE MODE`, nil
	case "SetAPIKeyHash", "LockTrustForDelete":
		return `SELECT FROM trust WHERE id = $1 FOR UPDATE`, []any{tg.trust} // both lock the trust's row first
	case "InsertKeyAudit":
		return `LOCK TABLE flip_trust_key_audit IN ACCESS EXCLUSIVE MODE`, nil
	case "CheckBlockers":
		if m := referrerTable.FindStringSubmatch(q); m != nil {
			return `LOCK TABLE ` + m[1] + ` IN ACCESS EXCLUSIVE MODE`, nil
		}
	case "DeleteTrust":
		// The dependents were read by CheckBlockers; the audit table was not.
		return `LOCK TABLE trusts_audit IN ACCESS EXCLUSIVE MODE`, nil
	case "AddSlots":
		// Register has taken ROW EXCLUSIVE on fl_kit_slot, so no table lock
		// can hold the insert; the row of a name it inserts can: a second
		// connection writes that name (a new row, or a new version of a
		// taken slot's) and the insert's uniqueness check waits for it.
		var name string
		if len(tg.slots) > 0 {
			name = tg.slots[0]
		}
		return `INSERT INTO fl_kit_slot (slot_name, slot_number) VALUES ($1, 0)
			ON CONFLICT (slot_name) DO UPDATE SET slot_number = fl_kit_slot.slot_number`, []any{name}
	}
	// ClaimSlot and AnyFreeSlot neither: the transaction holds every table
	// lock they take since Register, the claim skips locked rows, and the
	// only free rows are the transaction's own uncommitted ones.
	return "", nil
}

// keepFreeSlots adds slots when none is free: registrations (the racing
// successes, and the trusts deletions consume) use them up.
func (h *faultHarness) keepFreeSlots(t *testing.T) {
	t.Helper()
	if freeSlots(t, h.b) > 0 {
		return
	}
	names := make([]string, 5)
	for i := range names {
		names[i] = "Fault_" + uuid.NewString()
	}
	if _, err := store.AddSlots(h.b.ctx, h.b.admin, names...); err != nil {
		t.Fatalf("add slots: %v", err)
	}
}

// registerTarget registers a trust for the lifecycle operations to act on,
// with a trust-scoped grant in user_role, the dependent table flip's
// schema has.
func (h *faultHarness) registerTarget(t *testing.T, what string) uuid.UUID {
	t.Helper()
	h.keepFreeSlots(t)
	res, err := h.b.RegisterTrustDB(h.b.ctx, h.b.reg, flip.TrustParams{Name: what + " " + uuid.NewString()[:8], Code: "T" + uuid.NewString()[:12]})
	if err != nil {
		t.Fatalf("register %s: %v", what, err)
	}
	role := uuid.New()
	_, err = h.b.admin.ExecContext(h.b.ctx, `WITH r AS (
		INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, $2, 'a trust-scoped role', now(), now())
	)
	INSERT INTO user_role (id, user_id, role_id, trust_id) VALUES (gen_random_uuid(), gen_random_uuid(), $1, $3)`,
		role, "Owner of "+res.Trust.Name, res.Trust.ID)
	if err != nil {
		t.Fatalf("grant a role on %s: %v", what, err)
	}
	return res.Trust.ID
}

// deleteTarget returns the trust the next deletion acts on: the legacy
// trust with rows everywhere (the database restored when a racing
// deletion committed), or on flip's schema a registered one, registered
// anew when a deletion committed.
func (h *faultHarness) deleteTarget(t *testing.T) uuid.UUID {
	t.Helper()
	var n int
	if err := h.b.admin.QueryRowContext(h.b.ctx, `SELECT count(*) FROM trust WHERE id = $1`, h.delTrust).Scan(&n); err != nil {
		t.Fatal(err)
	}
	switch {
	case n == 1:
	case h.b.v.legacy():
		h.restore(t)
	default:
		h.delTrust = h.registerTarget(t, "Deletion target")
	}
	return h.delTrust
}
