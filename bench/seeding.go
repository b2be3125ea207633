package main

import (
	"context"
	"database/sql"
	"errors"
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

// Seeding: SeedMainUsers for N users against cognito-local through the
// fault proxy (latency on every request), one lookup at a time against
// several in flight, then again on the seeded tables, which must write
// nothing: the setup of BenchmarkSeedMainUsers (seed_bench_test.go).
// seedLevels are the concurrencies measured; the first is the baseline.
var seedLevels = []int{1, flip.DefaultSeedConcurrency, 16}

// seedSetup is one measured configuration of the Seeder, and its results.
type seedSetup struct {
	label       string
	concurrency int
	idp         flip.IdentityProvider
	emulator    bool // idp goes through the proxy to the emulator
	results     []seedResult
}

// seedResult is one round: [0] the first seeding, [1] the re-seed; lookups
// are the requests the proxy saw for the first.
type seedResult struct {
	elapsed [2]time.Duration
	writes  [2]rowChanges
	lookups int
}

type seedBench struct {
	users  []flip.MainUser
	db     *sql.DB
	emu    *cognitolocal.Emulator
	proxy  *cognitolocal.Proxy
	setups []*seedSetup
}

func runSeeding(ctx context.Context, e *env) (string, error) {
	sb := &seedBench{emu: &cognitolocal.Emulator{URL: os.Getenv("COGNITO_LOCAL_URL")}}
	defer func() { sb.emu.Stop() }()         // a no-op for one at COGNITO_LOCAL_URL
	memIdP := fliptest.NewIdentityProvider() // for the floor the database sets
	for i := range e.cfg.seedUsers {
		sb.users = append(sb.users, flip.MainUser{Email: fmt.Sprintf("user%03d@example.com", i), Role: "Researcher", Name: fmt.Sprintf("User %d", i), Organisation: "Example Org"})
		memIdP.AddUser(sb.users[i].Email)
	}
	idp, err := sb.emulatorIdP(ctx, e.cfg.seedLatency)
	if err != nil {
		return "", err
	}
	defer sb.proxy.Close()
	if _, sb.db, err = e.createMigratedDB(ctx, "seeding"); err != nil {
		return "", err
	}
	defer sb.db.Close()
	for _, c := range seedLevels {
		sb.setups = append(sb.setups, &seedSetup{label: fmt.Sprint("emulator, concurrency ", c), concurrency: c, idp: idp, emulator: true})
	}
	sb.setups = append(sb.setups, &seedSetup{label: "in memory, concurrency 1", concurrency: 1, idp: memIdP})
	log.Printf("seeding: warm-up") // the emulator's JIT, the connections, the roles
	if _, err := sb.seedOnce(ctx, sb.setups[1]); err != nil {
		return "", err
	}
	err = interleave(e.cfg.seedRounds, len(sb.setups), func(round, i int) error {
		s := sb.setups[i]
		r, err := sb.seedOnce(ctx, s)
		if err != nil {
			return err
		}
		log.Printf("seeding: round %d, %s: %v (re-seed %v, %d rows changed)", round+1, s.label, r.elapsed[0].Round(time.Millisecond), r.elapsed[1].Round(time.Millisecond), r.writes[1].total())
		s.results = append(s.results, r)
		return nil
	})
	if err != nil {
		return "", err
	}
	return sb.report(e.cfg.seedLatency, e.cfg.seedRounds), nil
}

// emulatorIdP starts cognito-local unless one runs at COGNITO_LOCAL_URL,
// creates a pool of the users, and reaches it through the fault proxy.
func (sb *seedBench) emulatorIdP(ctx context.Context, latency time.Duration) (flip.IdentityProvider, error) {
	if sb.emu.URL == "" {
		log.Printf("seeding: starting cognito-local %s", cognitolocal.Version)
		startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		emu, err := cognitolocal.Start(startCtx)
		if err != nil {
			return nil, fmt.Errorf("start the Cognito emulator (needs node and npm): %w", err)
		}
		sb.emu = emu
	}
	emu, admin := sb.emu, sb.emu.Client()
	pool, err := cognitolocal.CreateUserPool(ctx, admin, "flip-bench-")
	if err != nil {
		return nil, fmt.Errorf("the Cognito emulator at %s: %w", emu.URL, err)
	}
	log.Printf("seeding: creating %d users in pool %s", len(sb.users), pool)
	for _, u := range sb.users {
		if _, err := cognitolocal.AddUser(ctx, admin, pool, u.Email); err != nil {
			return nil, err
		}
	}
	if sb.proxy, err = cognitolocal.StartProxy(emu.URL); err != nil {
		return nil, err
	}
	sb.proxy.SetLatency(latency)
	// The emulator has no quota: measure flip, not the limiter.
	return cognito.New(cognitolocal.NewClient(sb.proxy.URL), pool, cognito.WithRateLimit(0, 0)), nil
}

// seedOnce seeds empty tables, then again, timing both, checking their
// reports (all created, then all unchanged) and counting the rows written.
func (sb *seedBench) seedOnce(ctx context.Context, s *seedSetup) (r seedResult, err error) {
	if _, err := sb.db.ExecContext(ctx, `TRUNCATE user_role, user_profile`); err != nil {
		return r, err
	}
	seeder := flip.NewSeeder(sb.users)
	seeder.Concurrency = s.concurrency
	lookups0 := sb.proxy.TotalLookups()
	for k, want := range []flip.SeedResult{flip.SeedCreated, flip.SeedUnchanged} {
		before, err := rowVersions(ctx, sb.db)
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		report, err := seeder.SeedMainUsers(ctx, sb.db, s.idp)
		r.elapsed[k] = time.Since(t0)
		if k == 0 {
			r.lookups = sb.proxy.TotalLookups() - lookups0
		}
		if err == nil && (report.Count(want) != len(sb.users) || k == 1 && report.Changed()) {
			err = fmt.Errorf("%s, want %d %s", report, len(sb.users), want)
		}
		after, verr := rowVersions(ctx, sb.db)
		if err = errors.Join(err, verr); err != nil {
			return r, fmt.Errorf("%s, %s: %w", []string{"seed", "re-seed"}[k], s.label, err)
		}
		r.writes[k] = diffVersions(before, after)
	}
	return r, nil
}

const seedText = "**%d main users, %s added to every Cognito request, against one lookup at a time: first seeding %s; re-seeding %s. Re-seeding changed %d rows in %d runs.**\n\n" +
	"Wall time of `Seeder.SeedMainUsers` for %[1]d users on empty `user_profile` and `user_role` tables (the first seeding), each user looked up by email (`ListUsers`, `cognito.New` with the SDK's default retryer) in the cognito-local %[7]s emulator through the fault proxy of `internal/cognitolocal`, which holds every request for %[2]s before forwarding it; then the same Seeder again on the seeded tables (the re-seed). %[8]d rounds, the setups interleaved (the order turning each round), median shown; each ratio is the median of the per-round ratios. The last row replaces the emulator with `fliptest.IdentityProvider` (in memory, instant): what the database alone costs.\n\n%[9]s\n" +
	"The injected latency alone sets a floor of %[2]s × %[1]d = %[10]s one at a time and %[11]s with 16 in flight. Lookups run concurrently, but the Seeder applies the writes one user after another, in configuration order, each in its own transaction whose commit waits for the WAL flush (`synchronous_commit=on`): a first seeding cannot finish sooner than the in-memory row, however many lookups are in flight. A re-seed writes nothing, so its transactions commit without a flush and it shows what concurrent lookups buy. The emulator (one Node.js process scanning the pool for each filter), the SDK, this process and PostgreSQL share the machine's cores.\n\n" +
	"Writes are counted from the rows themselves, not from what the Seeder reports: every row of `roles`, `user_profile` and `user_role` is read with its `xmin` and `ctid` before and after a run, and a row inserted, deleted or rewritten (an UPDATE changes both, even to the same values) counts once. Each first seeding changed %[12]d rows (%[13]d inserted, %[14]d updated, %[15]d deleted): a profile and a grant per user. Every re-seed changed %[5]d rows, and its report said %[1]d unchanged with `Changed()` false. The proxy saw exactly one lookup per user in %[16]d of %[17]d runs through the emulator (no retries).\n"

func (sb *seedBench) report(latency time.Duration, rounds int) string {
	n := len(sb.users)
	var first, reseeds rowChanges
	runs, emuRuns, goodLookups := rounds*len(sb.setups), rounds*len(seedLevels), 0
	var heads [2][]string
	var rows [][]string
	for i, s := range sb.setups {
		var w rowChanges
		for _, r := range s.results {
			w, first = w.add(r.writes[1]), first.add(r.writes[0])
			goodLookups += map[bool]int{true: 1}[s.emulator && r.lookups == n]
		}
		reseeds = reseeds.add(w)
		row := []string{map[bool]string{true: fmt.Sprintf("emulator + %s", latency), false: "in memory"}[s.emulator],
			fmt.Sprint(s.concurrency) + map[int]string{1: " (one at a time)", flip.DefaultSeedConcurrency: " (default)"}[s.concurrency]}
		for k := range 2 {
			med := time.Duration(medianOf(s.results, func(r seedResult) float64 { return float64(r.elapsed[k]) }))
			up := ratios(sb.setups[0].results, s.results, func(r seedResult) float64 { return r.elapsed[k].Seconds() })
			row = append(row, med.Round(time.Millisecond).String())
			if k == 0 {
				row = append(row, thousands(float64(n)/med.Seconds()))
			}
			row = append(row, fmt.Sprintf("**%.2f×**", up))
			if i > 0 && s.emulator {
				heads[k] = append(heads[k], fmt.Sprintf("%.2f× faster with %d%s", up, s.concurrency, []string{" lookups in flight", ""}[k]))
			}
		}
		rows = append(rows, append(row, fmt.Sprintf("%d in %d runs", w.total(), len(s.results))))
	}
	table := mdTable("lrrrrrrr", []string{"identity provider", "Concurrency", "first seeding", "users/s", "one at a time / this", "re-seed", "one at a time / this", "rows the re-seed changed"}, rows)
	floor := latency * time.Duration(n)
	return fmt.Sprintf(seedText, n, latency, strings.Join(heads[0], " and "), strings.Join(heads[1], " and "), reseeds.total(), runs, cognitolocal.Version, rounds, table,
		floor.Round(time.Millisecond), (floor / 16).Round(time.Millisecond), first.total()/runs, first.inserted/runs, first.updated/runs, first.deleted/runs, goodLookups, emuRuns)
}

// rowChanges counts rows that differ between two readings.
type rowChanges struct{ inserted, updated, deleted int }

func (c rowChanges) total() int { return c.inserted + c.updated + c.deleted }

func (c rowChanges) add(o rowChanges) rowChanges {
	return rowChanges{c.inserted + o.inserted, c.updated + o.updated, c.deleted + o.deleted}
}

// rowVersions reads every row seeding may write, by table and key, with
// its version: xmin (the transaction that wrote it) and ctid (its place).
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

func diffVersions(before, after map[string]string) (c rowChanges) {
	for k, v := range after {
		if old, ok := before[k]; !ok {
			c.inserted++
		} else if old != v {
			c.updated++
		}
	}
	c.deleted = len(before) - (len(after) - c.inserted) // the keys of before that after lacks
	return c
}
