package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// A throughput runner registers trusts with some number of concurrent
// callers for a fixed time on a fresh copy of the same database.
type runner struct {
	name string // column heading
	// vs names the pgbench runners a flip runner is compared with; the
	// first is the yardstick of the target.
	vs  []string
	run func(ctx context.Context, dbURL string, callers int, d time.Duration) (runResult, error)
}

type runResult struct {
	registrations int64
	rate          float64 // registrations per second
	latency       time.Duration
	cpu           time.Duration // client CPU (user + system) per registration
}

const (
	pgbenchPrepared = "pgbench -M prepared"
	pgbenchExtended = "pgbench -M extended"
)

// flipDrivers are the database/sql drivers RegisterTrustDB is measured on,
// and the pgbench runs each is compared with: -M prepared, the yardstick,
// and for lib/pq also -M extended, which speaks the protocol lib/pq speaks.
var flipDrivers = []struct {
	label, driver, note string
	dsnParams           string // appended to the database URL's query
	vs                  []string
}{
	{"flip, lib/pq", "postgres", "sends every statement with parameters as an unnamed statement, which the server parses and plans at every call, in two round trips: Parse/Describe/Sync (lib/pq waits for the parameter and row descriptions), then Bind/Execute/Sync. pgbench -M extended sends the same unnamed statement in one", "", []string{pgbenchPrepared, pgbenchExtended}},
	{"flip, lib/pq binary_parameters=yes", "postgres", "the same driver with `binary_parameters=yes` appended to the connection URL. lib/pq then sends Parse, Bind, Describe (portal), Execute and Sync together and reads the answers once: one round trip per statement, still an unnamed statement parsed and planned at every call, exactly what pgbench -M extended does. (The option's documented effect, sending `[]byte` arguments in binary format, does not arise: the store passes strings, UUIDs and times, which go as text either way; the server infers every parameter's type from the statement in both modes.) A one-line configuration change for a hub that keeps lib/pq", "binary_parameters=yes", []string{pgbenchPrepared, pgbenchExtended}},
	{"flip, pgx", "pgx", "pgx's `database/sql` driver prepares each statement once per connection and caches it (one round trip per execution), as pgbench -M prepared does", "", []string{pgbenchPrepared}},
}

// withParams adds connection parameters ("k=v&k2=v2") to a database URL,
// or to a key=value connection string.
func withParams(dsn, params string) string {
	switch {
	case params == "":
		return dsn
	case !strings.Contains(dsn, "://"):
		return dsn + " " + strings.ReplaceAll(params, "&", " ")
	case strings.Contains(dsn, "?"):
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

func runRegistration(ctx context.Context, e *env) (string, error) {
	if !pgbenchOK() {
		return "", errors.New("pgbench is not on PATH (it comes with the PostgreSQL client package)")
	}
	d := e.cfg.duration
	// Enough free slots that no run comes near the end of the pool: 8,000
	// registrations a second would still leave some.
	slots := max(30_000, 8_000*int(d/time.Second))

	log.Printf("registration: template database with %d slots", slots)
	tmpl, err := prepareTemplate(ctx, e, slots)
	if err != nil {
		return "", err
	}

	// The pgbench script, from one recorded registration.
	var (
		stmts []recordedStmt
		p     probe
	)
	err = e.withClone(ctx, tmpl, "probe", func(dbURL string) error {
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			return err
		}
		defer db.Close()
		stmts, p, err = recordRegistration(ctx, db)
		return err
	})
	if err != nil {
		return "", err
	}
	script, err := pgbenchScript(stmts, p)
	if err != nil {
		return "", err
	}

	// Allocations per registration.
	log.Printf("registration: allocations")
	libAllocs, libBytes, libCPU := libraryAllocs()
	type allocRow struct {
		label           string
		allocs, bytes   float64
		driverStatement string
	}
	allocRows := []allocRow{{"RegisterTrust alone (a store that does nothing)", libAllocs, libBytes, ""}}
	for _, fd := range flipDrivers {
		var a, b float64
		err := e.withClone(ctx, tmpl, "allocs", func(dbURL string) error {
			var err error
			a, b, err = endToEndAllocs(ctx, fd.driver, withParams(dbURL, fd.dsnParams), 1000)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("allocations with %s: %w", fd.driver, err)
		}
		allocRows = append(allocRows, allocRow{"RegisterTrustDB, " + strings.TrimPrefix(fd.label, "flip, "), a, b, ""})
	}

	// Throughput, interleaved: every level runs each runner once per round
	// before the next level, and the order of the runners turns by one at
	// each level so that none always goes first or last.
	var runners []runner
	for _, fd := range flipDrivers {
		runners = append(runners, runner{name: fd.label, vs: fd.vs,
			run: func(ctx context.Context, dbURL string, callers int, d time.Duration) (runResult, error) {
				return flipThroughput(ctx, fd.driver, withParams(dbURL, fd.dsnParams), callers, d)
			}})
	}
	for _, mode := range []string{"prepared", "extended"} {
		runners = append(runners, runner{name: "pgbench -M " + mode,
			run: func(ctx context.Context, dbURL string, callers int, d time.Duration) (runResult, error) {
				r, err := runPgbench(ctx, mode, script, dbURL, callers, d)
				var cpu time.Duration
				if r.processed > 0 {
					cpu = r.cpu / time.Duration(r.processed)
				}
				return runResult{registrations: r.processed, rate: r.tps, latency: r.latency, cpu: cpu}, err
			}})
	}
	runnerIdx := func(name string) int { return slices.IndexFunc(runners, func(r runner) bool { return r.name == name }) }
	type ratioKey struct {
		level      int
		flip, base string
	}

	levels := e.cfg.callers
	results := make(map[[2]int][]runResult) // (level index, runner index) → one per round
	ratios := make(map[ratioKey][]float64)  // flip/pgbench per round
	for round := range e.cfg.rounds {
		for li, callers := range levels {
			order := make([]int, len(runners))
			for i := range order {
				order[i] = (i + li + round) % len(runners)
			}
			roundRes := make(map[int]runResult)
			for _, ri := range order {
				r := runners[ri]
				log.Printf("registration: round %d, %d callers, %s", round+1, callers, r.name)
				var res runResult
				err := e.withClone(ctx, tmpl, "run", func(dbURL string) error {
					e.checkpoint(ctx)
					var err error
					res, err = r.run(ctx, dbURL, callers, d)
					if err != nil {
						return err
					}
					return verifyRun(ctx, dbURL, res.registrations, len(r.vs) == 0)
				})
				if err != nil {
					return "", fmt.Errorf("%s with %d callers: %w", r.name, callers, err)
				}
				log.Printf("registration:   %.0f registrations/s", res.rate)
				roundRes[ri] = res
				results[[2]int{li, ri}] = append(results[[2]int{li, ri}], res)
			}
			for ri, r := range runners {
				for _, base := range r.vs {
					if b := roundRes[runnerIdx(base)]; b.rate > 0 {
						k := ratioKey{li, r.name, base}
						ratios[k] = append(ratios[k], roundRes[ri].rate/b.rate)
					}
				}
			}
		}
	}

	// The report, headline first: the ratios at the most callers.
	var b strings.Builder
	top := len(levels) - 1
	var heads []string
	for _, r := range runners {
		for _, base := range r.vs {
			heads = append(heads, fmt.Sprintf("%s %.2f× %s", r.name, median(ratios[ratioKey{top, r.name, base}]), base))
		}
	}
	fmt.Fprintf(&b, "**At %d callers: %s.**\n\n", levels[top], strings.Join(heads, "; "))
	fmt.Fprintf(&b, "Registrations per second, each in its own transaction, with 1 to %d concurrent callers on as many connections, ", levels[len(levels)-1])
	fmt.Fprintf(&b, "%s per run, %d round(s)%s. Every run starts from a fresh copy of one template database (flip's schema at migration %d, ",
		d, e.cfg.rounds, map[bool]string{true: " (median shown)", false: ""}[e.cfg.rounds > 1], store.LatestVersion())
	fmt.Fprintf(&b, "%s free kit slots `Bench_000001`…, no trusts) after a CHECKPOINT, and is checked afterwards: as many trusts as reported, each with one slot and one audit row.\n\n", thousands(float64(slots)))

	b.WriteString("| callers |")
	for _, r := range runners {
		fmt.Fprintf(&b, " %s |", r.name)
	}
	for _, r := range runners {
		for _, base := range r.vs {
			fmt.Fprintf(&b, " %s / %s |", strings.TrimPrefix(r.name, "flip, "), base)
		}
	}
	b.WriteString("\n|---:|")
	for _, r := range runners {
		b.WriteString("---:|")
		for range r.vs {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for li, callers := range levels {
		fmt.Fprintf(&b, "| %d |", callers)
		for ri := range runners {
			rs := results[[2]int{li, ri}]
			rates := make([]float64, len(rs))
			lats := make([]float64, len(rs))
			for i, r := range rs {
				rates[i], lats[i] = r.rate, float64(r.latency)
			}
			fmt.Fprintf(&b, " %s/s (%.2f ms) |", thousands(median(rates)), median(lats)/float64(time.Millisecond))
		}
		for _, r := range runners {
			for i, base := range r.vs {
				ratio := median(ratios[ratioKey{li, r.name, base}])
				mark := ""
				if callers == 16 && i == 0 {
					mark = map[bool]string{true: " (target ≥ 0.8 met)", false: " (target ≥ 0.8 missed)"}[ratio >= 0.8]
				}
				fmt.Fprintf(&b, " **%.2f**%s |", ratio, mark)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nClient CPU per registration (user + system time of the measuring process, or of pgbench, over the run, divided by the registrations; the server's CPU comes on top and competes for the same cores):\n\n| callers |")
	for _, r := range runners {
		fmt.Fprintf(&b, " %s |", r.name)
	}
	b.WriteString("\n|---:|")
	for range runners {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for li, callers := range levels {
		fmt.Fprintf(&b, "| %d |", callers)
		for ri := range runners {
			var cpus []float64
			for _, r := range results[[2]int{li, ri}] {
				cpus = append(cpus, float64(r.cpu))
			}
			fmt.Fprintf(&b, " %.0f µs |", median(cpus)/float64(time.Microsecond))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nIn the first table, in brackets: mean latency of one registration (pgbench's own figure; for flip, callers × elapsed / registrations). Ratios are taken within each round, between runs minutes apart at most, and their median shown. The target is flip at least 0.8 × pgbench -M prepared at 16 callers.\n\n")

	// lib/pq with and without binary_parameters, round by round.
	if plain, bin := runnerIdx("flip, lib/pq"), runnerIdx("flip, lib/pq binary_parameters=yes"); plain >= 0 && bin >= 0 {
		var parts []string
		for li, callers := range levels {
			p, q := results[[2]int{li, plain}], results[[2]int{li, bin}]
			var rs []float64
			for i := range min(len(p), len(q)) {
				if p[i].rate > 0 {
					rs = append(rs, q[i].rate/p[i].rate)
				}
			}
			parts = append(parts, fmt.Sprintf("%.2f× at %d caller%s", median(rs), callers, map[bool]string{true: "", false: "s"}[callers == 1]))
		}
		fmt.Fprintf(&b, "lib/pq with `binary_parameters=yes` against without (registrations per second, median of the per-round ratios): %s. ", strings.Join(parts, ", "))
		b.WriteString("The option sends each statement with parameters in one round trip instead of two (five of the nine statements a registration sends; BEGIN, SAVEPOINT, RELEASE and COMMIT go as simple queries, one round trip each, in every mode): 9 round trips per registration instead of 14, and fewer messages, system calls and wake-ups on both sides. Over loopback a round trip costs little time, but on cores shared by the client and the server the work saved counts too (compare the client CPU of the two lib/pq columns). What stays is the server parsing and planning each statement at every call: that is what separates pgbench -M extended from -M prepared, and what pgx's statement cache saves. Across a network, where each round trip costs more, the option saves more.\n\n")
	}

	b.WriteString("How it is measured:\n\n")
	b.WriteString("- **flip**: `RegisterTrustDB` (BEGIN, `RegisterTrust`, COMMIT) in a loop from each of N goroutines, sharing a `database/sql` pool of exactly N connections, all opened before the clock starts (as pgbench excludes its connection time). Default `store.New()` and key minter, a distinct name and code per call, audited as an admin. Registrations per second = completed registrations / time until the last caller finished.\n")
	for _, fd := range flipDrivers {
		fmt.Fprintf(&b, "  - %s: %s.\n", fd.label, fd.note)
	}
	fmt.Fprintf(&b, "- **pgbench**: `pgbench %s -f <script> <database>` with N = callers and -M prepared or extended, on the same kind of fresh database. The script is generated at every run from the statements one real `RegisterTrust` sent (each statement with parameters checked to be one of %s), wrapped in BEGIN … COMMIT; the arguments that differ per registration (name, code, trust id, key hash, audit id, times) become expressions over pgbench's `:client_id` and a random number, computed by the server.\n",
		"-n -M <mode> -c N -j N -T "+fmt.Sprint(int(d/time.Second)), strings.Join(sortedStatementNames(), ", "))
	b.WriteString("- Both sides run on this machine's cores together with the server; flip's side also pays for Go, `database/sql`, the driver, key minting (crypto/rand, SHA-256) and the garbage collector.\n\n")

	b.WriteString("Allocations per registration (Go heap, `runtime.MemStats` over 1,000 sequential registrations after a warm-up; for the library alone `testing.AllocsPerRun`):\n\n")
	b.WriteString("| what | allocations | bytes |\n|---|---:|---:|\n")
	for _, r := range allocRows {
		fmt.Fprintf(&b, "| %s | %.0f | %s |\n", r.label, r.allocs, thousands(r.bytes))
	}
	fmt.Fprintf(&b, "\nRegisterTrust alone (validation, two keys minted from crypto/rand and encoded, one SHA-256, ids, the no-op store's calls) costs %.1f µs of CPU per registration; the rest of the client CPU above is `database/sql`, the driver, the network and the runtime.\n", float64(libCPU)/float64(time.Microsecond))
	b.WriteString("\n<details><summary>The generated pgbench script</summary>\n\n```sql\n")
	b.WriteString(script)
	b.WriteString("```\n\n</details>\n")
	return b.String(), nil
}

// prepareTemplate creates the database every run is copied from: migrated,
// with slots free kit slots, vacuumed and analysed.
func prepareTemplate(ctx context.Context, e *env, slots int) (string, error) {
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
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
		return "", fmt.Errorf("vacuum template: %w", err)
	}
	return name, db.Close()
}

// flipThroughput runs RegisterTrustDB from callers goroutines for d.
func flipThroughput(ctx context.Context, driverName, dbURL string, callers int, d time.Duration) (runResult, error) {
	db, err := sql.Open(driverName, dbURL)
	if err != nil {
		return runResult{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(callers)
	db.SetMaxIdleConns(callers)
	// Open every connection before the clock starts.
	held := make([]*sql.Conn, callers)
	for i := range held {
		c, err := db.Conn(ctx)
		if err == nil {
			err = c.PingContext(ctx)
		}
		if err != nil {
			return runResult{}, fmt.Errorf("open connection %d: %w", i+1, err)
		}
		held[i] = c
	}
	for _, c := range held {
		c.Close()
	}

	reg := flip.NewRegistry(store.New())
	var (
		done     atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
		start    = make(chan struct{})
		deadline time.Time
	)
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; time.Now().Before(deadline); i++ {
				_, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{
					Name: fmt.Sprintf("bench %d-%d", w, i), Code: fmt.Sprintf("b%d-%d", w, i), AuditUserID: benchAuditUser,
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	cpu0 := processCPU()
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	cpu := processCPU() - cpu0
	if firstErr != nil {
		return runResult{}, firstErr
	}
	n := done.Load()
	if n == 0 {
		return runResult{}, errors.New("no registration completed")
	}
	return runResult{
		registrations: n,
		rate:          float64(n) / elapsed.Seconds(),
		latency:       time.Duration(float64(elapsed) * float64(callers) / float64(n)),
		cpu:           cpu / time.Duration(n),
	}, nil
}

// verifyRun checks a run's database: every reported registration is there
// (pgbench may have completed a few more than it counted when its clock
// ran out), each trust holds one slot and one audit row, and the pool did
// not run dry.
func verifyRun(ctx context.Context, dbURL string, reported int64, atLeast bool) error {
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var trusts, broken, free int64
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM trust),
		(SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id = t.id) <> 1
		                                 OR (SELECT count(*) FROM trusts_audit a WHERE a.trust_id = t.id AND a.action = 'REGISTERED') <> 1),
		(SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL)`).Scan(&trusts, &broken, &free)
	switch {
	case err != nil:
		return fmt.Errorf("verify: %w", err)
	case broken != 0:
		return fmt.Errorf("verify: %d trusts without exactly one slot and one audit row", broken)
	case free == 0:
		return errors.New("verify: the kit slot pool ran dry; the figures are not valid")
	case trusts < reported || !atLeast && trusts != reported:
		return fmt.Errorf("verify: %d trusts in the database, %d registrations reported", trusts, reported)
	}
	return nil
}

// endToEndAllocs measures the Go heap allocations of RegisterTrustDB over
// n sequential registrations on one connection.
func endToEndAllocs(ctx context.Context, driverName, dbURL string, n int) (allocs, bytes float64, err error) {
	db, err := sql.Open(driverName, dbURL)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	reg := flip.NewRegistry(store.New())
	const warm = 100
	params := make([]flip.TrustParams, warm+n)
	for i := range params {
		params[i] = flip.TrustParams{Name: fmt.Sprintf("alloc %d", i), Code: fmt.Sprintf("a%d", i), AuditUserID: benchAuditUser}
	}
	for _, p := range params[:warm] {
		if _, err := reg.RegisterTrustDB(ctx, db, p); err != nil {
			return 0, 0, err
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, p := range params[warm:] {
		if _, err := reg.RegisterTrustDB(ctx, db, p); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n), nil
}

// libraryAllocs measures RegisterTrust itself, with a store that does
// nothing: validation, key minting, hashing, ids, errors and logging calls.
func libraryAllocs() (allocs, bytes float64, perOp time.Duration) {
	reg := flip.NewRegistry(nopStore{})
	ctx := context.Background()
	p := flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT", Region: "London", AuditUserID: benchAuditUser}
	run := func() {
		if _, err := reg.RegisterTrust(ctx, nopTx{}, p); err != nil {
			panic(err)
		}
	}
	allocs = testing.AllocsPerRun(2000, run)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU()
	for range 2000 {
		run()
	}
	cpu := processCPU() - cpu0
	runtime.ReadMemStats(&after)
	return allocs, float64(after.TotalAlloc-before.TotalAlloc) / 2000, cpu / 2000
}

// nopStore is a flip.Store whose every statement succeeds at once. The
// embedded interface keeps it compiling if the interface grows; a new
// method would panic here, and the measurement with it.
type nopStore struct{ flip.Store }

type nopSavepoint struct{}

func (nopSavepoint) Release(context.Context) error  { return nil }
func (nopSavepoint) Rollback(context.Context) error { return nil }

func (nopStore) Savepoint(context.Context, flip.DBTX) (flip.Savepoint, error) {
	return nopSavepoint{}, nil
}
func (nopStore) LockTrustIdentity(context.Context, flip.DBTX, string, string) error { return nil }
func (nopStore) FindDuplicate(context.Context, flip.DBTX, string, string) (*flip.Trust, string, error) {
	return nil, "", nil
}
func (nopStore) InsertTrust(context.Context, flip.DBTX, flip.Trust, string) error { return nil }
func (nopStore) InsertAudit(context.Context, flip.DBTX, flip.TrustAudit) error    { return nil }
func (nopStore) ClaimSlot(_ context.Context, _ flip.DBTX, id uuid.UUID, at time.Time) (flip.KitSlot, error) {
	return flip.KitSlot{Name: "Trust_001", Number: 1, AssignedTo: id, AssignedAt: at}, nil
}

// nopTx stands for a transaction nothing is ever sent on.
type nopTx struct{}

func (nopTx) ExecContext(context.Context, string, ...any) (sql.Result, error) { return nil, nil }
func (nopTx) QueryContext(context.Context, string, ...any) (*sql.Rows, error) { return nil, nil }
func (nopTx) QueryRowContext(context.Context, string, ...any) *sql.Row        { return nil }
