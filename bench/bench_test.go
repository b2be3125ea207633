package main

import (
	"context"
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

// The pgbench script must register trusts exactly as RegisterTrust does:
// run it with pgbench and check what it left.
func TestPgbenchScript_RegistersLikeRegisterTrust(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	ctx := context.Background()
	fliptest.AddSlots(t, db, "Trust_001..Trust_100")
	stmts, p, err := recordRegistration(ctx, db.DB.DB)
	if err != nil {
		t.Fatal(err)
	}
	script, err := pgbenchScript(stmts, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BEGIN;", "SAVEPOINT flip_register_trust;", "RELEASE SAVEPOINT flip_register_trust;", "COMMIT;", "FOR UPDATE SKIP LOCKED", ":client_id"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "$1") || strings.Contains(script, p.name) || strings.Contains(script, p.apiKeyHash) {
		t.Errorf("script keeps a placeholder or a recorded value:\n%s", script)
	}
	if !pgbenchOK() {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgbench is required under CI=true (it comes with the PostgreSQL client)")
		}
		t.Skip("pgbench not on PATH")
	}
	path := filepath.Join(t.TempDir(), "register.sql")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"prepared", "extended"} {
		out, err := exec.CommandContext(ctx, "pgbench", "-n", "-M", mode, "-c", "2", "-j", "2", "-t", "10", "-f", path, db.URL).CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench -M %s: %v\n%s", mode, err, out)
		}
		if _, err := parsePgbench(string(out)); err != nil {
			t.Fatalf("-M %s: %v", mode, err)
		}
	}
	if err := verifyRun(ctx, db.URL, 40, false); err != nil {
		t.Fatal(err)
	}
	// Slots go lowest number first, as with RegisterTrust.
	free, err := store.FreeSlots(ctx, db, 1)
	if err != nil || len(free) != 1 || free[0].Name != "Trust_041" {
		t.Errorf("first free slot after 40 registrations: %+v, %v", free, err)
	}
}

func TestPgbenchScript_RefusesUnknownStatements(t *testing.T) {
	t.Parallel()
	_, err := pgbenchScript([]recordedStmt{{query: "SELECT $1", args: []any{"x"}}}, probe{})
	if err == nil || !strings.Contains(err.Error(), "does not export") {
		t.Errorf("err = %v", err)
	}
}

func TestParsePgbench(t *testing.T) {
	t.Parallel()
	out := `transaction type: /tmp/x.sql
scaling factor: 1
query mode: prepared
number of clients: 4
number of threads: 4
maximum number of tries: 1
duration: 5 s
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
	if r.tps != 1162.496017 || r.processed != 5812 || r.latency != 3441*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parsePgbench(strings.Replace(out, "failed transactions: 0", "failed transactions: 3", 1)); err == nil {
		t.Error("failed transactions not reported")
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
		{"host=h dbname=db", "binary_parameters=yes&a=b", "host=h dbname=db binary_parameters=yes a=b"},
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
	v := flip.NewVerifier(store.NewAPIKeyLookup(db))
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
