package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", the second driver measured
	_ "github.com/lib/pq"              // "postgres", the admin connection and the first driver measured
	"github.com/londonaicentre/flip/store"
)

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

type config struct {
	out, only   string
	duration    time.Duration
	levelsFlag  string
	callers     []int
	rounds      int
	seedUsers   int
	seedLatency time.Duration
	seedRounds  int
}

func defaultConfig() config {
	return config{
		duration:    5 * time.Second,
		rounds:      2,
		seedUsers:   200,
		seedLatency: 5 * time.Millisecond,
		seedRounds:  5,
	}
}

func (c config) levels() ([]int, error) {
	var out []int
	for _, f := range strings.Split(c.levelsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-callers %q: want numbers from 1 to 64", c.levelsFlag)
		}
		out = append(out, n)
	}
	return out, nil
}

// env is what every section shares: the configuration, the server, the
// scratch databases to drop at the end, and facts about the machine.
type env struct {
	cfg       config
	serverURL string
	admin     *sql.DB // on the server's own database, for CREATE and DROP DATABASE
	command   string  // how this run was started, for the report

	mu      sync.Mutex
	scratch []string // databases to drop
	prefix  string   // flip_bench_<random>_

	machine []string // "key: value" lines for the header
}

func newEnv(ctx context.Context, cfg config) (*env, error) {
	server := os.Getenv("DATABASE_URL")
	if server == "" {
		server = defaultDatabaseURL
	}
	admin, err := sql.Open("postgres", server)
	if err != nil {
		return nil, err
	}
	admin.SetMaxOpenConns(2)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.PingContext(pingCtx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("PostgreSQL at %s: %w (set DATABASE_URL)", redact(server), err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := &env{
		cfg:       cfg,
		serverURL: server,
		admin:     admin,
		command:   commandLine(),
		prefix:    "flip_bench_" + hex.EncodeToString(b[:]) + "_",
	}
	e.machine = e.describeMachine(ctx)
	return e, nil
}

// commandLine is the command that reproduces this run.
func commandLine() string {
	args := append([]string{"go", "run", "./bench"}, os.Args[1:]...)
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"$") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	cmd := strings.Join(args, " ")
	if u := os.Getenv("DATABASE_URL"); u != "" && u != defaultDatabaseURL {
		cmd = "DATABASE_URL=" + redact(u) + " " + cmd
	}
	return cmd
}

// createDB creates a scratch database, from template when given, and
// remembers it for close.
func (e *env) createDB(ctx context.Context, suffix, template string) (name, dbURL string, err error) {
	name = e.prefix + suffix
	q := `CREATE DATABASE ` + quoteIdent(name)
	if template != "" {
		q += ` TEMPLATE ` + quoteIdent(template)
	}
	e.mu.Lock()
	e.scratch = append(e.scratch, name)
	e.mu.Unlock()
	if _, err := e.admin.ExecContext(ctx, q); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, databaseURL(e.serverURL, name), nil
}

// createMigratedDB creates an empty scratch database, opens it with lib/pq
// and brings it to the latest migration. The caller closes db; the
// database itself is dropped at close like every scratch database.
func (e *env) createMigratedDB(ctx context.Context, suffix string) (name string, db *sql.DB, err error) {
	name, dbURL, err := e.createDB(ctx, suffix, "")
	if err != nil {
		return "", nil, err
	}
	db, err = sql.Open("postgres", dbURL)
	if err != nil {
		return "", nil, err
	}
	if err := store.Migrate(ctx, db); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	return name, db, nil
}

// dropDB drops a scratch database now rather than at close.
func (e *env) dropDB(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`)
	if err == nil {
		e.mu.Lock()
		for i, s := range e.scratch {
			if s == name {
				e.scratch = append(e.scratch[:i], e.scratch[i+1:]...)
				break
			}
		}
		e.mu.Unlock()
	}
	return err
}

// close drops every scratch database left.
func (e *env) close() {
	e.mu.Lock()
	left := append([]string(nil), e.scratch...)
	e.mu.Unlock()
	for _, name := range left {
		if err := e.dropDB(name); err != nil {
			log.Printf("drop %s: %v (drop it by hand)", name, err)
		}
	}
	e.admin.Close()
}

// checkpoint flushes the server's dirty pages, so that one run does not pay
// for the previous one's writes.
func (e *env) checkpoint(ctx context.Context) {
	if _, err := e.admin.ExecContext(ctx, `CHECKPOINT`); err != nil {
		log.Printf("checkpoint: %v (continuing)", err)
	}
}

func (e *env) describeMachine(ctx context.Context) []string {
	var lines []string
	add := func(k, v string) { lines = append(lines, fmt.Sprintf("- %s: %s", k, v)) }
	add("CPUs", fmt.Sprintf("%s (nproc), GOMAXPROCS %d; %s", strings.TrimSpace(output("nproc")), runtime.GOMAXPROCS(0), cpuModel()))
	add("Go", strings.TrimSpace(output("go", "version")))
	var version string
	if err := e.admin.QueryRowContext(ctx, `SELECT version()`).Scan(&version); err != nil {
		version = "unknown: " + err.Error()
	}
	add("PostgreSQL", version)
	var settings string
	_ = e.admin.QueryRowContext(ctx, `SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings
		WHERE name IN ('max_connections', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_level', 'max_wal_size')`).Scan(&settings)
	add("PostgreSQL settings", settings)
	add("pgbench", strings.TrimSpace(output("pgbench", "--version")))
	add("Kernel", strings.TrimSpace(output("uname", "-sr")))
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		add("Load average at start (1/5/15 min)", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	add("Database", redact(e.serverURL)+" (the server runs on this machine)")
	return lines
}

func (e *env) header() string {
	var b strings.Builder
	b.WriteString("# flip benchmarks\n\n")
	b.WriteString("Generated by the `bench/` command; do not edit by hand. Each section below says when it was measured and the command\n")
	b.WriteString("that produced it; `make bench` (or `go run ./bench`, from the repository root) reproduces the whole file, and\n")
	b.WriteString("`go run ./bench -only <section>` one section, keeping the others. The machine is shared and noisy, so\n")
	b.WriteString("comparisons are taken as ratios within one run, never across runs. Performance only: the reliability suite\n")
	b.WriteString("(`make reliability`), fuzzing (`make fuzz`) and the supply-chain scan (`make supplychain`) print their own reports.\n\n")
	b.WriteString("Machine of the latest run:\n\n")
	b.WriteString(strings.Join(e.machine, "\n"))
	b.WriteString("\n")
	return b.String()
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// output runs a command and returns its standard output, or why it failed.
func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return fmt.Sprintf("(%s: %v)", name, err)
	}
	return string(out)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// databaseURL returns server with its database replaced by name.
func databaseURL(server, name string) string {
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		return server + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(DATABASE_URL)"
	}
	return u.Redacted()
}
