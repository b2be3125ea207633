package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/pqfeed"
	"github.com/londonaicentre/flip/store"
)

// Revocation: how soon a key rotated or revoked by one process stops
// authenticating in the hub's replicas, each with a cached Verifier kept
// true by Listen and pqfeed: the setup of BenchmarkRevocationToRefusal
// (verify_feed_bench_test.go), with more trials and the Verifier's own
// latencies alongside.

const (
	revocationTimeout = 5 * time.Second // a trial's cap; a replica still granting the old key then counts as timed out
	revocationTrusts  = 10_000          // keyed trusts beside the measured one, as in the verify section
	revocationTTL     = time.Hour       // far longer than any trial: only the notice can end a grant
)

// replica is one hub process: its own pool, its Verifier with a cache,
// its feed, and when it refused the old key in each trial.
type replica struct {
	label    string
	v        *flip.Verifier
	refusals []float64 // seconds from Commit's return, one per trial that did not time out
	timeouts int
}

type revBench struct {
	pools    []*sql.DB // [0] and [1] the replicas', [2] the writer's: three pools, as three processes
	reg      *flip.Registry
	trust    uuid.UUID
	key      string     // the trust's current API key
	replicas []*replica // [0] replica 1, [1] replica 2
	stop     context.CancelFunc
	feeds    sync.WaitGroup
}

// newRevBench migrates dbURL's database, seeds it with trusts keyed trusts
// and one registered trust, and starts two replicas listening.
func newRevBench(ctx context.Context, dbURL string, trusts int) (rb *revBench, err error) {
	rb = &revBench{reg: flip.NewRegistry(store.New())}
	defer func() {
		if err != nil {
			rb.close()
		}
	}()
	for range 3 {
		db, err := sql.Open("postgres", dbURL)
		if err != nil {
			return rb, err
		}
		rb.pools = append(rb.pools, db)
	}
	writer := rb.pools[2]
	if err := store.Migrate(ctx, writer); err != nil {
		return rb, err
	}
	if err := seedKeyedTrusts(ctx, writer, trusts); err != nil {
		return rb, err
	}
	if _, err := store.AddSlots(ctx, writer, "Trust_001"); err != nil {
		return rb, err
	}
	res, err := rb.reg.RegisterTrustDB(ctx, writer, flip.TrustParams{Name: "Rotated trust", Code: "ROT"})
	if err != nil {
		return rb, err
	}
	rb.trust, rb.key = res.Trust.ID, res.APIKey.Reveal()
	feedCtx, stop := context.WithCancel(ctx)
	rb.stop = stop
	for i := range 2 {
		r := &replica{label: fmt.Sprintf("replica %d", i+1), v: flip.NewVerifier(rb.pools[i], flip.WithVerifierCache(revocationTTL, 10_000))}
		rb.replicas = append(rb.replicas, r)
		rb.feeds.Go(func() {
			if err := r.v.Listen(feedCtx, pqfeed.New(dbURL, nil)); feedCtx.Err() == nil {
				log.Printf("revocation: %s's feed stopped: %v", r.label, err)
			}
		})
	}
	return rb, nil
}

func (rb *revBench) close() {
	if rb.stop != nil {
		rb.stop()
	}
	rb.feeds.Wait()
	for _, db := range rb.pools {
		db.Close()
	}
}

// cache has every replica verify the current key until it holds the grant
// (caching is paused until its feed is listening).
func (rb *revBench) cache(ctx context.Context) error {
	deadline := time.Now().Add(revocationTimeout)
	for _, r := range rb.replicas {
		for {
			if _, err := r.v.Verify(ctx, rb.key); err != nil {
				return fmt.Errorf("%s, current key: %w", r.label, err)
			} else if r.v.CachedGrants() == 1 {
				break
			} else if time.Now().After(deadline) {
				return fmt.Errorf("%s caches no grant after %v: its feed is not listening", r.label, revocationTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// trial caches the current key in both replicas, rotates it (even trials)
// or revokes it (odd ones) in a transaction on the writer's pool, and
// spins on both replicas from Commit's return until each refuses it.
func (rb *revBench) trial(ctx context.Context, i int) error {
	if err := rb.cache(ctx); err != nil {
		return err
	}
	tx, err := rb.pools[2].BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	change, next := flip.TrustChange{TrustID: rb.trust}, ""
	if i%2 == 0 {
		var res flip.RegistrationResult
		res, err = rb.reg.RotateKeys(ctx, tx, change)
		next = res.APIKey.Reveal()
	} else {
		_, err = rb.reg.RevokeKey(ctx, tx, change)
	}
	if err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	committed := time.Now()
	pending := slices.Clone(rb.replicas)
	for len(pending) > 0 {
		late := time.Since(committed) > revocationTimeout
		var still []*replica
		for _, r := range pending {
			_, err := r.v.Verify(ctx, rb.key)
			switch {
			case errors.Is(err, flip.ErrUnknownAPIKey):
				r.refusals = append(r.refusals, time.Since(committed).Seconds())
			case err != nil:
				return fmt.Errorf("%s, old key: %w", r.label, err)
			case late:
				r.timeouts++
				r.v.Purge() // so that the next trial starts clean
			default:
				still = append(still, r)
			}
		}
		pending = still
	}
	if next == "" {
		next, err = rb.restore(ctx)
	}
	rb.key = next
	return err
}

// restore gives the revoked trust a new key by a plain UPDATE, which sends
// no notice: no replica holds a grant for the trust (both refused its key,
// and refusals are not cached), and a RotateKeys' notice could arrive
// after the next trial cached the new key and end that grant early.
func (rb *revBench) restore(ctx context.Context) (string, error) {
	key, err := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	if err == nil {
		_, err = rb.pools[2].ExecContext(ctx, `UPDATE trust SET api_key_hash = $1 WHERE id = $2`, flip.HashAPIKey(key), rb.trust)
	}
	return key, err
}

func runRevocation(ctx context.Context, e *env) (string, error) {
	_, dbURL, err := e.createDB(ctx, "revocation", "")
	if err != nil {
		return "", err
	}
	log.Printf("revocation: database with %d keyed trusts, two replicas listening", revocationTrusts)
	rb, err := newRevBench(ctx, dbURL, revocationTrusts)
	if err != nil {
		return "", err
	}
	defer rb.close()
	for i := range e.cfg.revocationTrials {
		if err := rb.trial(ctx, i); err != nil {
			return "", fmt.Errorf("trial %d: %w", i+1, err)
		}
	}
	// Verify's own latency on replica 2's pool: a cached hit (the listening
	// Verifier, on the current key) and a lookup (no cache, keys spread over
	// the table as in the verify section). Round 0 warms up.
	n := revocationTrusts
	hot := rb.key
	cases := []*verifyCase{
		{hit: true, v: rb.replicas[1].v, key: func(int) string { return hot }},
		{size: n, hit: true, v: flip.NewVerifier(rb.pools[1]), key: func(i int) string { return verifyKey(1 + (i*verifyStride)%n) }},
	}
	err = interleave(verifyRounds+1, len(cases), func(round, i int) error {
		wall, _, err := cases[i].batch(ctx)
		if round > 0 {
			cases[i].perOp = append(cases[i].perOp, wall)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return revocationReport(e.cfg.revocationTrials, rb.replicas, median(cases[0].perOp), median(cases[1].perOp)), nil
}

const revocationText = "**After a key change commits, the other replica refuses the old key in a median of %s (p99 %s, max %s over %d trials; %d timed out); replica 1, in the process that made the change, in %s (p99 %s, max %s; %d timed out).**\n\n" +
	"Time from `tx.Commit()` returning in the process that rotated or revoked a trust's key until a replica's `Verify` of the old key, which it had cached, returns `ErrUnknownAPIKey`. Percentiles by nearest rank over the trials that did not time out (cap %s).\n\n" +
	"%s\nOn the same database, one caller: `Verify` of a cached grant takes %s (no database round trip), a lookup without the cache %s (the indexed lookup among %s trusts; median of %d timed batches of about %s each).\n\n" +
	"How it is measured:\n\n" +
	"- **Replicas**: two `flip.Verifier`s, each on its own `*sql.DB` (lib/pq) as two hub processes, each with `flip.WithVerifierCache(time.Hour, 10_000)` and `go v.Listen(ctx, pqfeed.New(databaseURL, nil))` (a LISTEN connection of its own). The TTL far exceeds any trial, so only the notice ends a grant. The writer is a third pool; replica 1 stands for the process that made the change, which relies on the notice as much as the other does (unless it calls `Invalidate`).\n" +
	"- **Trials**: one trust among %s keyed trusts (the verify section's data). Before each trial both replicas verify the current key until it is cached (`CachedGrants`); then `RotateKeys` (even trials) or `RevokeKey` (odd ones) in a transaction of its own on the writer's pool, and `Commit`. One goroutine then calls `Verify` with the old key on each replica still granting it, in turn, until each refuses it: a cached hit costs well under a microsecond, and the refusal itself is one lookup, included. The spinning goroutine takes one of the machine's two cores from PostgreSQL and the feeds while it waits, which lengthens the tail. After a revocation, the trust gets a fresh key by a plain `UPDATE`, which sends no notice that could reach the next trial.\n" +
	"- **Path measured**: the `pg_notify` in the change's statement, delivered by PostgreSQL to each listening session at commit; lib/pq's Listener; `pqfeed` calling `Verifier.Invalidate`; the next `Verify` missing the cache and finding no trust with the old key's hash. All on this machine, over loopback.\n"

// revocationReport renders the trials of both replicas (replica 2 first,
// the headline) and Verify's latencies.
func revocationReport(trials int, replicas []*replica, cached, lookup float64) string {
	type stats struct{ med, p90, p99, max string }
	of := func(r *replica) stats {
		if len(r.refusals) == 0 {
			return stats{"–", "–", "–", "–"}
		}
		return stats{fmtSeconds(median(r.refusals)), fmtSeconds(percentile(r.refusals, 0.90)), fmtSeconds(percentile(r.refusals, 0.99)), fmtSeconds(slices.Max(r.refusals))}
	}
	var rows [][]string
	for _, r := range []*replica{replicas[1], replicas[0]} {
		s := of(r)
		what := map[bool]string{true: " (another process)", false: " (the changing process)"}[r == replicas[1]]
		rows = append(rows, []string{r.label + what, fmt.Sprint(trials), fmt.Sprint(len(r.refusals)), fmt.Sprint(r.timeouts), s.med, s.p90, s.p99, s.max})
	}
	table := mdTable("lrrrrrrr", []string{"verifier", "trials", "refused", "timed out", "median", "p90", "p99", "max"}, rows)
	o, c := of(replicas[1]), of(replicas[0])
	return fmt.Sprintf(revocationText, o.med, o.p99, o.max, trials, replicas[1].timeouts, c.med, c.p99, c.max, replicas[0].timeouts,
		revocationTimeout, table, fmtSeconds(cached), fmtSeconds(lookup), thousands(float64(revocationTrusts+1)), verifyRounds, verifyBatch,
		thousands(revocationTrusts))
}

// percentile is xs's p-th quantile by nearest rank (0 for none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	return s[max(0, int(math.Ceil(p*float64(len(s))))-1)]
}
