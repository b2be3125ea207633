package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
)

func TestRotate(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_002")
	ctx := context.Background()
	v := flip.NewVerifier(db)

	old, _ := wantOne(t, register(t, db, "--name", "Rotating Trust", "--code", "ROT", "--region", "South"))
	if _, err := v.Verify(ctx, old.TrustAPIKey); err != nil {
		t.Fatalf("the registered key does not verify: %v", err)
	}

	// Spelt differently, and with the code in another case: the same trust.
	r := register(t, db, "--name", " Rotating  Trust ", "--code", "rot", "--rotate")
	rec, raw := wantOne(t, r)
	if rec.Status != "rotated" || rec.TrustID != old.TrustID || rec.TrustName != "Rotating Trust" {
		t.Errorf("record = %+v", rec)
	}
	if code, region := codeAndRegion(t, db, rec.TrustID); code != "ROT" || region != "South" {
		t.Errorf("stored code, region = %q, %q; want ROT, South", code, region)
	}
	if rec.slot() != "Trust_001" || rec.FLKitSlotNumber == nil || *rec.FLKitSlotNumber != 1 {
		t.Errorf("kit slot = %q %v, want Trust_001 1", rec.slot(), rec.FLKitSlotNumber)
	}
	wantKeys(t, raw, newKeys...)
	if rec.TrustAPIKey == old.TrustAPIKey || rec.TrustInternalServiceKey == old.TrustInternalServiceKey {
		t.Error("a key was not replaced")
	}
	if err := flip.CheckKey(flip.TrustAPIKey, rec.TrustAPIKey); err != nil {
		t.Errorf("trust_api_key: %v", err)
	}
	if err := flip.CheckKey(flip.InternalServiceKey, rec.TrustInternalServiceKey); err != nil {
		t.Errorf("trust_internal_service_key: %v", err)
	}
	if _, err := v.Verify(ctx, old.TrustAPIKey); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("old key after rotation: %v, want ErrUnknownAPIKey", err)
	}
	if got, err := v.Verify(ctx, rec.TrustAPIKey); err != nil || got.ID.String() != rec.TrustID {
		t.Errorf("new key: %v, %v", got.ID, err)
	}
	noSecrets(t, "stderr", r.stderr, old.TrustAPIKey, old.TrustInternalServiceKey, rec.TrustAPIKey, rec.TrustInternalServiceKey)

	var audits int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM flip_trust_key_audit
		WHERE trust_id = $1 AND action = 'ROTATED' AND modified_by_user_id IS NULL`, rec.TrustID).Scan(&audits); err != nil || audits != 1 {
		t.Errorf("ROTATED audit rows = %d, %v; want 1", audits, err)
	}

	// No code needed; the slot is kept and no trust is added.
	again, _ := wantOne(t, register(t, db, "--name", "Rotating Trust", "--rotate"))
	if again.Status != "rotated" || again.slot() != "Trust_001" || again.TrustAPIKey == rec.TrustAPIKey {
		t.Errorf("second rotation = %+v", again)
	}
	if n := countTrusts(t, db); n != 1 {
		t.Errorf("%d trusts, want 1", n)
	}
}

func TestRotateRefused(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	wantFailure(t, register(t, db, "--name", "Nowhere", "--rotate"), "no trust is named")
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts, want 0: --rotate registered one", n)
	}

	rec, _ := wantOne(t, register(t, db, "--name", "Kept", "--code", "KEPT"))
	wantFailure(t, register(t, db, "--name", "Kept", "--code", "OTHER", "--rotate"), "nothing rotated")
	wantFailure(t, register(t, db, "--name", "Kept\x00", "--rotate"), "NUL")
	if apiKeyHash(t, db, rec.TrustID) != flip.HashAPIKey(rec.TrustAPIKey) {
		t.Error("a refused rotation re-keyed the trust")
	}
}

// A hub trust from before flip, on the hub's schema as it is: no code, no
// kit slot, no flip_trust_key_audit, so the log line is the only record.
func TestRotateLegacyTrust(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy), fliptest.AtVersion(0))
	r := register(t, db, "--name", "Keyless Trust", "--rotate")
	rec, raw := wantOne(t, r)
	if rec.Status != "rotated" || rec.TrustID != "0b7d3f1e-2a44-4c1a-9a0e-1f0000000004" {
		t.Errorf("record = %+v", rec)
	}
	wantKeys(t, raw, newKeys...)
	if raw["fl_kit_slot"] != nil || raw["fl_kit_slot_number"] != nil {
		t.Errorf("slot = %v %v for a trust without one, want null null", raw["fl_kit_slot"], raw["fl_kit_slot_number"])
	}
	if _, err := flip.NewVerifier(db).Verify(context.Background(), rec.TrustAPIKey); err != nil {
		t.Errorf("new key: %v", err)
	}
	if !strings.Contains(r.stderr, "flip_trust_key_audit is missing") || !strings.Contains(r.stderr, "Keyless Trust") {
		t.Errorf("stderr does not record the rotation:\n%s", r.stderr)
	}
	noSecrets(t, "stderr", r.stderr, rec.TrustAPIKey, rec.TrustInternalServiceKey)

	// Three legacy trusts share the name "Twin Hospital": whose keys to
	// replace is not --rotate's guess to make.
	before := fliptest.DumpTables(t, db)
	wantFailure(t, register(t, db, "--name", "Twin Hospital", "--rotate"), "3 trusts are named")
	if fliptest.DumpTables(t, db) != before {
		t.Error("an ambiguous name re-keyed a trust")
	}
}
