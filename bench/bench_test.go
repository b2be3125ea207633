package main

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// openTestDB gives a test its own migrated database (fliptest.NewDB),
// opened with lib/pq, and the database's URL for pgbench.
func openTestDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	url := fliptest.NewDB(t).URL
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, url
}

// Both pgbench scripts must register trusts whole, lowest slot first: run
// each with pgbench in both modes and check what it left.
func TestPgbenchScripts_RegisterWholeTrusts(t *testing.T) {
	t.Parallel()
	for _, script := range []string{"flip", "reference"} {
		t.Run(script, func(t *testing.T) {
			t.Parallel()
			db, url := openTestDB(t)
			ctx := t.Context()
			if _, err := store.AddSlots(ctx, db, strings.Fields(slotNames(100))...); err != nil {
				t.Fatal(err)
			}
			stmts, p, err := recordRegistration(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if script == "reference" {
				stmts = referenceStatements(p)
			}
			text, err := pgbenchScript("-- test\n", stmts, p)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(text, "$1") || strings.Contains(text, p.name) || strings.Contains(text, p.apiKeyHash) {
				t.Errorf("script keeps a placeholder or a recorded value:\n%s", text)
			}
			runScript(t, db, text, url)
		})
	}
}

// runScript runs a registration script with pgbench, 2 clients × 10
// transactions in each mode, and checks the 40 trusts it left.
func runScript(t *testing.T, db *sql.DB, script, url string) {
	t.Helper()
	if _, err := exec.LookPath("pgbench"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgbench is required under CI=true (it comes with the PostgreSQL client)")
		}
		t.Skip("pgbench not on PATH")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "register.sql")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"prepared", "extended"} {
		out, err := exec.CommandContext(ctx, "pgbench", "-n", "-M", mode, "-c", "2", "-j", "2", "-t", "10", "-f", path, url).CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench -M %s: %v\n%s\n%s", mode, err, out, script)
		}
		if _, err := parsePgbench(string(out)); err != nil {
			t.Fatalf("-M %s: %v", mode, err)
		}
	}
	if _, err := verifyRun(ctx, url, 0, 40, true); err != nil {
		t.Fatal(err)
	}
	var first string
	if err := db.QueryRowContext(ctx, `SELECT slot_name FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL ORDER BY slot_number LIMIT 1`).Scan(&first); err != nil || first != "Trust_041" {
		t.Errorf("first free slot after 40 registrations: %q, %v; want Trust_041", first, err)
	}
}

func slotNames(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "Trust_%03d ", i)
	}
	return b.String()
}

// Every flip runner registers, from several callers, exactly the trusts
// it reports, each whole (verifyRun's check of a measured run).
func TestFlipThroughput_EveryRunnerRegistersWhatItReports(t *testing.T) {
	t.Parallel()
	for _, fd := range flipDrivers {
		t.Run(fd.label, func(t *testing.T) {
			t.Parallel()
			db, url := openTestDB(t)
			ctx := t.Context()
			if _, err := store.AddSlots(ctx, db, strings.Fields(slotNames(999))...); err != nil {
				t.Fatal(err)
			}
			res, err := flipThroughput(ctx, fd.driver, withParams(url, fd.dsnParams), 3, 150*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := verifyRun(ctx, url, 0, res.registrations, true); err != nil {
				t.Fatalf("%d registrations reported: %v", res.registrations, err)
			}
		})
	}
}

func TestPgbenchScript_RefusesWhatPgbenchWouldMisread(t *testing.T) {
	t.Parallel()
	for _, st := range []recordedStmt{
		{query: "SELECT $1; SELECT 2", args: []any{"x"}},
		{query: "SELECT $1, $2", args: []any{"x"}},
		{query: "SELECT $1", args: []any{struct{}{}}},
	} {
		if _, err := pgbenchScript("", []recordedStmt{st}, probe{}); err == nil {
			t.Errorf("%q with %v: no error", st.query, st.args)
		}
	}
}

func TestParsePgbench(t *testing.T) {
	t.Parallel()
	out := `transaction type: /tmp/x.sql
query mode: prepared
number of clients: 4
number of transactions actually processed: 5812
number of failed transactions: 0 (0.000%)
latency average = 3.441 ms
initial connection time = 9.613 ms
tps = 1162.496017 (without initial connection time)
`
	r, err := parsePgbench(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.rate != 1162.496017 || r.registrations != 5812 || r.latency != 3441*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parsePgbench(strings.Replace(out, "failed transactions: 0", "failed transactions: 3", 1)); err == nil {
		t.Error("failed transactions not reported")
	}
}

// The deploy section takes a run as a success only on one record with the
// status it expects.
func TestCheckRecord(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		stdout, want string
		ok           bool
	}{
		{`[{"status":"registered","trust_id":"x"}]` + "\n", "registered", true},
		{`[{"status":"existing"}]`, "registered", false},
		{`[]`, "registered", false},
		{`[{"status":"registered"},{"status":"registered"}]`, "registered", false},
		{"", "registered", false},
		{"", "", true},
		{"usage", "", false},
	} {
		if err := checkRecord([]byte(c.stdout), c.want); (err == nil) != c.ok {
			t.Errorf("checkRecord(%q, %q) = %v", c.stdout, c.want, err)
		}
	}
}

// A ratio's verdict names the caller counts where it missed its goal.
func TestRatioCells_GoalVerdict(t *testing.T) {
	t.Parallel()
	rb := &regBench{e: &env{cfg: config{callers: []int{1, 4, 16}}}, runners: []string{"a", "b"}}
	rate := func(xs ...float64) [][]runResult {
		out := make([][]runResult, len(xs))
		for i, x := range xs {
			out[i] = []runResult{{rate: x}}
		}
		return out
	}
	rb.results = [][][]runResult{rate(100, 90, 80), rate(100, 100, 100)}
	vals, goal, verdict := rb.ratioCells(ratio{num: "a", den: "b", goal: goalLibpq})
	if strings.Join(vals, " ") != "1.00 0.90 0.80" || goal != "≥ 1.0 / ≥ 0.8 / ≥ 0.8" || verdict != "met" {
		t.Errorf("goal met: %v %q %q", vals, goal, verdict)
	}
	if _, _, verdict := rb.ratioCells(ratio{num: "a", den: "b", goal: goalPgxSQL}); verdict != "missed at 4, 16 callers" {
		t.Errorf("goal missed: %q", verdict)
	}
	if _, goal, verdict := rb.ratioCells(ratio{num: "a", den: "b"}); goal != "–" || verdict != "–" {
		t.Errorf("no goal: %q %q", goal, verdict)
	}
}

func TestWriteReport_KeepsSectionsNotRunAndDropsUnknownOnes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := writeReport(path, "# h\n", map[string]string{"seeding": "## S\nold", "registration": "## R\nold"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	data = append(data, []byte("\n<!-- bench:fuzz -->\n## Fuzzing\nstale\n<!-- /bench:fuzz -->\n")...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(path, "# h\n", map[string]string{"registration": "## R\nnew"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	for _, want := range []string{"## R\nnew", "## S\nold"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "stale") || strings.Contains(string(got), "## R\nold") {
		t.Errorf("report keeps a stale block:\n%s", got)
	}
	if strings.Index(string(got), "## R") > strings.Index(string(got), "## S") {
		t.Error("sections out of order")
	}
}

func TestWithParams(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dsn, params, want string }{
		{"postgres://u@h/db?sslmode=disable", "binary_parameters=yes", "postgres://u@h/db?sslmode=disable&binary_parameters=yes"},
		{"postgres://u@h/db", "binary_parameters=yes", "postgres://u@h/db?binary_parameters=yes"},
		{"postgres://u@h/db", "binary_parameters=yes&a=b", "postgres://u@h/db?binary_parameters=yes&a=b"},
		{"postgres://u@h/db", "", "postgres://u@h/db"},
	} {
		if got := withParams(c.dsn, c.params); got != c.want {
			t.Errorf("withParams(%q, %q) = %q, want %q", c.dsn, c.params, got, c.want)
		}
	}
}

// The key verification section's copy of the store benchmark's setup: the
// hashes the server computes must be those of the keys the Go side
// presents, or every "hit" would be a miss.
func TestVerifyBench_KeysMatchSeededHashes(t *testing.T) {
	t.Parallel()
	db, _ := openTestDB(t)
	ctx := t.Context()
	if err := seedKeyedTrusts(ctx, db, 3); err != nil {
		t.Fatal(err)
	}
	v := flip.NewVerifier(db)
	for i := 1; i <= 3; i++ {
		trust, err := v.Verify(ctx, verifyKey(i))
		if err != nil || trust.Name != fmt.Sprintf("Keyed trust %d", i) {
			t.Errorf("indexed, key %d: %+v, %v", i, trust, err)
		}
		id, found, err := verifyByScan(ctx, db, verifyKey(i))
		if err != nil || !found || id != trust.ID {
			t.Errorf("scan, key %d: %s %v, %v; want %s", i, id, found, err, trust.ID)
		}
	}
	if _, err := v.Verify(ctx, verifyKey(4)); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("indexed, key of no trust: %v", err)
	}
	if _, found, err := verifyByScan(ctx, db, verifyKey(4)); found || err != nil {
		t.Errorf("scan, key of no trust: found %v, %v", found, err)
	}
}

// The seeding section counts writes by row version: an UPDATE to the same
// values counts, a read does not.
func TestRowVersions_CountEveryWrite(t *testing.T) {
	t.Parallel()
	db, _ := openTestDB(t)
	ctx := t.Context()
	run := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	run(`INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at) VALUES
		('00000000-0000-0000-0000-000000000001', 'A', 'O', now(), now()), ('00000000-0000-0000-0000-000000000002', 'B', 'O', now(), now())`)
	versions := func() map[string]string {
		t.Helper()
		v, err := rowVersions(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := versions()
	run(`SELECT * FROM user_profile`)
	same := versions()
	if c := diffVersions(before, same); c.total() != 0 {
		t.Errorf("after a read: %+v, want no change", c)
	}
	run(`UPDATE user_profile SET name = name WHERE name = 'A'`)
	run(`DELETE FROM user_profile WHERE name = 'B'`)
	if c := diffVersions(same, versions()); c != (rowChanges{updated: 1, deleted: 1}) {
		t.Errorf("after an idle UPDATE and a DELETE: %+v", c)
	}
}

// The revocation section's trials leave the trust with a key that
// verifies, the revoked one restored without a notice, and account for
// every trial in each replica (refused or timed out).
func TestRevocationTrials_KeepTheTrustVerifiable(t *testing.T) {
	t.Parallel()
	_, url := openTestDB(t)
	ctx := t.Context()
	rb, err := newRevBench(ctx, url, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.close()
	// Both feeds listen before the first trial (caching is paused until
	// they do): trial gives them revocationTimeout to, a bound for the
	// bench, and a loaded machine is not the question here.
	for _, r := range rb.replicas {
		for r.v.CachedGrants() == 0 {
			if _, err := r.v.Verify(ctx, rb.key); err != nil {
				t.Fatalf("%s: %v", r.label, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range 2 { // a rotation, then a revocation
		if err := rb.trial(ctx, i); err != nil {
			t.Fatalf("trial %d: %v", i, err)
		}
	}
	if trust, err := flip.NewVerifier(rb.pools[2]).Verify(ctx, rb.key); err != nil || trust.ID != rb.trust {
		t.Errorf("key after the trials: %+v, %v", trust, err)
	}
	for _, r := range rb.replicas {
		if n := len(r.refusals) + r.timeouts; n != 2 {
			t.Errorf("%s accounts for %d trials, want 2", r.label, n)
		}
	}
}
