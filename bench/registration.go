package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Registration throughput: RegisterTrustDB on two drivers against pgbench
// running flip's own statements and the reference hub's, every run on a
// fresh copy of one template database, interleaved within each round.

// The runners, by the names the tables and the ratios use.
const (
	libpq        = "flip, lib/pq"
	libpqBinary  = "flip, lib/pq binary_parameters=yes"
	pgx          = "flip, pgx"
	flipPrepared = "flip's statements, pgbench -M prepared"
	flipExtended = "flip's statements, pgbench -M extended"
	refPrepared  = "reference, pgbench -M prepared"
	refExtended  = "reference, pgbench -M extended"
)

// flipDrivers are the database/sql drivers RegisterTrustDB is measured on.
var flipDrivers = []struct{ label, driver, dsnParams, note string }{
	{libpq, "postgres", "", "sends every statement with parameters as an unnamed statement, which the server parses and plans at every call, in two round trips: Parse/Describe/Sync (lib/pq waits for the parameter and row descriptions), then Bind/Execute/Sync; pgbench -M extended sends the same unnamed statement in one"},
	{libpqBinary, "postgres", "binary_parameters=yes", "the same driver with `binary_parameters=yes` in the connection URL: lib/pq then sends Parse, Bind, Describe, Execute and Sync together and reads the answers once, one round trip per statement, still parsed and planned at every call, as pgbench -M extended does (the option's documented effect, `[]byte` arguments in binary, does not arise: the store passes strings, UUIDs and times); a one-line configuration change for a hub that keeps lib/pq"},
	{pgx, "pgx", "", "pgx's `database/sql` driver prepares each statement once per connection and caches it (one round trip per execution), as pgbench -M prepared does"},
}

// pgbenchRunners are the pgbench runs: each script in both modes.
var pgbenchRunners = []struct{ name, script, mode string }{
	{flipPrepared, "flip", "prepared"}, {flipExtended, "flip", "extended"},
	{refPrepared, "reference", "prepared"}, {refExtended, "reference", "extended"},
}

// ratio is one comparison reported, with the goal per caller count
// where it sets one (the ratios are reported, never asserted).
type ratio struct {
	label, num, den string
	goal            map[int]float64
}

var (
	goalA     = map[int]float64{1: 1, 4: 1, 16: 1}
	goalLibpq = map[int]float64{1: 1, 4: 0.8, 16: 0.8}
	goalPgx   = map[int]float64{1: 1, 4: 1, 16: 0.9}
	regRatios = []ratio{
		{"(a) flip's statements ÷ reference, both pgbench -M prepared", flipPrepared, refPrepared, goalA},
		{"(a) flip's statements ÷ reference, both pgbench -M extended (for comparison)", flipExtended, refExtended, nil},
		{"(b) flip, lib/pq ÷ reference, pgbench -M prepared", libpq, refPrepared, goalLibpq},
		{"(b) flip, pgx ÷ reference, pgbench -M prepared", pgx, refPrepared, goalPgx},
		{"(b) flip, lib/pq binary_parameters=yes ÷ reference, pgbench -M prepared", libpqBinary, refPrepared, nil},
		{"flip, lib/pq ÷ flip's statements, pgbench -M extended", libpq, flipExtended, nil},
		{"flip, lib/pq binary_parameters=yes ÷ flip's statements, pgbench -M extended", libpqBinary, flipExtended, nil},
		{"flip, pgx ÷ flip's statements, pgbench -M prepared", pgx, flipPrepared, nil},
		{"flip, lib/pq binary_parameters=yes ÷ flip, lib/pq", libpqBinary, libpq, nil},
	}
)

// A runner registers trusts with some number of concurrent callers for the
// configured time on a fresh copy of the template.
type runner struct {
	name  string
	exact bool // counts its registrations exactly; pgbench may commit a few it does not count
	run   func(ctx context.Context, dbURL string, callers int) (runResult, error)
}

type runResult struct {
	registrations int64
	rate          float64       // registrations per second
	latency       time.Duration // mean, of one registration
	cpu           time.Duration // client CPU (user + system) per registration
	seqScans      int64         // of trust, from the statistics after the run
}

// regBench is what the registration section prepares before it measures.
type regBench struct {
	e        *env
	tmpl     string
	slots    int
	recorded []recordedStmt    // what one RegisterTrust sent
	scripts  map[string]string // "flip", "reference" → pgbench script
	paths    map[string]string // the same, written to files
	allocs   [][]string        // rows of the allocations table
	libCPU   time.Duration     // RegisterTrust alone, per call
	results  [][][]runResult   // [runner][level][round]
	runners  []runner
}

func runRegistration(ctx context.Context, e *env) (string, error) {
	if _, err := exec.LookPath("pgbench"); err != nil {
		return "", errors.New("pgbench is not on PATH (it comes with the PostgreSQL client package)")
	}
	dir, err := os.MkdirTemp("", "flip-bench-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// Enough free slots that no run comes near the end of the pool: 8,000
	// registrations a second would still leave some.
	rb := &regBench{e: e, slots: max(30_000, 8_000*int(e.cfg.duration/time.Second))}
	log.Printf("registration: template database with %d slots and %d trusts", rb.slots, e.cfg.trusts)
	if rb.tmpl, err = prepareTemplate(ctx, e, rb.slots, e.cfg.trusts); err != nil {
		return "", err
	}
	if err := rb.writeScripts(ctx, dir); err != nil {
		return "", err
	}
	log.Printf("registration: allocations")
	if err := rb.measureAllocs(ctx); err != nil {
		return "", err
	}
	rb.runners = rb.makeRunners()
	if err := rb.measure(ctx); err != nil {
		return "", err
	}
	return rb.report(), nil
}

// writeScripts records one registration on a clone and writes both pgbench
// scripts.
func (rb *regBench) writeScripts(ctx context.Context, dir string) error {
	var p probe
	err := rb.e.withClone(ctx, rb.tmpl, "probe", func(dbURL string) error {
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		rb.recorded, p, err = recordRegistration(ctx, db)
		return err
	})
	if err != nil {
		return err
	}
	rb.scripts, rb.paths = map[string]string{}, map[string]string{}
	for _, sc := range []struct {
		name, comment string
		stmts         []recordedStmt
	}{{"flip", flipScriptComment, rb.recorded}, {"reference", referenceScriptComment, referenceStatements(p)}} {
		if rb.scripts[sc.name], err = pgbenchScript(sc.comment, sc.stmts, p); err != nil {
			return fmt.Errorf("%s script: %w", sc.name, err)
		}
		rb.paths[sc.name] = filepath.Join(dir, sc.name+".sql")
		if err := os.WriteFile(rb.paths[sc.name], []byte(rb.scripts[sc.name]), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (rb *regBench) makeRunners() []runner {
	d := rb.e.cfg.duration
	var rs []runner
	for _, fd := range flipDrivers {
		rs = append(rs, runner{fd.label, true, func(ctx context.Context, dbURL string, callers int) (runResult, error) {
			return flipThroughput(ctx, fd.driver, withParams(dbURL, fd.dsnParams), callers, d)
		}})
	}
	for _, pr := range pgbenchRunners {
		rs = append(rs, runner{pr.name, false, func(ctx context.Context, dbURL string, callers int) (runResult, error) {
			return runPgbench(ctx, pr.mode, rb.paths[pr.script], dbURL, callers, d)
		}})
	}
	return rs
}

// measure runs every runner once per level and round. Within a level the
// order turns by one at each level and round, so that none always goes
// first or last, and ratios are taken between runs minutes apart at most.
func (rb *regBench) measure(ctx context.Context) error {
	levels := rb.e.cfg.callers
	rb.results = make([][][]runResult, len(rb.runners))
	for i := range rb.results {
		rb.results[i] = make([][]runResult, len(levels))
	}
	for round := range rb.e.cfg.rounds {
		for li, callers := range levels {
			for _, ri := range turned(len(rb.runners), li+round) {
				r := rb.runners[ri]
				log.Printf("registration: round %d, %d callers, %s", round+1, callers, r.name)
				var res runResult
				err := rb.e.withClone(ctx, rb.tmpl, "run", func(dbURL string) error {
					rb.e.checkpoint(ctx)
					var err error
					if res, err = r.run(ctx, dbURL, callers); err != nil {
						return err
					}
					res.seqScans, err = verifyRun(ctx, dbURL, int64(rb.e.cfg.trusts), res.registrations, r.exact)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s with %d callers: %w", r.name, callers, err)
				}
				log.Printf("registration:   %.0f registrations/s, %d sequential scans of trust", res.rate, res.seqScans)
				rb.results[ri][li] = append(rb.results[ri][li], res)
			}
		}
	}
	return nil
}

// measureAllocs fills the allocations table: RegisterTrust alone, then
// RegisterTrustDB on each driver.
func (rb *regBench) measureAllocs(ctx context.Context) error {
	allocs, bytes, cpu := libraryAllocs()
	rb.libCPU = cpu
	rb.allocs = [][]string{{"RegisterTrust's own work (validation, keys, hash, ids)", fmt.Sprintf("%.0f", allocs), thousands(bytes)}}
	for _, fd := range flipDrivers {
		err := rb.e.withClone(ctx, rb.tmpl, "allocs", func(dbURL string) error {
			a, b, err := endToEndAllocs(ctx, fd.driver, withParams(dbURL, fd.dsnParams), 1000)
			label := "RegisterTrustDB, " + strings.TrimPrefix(fd.label, "flip, ")
			rb.allocs = append(rb.allocs, []string{label, fmt.Sprintf("%.0f", a), thousands(b)})
			return err
		})
		if err != nil {
			return fmt.Errorf("allocations with %s: %w", fd.label, err)
		}
	}
	return nil
}

// prepareTemplate creates the database every run is copied from: migrated,
// with slots free kit slots and trusts trusts already registered, an index
// for the reference's duplicate check, vacuumed and analysed.
func prepareTemplate(ctx context.Context, e *env, slots, trusts int) (string, error) {
	name, db, err := e.createMigratedDB(ctx, "tmpl")
	if err != nil {
		return "", err
	}
	defer db.Close()
	names := make([]string, slots)
	for i := range names {
		names[i] = fmt.Sprintf("Bench_%06d", i+1)
	}
	if _, err := store.AddSlots(ctx, db, names...); err != nil {
		return "", fmt.Errorf("add slots: %w", err)
	}
	reg := flip.NewRegistry(store.New())
	for i := range trusts {
		p := flip.TrustParams{Name: fmt.Sprintf("Existing trust %04d", i+1), Code: fmt.Sprintf("EX%04d", i+1), Region: "London", AuditUserID: benchAuditUser}
		if _, err := reg.RegisterTrustDB(ctx, db, p); err != nil {
			return "", fmt.Errorf("register the template's trusts: %w", err)
		}
	}
	for _, q := range []string{referenceIndexSQL, `VACUUM ANALYZE`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return "", fmt.Errorf("template: %s: %w", q, err)
		}
	}
	return name, db.Close()
}

// referenceIndexSQL serves the reference's exact-name check; flip's
// migrations index the canonical name flip compares instead.
const referenceIndexSQL = `CREATE INDEX bench_trust_name_idx ON trust (name)`

// verifyRun checks a run's database: every reported registration is there
// (pgbench may have completed a few more than it counted when its clock
// ran out), each trust holds one slot and one audit row, and the pool did
// not run dry. It returns the sequential scans of trust the run made, as
// far as the statistics have them by now: the plans' evidence.
func verifyRun(ctx context.Context, dbURL string, existing, reported int64, exact bool) (seqScans int64, err error) {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var trusts, broken, free int64
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM trust),
		(SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id = t.id) <> 1
		                                 OR (SELECT count(*) FROM trusts_audit a WHERE a.trust_id = t.id AND a.action = 'REGISTERED') <> 1),
		(SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL),
		(SELECT coalesce(seq_scan, 0) FROM pg_stat_user_tables WHERE relname = 'trust')`).Scan(&trusts, &broken, &free, &seqScans)
	switch added := trusts - existing; {
	case err != nil:
		return 0, fmt.Errorf("verify: %w", err)
	case broken != 0:
		return 0, fmt.Errorf("verify: %d trusts without exactly one slot and one audit row", broken)
	case free == 0:
		return 0, errors.New("verify: the kit slot pool ran dry; the figures are not valid")
	case added < reported || exact && added != reported:
		return 0, fmt.Errorf("verify: %d trusts added to the database, %d registrations reported", added, reported)
	}
	return seqScans, nil
}

// runnerIndex is the index of the runner named name.
func (rb *regBench) runnerIndex(name string) int {
	return slices.IndexFunc(rb.runners, func(r runner) bool { return r.name == name })
}

// ratioAt is the median over the rounds of num's rate ÷ den's at level li.
func (rb *regBench) ratioAt(num, den string, li int) float64 {
	n, d := rb.results[rb.runnerIndex(num)][li], rb.results[rb.runnerIndex(den)][li]
	var xs []float64
	for i := range min(len(n), len(d)) {
		if d[i].rate > 0 {
			xs = append(xs, n[i].rate/d[i].rate)
		}
	}
	return median(xs)
}
