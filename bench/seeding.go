package main

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
	"github.com/londonaicentre/flip/store"
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

func runSeeding(ctx context.Context, e *env) (string, error) {
	n, latency, rounds := e.cfg.seedUsers, e.cfg.seedLatency, e.cfg.seedRounds

	// The emulator: one of our own, unless COGNITO_LOCAL_URL names one.
	var emu *cognitolocal.Emulator
	if u := os.Getenv("COGNITO_LOCAL_URL"); u != "" {
		emu = &cognitolocal.Emulator{URL: u}
	} else {
		log.Printf("seeding: starting cognito-local %s", cognitolocal.Version)
		startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		var err error
		emu, err = cognitolocal.Start(startCtx)
		cancel()
		if err != nil {
			return "", fmt.Errorf("start the Cognito emulator (needs node and npm): %w", err)
		}
	}
	defer emu.Stop()
	if err := checkHealth(ctx, emu.URL); err != nil {
		return "", err
	}

	admin := emu.Client()
	pool, err := cognitolocal.CreateUserPool(ctx, admin, "flip-bench-")
	if err != nil {
		return "", err
	}
	users := benchMainUsers(n)
	log.Printf("seeding: creating %d users in pool %s", n, pool)
	if err := createEmulatorUsers(ctx, admin, pool, users); err != nil {
		return "", err
	}
	proxy, err := cognitolocal.StartProxy(emu.URL)
	if err != nil {
		return "", err
	}
	defer proxy.Close()
	proxy.SetLatency(latency)
	idp := cognito.New(cognitolocal.NewClient(proxy.URL), pool, cognito.WithRateLimit(0, 0)) // the emulator has no quota: measure flip, not the limiter

	_, db, err := e.createMigratedDB(ctx, "seeding")
	if err != nil {
		return "", err
	}
	defer db.Close()

	// The in-memory identity provider, for the floor the database sets.
	memIdP := fliptest.NewIdentityProvider()
	for _, u := range users {
		memIdP.AddUser(u.Email)
	}
	setups := make([]seedSetup, 0, len(seedLevels)+1)
	for _, c := range seedLevels {
		setups = append(setups, seedSetup{concurrency: c, idp: idp, emulator: true})
	}
	setups = append(setups, seedSetup{concurrency: 1, idp: memIdP})

	// One run: the timings and write counts.
	run := func(s seedSetup) (seedResult, error) {
		var r seedResult
		if _, err := db.ExecContext(ctx, `TRUNCATE user_role, user_profile`); err != nil {
			return r, err
		}
		seeder := flip.NewSeeder(store.New(), users)
		seeder.Concurrency = s.concurrency
		before, err := rowVersions(ctx, db)
		if err != nil {
			return r, err
		}
		lookups0 := proxy.TotalLookups()
		t0 := time.Now()
		report, err := seeder.SeedMainUsers(ctx, db, s.idp)
		r.elapsed = time.Since(t0)
		if err != nil {
			return r, fmt.Errorf("seed, %s: %w", s.label(), err)
		}
		r.lookups = proxy.TotalLookups() - lookups0
		if report.Count(flip.SeedCreated) != n {
			return r, fmt.Errorf("seed, %s: %s, want %d created", s.label(), report, n)
		}
		after, err := rowVersions(ctx, db)
		if err != nil {
			return r, err
		}
		r.firstWrites = diffVersions(before, after)

		t1 := time.Now()
		report, err = seeder.SeedMainUsers(ctx, db, s.idp)
		r.reseed = time.Since(t1)
		if err != nil {
			return r, fmt.Errorf("re-seed, %s: %w", s.label(), err)
		}
		if report.Count(flip.SeedUnchanged) != n || report.Changed() {
			return r, fmt.Errorf("re-seed, %s: %s, want %d unchanged", s.label(), report, n)
		}
		again, err := rowVersions(ctx, db)
		if err != nil {
			return r, err
		}
		r.reseedWrites = diffVersions(after, again)
		return r, nil
	}

	// Warm-up (the emulator's JIT, the HTTP and database connections, the
	// roles), untimed.
	log.Printf("seeding: warm-up")
	if _, err := run(setups[1]); err != nil {
		return "", err
	}

	results := make([][]seedResult, len(setups))
	speedups := make([][]float64, len(setups))       // sequential / this, per round
	reseedSpeedups := make([][]float64, len(setups)) // the same for the re-seeds
	for round := range rounds {
		first := make([]seedResult, len(setups))
		for k := range setups {
			i := (k + round) % len(setups)
			r, err := run(setups[i])
			if err != nil {
				return "", err
			}
			log.Printf("seeding: round %d, %s: %v (re-seed %v, %d rows changed)", round+1, setups[i].label(), r.elapsed.Round(time.Millisecond), r.reseed.Round(time.Millisecond), r.reseedWrites.total())
			results[i] = append(results[i], r)
			first[i] = r
		}
		for i := range setups {
			speedups[i] = append(speedups[i], first[0].elapsed.Seconds()/first[i].elapsed.Seconds())
			reseedSpeedups[i] = append(reseedSpeedups[i], first[0].reseed.Seconds()/first[i].reseed.Seconds())
		}
	}

	medianDur := func(rs []seedResult, f func(seedResult) time.Duration) time.Duration {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = float64(f(r))
		}
		return time.Duration(median(xs))
	}
	var reseedWrites, firstWrites rowChanges
	var runs, emuRuns, badLookups int
	for i, rs := range results {
		for _, r := range rs {
			runs++
			reseedWrites = reseedWrites.add(r.reseedWrites)
			firstWrites = firstWrites.add(r.firstWrites)
			if setups[i].emulator {
				emuRuns++
				if r.lookups != n {
					badLookups++
				}
			}
		}
	}

	var b strings.Builder
	var heads, reheads []string
	for i, s := range setups[1:len(seedLevels)] {
		heads = append(heads, fmt.Sprintf("%.2f× faster with %d lookups in flight", median(speedups[i+1]), s.concurrency))
		reheads = append(reheads, fmt.Sprintf("%.2f× faster with %d", median(reseedSpeedups[i+1]), s.concurrency))
	}
	fmt.Fprintf(&b, "**%d main users, %s added to every Cognito request, against one lookup at a time: first seeding %s; re-seeding %s. Re-seeding changed %d rows in %d runs.**\n\n",
		n, latency, strings.Join(heads, " and "), strings.Join(reheads, " and "), reseedWrites.total(), runs)
	fmt.Fprintf(&b, "Wall time of `Seeder.SeedMainUsers` for %d users on empty `user_profile` and `user_role` tables (the first seeding), each user looked up by email (`ListUsers`, `cognito.New` with the SDK's default retryer) in the cognito-local %s emulator through the fault proxy of `internal/cognitolocal`, which holds every request for %s before forwarding it; then the same Seeder again on the seeded tables (the re-seed). %d rounds, the setups interleaved (the order turning each round), median shown; each ratio is the median of the per-round ratios. ", n, cognitolocal.Version, latency, rounds)
	b.WriteString("The last row replaces the emulator with `fliptest.IdentityProvider` (in memory, instant): what the database alone costs.\n\n")
	b.WriteString("| identity provider | Concurrency | first seeding | users/s | one at a time / this | re-seed | one at a time / this | rows the re-seed changed |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, s := range setups {
		rs := results[i]
		el := medianDur(rs, func(r seedResult) time.Duration { return r.elapsed })
		re := medianDur(rs, func(r seedResult) time.Duration { return r.reseed })
		var w rowChanges
		for _, r := range rs {
			w = w.add(r.reseedWrites)
		}
		idpLabel := fmt.Sprintf("emulator + %s", latency)
		if !s.emulator {
			idpLabel = "in memory"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | **%.2f×** | %s | **%.2f×** | %d in %d runs |\n", idpLabel, s.concurrencyLabel(), el.Round(time.Millisecond), thousands(float64(n)/el.Seconds()),
			median(speedups[i]), re.Round(time.Millisecond), median(reseedSpeedups[i]), w.total(), len(rs))
	}
	fmt.Fprintf(&b, "\nThe injected latency alone sets a floor of %s × %d = %s one at a time and %s with 16 in flight. ",
		latency, n, (latency * time.Duration(n)).Round(time.Millisecond), (latency * time.Duration(n) / 16).Round(time.Millisecond))
	b.WriteString("Lookups run concurrently, but the Seeder applies the writes one user after another, in configuration order, each in its own transaction whose commit waits for the WAL flush (`synchronous_commit=on`): a first seeding cannot finish sooner than the in-memory row, however many lookups are in flight. A re-seed writes nothing, so its transactions commit without a flush and it shows what concurrent lookups buy. ")
	b.WriteString("The emulator (one Node.js process scanning the pool for each filter), the SDK, this process and PostgreSQL share the machine's cores.\n\n")
	fmt.Fprintf(&b, "Writes are counted from the rows themselves, not from what the Seeder reports: every row of `roles`, `user_profile` and `user_role` is read with its `xmin` and `ctid` before and after a run, and a row inserted, deleted or rewritten (an UPDATE changes both, even to the same values) counts once. Each first seeding changed %s: a profile and a grant per user. Every re-seed changed %d rows, and its report said %d unchanged with `Changed()` false. The proxy saw exactly one lookup per user in %d of %d runs through the emulator (no retries).\n",
		firstWrites.perRun(runs), reseedWrites.total(), n, emuRuns-badLookups, emuRuns)
	return b.String(), nil
}

// seedSetup is one measured configuration of the Seeder.
type seedSetup struct {
	concurrency int
	idp         flip.IdentityProvider
	emulator    bool // idp goes through the proxy to the emulator
}

func (s seedSetup) label() string {
	if s.emulator {
		return fmt.Sprintf("emulator, concurrency %d", s.concurrency)
	}
	return fmt.Sprintf("in memory, concurrency %d", s.concurrency)
}

func (s seedSetup) concurrencyLabel() string {
	switch {
	case s.concurrency == 1:
		return "1 (one at a time)"
	case s.concurrency == flip.DefaultSeedConcurrency:
		return fmt.Sprintf("%d (default)", s.concurrency)
	}
	return fmt.Sprint(s.concurrency)
}

// benchMainUsers returns n main users as seed_test.go's mainUsers does.
func benchMainUsers(n int) []flip.MainUser {
	users := make([]flip.MainUser, n)
	for i := range users {
		users[i] = flip.MainUser{Email: fmt.Sprintf("user%03d@example.com", i), Role: "Researcher", Name: fmt.Sprintf("User %d", i), Organisation: "Example Org"}
	}
	return users
}

// createEmulatorUsers adds the users to the pool, a few at a time.
func createEmulatorUsers(ctx context.Context, admin *cip.Client, pool string, users []flip.MainUser) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan flip.MainUser)
	)
	for range 4 {
		wg.Go(func() {
			for u := range next {
				if _, err := cognitolocal.AddUser(ctx, admin, pool, u.Email); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, u := range users {
		next <- u
	}
	close(next)
	wg.Wait()
	return first
}

// checkHealth asks the emulator's /health.
func checkHealth(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the Cognito emulator at %s: %w", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the Cognito emulator at %s: /health answered %s", base, resp.Status)
	}
	return nil
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
