package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
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
	// core is the statement the call exists to send: the clean run must
	// send it, or internal/pgsql has drifted from what the harness knows.
	core string
	// target readies what the call at point p acts on.
	target func(t *testing.T, h *faultHarness, p point) target
	// call runs the operation on tx for tg.
	call func(ctx context.Context, h *faultHarness, tx flip.DBTX, tg target) (outcome, error)
	// committed checks, after a success the caller committed, that the
	// change is in the database; it returns what is wrong, or "".
	committed func(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error)
}

// target is what one call acts on: a name and code to register, or a
// trust to change.
type target struct {
	name, code string
	trust      uuid.UUID
}

// outcome is what a call returned: the trust it acted on (or created) and
// the plaintext keys it handed out.
type outcome struct {
	trust    uuid.UUID
	keys     []string
	deletion flip.DeletionResult
}

func keysOf(res flip.RegistrationResult) []string {
	var keys []string
	for _, k := range []string{res.APIKey, res.InternalServiceKey} {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

var operations = []operation{
	{
		name: "register", base: flip.ErrTrustRegistration, other: flip.ErrTrustChange, core: "Register",
		target: func(t *testing.T, h *faultHarness, p point) target {
			h.keepFreeSlots(t)
			return target{name: "Fault " + p.String() + " " + uuid.NewString()[:8], code: "F" + uuid.NewString()[:12]}
		},
		call: func(ctx context.Context, h *faultHarness, tx flip.DBTX, tg target) (outcome, error) {
			res, err := h.b.reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: tg.name, Code: tg.code, AuditUserID: h.auditBy})
			return outcome{trust: res.Trust.ID, keys: keysOf(res)}, err
		},
		committed: func(ctx context.Context, h *faultHarness, tg target, out outcome) (string, error) {
			var trusts, audits, hashes int
			err := h.b.admin.QueryRowContext(ctx, `SELECT
				(SELECT count(*) FROM trust WHERE name = $1),
				(SELECT count(*) FROM trusts_audit WHERE trust_name = $1),
				(SELECT count(*) FROM trust WHERE api_key_hash = $2)`, tg.name, flip.HashAPIKey(out.keys[0])).Scan(&trusts, &audits, &hashes)
			if err != nil || (trusts == 1 && audits == 1 && hashes == 1) {
				return "", err
			}
			return fmt.Sprintf("the registration was committed, but the database holds %d trusts, %d audit rows and %d API key hashes from it, want 1 each", trusts, audits, hashes), nil
		},
	},
	{
		name: "rotate", base: flip.ErrTrustChange, other: flip.ErrTrustRegistration, notifies: true, core: "SetAPIKeyHash",
		target: func(t *testing.T, h *faultHarness, _ point) target { return target{trust: h.keyTrust} },
		call: func(ctx context.Context, h *faultHarness, tx flip.DBTX, tg target) (outcome, error) {
			res, err := h.b.reg.RotateKeys(ctx, tx, flip.TrustChange{TrustID: tg.trust, AuditUserID: h.auditBy})
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
		name: "revoke", base: flip.ErrTrustChange, other: flip.ErrTrustRegistration, notifies: true, core: "SetAPIKeyHash",
		target: func(t *testing.T, h *faultHarness, _ point) target { return target{trust: h.keyTrust} },
		call: func(ctx context.Context, h *faultHarness, tx flip.DBTX, tg target) (outcome, error) {
			tr, err := h.b.reg.RevokeKey(ctx, tx, flip.TrustChange{TrustID: tg.trust, AuditUserID: h.auditBy})
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
		name: "delete", base: flip.ErrTrustChange, other: flip.ErrTrustRegistration, notifies: true, core: "DeleteTrust",
		target: func(t *testing.T, h *faultHarness, _ point) target { return target{trust: h.deleteTarget(t)} },
		call: func(ctx context.Context, h *faultHarness, tx flip.DBTX, tg target) (outcome, error) {
			res, err := h.b.reg.DeleteTrust(ctx, tx, flip.TrustChange{TrustID: tg.trust, AuditUserID: h.auditBy})
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
	}
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
	res, err := h.b.reg.RegisterTrustDB(h.b.ctx, h.b.db, flip.TrustParams{Name: what + " " + uuid.NewString()[:8], Code: "T" + uuid.NewString()[:12]})
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
