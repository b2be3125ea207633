package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

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

func TestParseGovulncheck_KeepsDeepestLevelPerID(t *testing.T) {
	t.Parallel()
	out := `{"config":{"scanner_version":"v1.9.0","go_version":"go1.26.8","scan_level":"symbol"}}
{"osv":{"id":"GO-1","summary":"bad thing"}}
{"finding":{"osv":"GO-1","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8"}]}}
{"finding":{"osv":"GO-1","fixed_version":"v1.26.9","trace":[{"module":"stdlib","version":"v1.26.8","package":"net/http","function":"Get"}]}}
{"finding":{"osv":"GO-2","fixed_version":"v2","trace":[{"module":"example.com/m","version":"v1","package":"example.com/m/p"}]}}
`
	r, err := parseGovulncheck([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]string{}
	for _, v := range r.vulns {
		levels[v.id] = v.level
	}
	if levels["GO-1"] != "called" || levels["GO-2"] != "imported" || r.goVersion != "go1.26.8" {
		t.Errorf("parsed %+v", r)
	}
}

func TestWriteReport_KeepsSectionsNotRun(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	e := &env{machine: []string{"- CPUs: 2"}}
	if err := writeReport(path, e, map[string]string{"registration": "## A\nold"}); err != nil {
		t.Fatal(err)
	}
	// A section unknown to this version, written by a newer one.
	data, _ := os.ReadFile(path)
	data = append(data, []byte("\n<!-- bench:seeding -->\n## Seeding\nkept\n<!-- /bench:seeding -->\n")...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(path, e, map[string]string{"fuzz": "## Fuzz\nnew"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	for _, want := range []string{"## A\nold", "## Fuzz\nnew", "## Seeding\nkept"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(string(got), "## A") > strings.Index(string(got), "## Fuzz") {
		t.Error("sections out of order")
	}
}
