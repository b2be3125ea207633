package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// flipThroughput runs RegisterTrustDB from callers goroutines for d, each
// registration with its own name and code, audited as an admin.
func flipThroughput(ctx context.Context, driverName, dbURL string, callers int, d time.Duration) (runResult, error) {
	db, err := openPool(ctx, driverName, dbURL, callers)
	if err != nil {
		return runResult{}, err
	}
	defer db.Close()
	reg := flip.NewRegistry(store.New())
	var (
		done     atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	cpu0, t0 := processCPU(), time.Now()
	deadline := t0.Add(d)
	for w := range callers {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				p := flip.TrustParams{Name: fmt.Sprintf("bench %d-%d", w, i), Code: fmt.Sprintf("b%d-%d", w, i), AuditUserID: benchAuditUser}
				if _, err := reg.RegisterTrustDB(ctx, db, p); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed, cpu, n := time.Since(t0), processCPU()-cpu0, done.Load()
	switch {
	case firstErr != nil:
		return runResult{}, firstErr
	case n == 0:
		return runResult{}, errors.New("no registration completed")
	}
	return runResult{
		registrations: n,
		rate:          float64(n) / elapsed.Seconds(),
		latency:       time.Duration(float64(elapsed) * float64(callers) / float64(n)),
		cpu:           cpu / time.Duration(n),
	}, nil
}

// openPool opens a database/sql pool of exactly n connections, every one
// opened before the clock starts, as pgbench excludes its connection time.
func openPool(ctx context.Context, driverName, dbURL string, n int) (*sql.DB, error) {
	db, err := sql.Open(driverName, dbURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	held := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range n {
		c, err := db.Conn(ctx)
		if err == nil {
			held = append(held, c)
			err = c.PingContext(ctx)
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open connection %d: %w", i+1, err)
		}
	}
	return db, nil
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

// endToEndAllocs measures RegisterTrustDB over n sequential registrations
// on one connection.
func endToEndAllocs(ctx context.Context, driverName, dbURL string, n int) (allocs, bytes float64, err error) {
	db, err := openPool(ctx, driverName, dbURL, 1)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	reg := flip.NewRegistry(store.New())
	allocs, bytes, _, err = perCall(n, func(i int) error {
		_, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: fmt.Sprintf("alloc %d", i), Code: fmt.Sprintf("a%d", i), AuditUserID: benchAuditUser})
		return err
	})
	return allocs, bytes, err
}

// libraryAllocs measures the work RegisterTrust does in the client besides
// sending its statements: validation, two keys minted from crypto/rand,
// one SHA-256 and two ids.
func libraryAllocs() (allocs, bytes float64, cpu time.Duration) {
	p := flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT", Region: "London", AuditUserID: benchAuditUser}
	minter := flip.RandomKeyMinter{}
	allocs, bytes, cpu, err := perCall(2000, func(int) error {
		if _, err := p.Normalize(); err != nil {
			return err
		}
		key, err := minter.MintKey(flip.TrustAPIKey)
		if err != nil {
			return err
		}
		if _, err := minter.MintKey(flip.InternalServiceKey); err != nil {
			return err
		}
		_, _, _ = flip.HashAPIKey(key), uuid.New(), uuid.New()
		return nil
	})
	if err != nil {
		panic(err) // valid parameters and crypto/rand cannot fail
	}
	return allocs, bytes, cpu
}

// perCall runs f n times after n/10 untimed calls, and returns the Go heap
// allocations, bytes and CPU time per call (runtime.MemStats and the
// process's CPU over the timed calls; nothing else runs meanwhile).
func perCall(n int, f func(i int) error) (allocs, bytes float64, cpu time.Duration, err error) {
	var before, after runtime.MemStats
	var cpu0 time.Duration
	warm := n / 10
	for i := range warm + n {
		if i == warm {
			runtime.GC()
			runtime.ReadMemStats(&before)
			cpu0 = processCPU()
		}
		if err := f(i); err != nil {
			return 0, 0, 0, err
		}
	}
	cpu = (processCPU() - cpu0) / time.Duration(n)
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / float64(n), cpu, nil
}
