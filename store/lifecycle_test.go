package store_test

import (
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

// A trust's later life, on every schema variant: rotate, revoke, rotate
// back, delete.

func (b bundle) rotate(t *testing.T, id uuid.UUID) (res flip.RegistrationResult, err error) {
	t.Helper()
	err = b.Run(b.ctx, func(tx callertx.Tx) (err error) {
		res, err = tx.RotateKeys(b.ctx, b.reg, flip.TrustChange{TrustID: id})
		return err
	})
	return res, err
}

func (b bundle) verify(t *testing.T, key string) error {
	t.Helper()
	_, err := b.Verifier().Verify(b.ctx, key)
	return err
}

// keyAudits returns the actions flip_trust_key_audit holds for id, in
// order, or nil where the table does not exist (a database flip has not
// migrated).
func (b bundle) keyAudits(t *testing.T, id uuid.UUID) []string {
	t.Helper()
	var exists bool
	must(t, b.db.QueryRowContext(b.ctx, `SELECT to_regclass('flip_trust_key_audit') IS NOT NULL`).Scan(&exists))
	if !exists {
		return nil
	}
	var actions []string
	eachRow(t, b.ctx, b.db, `SELECT action FROM flip_trust_key_audit WHERE trust_id = '`+id.String()+`' ORDER BY audit_date, action`,
		func(rows *sql.Rows) error {
			var a string
			err := rows.Scan(&a)
			actions = append(actions, a)
			return err
		})
	return actions
}

func TestRotateRevokeRotate(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001")
		reg := b.mustRegister(t, flip.TrustParams{Name: "Life Trust", Code: "LIFE"})

		rot, err := b.rotate(t, reg.Trust.ID)
		if err != nil {
			t.Fatalf("RotateKeys: %v", err)
		}
		if rot.APIKey.Reveal() == reg.APIKey.Reveal() || rot.InternalServiceKey.Reveal() == reg.InternalServiceKey.Reveal() || rot.Trust != reg.Trust || rot.KitSlot.Name != "Trust_001" {
			t.Fatalf("rotation = %v, registration %v", rot, reg)
		}
		if err := b.verify(t, reg.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
			t.Errorf("old key after rotation: %v, want ErrUnknownAPIKey", err)
		}
		if err := b.verify(t, rot.APIKey.Reveal()); err != nil {
			t.Errorf("new key after rotation: %v", err)
		}

		err = b.Run(b.ctx, func(tx callertx.Tx) error {
			tr, err := tx.RevokeKey(b.ctx, b.reg, flip.TrustChange{TrustID: reg.Trust.ID})
			if err == nil && tr != reg.Trust {
				t.Errorf("RevokeKey = %+v, want %+v", tr, reg.Trust)
			}
			return err
		})
		if err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		var hash sql.NullString
		must(t, b.db.QueryRowContext(b.ctx, `SELECT api_key_hash FROM trust WHERE id = $1`, reg.Trust.ID).Scan(&hash))
		if hash.Valid {
			t.Errorf("api_key_hash after revocation = %q, want NULL", hash.String)
		}
		if err := b.verify(t, rot.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
			t.Errorf("revoked key: %v, want ErrUnknownAPIKey", err)
		}
		if slot, err := store.KitSlotOf(b.ctx, b.db, reg.Trust.ID); err != nil || slot.Name != "Trust_001" {
			t.Errorf("slot after revocation = %v, %v; want it kept", slot, err)
		}

		back, err := b.rotate(t, reg.Trust.ID)
		if err != nil {
			t.Fatalf("RotateKeys after revocation: %v", err)
		}
		if err := b.verify(t, back.APIKey.Reveal()); err != nil {
			t.Errorf("key rotated after revocation: %v", err)
		}
		want := []string{"ROTATED", "REVOKED", "ROTATED"}
		if v.version < 3 {
			want = nil
		}
		if got := b.keyAudits(t, reg.Trust.ID); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("flip_trust_key_audit = %v, want %v", got, want)
		}
		var audits int
		must(t, b.db.QueryRowContext(b.ctx, `SELECT count(*) FROM trusts_audit WHERE trust_id = $1`, reg.Trust.ID).Scan(&audits))
		if audits != 1 {
			t.Errorf("%d trusts_audit rows, want the REGISTERED one only", audits)
		}
	})
}

func TestLifecycle_UnknownTrustIsNotFoundAndChangesNothing(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		c := flip.TrustChange{TrustID: uuid.New()}
		ops := map[string]func(tx callertx.Tx) error{
			"rotate": func(tx callertx.Tx) error { _, err := tx.RotateKeys(b.ctx, b.reg, c); return err },
			"revoke": func(tx callertx.Tx) error { _, err := tx.RevokeKey(b.ctx, b.reg, c); return err },
			"delete": func(tx callertx.Tx) error { _, err := tx.DeleteTrust(b.ctx, b.reg, c); return err },
		}
		for name, op := range ops {
			err := b.Run(b.ctx, op)
			if !errors.Is(err, flip.ErrTrustNotFound) || !errors.Is(err, flip.ErrTrustChange) || errors.Is(err, flip.ErrTrustRegistration) {
				t.Errorf("%s of an unknown trust: %v", name, err)
			}
		}
	})
}

func TestLifecycle_PoolIsNotATransaction(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	_, err := b.reg.DeleteTrust(b.ctx, b.db.DB, flip.TrustChange{TrustID: uuid.New()})
	if !errors.Is(err, flip.ErrNotInTransaction) || !errors.Is(err, flip.ErrTrustChange) || errors.Is(err, flip.ErrTrustRegistration) {
		t.Errorf("DeleteTrust on a pool: %v", err)
	}
}

// The deletion of a legacy hub trust with rows in every dependent table,
// two kit slots and a trust-scoped grant, unmigrated and migrated, on
// both ways in.
func TestDeleteTrust_LegacyHubTrust(t *testing.T) {
	t.Parallel()
	for _, v := range []variant{
		{"hub_legacy/lib_pq", 0, "postgres", []string{hubfixture.Schema, hubfixture.Legacy}, false},
		{"hub_legacy_migrated/lib_pq", store.LatestVersion(), "postgres", []string{hubfixture.Schema, hubfixture.Legacy}, false},
		{"hub_legacy/pgx_native", 0, "postgres", []string{hubfixture.Schema, hubfixture.Legacy}, true},
	} {
		b := setup(t, v)
		id := uuid.MustParse("0b7d3f1e-2a44-4c1a-9a0e-1f0000000001")
		admin := uuid.New()
		var res flip.DeletionResult
		err := b.Run(b.ctx, func(tx callertx.Tx) (err error) {
			res, err = tx.DeleteTrust(b.ctx, b.reg, flip.TrustChange{TrustID: id, AuditUserID: admin})
			return err
		})
		if err != nil {
			t.Fatalf("DeleteTrust: %v", err)
		}
		if res.Trust.ID != id || res.Trust.Name != "Two Slot Trust" {
			t.Errorf("deleted trust = %+v", res.Trust)
		}
		if len(res.FreedKitSlots) != 2 || res.FreedKitSlots[0].Name != "Legacy_001" || res.FreedKitSlots[1].Name != "Legacy_002" {
			t.Errorf("freed slots = %+v, want Legacy_001 and Legacy_002", res.FreedKitSlots)
		}
		if res.DependentRowsDeleted["user_role"] != 1 {
			t.Errorf("dependent rows = %v, want one user_role grant", res.DependentRowsDeleted)
		}
		t.Logf("%s: dependent rows deleted %v", v.name, res.DependentRowsDeleted)
		var trusts, grants, freed, deleted int
		must(t, b.db.QueryRowContext(b.ctx, `SELECT
			(SELECT count(*) FROM trust WHERE id = $1),
			(SELECT count(*) FROM user_role WHERE trust_id IS NULL),
			(SELECT count(*) FROM fl_kit_slot WHERE slot_name IN ('Legacy_001', 'Legacy_002') AND assigned_to_trust_id IS NULL AND assigned_at IS NULL),
			(SELECT count(*) FROM trusts_audit WHERE trust_id = $1 AND action = 'DELETED' AND modified_by_user_id = $2 AND trust_name = 'Two Slot Trust')`,
			id, admin).Scan(&trusts, &grants, &freed, &deleted))
		if trusts != 0 || grants != 1 || freed != 2 || deleted != 1 {
			t.Errorf("%s: after deletion: %d trusts, %d global grants, %d freed slots, %d DELETED audit rows; want 0, 1, 2, 1", v.name, trusts, grants, freed, deleted)
		}
	}
}

// A row of the trust's that a row of another table references stops the
// deletion, naming both tables, and nothing is deleted.
func TestDeleteTrust_ReferencedDependentBlocks(t *testing.T) {
	t.Parallel()
	for _, native := range []bool{false, true} {
		t.Run(map[bool]string{false: "lib_pq", true: "pgx_native"}[native], func(t *testing.T) {
			t.Parallel()
			deleteReferencedDependent(t, native)
		})
	}
}

func deleteReferencedDependent(t *testing.T, native bool) {
	b := setup(t, variant{version: store.LatestVersion(), driver: "postgres", native: native, sql: []string{hubfixture.Schema, `
		CREATE TABLE site_report (id uuid PRIMARY KEY, trust_id uuid NOT NULL REFERENCES trust (id));
		CREATE TABLE report_link (id uuid PRIMARY KEY, report_id uuid REFERENCES site_report (id));
		CREATE TABLE report_note (id uuid PRIMARY KEY, report_id uuid REFERENCES site_report (id), trust_id uuid REFERENCES trust (id))`}})
	fliptest.AddSlots(t, b.db, "Trust_001", "Trust_002")
	a := b.mustRegister(t, flip.TrustParams{Name: "A", Code: "A"})
	other := b.mustRegister(t, flip.TrustParams{Name: "B", Code: "B"})
	report := uuid.New()
	_, err := b.db.ExecContext(b.ctx, `INSERT INTO site_report VALUES ($1, $2)`, report, a.Trust.ID)
	must(t, err)
	_, err = b.db.ExecContext(b.ctx, `INSERT INTO report_note VALUES (gen_random_uuid(), $1, $2)`, report, a.Trust.ID)
	must(t, err)
	// A note of the trust's own pointing at its report is no obstacle.
	if err := b.Run(b.ctx, func(tx callertx.Tx) error {
		_, err := tx.DeleteTrust(b.ctx, b.reg, flip.TrustChange{TrustID: a.Trust.ID})
		return err
	}); err != nil {
		t.Fatalf("deletion with only the trust's own rows referencing each other: %v", err)
	}

	report = uuid.New()
	_, err = b.db.ExecContext(b.ctx, `INSERT INTO site_report VALUES ($1, $2)`, report, other.Trust.ID)
	must(t, err)
	_, err = b.db.ExecContext(b.ctx, `INSERT INTO report_link VALUES (gen_random_uuid(), $1)`, report)
	must(t, err)
	before := fliptest.DumpTables(t, b.db)
	err = b.Run(b.ctx, func(tx callertx.Tx) error {
		_, err := tx.DeleteTrust(b.ctx, b.reg, flip.TrustChange{TrustID: other.Trust.ID})
		return err
	})
	var blocked *flip.DeletionBlockedError
	if !errors.As(err, &blocked) || !errors.Is(err, flip.ErrTrustDeletionBlocked) || blocked.Table != "site_report" || blocked.ReferencedFrom != "report_link" {
		t.Fatalf("DeleteTrust = %v, want a DeletionBlockedError for site_report from report_link", err)
	}
	if after := fliptest.DumpTables(t, b.db); after != before {
		t.Error("a blocked deletion changed the database")
	}
}

// Every table that references trust has its own entry in
// DependentRowsDeleted, however its schema and name are spelled: a table
// other.fl_logs and a table named "other.fl_logs" on the search_path once
// shared the label other.fl_logs, and one table's count was lost.
func TestDeleteTrust_EachTableCountedUnderItsOwnLabel(t *testing.T) {
	t.Parallel()
	for _, native := range []bool{false, true} {
		t.Run(map[bool]string{false: "lib_pq", true: "pgx_native"}[native], func(t *testing.T) {
			t.Parallel()
			b := setup(t, variant{version: store.LatestVersion(), driver: "postgres", native: native, sql: []string{hubfixture.Schema, `
				CREATE SCHEMA other;
				CREATE SCHEMA "Other";
				CREATE TABLE other.fl_logs (trust_id uuid REFERENCES trust (id));
				CREATE TABLE public."other.fl_logs" (trust_id uuid REFERENCES trust (id));
				CREATE TABLE other."other.fl_logs" (trust_id uuid REFERENCES trust (id));
				CREATE TABLE "Other".fl_logs (trust_id uuid REFERENCES trust (id));
				CREATE TABLE public."Site ""Reports""" (trust_id uuid REFERENCES trust (id));
				CREATE TABLE public."order" (trust_id uuid REFERENCES trust (id))`}})
			fliptest.AddSlots(t, b.db, "Trust_001")
			res := b.mustRegister(t, flip.TrustParams{Name: "A", Code: "A"})
			want := map[string]int64{
				"other.fl_logs":         1,
				`"other.fl_logs"`:       2,
				`other."other.fl_logs"`: 3,
				`"Other".fl_logs`:       4,
				`"Site ""Reports"""`:    5,
				`"order"`:               6,
				"fl_logs":               0, // the hub's own tables keep their bare names
				"user_role":             0,
			}
			for table, n := range map[string]int64{
				`other.fl_logs`: 1, `public."other.fl_logs"`: 2, `other."other.fl_logs"`: 3,
				`"Other".fl_logs`: 4, `public."Site ""Reports"""`: 5, `public."order"`: 6,
			} {
				_, err := b.db.ExecContext(b.ctx, `INSERT INTO `+table+` SELECT $1 FROM generate_series(1, $2)`, res.Trust.ID, n)
				must(t, err)
			}
			var del flip.DeletionResult
			must(t, b.Run(b.ctx, func(tx callertx.Tx) (err error) {
				del, err = tx.DeleteTrust(b.ctx, b.reg, flip.TrustChange{TrustID: res.Trust.ID})
				return err
			}))
			for label, n := range want {
				if got, ok := del.DependentRowsDeleted[label]; !ok || got != n {
					t.Errorf("DependentRowsDeleted[%s] = %d (present: %v), want %d; all: %v", label, got, ok, n, del.DependentRowsDeleted)
				}
			}
			var tables int
			must(t, b.db.QueryRowContext(b.ctx, `SELECT count(DISTINCT conrelid) FROM pg_constraint
				WHERE contype = 'f' AND confrelid = 'trust'::regclass AND conrelid <> 'fl_kit_slot'::regclass`).Scan(&tables))
			if len(del.DependentRowsDeleted) != tables {
				t.Errorf("%d labels for %d referencing tables: %v", len(del.DependentRowsDeleted), tables, del.DependentRowsDeleted)
			}
		})
	}
}
