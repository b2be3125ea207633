package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// slotNamesFile writes content to a file of slot names and returns its path.
func slotNamesFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slots.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// slotNamesEnv is a getenv holding only FL_KIT_SLOT_NAMES.
func slotNamesEnv(list string) func(string) string {
	return func(name string) string {
		if name == envSlotNames {
			return list
		}
		return ""
	}
}

// poolNames returns every slot name in db's pool, in name order.
func poolNames(t *testing.T, db *fliptest.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT slot_name FROM fl_kit_slot ORDER BY slot_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestPoolGrowsFromSource(t *testing.T) {
	t.Parallel()
	forHubSchemas(t, func(t *testing.T, db *fliptest.DB) {
		file := slotNamesFile(t, `["Trust_002", "Trust_001"]`)

		// The plan names what the source would add, and adds nothing.
		r := register(t, db, "--name", "Grown", "--code", "GRO", "--slot-names-file", file, "--plan")
		p := planOf(t, r)
		if r.code != exitOK || p.Action != "register" || *p.FLKitSlot != "Trust_001" || p.SlotsFree != 0 ||
			!slices.Equal(p.SlotNamesAdded, []string{"Trust_001", "Trust_002"}) {
			t.Errorf("plan: exit %d, %+v", r.code, p)
		}
		if names := poolNames(t, db); len(names) != 0 {
			t.Fatalf("--plan added slots %q", names)
		}

		rec, _ := wantOne(t, register(t, db, "--name", "Grown", "--code", "GRO", "--slot-names-file", file))
		if rec.Status != "registered" || rec.slot() != "Trust_001" {
			t.Errorf("record = %+v", rec)
		}
		if names := poolNames(t, db); !slices.Equal(names, []string{"Trust_001", "Trust_002"}) {
			t.Errorf("pool = %q", names)
		}

		// From the environment: the file's Trust_002 is free, so the
		// source is not asked; once the pool is empty again, it is.
		env := slotNamesEnv(`["Trust_002","Trust_003","Extra"]`)
		rec, _ = wantOne(t, runCmd(t, env, "--database-url", db.URL, "--name", "Env One", "--code", "ENV1"))
		if rec.slot() != "Trust_002" || len(poolNames(t, db)) != 2 {
			t.Errorf("record = %+v, pool %q", rec, poolNames(t, db))
		}
		rec, _ = wantOne(t, runCmd(t, env, "--database-url", db.URL, "--name", "Env Two", "--code", "ENV2"))
		if rec.slot() != "Trust_003" {
			t.Errorf("record = %+v", rec)
		}
		if names := poolNames(t, db); !slices.Equal(names, []string{"Extra", "Trust_001", "Trust_002", "Trust_003"}) {
			t.Errorf("pool = %q", names)
		}

		// --slot-names-file takes precedence over the variable.
		file = slotNamesFile(t, `["Trust_009"]`)
		rec, _ = wantOne(t, runCmd(t, slotNamesEnv(`["Trust_008"]`), "--database-url", db.URL,
			"--name", "Env Three", "--code", "ENV3", "--add-slots", "Trust_003", "--slot-names-file", file))
		if rec.slot() != "Extra" { // still free: no miss yet
			t.Errorf("record = %+v", rec)
		}
		rec, _ = wantOne(t, runCmd(t, slotNamesEnv(`["Trust_008"]`), "--database-url", db.URL,
			"--name", "Env Four", "--code", "ENV4", "--slot-names-file", file))
		if rec.slot() != "Trust_009" || slices.Contains(poolNames(t, db), "Trust_008") {
			t.Errorf("record = %+v, pool %q", rec, poolNames(t, db))
		}
	})
}

// Two deploys grow an empty pool from the same names at once: each name is
// added once, each run gets its own slot, and neither fails.
func TestPoolGrowsConcurrently(t *testing.T) {
	t.Parallel()
	forHubSchemas(t, func(t *testing.T, db *fliptest.DB) {
		env := slotNamesEnv(`["Trust_001","Trust_002","Trust_003"]`)
		file := slotNamesFile(t, `["Trust_001","Trust_002","Trust_003"]`)
		for round := range 3 {
			var wg sync.WaitGroup
			var results [2]result
			for i := range results {
				name := []string{"Left", "Right"}[i] + " " + string(rune('A'+round))
				args := []string{"--database-url", db.URL, "--name", name, "--code", strings.ReplaceAll(name, " ", "")}
				if i == 1 {
					args = append(args, "--slot-names-file", file) // a file and the variable alike
				}
				wg.Go(func() { results[i] = runCmd(t, env, args...) })
			}
			wg.Wait()
			var got []string
			for _, r := range results {
				rec, _ := wantOne(t, r)
				if rec.Status != "registered" {
					t.Errorf("record = %+v", rec)
				}
				got = append(got, rec.slot())
			}
			if slices.Sort(got); !slices.Equal(got, []string{"Trust_001", "Trust_002"}) {
				t.Errorf("round %d: slots %q, want Trust_001 and Trust_002, one each", round, got)
			}
			if names := poolNames(t, db); !slices.Equal(names, []string{"Trust_001", "Trust_002", "Trust_003"}) {
				t.Errorf("round %d: pool = %q, want each name once", round, names)
			}
			stats, err := store.CountSlots(context.Background(), db)
			if err != nil || stats.Free != 1 {
				t.Errorf("round %d: pool %+v, %v; want 1 free", round, stats, err)
			}
			if _, err := db.Exec(`UPDATE fl_kit_slot SET assigned_to_trust_id = NULL, assigned_at = NULL`); err != nil {
				t.Fatal(err) // free them again, and the pool is empty of names below
			}
			if _, err := db.Exec(`DELETE FROM fl_kit_slot`); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestPoolSourceUnusable(t *testing.T) {
	t.Parallel()
	forHubSchemas(t, func(t *testing.T, db *fliptest.DB) {
		fliptest.AddSlots(t, db, "Trust_001")
		wantOne(t, register(t, db, "--name", "Holder", "--code", "HOLD"))
		before := fliptest.DumpTables(t, db)
		missing := filepath.Join(t.TempDir(), "none.json")
		for name, tc := range map[string]struct {
			getenv func(string) string
			args   []string
			want   []string
		}{
			"malformed file": {noEnv, []string{"--slot-names-file", slotNamesFile(t, `{"names": ["Trust_002"]}`)},
				[]string{"slot-name source", "was consulted", "not a JSON list of strings"}},
			"malformed variable": {slotNamesEnv(`Trust_002,Trust_003`), nil,
				[]string{"environment variable FL_KIT_SLOT_NAMES", "was consulted", "not a JSON list of strings"}},
			"missing file": {noEnv, []string{"--slot-names-file", missing},
				[]string{"file " + missing, "was consulted", "no such file"}},
			"nothing new": {slotNamesEnv(`["Trust_001"]`), nil,
				[]string{"no FL kit slots available", "environment variable FL_KIT_SLOT_NAMES", "it held 1 names, 0 added"}},
			"empty list": {noEnv, []string{"--slot-names-file", slotNamesFile(t, `[]`)},
				[]string{"no FL kit slots available", "it held 0 names"}},
		} {
			t.Run(name, func(t *testing.T) {
				args := append([]string{"--database-url", db.URL, "--name", "Starved", "--code", "STV"}, tc.args...)
				r := runCmd(t, tc.getenv, args...)
				for _, w := range tc.want {
					wantFailure(t, r, w)
				}
				if !strings.Contains(r.stderr, "no FL kit slots available") {
					t.Errorf("not ErrNoFreeKitSlot:\n%s", r.stderr)
				}
				p := planOf(t, runCmd(t, tc.getenv, append(args, "--plan")...))
				if p.Action != "fail" || !strings.Contains(p.Error, "was consulted") || len(p.SlotNamesAdded) != 0 {
					t.Errorf("plan = %+v", p)
				}
				if fliptest.DumpTables(t, db) != before {
					t.Error("the failed run changed the database")
				}
			})
		}
	})
}

func TestSlotNamesUsage(t *testing.T) {
	t.Parallel()
	const noDB = "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	for name, args := range map[string][]string{
		"without name": {"--slot-names-file", "s.json", "--migrate"},
		"with rotate":  {"--slot-names-file", "s.json", "--name", "A", "--rotate"},
	} {
		if r := runCmd(t, noEnv, append(args, "--database-url", noDB)...); r.code != exitUsage || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want 2 and nothing", name, r.code, r.stdout)
		}
	}
}
