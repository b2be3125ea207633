package flip_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/pqfeed"
	"github.com/londonaicentre/flip/store"
)

// BenchmarkRevocationToRefusal measures how soon a key rotation committed
// by one process stops authenticating in another whose Verifier had the
// key cached and listens with pqfeed: the time from tx.Commit's return
// until that Verifier's Verify of the old key returns ErrUnknownAPIKey,
// reported as p50-ms, p99-ms and max-ms over the b.N rotations (ns/op is
// the whole trial: caching the key, rotating, committing and waiting). A
// trial still granting the old key after 5 s counts in timeouts instead
// of failing the benchmark; without the notice the grant would last the
// cache's hour. `go run ./bench -only revocation` measures the same with
// a revocation in every other trial and a replica on each side.
//
//	go test -run '^$' -bench RevocationToRefusal -benchtime 300x .
func BenchmarkRevocationToRefusal(b *testing.B) {
	const timeout = 5 * time.Second
	db := fliptest.NewDB(b) // the pool of the process that rotates
	fliptest.AddSlots(b, db, "Trust_001")
	reg := flip.NewRegistry(store.New())
	res := fliptest.RegisterTrust(b, db, flip.TrustParams{Name: "Rotated Trust", Code: "ROT"})
	pool, err := sql.Open("postgres", db.URL) // the other process's pool
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	v := flip.NewVerifier(pool, flip.WithVerifierCache(time.Hour, 10_000))
	ctx, stop := context.WithCancel(context.Background())
	listened := make(chan error, 1)
	go func() { listened <- v.Listen(ctx, pqfeed.New(db.URL, nil)) }()
	defer func() { stop(); <-listened }()

	key, change := res.APIKey.Reveal(), flip.TrustChange{TrustID: res.Trust.ID}
	var waits []float64 // milliseconds
	timeouts := 0
	for b.Loop() {
		// Caching stays paused until the feed is listening.
		for v.CachedGrants() == 0 {
			if _, err := v.Verify(ctx, key); err != nil {
				b.Fatalf("current key: %v", err)
			} else if v.CachedGrants() == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		rot, err := reg.RotateKeys(ctx, tx, change)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		for {
			_, err := v.Verify(ctx, key) // a cached hit costs well under a microsecond
			if errors.Is(err, flip.ErrUnknownAPIKey) {
				waits = append(waits, float64(time.Since(committed))/float64(time.Millisecond))
				break
			} else if err != nil {
				b.Fatalf("old key: %v", err)
			} else if time.Since(committed) > timeout {
				timeouts++
				v.Purge() // so that the next trial starts clean
				break
			}
		}
		key = rot.APIKey.Reveal()
	}
	if len(waits) == 0 {
		return
	}
	slices.Sort(waits)
	rank := func(p float64) float64 { return waits[max(0, int(math.Ceil(p*float64(len(waits))))-1)] }
	b.ReportMetric(rank(0.50), "p50-ms")
	b.ReportMetric(rank(0.99), "p99-ms")
	b.ReportMetric(waits[len(waits)-1], "max-ms")
	b.ReportMetric(float64(timeouts), "timeouts")
}
