// Command bench measures flip's performance on this machine and writes the
// figures, the machine and the command to BENCHMARKS.md: go run ./bench
// [-only registration,verify,revocation,seeding,deploy] from the repository
// root (a few minutes for all). It needs PostgreSQL at DATABASE_URL (a URL;
// by default the local server, as fliptest.ServerURL) with a role that may
// create databases, pgbench, for seeding node and npm (or
// COGNITO_LOCAL_URL), and for deploy the go command (it builds
// examples/register-trust). The flip_bench_* databases it creates are
// dropped before it exits, even on Ctrl-C. Each section is a block between
// <!-- bench:KEY --> markers, so that -only replaces its own and keeps the
// others.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", pgx's database/sql driver, measured beside lib/pq and pgx native
	_ "github.com/lib/pq"              // "postgres", the admin connection and the first driver measured
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb"
	"github.com/londonaicentre/flip/store"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// section is one part of BENCHMARKS.md; key is for -only and the markers.
type section struct {
	key, title string
	run        func(ctx context.Context, e *env) (string, error)
}

// sections run, and appear in BENCHMARKS.md, in this order.
var sections = []section{
	{"registration", "Registration throughput", runRegistration},
	{"verify", "Key verification", runVerify},
	{"revocation", "Revocation", runRevocation},
	{"seeding", "Seeding", runSeeding},
	{"deploy", "Deploy cost", runDeploy},
}

type config struct {
	out, only             string
	duration, seedLatency time.Duration
	callers               []int // the levels of concurrency the registration goals are set at
	rounds, trusts        int
	seedUsers, seedRounds int
	revocationTrials      int
	deployRuns            int
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	cfg := config{duration: 5 * time.Second, callers: []int{1, 4, 16}, rounds: 2, trusts: 500, seedUsers: 200, seedLatency: 5 * time.Millisecond, seedRounds: 5, revocationTrials: 300, deployRuns: 50}
	flag.StringVar(&cfg.out, "out", "BENCHMARKS.md", "file to write")
	flag.StringVar(&cfg.only, "only", "", "comma-separated sections to run (registration, verify, revocation, seeding, deploy); the file keeps the others")
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "how long each throughput run lasts (whole seconds: pgbench -T)")
	flag.IntVar(&cfg.rounds, "rounds", cfg.rounds, "throughput rounds per level; the median is reported")
	flag.IntVar(&cfg.trusts, "trusts", cfg.trusts, "trusts already registered in the registration template")
	flag.IntVar(&cfg.seedUsers, "seed-users", cfg.seedUsers, "main users per seeding run (1 to 1000)")
	flag.DurationVar(&cfg.seedLatency, "seed-latency", cfg.seedLatency, "latency the fault proxy adds to every Cognito request while seeding")
	flag.IntVar(&cfg.seedRounds, "seed-rounds", cfg.seedRounds, "seeding rounds per concurrency level; the median is reported")
	flag.IntVar(&cfg.revocationTrials, "revocation-trials", cfg.revocationTrials, "key changes timed in the revocation section")
	flag.IntVar(&cfg.deployRuns, "deploy-runs", cfg.deployRuns, "timed register-trust runs per case in the deploy section; the median is reported")
	flag.Parse()
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

func run(cfg config) error {
	chosen, err := cfg.check()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()
	blocks := map[string]string{}
	var failed []string
	for _, s := range chosen {
		log.Printf("section %s", s.key)
		start := time.Now()
		body, err := s.run(ctx, e)
		if ctx.Err() != nil {
			return ctx.Err()
		} else if err != nil {
			failed = append(failed, s.key)
			log.Printf("section %s failed: %v", s.key, err)
			body += fmt.Sprintf("\n**This section failed:** `%s`\n", oneLine(err.Error()))
		}
		blocks[s.key] = fmt.Sprintf("## %s\n\n_Measured %s with `%s` (%s)._\n\n%s", s.title,
			start.UTC().Format("2006-01-02 15:04 MST"), e.command, time.Since(start).Round(time.Second), strings.TrimSpace(body))
	}
	if err := writeReport(cfg.out, e.header, blocks); err != nil {
		return err
	}
	log.Printf("wrote %s", cfg.out)
	if len(failed) > 0 {
		return fmt.Errorf("sections failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

var blockRE = regexp.MustCompile(`(?s)<!-- bench:([a-z0-9_-]+) -->\n(.*?)\n<!-- /bench:([a-z0-9_-]+) -->`)

// writeReport writes the header and the new blocks, and keeps the file's
// blocks of the other sections (dropping those of sections gone).
func writeReport(path, header string, blocks map[string]string) error {
	if prev, err := os.ReadFile(path); err == nil {
		for _, m := range blockRE.FindAllStringSubmatch(string(prev), -1) {
			if _, ok := blocks[m[1]]; !ok && m[1] == m[3] {
				blocks[m[1]] = m[2]
			}
		}
	}
	var b strings.Builder
	b.WriteString(header)
	for _, s := range sections {
		if body, ok := blocks[s.key]; ok {
			fmt.Fprintf(&b, "\n<!-- bench:%s -->\n%s\n<!-- /bench:%s -->\n", s.key, strings.TrimSpace(body), s.key)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// check validates the flags and returns the sections to run.
func (c *config) check() ([]section, error) {
	if _, err := os.Stat("go.mod"); err != nil {
		return nil, errors.New("run it from the repository root (where go.mod is): go run ./bench")
	} else if c.seedUsers < 1 || c.seedUsers > 1000 || c.seedRounds < 1 || c.rounds < 1 || c.revocationTrials < 1 || c.deployRuns < 1 || c.seedLatency < 0 || c.trusts < 0 {
		return nil, errors.New("-seed-users wants 1 to 1000; -seed-rounds, -rounds, -revocation-trials and -deploy-runs at least 1; -seed-latency and -trusts not negative")
	} else if c.duration < time.Second || c.duration%time.Second != 0 {
		return nil, fmt.Errorf("-duration %v: want whole seconds, at least one", c.duration)
	} else if c.only == "" {
		return sections, nil
	}
	var chosen []section
	for _, k := range strings.Split(c.only, ",") {
		i := slices.IndexFunc(sections, func(s section) bool { return s.key == strings.TrimSpace(k) })
		if i < 0 {
			return nil, fmt.Errorf("-only %q: no such section (have registration, verify, revocation, seeding, deploy)", k)
		}
		chosen = append(chosen, sections[i])
	}
	return chosen, nil
}

// env is what every section shares.
type env struct {
	cfg     config
	server  *url.URL
	admin   *sql.DB  // on the server's own database, for CREATE and DROP DATABASE
	command string   // how this run was started, for the report
	header  string   // of BENCHMARKS.md, with the machine
	prefix  string   // of every database this run creates: flip_bench_<random>_
	created []string // databases to drop at close
}

func newEnv(ctx context.Context, cfg config) (*env, error) {
	server, err := url.Parse(fliptest.ServerURL())
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL must be a postgres:// URL: %w", cmddb.RedactError(fliptest.ServerURL(), err))
	}
	if server.Scheme == "" {
		return nil, errors.New("DATABASE_URL must be a postgres:// URL, not a key=value connection string")
	}
	admin, err := sql.Open("postgres", server.String())
	if err != nil {
		return nil, err
	}
	admin.SetMaxOpenConns(2)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.PingContext(pingCtx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("PostgreSQL at %s: %w (set DATABASE_URL)", cmddb.Redact(server.String()), cmddb.RedactError(server.String(), err))
	}
	// The command that reproduces this run.
	command := "go run ./bench"
	for _, a := range os.Args[1:] {
		command += " " + map[bool]string{true: "'" + strings.ReplaceAll(a, "'", `'\''`) + "'", false: a}[strings.ContainsAny(a, " \t'\"$")]
	}
	if os.Getenv("DATABASE_URL") != "" {
		command = "DATABASE_URL=" + cmddb.Redact(server.String()) + " " + command
	}
	e := &env{cfg: cfg, server: server, admin: admin, command: command, prefix: fmt.Sprintf("flip_bench_%08x_", rand.Uint32())}
	e.header = e.describe(ctx)
	return e, nil
}

// createDB creates database prefix+suffix, from template when given.
func (e *env) createDB(ctx context.Context, suffix, template string) (name, dbURL string, err error) {
	name = e.prefix + suffix
	q := `CREATE DATABASE ` + quoteIdent(name)
	if template != "" {
		q += ` TEMPLATE ` + quoteIdent(template)
	} else { // withClone drops its clones itself
		e.created = append(e.created, name)
	}
	if _, err := e.admin.ExecContext(ctx, q); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	u := *e.server
	u.Path = "/" + name
	return name, u.String(), nil
}

// createMigratedDB creates a database at the latest migration, open with
// lib/pq; the caller closes db.
func (e *env) createMigratedDB(ctx context.Context, suffix string) (name string, db *sql.DB, err error) {
	name, dbURL, err := e.createDB(ctx, suffix, "")
	if err == nil {
		db, err = sql.Open("postgres", dbURL)
	}
	if err == nil {
		if err = store.Migrate(ctx, db); err != nil {
			db.Close()
		}
	}
	return name, db, err
}

// withClone runs fn on a fresh copy of template, then drops it.
func (e *env) withClone(ctx context.Context, template string, fn func(dbURL string) error) error {
	suffix := fmt.Sprintf("clone_%d", time.Now().UnixNano())
	name, dbURL, err := e.createDB(ctx, suffix, template)
	// A template must have no session; the previous user's backend may take
	// a moment to exit after its connection closed.
	for attempt := 0; err != nil && attempt < 20 && strings.Contains(err.Error(), "being accessed by other users"); attempt++ {
		time.Sleep(250 * time.Millisecond)
		name, dbURL, err = e.createDB(ctx, suffix, template)
	}
	if err != nil {
		return err
	}
	defer e.dropDB(name)
	return fn(dbURL)
}

func (e *env) dropDB(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
		log.Printf("drop %s: %v (drop it by hand)", name, err)
	}
}

// close drops the databases withClone did not.
func (e *env) close() {
	for _, name := range e.created {
		e.dropDB(name)
	}
	e.admin.Close()
}

// describe is the file's header, with the machine of this run.
func (e *env) describe(ctx context.Context) string {
	var version, settings string
	if err := e.admin.QueryRowContext(ctx, `SELECT version(), (SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
		FROM pg_settings WHERE name IN ('max_connections', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size'))`).Scan(&version, &settings); err != nil {
		version = "unknown: " + err.Error()
	}
	return "# flip benchmarks\n\nGenerated by the `bench/` command; do not edit by hand. Each section below says when it was measured and the command\n" +
		"that produced it; `make bench` (or `go run ./bench`, from the repository root) reproduces the whole file, and\n`go run ./bench -only <section>` one section, keeping the others. The machine is shared and noisy, so\n" +
		"comparisons are taken as ratios within one run, never across runs. Performance only: the reliability suite\n(`make reliability`), fuzzing (`make fuzz`) and the supply-chain scan (`make supplychain`) print their own reports.\n\n" +
		fmt.Sprintf("Machine of the latest run:\n\n- CPUs: %s (nproc), GOMAXPROCS %d; %s\n- Go: %s\n- PostgreSQL: %s\n- PostgreSQL settings: %s\n- pgbench: %s\n- Kernel: %s\n"+
			"- Load average at start (1/5/15 min): %s\n- Database: %s (the server runs on this machine)\n", output("nproc"), runtime.GOMAXPROCS(0),
			output("sh", "-c", "grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-"), output("go", "version"), version, settings,
			output("pgbench", "--version"), output("uname", "-sr"), output("cut", "-d ", "-f1-3", "/proc/loadavg"), cmddb.Redact(e.server.String()))
}

// output is a command's standard output, trimmed, or why it failed.
func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return fmt.Sprintf("(%s: %v)", name, err)
	}
	return strings.TrimSpace(string(out))
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// mdTable renders a Markdown table; align has one letter per column, l or r.
func mdTable(align string, head []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for _, a := range align {
		b.WriteString(map[rune]string{'l': "---|", 'r': "---:|"}[a])
	}
	for _, r := range rows {
		b.WriteString("\n| " + strings.Join(r, " | ") + " |")
	}
	return b.String() + "\n"
}

// interleave runs each of n measurements once per round, the order turning
// by one each round so that none always goes first or last.
func interleave(rounds, n int, run func(round, i int) error) error {
	for round := range rounds {
		for k := range n {
			if err := run(round, (k+round)%n); err != nil {
				return err
			}
		}
	}
	return nil
}

// processCPU is the user + system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// medianOf is the median of f over xs (0 for none).
func medianOf[T any](xs []T, f func(T) float64) float64 {
	vs := make([]float64, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	if slices.Sort(vs); len(vs) == 0 {
		return 0
	}
	return (vs[(len(vs)-1)/2] + vs[len(vs)/2]) / 2
}

func median(xs []float64) float64 { return medianOf(xs, func(x float64) float64 { return x }) }

// ratios is the median of the per-round ratios f(num[i]) ÷ f(den[i]).
func ratios[T any](num, den []T, f func(T) float64) float64 {
	var xs []float64
	for i := range min(len(num), len(den)) {
		if d := f(den[i]); d > 0 {
			xs = append(xs, f(num[i])/d)
		}
	}
	return median(xs)
}

// thousands formats x rounded, with a comma every three digits.
func thousands(x float64) string { return message.NewPrinter(language.English).Sprintf("%.0f", x) }

// fmtSeconds formats seconds with a unit that keeps three digits or more.
func fmtSeconds(s float64) string {
	switch {
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.2f ms", s*1e3)
	case s >= 1e-6:
		return fmt.Sprintf("%.1f µs", s*1e6)
	}
	return fmt.Sprintf("%.0f ns", s*1e9)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return strings.ReplaceAll(s, "`", "'")
}

// callerHeads are the column heads of a table with a column per level.
func callerHeads(first []string, callers []int) []string {
	for _, c := range callers {
		first = append(first, fmt.Sprintf("%d caller%s", c, map[bool]string{true: "s"}[c != 1]))
	}
	return first
}

func joinInts(xs []int, sep string) string {
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(xs)), sep), "[]")
}
