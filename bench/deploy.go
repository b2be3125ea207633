package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

// Deploy cost: the wall time of one run of the built register-trust, from
// exec to exit, as the deploy pipeline pays it once per trust; then a
// deploy loop of deployLoop runs, one new trust each.

const deployLoop = 200 // runs in the deploy loop, one new trust each

// deployDB is a database the command runs against: flip's schema
// (migrated) or the hub's bare one (hubfixture.Schema, not migrated),
// with slots free kit slots.
type deployDB struct {
	hub   bool
	slots int
	url   string
}

func (d *deployDB) String() string {
	return fmt.Sprintf("%s, %s free slots", map[bool]string{true: "hub's bare schema", false: "flip's schema"}[d.hub], thousands(float64(d.slots)))
}

// deployCase is one command line, run again and again on one database (or
// none); want is the status its record must have, "" for no record.
type deployCase struct {
	label     string
	db        *deployDB
	args      func() []string // the next run's, besides --database-url
	want      string
	wall, cpu []float64 // seconds per timed run: exec to exit, and the process's user + system time
}

type deployBench struct {
	bin  string
	next int // the number of the next new trust
}

// newTrust is the arguments of a trust not yet registered, Deploy Trust <i>.
func (b *deployBench) newTrust() []string {
	b.next++
	return []string{"--name", fmt.Sprint("Deploy Trust ", b.next), "--code", fmt.Sprint("D", b.next)}
}

// newDeployDB creates a database with the schema and n free slots,
// Deploy_000001…, then ANALYZEs it, as a settled hub database would be.
func (e *env) newDeployDB(ctx context.Context, suffix string, hub bool, n int) (*deployDB, error) {
	_, dbURL, err := e.createDB(ctx, suffix, "")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if hub {
		_, err = db.ExecContext(ctx, hubfixture.Schema)
	} else {
		err = store.Migrate(ctx, db)
	}
	if err == nil {
		_, err = store.AddSlots(ctx, db, fmt.Sprintf("Deploy_%06d..Deploy_%06d", 1, n))
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `ANALYZE`)
	}
	return &deployDB{hub: hub, slots: n, url: dbURL}, err
}

// run execs the command once on db (nil: none) and checks its exit status
// and its record.
func (b *deployBench) run(ctx context.Context, db *deployDB, want string, args ...string) (wall, cpu float64, err error) {
	if db != nil {
		args = append(args, "--database-url", db.url)
	}
	cmd := exec.CommandContext(ctx, b.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start).Seconds()
	if err != nil {
		return 0, 0, fmt.Errorf("register-trust %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return wall, cpu, checkRecord(stdout.Bytes(), want)
}

// checkRecord checks that stdout is one record with status want, or
// nothing when want is "".
func checkRecord(stdout []byte, want string) error {
	if want == "" && len(stdout) == 0 {
		return nil
	}
	var recs []struct{ Status string }
	if err := json.Unmarshal(stdout, &recs); err != nil || len(recs) != 1 || recs[0].Status != want {
		return fmt.Errorf("register-trust printed %q (%v), want one record with status %q", stdout, err, want)
	}
	return nil
}

func runDeploy(ctx context.Context, e *env) (string, error) {
	dir, err := os.MkdirTemp("", "flip-bench-deploy-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	b := &deployBench{bin: filepath.Join(dir, "register-trust")}
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./examples/register-trust").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./examples/register-trust: %w\n%s", err, out)
	}
	load0 := loadAverage()
	var dbs [6]*deployDB // flip 1k, flip 100k, hub 1k, hub 100k; the loops': flip 1k, hub 1k
	for i := range dbs {
		hub, n := i == 2 || i == 3 || i == 5, map[bool]int{true: 100_000, false: 1_000}[i == 1 || i == 3]
		log.Printf("deploy: database %d of %d", i+1, len(dbs))
		if dbs[i], err = e.newDeployDB(ctx, fmt.Sprint("deploy_", i), hub, n); err != nil {
			return "", err
		}
	}
	existing := []string{"--name", "Existing Trust", "--code", "EXIST"}
	for _, db := range []*deployDB{dbs[0], dbs[2]} {
		if _, _, err := b.run(ctx, db, "registered", existing...); err != nil {
			return "", err
		}
	}
	same := func() []string { return existing }
	cases := []*deployCase{
		{label: "process start only (`--help`, no database)", args: func() []string { return []string{"--help"} }},
		{label: "existing trust (the skip path)", db: dbs[0], args: same, want: "existing"},
		{label: "existing trust (the skip path)", db: dbs[2], args: same, want: "existing"},
		{label: "**new trust**", db: dbs[0], args: b.newTrust, want: "registered"},
		{label: "new trust, `--migrate` (nothing to apply)", db: dbs[0], args: func() []string { return append(b.newTrust(), "--migrate") }, want: "registered"},
		{label: "new trust, `--migrate --add-slots Deploy_000001..Deploy_001000` (all present)", db: dbs[0], args: func() []string {
			return append(b.newTrust(), "--migrate", "--add-slots", "Deploy_000001..Deploy_001000")
		}, want: "registered"},
		{label: "**new trust**", db: dbs[1], args: b.newTrust, want: "registered"},
		{label: "**new trust**", db: dbs[2], args: b.newTrust, want: "registered"},
		{label: "**new trust**", db: dbs[3], args: b.newTrust, want: "registered"},
	}
	log.Printf("deploy: %d cases × %d runs", len(cases), e.cfg.deployRuns)
	// Round 0 warms the page cache (the binary, the databases) and is not kept.
	err = interleave(e.cfg.deployRuns+1, len(cases), func(round, i int) error {
		c := cases[i]
		wall, cpu, err := b.run(ctx, c.db, c.want, c.args()...)
		if round > 0 {
			c.wall, c.cpu = append(c.wall, wall), append(c.cpu, cpu)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	var loops [2]time.Duration
	for i, db := range dbs[4:] {
		log.Printf("deploy: loop of %d runs, %s", deployLoop, db)
		start := time.Now()
		for range deployLoop {
			if _, _, err := b.run(ctx, db, "registered", b.newTrust()...); err != nil {
				return "", err
			}
		}
		loops[i] = time.Since(start)
	}
	return deployReport(e.cfg.deployRuns, cases, dbs[4:], loops, load0, loadAverage()), nil
}

const deployText = "**One `register-trust` run registering a new trust, exec to exit: a median of %s on flip's schema and %s on the hub's bare schema with 1,000 free slots (%s and %s with 100,000). A deploy loop of %d new trusts, one run each: %s on flip's schema, %s on the hub's bare schema (1,000 free slots).**\n\n" +
	"Wall time of one run of the built command (`go build ./examples/register-trust`), from `exec` to the process's exit, its stdout parsed as JSON and checked (one record, the expected status). %d timed runs per case, after one untimed warm-up; the runs of all cases are interleaved, the order turning each round. CPU is the command's own user + system time (from its rusage); PostgreSQL's comes on top and shares the machine's two cores. Percentiles by nearest rank. Load average (1/5/15 min) %s at the start of the section, %s at its end: other work on the machine shows in the tails.\n\n" +
	"%s\nWhere the time of a new trust on flip's schema with 1,000 free slots goes (differences of medians): starting the process %s (the `--help` floor); connecting and looking the trust up %s more (the skip path, which writes nothing); registering it (the slot claim, the trust, the audit row, one commit) %s more. `--migrate` on an up-to-date database adds %s; `--add-slots` of the whole pool's names besides (the register-trust example's deploy line, safe to repeat), %s more.\n\n" +
	"The deploy loop: %d sequential runs of `register-trust --name \"Deploy Trust <i>\" --code D<i> --database-url URL`, each a new trust, on a fresh database with 1,000 free slots; the wall time of the whole loop, as a deploy script calling the command once per trust pays it (without `--migrate` or `--add-slots`; add the differences above per run when the script passes them).\n\n" +
	"%s\nHow it is measured:\n\n" +
	"- **Databases**: fresh ones, created by this run. flip's schema: `store.Migrate` to the latest version. The hub's bare schema: `internal/hubfixture.Schema` (the hub's tables as the hub leaves them), not migrated: none of flip's indexes (so the slot claim reads every free slot, and the registration statement is sent twice, around an advisory lock on the name and code, where flip's unique indexes would let it go once) and no `flip_trust_key_audit`. Then `store.AddSlots` of `Deploy_000001..Deploy_N` and `ANALYZE`. The existing trust of the skip path is registered by the command before the timing.\n" +
	"- **Command lines**: `register-trust --name \"Deploy Trust <i>\" --code D<i> --database-url URL` with a new i at every run (`--migrate` and `--add-slots` added in their rows); the skip path `register-trust --name \"Existing Trust\" --code EXIST --database-url URL`, which looks the trust up and its slot and prints its metadata. The command connects with lib/pq (a pool of at most 2 connections; over loopback to the server above) and registers with `RegisterTrustDB`.\n"

// deployReport renders the cases, the split of a new trust's time and the
// loops.
func deployReport(runs int, cases []*deployCase, loopDBs []*deployDB, loops [2]time.Duration, load0, load1 string) string {
	var rows [][]string
	for _, c := range cases {
		db := "–"
		if c.db != nil {
			db = c.db.String()
		}
		rows = append(rows, []string{c.label, db, fmt.Sprint(len(c.wall)), "**" + fmtSeconds(median(c.wall)) + "**",
			fmtSeconds(percentile(c.wall, 0.90)), fmtSeconds(slices.Max(c.wall)), fmtSeconds(median(c.cpu))})
	}
	table := mdTable("llrrrrr", []string{"run", "database", "runs", "median", "p90", "max", "CPU, median"}, rows)
	var loopRows [][]string
	for i, db := range loopDBs {
		loopRows = append(loopRows, []string{db.String(), fmt.Sprint(deployLoop), "**" + fmtSeconds(loops[i].Seconds()) + "**", fmtSeconds(loops[i].Seconds() / deployLoop)})
	}
	loopTable := mdTable("lrrr", []string{"database", "runs", "total", "per run"}, loopRows)
	m := func(i int) float64 { return median(cases[i].wall) }
	return fmt.Sprintf(deployText, fmtSeconds(m(3)), fmtSeconds(m(7)), fmtSeconds(m(6)), fmtSeconds(m(8)), deployLoop,
		fmtSeconds(loops[0].Seconds()), fmtSeconds(loops[1].Seconds()), runs, load0, load1, table,
		fmtSeconds(m(0)), fmtDelta(m(1)-m(0)), fmtDelta(m(3)-m(1)), fmtDelta(m(4)-m(3)), fmtDelta(m(5)-m(4)), deployLoop, loopTable)
}

// fmtDelta formats a difference of seconds, which noise can make negative.
func fmtDelta(s float64) string {
	if s < 0 {
		return "−" + fmtSeconds(-s)
	}
	return fmtSeconds(s)
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
