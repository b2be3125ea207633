package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// revoke revokes the trust id's API key as delete-trust --revoke does.
func revoke(t *testing.T, db *fliptest.DB, id string) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := flip.NewRegistry(store.New()).RevokeKey(ctx, tx, flip.TrustChange{TrustID: uuid.MustParse(id)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// wantRefused checks exit 1 with the record of the existing trust on
// stdout, keyless, and returns it.
func wantRefused(t *testing.T, r result, status, stderrWants string) record {
	t.Helper()
	if r.code != exitFail {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	recs, raw := records(t, r)
	if len(recs) != 1 || recs[0].Status != status || recs[0].TrustAPIKey != "" || raw[0]["trust_internal_service_key"] != nil {
		t.Fatalf("records = %+v, want one keyless record with status %q", recs, status)
	}
	if !strings.Contains(r.stderr, stderrWants) {
		t.Errorf("stderr does not say %q:\n%s", stderrWants, r.stderr)
	}
	return recs[0]
}

// A revoked trust (delete-trust --revoke: no stored hash) is not passed
// on as healthy: a plain run and --require-existing say "revoked" and
// fail, --plan says "revoked", a kit file is left alone, and --rotate
// brings the trust back.
func TestRevokedTrust(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_002")
	reg, _ := wantOne(t, register(t, db, "--name", "Revoked Trust", "--code", "RVK"))
	revoke(t, db, reg.TrustID)

	for _, extra := range [][]string{nil, {"--require-existing"}} {
		r := register(t, db, append([]string{"--name", "Revoked Trust", "--code", "RVK"}, extra...)...)
		rec := wantRefused(t, r, "revoked", "--rotate")
		if rec.TrustID != reg.TrustID || rec.slot() != "Trust_001" {
			t.Errorf("%q: record = %+v", extra, rec)
		}
		var raw []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &raw); err == nil {
			wantKeys(t, raw[0], skipKeys...)
		}
	}

	r := register(t, db, "--name", "Revoked Trust", "--code", "RVK", "--plan")
	if p := planOf(t, r); r.code != exitFail || p.Action != "revoked" || p.TrustID != reg.TrustID || !strings.Contains(p.Error, "--rotate") {
		t.Errorf("plan: exit %d, %+v", r.code, p)
	}

	path := filepath.Join(t.TempDir(), "kit.json")
	if err := os.WriteFile(path, []byte("the kit from before"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = register(t, db, "--name", "Revoked Trust", "--code", "RVK", "--out-file", path)
	if data, _ := os.ReadFile(path); r.code != exitFail || r.stdout != "" || string(data) != "the kit from before" {
		t.Errorf("--out-file: exit %d, stdout %q, file %q; want 1, nothing, the file as it was", r.code, r.stdout, data)
	}

	if p := planOf(t, register(t, db, "--name", "Revoked Trust", "--rotate", "--plan")); p.Action != "rotate" {
		t.Errorf("rotation plan = %+v", p)
	}
	rotated, _ := wantOne(t, register(t, db, "--name", "Revoked Trust", "--rotate"))
	if _, err := flip.NewVerifier(db).Verify(context.Background(), rotated.TrustAPIKey); err != nil {
		t.Errorf("the re-keyed trust does not authenticate: %v", err)
	}
	if rec, _ := wantOne(t, register(t, db, "--name", "Revoked Trust", "--code", "RVK")); rec.Status != "existing" {
		t.Errorf("after --rotate: %+v", rec)
	}
}

// An existing trust whose code or region is not the one asked for says
// so in its record (and plan). A different code fails the run, since the
// code names the kit files; a different region is only reported.
func TestDrift(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	reg, _ := wantOne(t, register(t, db, "--name", "Drifting", "--code", "DRF", "--region", "North"))

	// The same code in another case, and no --region: no drift.
	rec, raw := wantOne(t, register(t, db, "--name", "Drifting", "--code", "drf"))
	wantKeys(t, raw, skipKeys...)
	if rec.Drift != nil {
		t.Errorf("drift %+v, want none", rec.Drift)
	}

	r := register(t, db, "--name", "Drifting", "--code", "DRF", "--region", "South")
	rec, _ = wantOne(t, r)
	if d := rec.Drift; d == nil || d.Code != nil || d.Region == nil || d.Region.Requested != "South" || d.Region.Existing == nil || *d.Region.Existing != "North" {
		t.Errorf("region drift = %+v", d)
	}
	if !strings.Contains(r.stdout, `"drift":{"region":{"requested":"South","existing":"North"}}`) {
		t.Errorf("stdout = %s", r.stdout)
	}

	r = register(t, db, "--name", "Drifting", "--code", "OTHER")
	rec = wantRefused(t, r, "existing", "the code names its kit files")
	if d := rec.Drift; d == nil || d.Code == nil || d.Code.Requested != "OTHER" || *d.Code.Existing != "DRF" || d.Region != nil || rec.TrustID != reg.TrustID {
		t.Errorf("code drift = %+v", d)
	}

	r = register(t, db, "--name", "Drifting", "--code", "OTHER", "--plan")
	if p := planOf(t, r); r.code != exitFail || p.Action != "fail" || p.Drift == nil || p.Drift.Code == nil || !strings.Contains(p.Error, "kit files") {
		t.Errorf("code-drift plan: exit %d, %+v", r.code, p)
	}
	r = register(t, db, "--name", "Drifting", "--code", "DRF", "--region", "South", "--plan")
	if p := planOf(t, r); r.code != exitOK || p.Action != "skip" || p.Drift == nil || p.Drift.Region == nil {
		t.Errorf("region-drift plan: exit %d, %+v", r.code, p)
	}

	// A legacy trust without a code: asking for one is drift too, with
	// existing null.
	if _, err := db.Exec(`INSERT INTO trust (id, name, api_key_hash, created_at)
		VALUES (gen_random_uuid(), 'Codeless', encode(sha256('codeless key'), 'hex'), now())`); err != nil {
		t.Fatal(err)
	}
	r = register(t, db, "--name", "Codeless", "--code", "CDL")
	if !strings.Contains(r.stdout, `"drift":{"code":{"requested":"CDL","existing":null}}`) {
		t.Errorf("stdout = %s", r.stdout)
	}
	wantRefused(t, r, "existing", "has no code")
}
