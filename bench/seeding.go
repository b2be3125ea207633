package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// Seeding: SeedMainUsers for N users, one lookup at a time against several
// in flight, looking them up in the cognito-local emulator through the
// fault proxy with latency added to every request; then the same seeding
// again, which must write nothing. The setup is that of
// BenchmarkSeedMainUsers (seed_bench_test.go), through the non-test entry
// points of internal/cognitolocal.

// seedLevels are the Seeder.Concurrency values measured against the
// emulator; the first is the baseline of the ratios.
var seedLevels = []int{1, flip.DefaultSeedConcurrency, 16}

// seedResult is one timed run of one setup.
type seedResult struct {
	elapsed, reseed time.Duration
	lookups         int // requests the proxy saw for the first run
	firstWrites     rowChanges
	reseedWrites    rowChanges
}

// seedBench is what the seeding section measures with.
type seedBench struct {
	n       int
	latency time.Duration
	users   []flip.MainUser
	db      *sql.DB
	proxy   *cognitolocal.Proxy
	setups  []seedSetup
	results [][]seedResult // [setup][round]
}

func runSeeding(ctx context.Context, e *env) (string, error) {
	sb := &seedBench{n: e.cfg.seedUsers, latency: e.cfg.seedLatency, users: benchMainUsers(e.cfg.seedUsers)}
	emu, err := startEmulator(ctx)
	if err != nil {
		return "", err
	}
	defer emu.Stop()
	idp, err := sb.emulatorIdP(ctx, emu)
	if err != nil {
		return "", err
	}
	defer sb.proxy.Close()
	if _, sb.db, err = e.createMigratedDB(ctx, "seeding"); err != nil {
		return "", err
	}
	defer sb.db.Close()
	for _, c := range seedLevels {
		sb.setups = append(sb.setups, seedSetup{concurrency: c, idp: idp, emulator: true})
	}
	// The in-memory identity provider, for the floor the database sets.
	memIdP := fliptest.NewIdentityProvider()
	for _, u := range sb.users {
		memIdP.AddUser(u.Email)
	}
	sb.setups = append(sb.setups, seedSetup{concurrency: 1, idp: memIdP})

	// Warm-up (the emulator's JIT, the HTTP and database connections, the
	// roles), untimed.
	log.Printf("seeding: warm-up")
	if _, err := sb.seedOnce(ctx, sb.setups[1]); err != nil {
		return "", err
	}
	sb.results = make([][]seedResult, len(sb.setups))
	for round := range e.cfg.seedRounds {
		for _, i := range turned(len(sb.setups), round) {
			r, err := sb.seedOnce(ctx, sb.setups[i])
			if err != nil {
				return "", err
			}
			log.Printf("seeding: round %d, %s: %v (re-seed %v, %d rows changed)", round+1, sb.setups[i].label(), r.elapsed.Round(time.Millisecond), r.reseed.Round(time.Millisecond), r.reseedWrites.total())
			sb.results[i] = append(sb.results[i], r)
		}
	}
	return sb.report(e.cfg.seedRounds), nil
}

// startEmulator starts cognito-local (Start waits for its /health),
// unless COGNITO_LOCAL_URL names one already running.
func startEmulator(ctx context.Context) (*cognitolocal.Emulator, error) {
	emu := &cognitolocal.Emulator{URL: os.Getenv("COGNITO_LOCAL_URL")}
	if emu.URL == "" {
		log.Printf("seeding: starting cognito-local %s", cognitolocal.Version)
		startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		var err error
		if emu, err = cognitolocal.Start(startCtx); err != nil {
			return nil, fmt.Errorf("start the Cognito emulator (needs node and npm): %w", err)
		}
	}
	return emu, nil
}

// emulatorIdP creates a user pool holding the main users and returns the
// Cognito adapter reaching it through the fault proxy, which adds the
// latency.
func (sb *seedBench) emulatorIdP(ctx context.Context, emu *cognitolocal.Emulator) (flip.IdentityProvider, error) {
	admin := emu.Client()
	pool, err := cognitolocal.CreateUserPool(ctx, admin, "flip-bench-")
	if err != nil {
		return nil, fmt.Errorf("the Cognito emulator at %s: %w", emu.URL, err)
	}
	log.Printf("seeding: creating %d users in pool %s", sb.n, pool)
	for _, u := range sb.users {
		if _, err := cognitolocal.AddUser(ctx, admin, pool, u.Email); err != nil {
			return nil, err
		}
	}
	if sb.proxy, err = cognitolocal.StartProxy(emu.URL); err != nil {
		return nil, err
	}
	sb.proxy.SetLatency(sb.latency)
	// The emulator has no quota: measure flip, not the limiter.
	return cognito.New(cognitolocal.NewClient(sb.proxy.URL), pool, cognito.WithRateLimit(0, 0)), nil
}

// seedOnce seeds empty tables, then seeds again, timing both and counting
// the rows each wrote.
func (sb *seedBench) seedOnce(ctx context.Context, s seedSetup) (seedResult, error) {
	var r seedResult
	if _, err := sb.db.ExecContext(ctx, `TRUNCATE user_role, user_profile`); err != nil {
		return r, err
	}
	seeder := flip.NewSeeder(sb.users)
	seeder.Concurrency = s.concurrency
	lookups0 := sb.proxy.TotalLookups()
	var err error
	if r.elapsed, r.firstWrites, err = sb.timedSeed(ctx, seeder, s, false); err != nil {
		return r, err
	}
	r.lookups = sb.proxy.TotalLookups() - lookups0
	r.reseed, r.reseedWrites, err = sb.timedSeed(ctx, seeder, s, true)
	return r, err
}

// timedSeed runs the seeder once and checks its report: every user created
// on the first run, every user unchanged on a re-seed.
func (sb *seedBench) timedSeed(ctx context.Context, seeder *flip.Seeder, s seedSetup, reseed bool) (time.Duration, rowChanges, error) {
	before, err := rowVersions(ctx, sb.db)
	if err != nil {
		return 0, rowChanges{}, err
	}
	t0 := time.Now()
	report, err := seeder.SeedMainUsers(ctx, sb.db, s.idp)
	elapsed := time.Since(t0)
	what := map[bool]string{false: "seed", true: "re-seed"}[reseed]
	switch {
	case err != nil:
		return 0, rowChanges{}, fmt.Errorf("%s, %s: %w", what, s.label(), err)
	case !reseed && report.Count(flip.SeedCreated) != sb.n:
		return 0, rowChanges{}, fmt.Errorf("seed, %s: %s, want %d created", s.label(), report, sb.n)
	case reseed && (report.Count(flip.SeedUnchanged) != sb.n || report.Changed()):
		return 0, rowChanges{}, fmt.Errorf("re-seed, %s: %s, want %d unchanged", s.label(), report, sb.n)
	}
	after, err := rowVersions(ctx, sb.db)
	return elapsed, diffVersions(before, after), err
}

// speedups are the per-round ratios of one lookup at a time to setup i.
func (sb *seedBench) speedups(i int, f func(seedResult) time.Duration) float64 {
	xs := make([]float64, len(sb.results[i]))
	for round, r := range sb.results[i] {
		xs[round] = f(sb.results[0][round]).Seconds() / f(r).Seconds()
	}
	return median(xs)
}

func firstRun(r seedResult) time.Duration  { return r.elapsed }
func reseedRun(r seedResult) time.Duration { return r.reseed }

func (sb *seedBench) report(rounds int) string {
	n, latency := sb.n, sb.latency
	var firstWrites, reseedWrites rowChanges
	var runs, emuRuns, goodLookups int
	var heads, reheads []string
	var rows [][]string
	for i, s := range sb.setups {
		var w rowChanges
		for _, r := range sb.results[i] {
			runs++
			w, firstWrites = w.add(r.reseedWrites), firstWrites.add(r.firstWrites)
			if s.emulator {
				emuRuns++
				goodLookups += map[bool]int{true: 1}[r.lookups == n]
			}
		}
		reseedWrites = reseedWrites.add(w)
		el := time.Duration(medianOf(sb.results[i], func(r seedResult) float64 { return float64(r.elapsed) }))
		re := time.Duration(medianOf(sb.results[i], func(r seedResult) float64 { return float64(r.reseed) }))
		idpLabel := map[bool]string{true: fmt.Sprintf("emulator + %s", latency), false: "in memory"}[s.emulator]
		rows = append(rows, []string{idpLabel, s.concurrencyLabel(), el.Round(time.Millisecond).String(), thousands(float64(n) / el.Seconds()),
			fmt.Sprintf("**%.2f×**", sb.speedups(i, firstRun)), re.Round(time.Millisecond).String(), fmt.Sprintf("**%.2f×**", sb.speedups(i, reseedRun)), fmt.Sprintf("%d in %d runs", w.total(), len(sb.results[i]))})
		if i > 0 && s.emulator {
			heads = append(heads, fmt.Sprintf("%.2f× faster with %d lookups in flight", sb.speedups(i, firstRun), s.concurrency))
			reheads = append(reheads, fmt.Sprintf("%.2f× faster with %d", sb.speedups(i, reseedRun), s.concurrency))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**%d main users, %s added to every Cognito request, against one lookup at a time: first seeding %s; re-seeding %s. Re-seeding changed %d rows in %d runs.**\n\n",
		n, latency, strings.Join(heads, " and "), strings.Join(reheads, " and "), reseedWrites.total(), runs)
	fmt.Fprintf(&b, "Wall time of `Seeder.SeedMainUsers` for %d users on empty `user_profile` and `user_role` tables (the first seeding), each user looked up by email (`ListUsers`, `cognito.New` with the SDK's default retryer) in the cognito-local %s emulator through the fault proxy of `internal/cognitolocal`, which holds every request for %s before forwarding it; then the same Seeder again on the seeded tables (the re-seed). %d rounds, the setups interleaved (the order turning each round), median shown; each ratio is the median of the per-round ratios. ", n, cognitolocal.Version, latency, rounds)
	b.WriteString("The last row replaces the emulator with `fliptest.IdentityProvider` (in memory, instant): what the database alone costs.\n\n")
	b.WriteString(mdTable("lrrrrrrr", []string{"identity provider", "Concurrency", "first seeding", "users/s", "one at a time / this", "re-seed", "one at a time / this", "rows the re-seed changed"}, rows))
	fmt.Fprintf(&b, "\nThe injected latency alone sets a floor of %s × %d = %s one at a time and %s with 16 in flight. ",
		latency, n, (latency * time.Duration(n)).Round(time.Millisecond), (latency * time.Duration(n) / 16).Round(time.Millisecond))
	b.WriteString("Lookups run concurrently, but the Seeder applies the writes one user after another, in configuration order, each in its own transaction whose commit waits for the WAL flush (`synchronous_commit=on`): a first seeding cannot finish sooner than the in-memory row, however many lookups are in flight. A re-seed writes nothing, so its transactions commit without a flush and it shows what concurrent lookups buy. ")
	b.WriteString("The emulator (one Node.js process scanning the pool for each filter), the SDK, this process and PostgreSQL share the machine's cores.\n\n")
	fmt.Fprintf(&b, "Writes are counted from the rows themselves, not from what the Seeder reports: every row of `roles`, `user_profile` and `user_role` is read with its `xmin` and `ctid` before and after a run, and a row inserted, deleted or rewritten (an UPDATE changes both, even to the same values) counts once. Each first seeding changed %s: a profile and a grant per user. Every re-seed changed %d rows, and its report said %d unchanged with `Changed()` false. The proxy saw exactly one lookup per user in %d of %d runs through the emulator (no retries).\n",
		firstWrites.perRun(runs), reseedWrites.total(), n, goodLookups, emuRuns)
	return b.String()
}

// seedSetup is one measured configuration of the Seeder.
type seedSetup struct {
	concurrency int
	idp         flip.IdentityProvider
	emulator    bool // idp goes through the proxy to the emulator
}

func (s seedSetup) label() string {
	return fmt.Sprintf("%s, concurrency %d", map[bool]string{true: "emulator", false: "in memory"}[s.emulator], s.concurrency)
}

func (s seedSetup) concurrencyLabel() string {
	return fmt.Sprint(s.concurrency) + map[int]string{1: " (one at a time)", flip.DefaultSeedConcurrency: " (default)"}[s.concurrency]
}

// benchMainUsers returns n main users as seed_test.go's mainUsers does.
func benchMainUsers(n int) []flip.MainUser {
	users := make([]flip.MainUser, n)
	for i := range users {
		users[i] = flip.MainUser{Email: fmt.Sprintf("user%03d@example.com", i), Role: "Researcher", Name: fmt.Sprintf("User %d", i), Organisation: "Example Org"}
	}
	return users
}

// rowChanges counts rows that differ between two readings.
type rowChanges struct{ inserted, updated, deleted int }

func (c rowChanges) total() int { return c.inserted + c.updated + c.deleted }

func (c rowChanges) add(o rowChanges) rowChanges {
	return rowChanges{c.inserted + o.inserted, c.updated + o.updated, c.deleted + o.deleted}
}

func (c rowChanges) perRun(runs int) string {
	if runs == 0 {
		return "nothing"
	}
	return fmt.Sprintf("%d rows (%d inserted, %d updated, %d deleted)", c.total()/runs, c.inserted/runs, c.updated/runs, c.deleted/runs)
}

// rowVersions reads every row seeding may write, keyed by table and
// primary key, with its version: xmin (the transaction that wrote it) and
// ctid (where it lives).
func rowVersions(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT 'roles ' || id::text, xmin::text || ' ' || ctid::text FROM roles
		UNION ALL
		SELECT 'user_profile ' || user_id::text, xmin::text || ' ' || ctid::text FROM user_profile
		UNION ALL
		SELECT 'user_role ' || id::text, xmin::text || ' ' || ctid::text FROM user_role`)
	if err != nil {
		return nil, fmt.Errorf("read row versions: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

func diffVersions(before, after map[string]string) rowChanges {
	var c rowChanges
	for k, v := range after {
		old, ok := before[k]
		switch {
		case !ok:
			c.inserted++
		case old != v:
			c.updated++
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			c.deleted++
		}
	}
	return c
}
