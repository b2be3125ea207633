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

// libraryAllocs measures RegisterTrust itself, with a store that does
// nothing: validation, key minting, hashing, ids, errors and logging calls.
func libraryAllocs() (allocs, bytes float64, cpu time.Duration) {
	reg := flip.NewRegistry(nopStore{})
	p := flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT", Region: "London", AuditUserID: benchAuditUser}
	allocs, bytes, cpu, err := perCall(2000, func(int) error {
		_, err := reg.RegisterTrust(context.Background(), nopTx{}, p)
		return err
	})
	if err != nil {
		panic(err) // the no-op store cannot fail
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
