package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
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
	trusts      int
	seedUsers   int
	seedLatency time.Duration
	seedRounds  int
}

func defaultConfig() config {
	return config{
		duration:    5 * time.Second,
		rounds:      2,
		trusts:      500,
		seedUsers:   200,
		seedLatency: 5 * time.Millisecond,
		seedRounds:  5,
	}
}

// env is what every section shares: the configuration, the server, the
// scratch databases to drop at the end, and facts about the machine.
type env struct {
	cfg       config
	serverURL string
	admin     *sql.DB // on the server's own database, for CREATE and DROP DATABASE
	command   string  // how this run was started, for the report

	mu      sync.Mutex
	scratch map[string]bool // databases to drop
	prefix  string          // flip_bench_<random>_

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
		scratch:   map[string]bool{},
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
	e.scratch[name] = true
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

// withClone copies template into a fresh database, runs fn on it, and drops
// it.
func (e *env) withClone(ctx context.Context, template, what string, fn func(dbURL string) error) error {
	var (
		name, dbURL string
		err         error
	)
	// A template must have no session; the previous user's backend may take
	// a moment to exit after its connection closed.
	for attempt := 0; ; attempt++ {
		name, dbURL, err = e.createDB(ctx, what+"_"+uuid.NewString()[:8], template)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := e.dropDB(name); err != nil {
			log.Printf("drop %s: %v", name, err)
		}
	}()
	return fn(dbURL)
}

// dropDB drops a scratch database now rather than at close.
func (e *env) dropDB(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`)
	if err == nil {
		e.mu.Lock()
		delete(e.scratch, name)
		e.mu.Unlock()
	}
	return err
}

// close drops every scratch database left.
func (e *env) close() {
	e.mu.Lock()
	left := slices.Collect(maps.Keys(e.scratch))
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
	return "# flip benchmarks\n\n" +
		"Generated by the `bench/` command; do not edit by hand. Each section below says when it was measured and the command\n" +
		"that produced it; `make bench` (or `go run ./bench`, from the repository root) reproduces the whole file, and\n" +
		"`go run ./bench -only <section>` one section, keeping the others. The machine is shared and noisy, so\n" +
		"comparisons are taken as ratios within one run, never across runs. Performance only: the reliability suite\n" +
		"(`make reliability`), fuzzing (`make fuzz`) and the supply-chain scan (`make supplychain`) print their own reports.\n\n" +
		"Machine of the latest run:\n\n" + strings.Join(e.machine, "\n") + "\n"
}

var cpuModelRE = regexp.MustCompile(`(?m)^model name\s*:\s*(.*)$`)

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	if m := cpuModelRE.FindSubmatch(data); m != nil {
		return string(m[1])
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
