package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

// result is what one invocation of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// noEnv is a getenv with nothing set, so tests never depend on the
// caller's DATABASE_URL.
func noEnv(string) string { return "" }

// runCmd calls run in-process with args.
func runCmd(t *testing.T, getenv func(string) string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, getenv)
	return result{code, stdout.String(), stderr.String()}
}

// deleteTrust runs the command against db with args appended.
func deleteTrust(t *testing.T, db *fliptest.DB, args ...string) result {
	t.Helper()
	return runCmd(t, noEnv, append([]string{"--database-url", db.URL}, args...)...)
}

// wantOK checks exit status 0 and returns stdout's one JSON object,
// decoded, with its top-level keys in the order printed.
func wantOK(t *testing.T, r result) (map[string]any, []string) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("stdout is not one line: %q", r.stdout)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\nstdout: %q\nstderr: %s", err, r.stdout, r.stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key.(string))
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			t.Fatal(err)
		}
	}
	return obj, keys
}

// wantFailure checks exit status 1, nothing on stdout and stderr
// containing want.
func wantFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != exitFail {
		t.Fatalf("exit %d, want 1\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr does not mention %q:\n%s", want, r.stderr)
	}
}

// wantStdout checks exit status 0 and exactly want (one line) on stdout.
func wantStdout(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != exitOK || r.stdout != want+"\n" {
		t.Errorf("exit %d, stdout %q; want 0, %q\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}
}

// count returns the answer to a count(*) query.
func count(t *testing.T, db *fliptest.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// legacyID is the hub fixture's trust with two kit slots and rows in every
// table that references trust.
const legacyID = "0b7d3f1e-2a44-4c1a-9a0e-1f0000000001"

// legacyDependents are the tables that reference trust in the hub
// fixture (fl_kit_slot aside), each holding one row of the legacy trust's.
var legacyDependents = []string{
	"cohort_snapshot_status", "fl_job_trust", "fl_logs", "fl_metrics", "model_trust_intersect",
	"project_trust_intersect", "query_result", "trust_task", "user_role", "xnat_project_status",
}

// The legacy trust is deleted from the hub's own schema, before and after
// flip's migrations, with the reference script's JSON.
func TestDeleteLegacyTrust(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]fliptest.Option{
		"unmigrated": {fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy), fliptest.AtVersion(0)},
		"migrated":   {fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t, opts...)
			before := map[string]int64{}
			for _, table := range legacyDependents {
				before[table] = count(t, db, `SELECT count(*) FROM `+table)
			}

			// Spelt with extra spaces: found in its canonical form.
			obj, keys := wantOK(t, deleteTrust(t, db, "--name", "  Two  Slot Trust "))
			if want := []string{"status", "trust_id", "name", "freed_fl_kit_slot", "dependent_rows_deleted", "freed_fl_kit_slots"}; !slices.Equal(keys, want) {
				t.Errorf("keys %q, want %q", keys, want)
			}
			if obj["status"] != "deleted" || obj["trust_id"] != legacyID || obj["name"] != "Two Slot Trust" || obj["freed_fl_kit_slot"] != "Legacy_001" {
				t.Errorf("printed %v", obj)
			}
			if slots, _ := obj["freed_fl_kit_slots"].([]any); len(slots) != 2 || slots[0] != "Legacy_001" || slots[1] != "Legacy_002" {
				t.Errorf("freed_fl_kit_slots = %v, want [Legacy_001 Legacy_002]", obj["freed_fl_kit_slots"])
			}
			deps, _ := obj["dependent_rows_deleted"].(map[string]any)
			if got := slices.Sorted(maps.Keys(deps)); !slices.Equal(got, legacyDependents) {
				t.Errorf("dependent_rows_deleted has %q, want %q", got, legacyDependents)
			}
			for _, table := range legacyDependents {
				gone := before[table] - count(t, db, `SELECT count(*) FROM `+table)
				if deps[table] != float64(1) || gone != 1 {
					t.Errorf("%s: printed %v, %d rows gone; want 1 and 1", table, deps[table], gone)
				}
			}

			if n := count(t, db, `SELECT count(*) FROM trust WHERE id = $1`, legacyID); n != 0 {
				t.Error("the trust is still there")
			}
			if n := count(t, db, `SELECT count(*) FROM fl_kit_slot WHERE slot_name IN ('Legacy_001', 'Legacy_002')
				AND assigned_to_trust_id IS NULL AND assigned_at IS NULL`); n != 2 {
				t.Errorf("%d of the two slots freed", n)
			}
			if n := count(t, db, `SELECT count(*) FROM trusts_audit WHERE trust_id = $1 AND action = 'DELETED'
				AND modified_by_user_id IS NULL AND trust_name = 'Two Slot Trust'`, legacyID); n != 1 {
				t.Errorf("%d DELETED audit rows, want 1", n)
			}

			wantStdout(t, deleteTrust(t, db, "--name", "Two Slot Trust"), `{"status":"not_found","name":"Two Slot Trust"}`)
		})
	}
}

// A trust without a kit slot or rows elsewhere: the reference script's
// five keys exactly, null for the slot and zeros for every table.
func TestDeleteTrustWithoutSlot(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))
	obj, keys := wantOK(t, deleteTrust(t, db, "--name", "Keyless Trust"))
	if want := []string{"status", "trust_id", "name", "freed_fl_kit_slot", "dependent_rows_deleted"}; !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if slot, ok := obj["freed_fl_kit_slot"]; !ok || slot != nil {
		t.Errorf("freed_fl_kit_slot = %v (present %v), want null", slot, ok)
	}
	deps, _ := obj["dependent_rows_deleted"].(map[string]any)
	if len(deps) != len(legacyDependents) {
		t.Errorf("dependent_rows_deleted = %v, want all %d tables", deps, len(legacyDependents))
	}
	for table, n := range deps {
		if n != float64(0) {
			t.Errorf("%s: %v rows deleted, want 0", table, n)
		}
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	ctx := context.Background()
	reg := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Revoked Trust", Code: "REV"})
	v := flip.NewVerifier(db)
	if _, err := v.Verify(ctx, reg.APIKey.Reveal()); err != nil {
		t.Fatal(err)
	}

	want := `{"status":"revoked","trust_id":"` + reg.Trust.ID.String() + `","name":"Revoked Trust"}`
	r := deleteTrust(t, db, "--name", "Revoked Trust", "--revoke")
	wantStdout(t, r, want)
	if _, err := v.Verify(ctx, reg.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("revoked key: %v, want ErrUnknownAPIKey", err)
	}
	if slot, err := store.KitSlotOf(ctx, db, reg.Trust.ID); err != nil || slot.Name != "Trust_001" {
		t.Errorf("the revoked trust's slot = %q, %v; want it kept", slot.Name, err)
	}
	if n := count(t, db, `SELECT count(*) FROM flip_trust_key_audit WHERE trust_id = $1 AND action = 'REVOKED' AND modified_by_user_id IS NULL`, reg.Trust.ID); n != 1 {
		t.Errorf("%d REVOKED audit rows, want 1", n)
	}
	for _, secret := range []string{reg.APIKey.Reveal(), reg.InternalServiceKey.Reveal(), flip.HashAPIKey(reg.APIKey.Reveal())} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("stderr contains a key or its hash %.8s…", secret)
		}
	}

	wantStdout(t, deleteTrust(t, db, "--name", "Revoked Trust", "--revoke"), want)
	wantStdout(t, deleteTrust(t, db, "--name", "Nowhere", "--revoke"), `{"status":"not_found","name":"Nowhere"}`)
}

// A row of another table that references one of the trust's rows stops
// the deletion, and nothing is deleted.
func TestDeleteBlocked(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))
	if _, err := db.Exec(`CREATE TABLE result_note (id uuid PRIMARY KEY, query_result_id uuid NOT NULL REFERENCES query_result (id));
		INSERT INTO result_note VALUES (gen_random_uuid(), '3a6b9c0d-4e5f-4a1b-8c2d-5c0000000011')`); err != nil {
		t.Fatal(err)
	}
	r := deleteTrust(t, db, "--name", "Two Slot Trust")
	wantFailure(t, r, "result_note")
	if !strings.Contains(r.stderr, "query_result") {
		t.Errorf("stderr does not name the blocked table:\n%s", r.stderr)
	}
	if n := count(t, db, `SELECT count(*) FROM trust WHERE id = $1`, legacyID) + count(t, db, `SELECT count(*) FROM trust_task WHERE trust_id = $1`, legacyID); n != 2 {
		t.Error("a blocked deletion deleted something")
	}
}

// TestConcurrentDelete runs two deletions of one trust at once: one
// deletes it, the other finds it gone (before its lookup or after it).
func TestConcurrentDelete(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = deleteTrust(t, db, "--name", "Two Slot Trust") })
	}
	wg.Wait()
	statuses := map[string]int{}
	for _, r := range results {
		obj, _ := wantOK(t, r)
		statuses[obj["status"].(string)]++
	}
	if statuses["deleted"] != 1 || statuses["not_found"] != 1 {
		t.Errorf("statuses %v, want one deleted and one not_found", statuses)
	}
}

// signalWriter is a stderr that closes seen the first time a line
// containing want is written.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) && w.seen != nil {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

// A trust deleted between the command's lookup and its deletion is
// reported as not found, not as a failure.
func TestDeletedAfterLookup(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))
	ctx := context.Background()
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback() //nolint:errcheck // test cleanup
	trust, err := store.TrustByName(ctx, db, "Two Slot Trust")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flip.NewRegistry(store.New()).DeleteTrust(ctx, other, flip.TrustChange{TrustID: trust.ID}); err != nil {
		t.Fatal(err)
	}

	seen := make(chan struct{})
	stderr := &signalWriter{want: "deleting the trust", seen: seen}
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--database-url", db.URL, "--name", "Two Slot Trust"}, &stdout, stderr, noEnv)
	}()
	<-seen // the lookup still saw the trust; the deletion waits for other
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	r := result{<-done, stdout.String(), stderr.buf.String()}
	wantStdout(t, r, `{"status":"not_found","name":"Two Slot Trust"}`)
	if !strings.Contains(r.stderr, "meanwhile") {
		t.Errorf("not reported as deleted meanwhile:\n%s", r.stderr)
	}
}

// TestUsageErrors builds nothing and needs no database or network: every
// case is refused before the command would connect.
// Three legacy trusts share the canonical name "Twin Hospital" (two spelt
// alike): deleting by that name refuses to guess and changes nothing; by
// --id it deletes the one asked for.
func TestAmbiguousNameRefusesAndIDChooses(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))
	before := fliptest.DumpTables(t, db)
	r := deleteTrust(t, db, "--name", "Twin Hospital")
	wantFailure(t, r, "3 trusts have the name")
	for _, id := range []string{"0b7d3f1e-2a44-4c1a-9a0e-1f0000000005", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000006", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000007"} {
		if !strings.Contains(r.stderr, id) {
			t.Errorf("the refusal does not list %s:\n%s", id, r.stderr)
		}
	}
	if after := fliptest.DumpTables(t, db); after != before {
		t.Error("an ambiguous name changed the database")
	}
	got, _ := wantOK(t, deleteTrust(t, db, "--id", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000006"))
	if got["status"] != "deleted" || got["trust_id"] != "0b7d3f1e-2a44-4c1a-9a0e-1f0000000006" {
		t.Errorf("delete by id = %v", got)
	}
	if n := count(t, db, `SELECT count(*) FROM trust WHERE id IN ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000005', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000007')`); n != 2 {
		t.Errorf("%d of the other two twins left, want 2", n)
	}
	wantStdout(t, deleteTrust(t, db, "--id", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000006"),
		`{"status":"not_found","trust_id":"0b7d3f1e-2a44-4c1a-9a0e-1f0000000006"}`)
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	const noDB = "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	for name, args := range map[string][]string{
		"missing name":   {},
		"empty name":     {"--name", ""},
		"blank name":     {"--name", " \t "},
		"name no value":  {"--name"},
		"unknown flag":   {"--name", "A", "--purge"},
		"positional arg": {"--name", "A", "extra"},
		"zero timeout":   {"--name", "A", "--timeout", "0s"},
		"name and id":    {"--name", "A", "--id", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000001"},
		"bad id":         {"--id", "not-a-uuid"},
		"nil id":         {"--id", "00000000-0000-0000-0000-000000000000"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runCmd(t, noEnv, append([]string{"--database-url", noDB}, args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if !strings.Contains(r.stderr, "Usage") {
				t.Errorf("stderr has no usage:\n%s", r.stderr)
			}
		})
	}
	if r := runCmd(t, noEnv, "--help"); r.code != exitOK || r.stdout != "" || !strings.Contains(r.stderr, "--revoke") {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A name that cannot be a trust's fails (1) before any connection.
	r := runCmd(t, noEnv, "--database-url", noDB, "--name", "Bad\x00Name")
	wantFailure(t, r, "NUL")
	if strings.Contains(r.stderr, "connect") {
		t.Errorf("a bad name reached the database:\n%s", r.stderr)
	}
}

func TestDatabaseURLFromEnv(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return db.URL
		}
		return ""
	}
	wantStdout(t, runCmd(t, getenv, "--name", "Env Trust"), `{"status":"not_found","name":"Env Trust"}`)
}

// A database that refuses the connection fails the run (exit 1) without
// printing its password, in whatever form the URL or connection string
// holds it, given by flag or environment.
func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	fliptest.NewDB(t) // fails under CI=true without PostgreSQL, like every test here
	for _, c := range cmddbtest.RefusedDSNs {
		fromEnv := func(k string) string { return map[string]string{"DATABASE_URL": c.DSN}[k] }
		for _, r := range []result{
			runCmd(t, noEnv, "--database-url", c.DSN, "--name", "A"),
			runCmd(t, fromEnv, "--id", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000001", "--revoke"),
		} {
			want := "cannot connect to the database at"
			if c.Unparsable {
				want = "the database connection string is not valid"
			}
			wantFailure(t, r, want)
			cmddbtest.NoPassword(t, c, "stderr", r.stderr)
		}
	}
	r := runCmd(t, noEnv, "--database-url", "postgres://flip:hunter2secret@127.0.0.1:1/none?sslmode=disable", "--name", "A")
	wantFailure(t, r, "connection refused")
	if !strings.Contains(r.stderr, "flip:xxxxx@127.0.0.1:1") {
		t.Errorf("stderr does not show the URL redacted:\n%s", r.stderr)
	}
}

// Without --database-url and DATABASE_URL the command refuses to run
// (there is no default database) before it connects anywhere.
func TestNoDatabaseGiven(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--name", "Nowhere"}, {"--id", "0b7d3f1e-2a44-4c1a-9a0e-1f0000000001", "--revoke"}} {
		r := runCmd(t, noEnv, args...)
		if r.code != exitUsage || r.stdout != "" || strings.Contains(r.stderr, "connecting") ||
			!strings.Contains(r.stderr, "--database-url") || !strings.Contains(r.stderr, "DATABASE_URL") {
			t.Errorf("%q: exit %d, stdout %q; want exit 2, nothing on stdout, no connection and an error naming both\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
	}
}
