package flippgx_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
	"github.com/londonaicentre/flip/internal/feedsuite"
)

// newPool is a pgx pool on db, closed when the test ends.
func newPool(t *testing.T, db *fliptest.DB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// The replica scenarios every change feed passes, on a connection of a
// pgx pool.
func TestFeed_ReplicaScenarios(t *testing.T) {
	t.Parallel()
	feedsuite.Run(t, func(t *testing.T, db *fliptest.DB) flip.ChangeFeed { return flippgx.NewFeed(newPool(t, db), nil) })
}

// The listening connection is taken out of the pool: the hub closing its
// pool at shutdown does not wait for the feed, and the feed, which has
// its connection already, goes on listening until its context ends.
func TestFeed_ClosingThePoolDoesNotWaitForTheFeed(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	pool := newPool(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	listenCtx, stop := context.WithCancel(ctx)
	live := make(chan bool, 8)
	done := make(chan error, 1)
	go func() {
		done <- flippgx.NewFeed(pool, nil).Listen(listenCtx, func(b bool) { live <- b }, func(uuid.UUID) {})
	}()
	if !<-live {
		t.Fatal("want listening(true) first")
	}

	closed := make(chan struct{})
	go func() { pool.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("pool.Close is waiting for the feed's connection")
	}
	var listeners int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&listeners); err != nil || listeners != 1 {
		t.Fatalf("%d listening sessions after pool.Close (%v), want 1", listeners, err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Listen = %v, want context.Canceled", err)
	}
	if b := <-live; b {
		t.Error("want listening(false) when Listen returns")
	}
}

// A closed pool cannot give the feed a connection ever again: Listen
// returns an error instead of retrying until its context ends.
func TestFeed_ClosedPoolEndsListen(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://flip@127.0.0.1:1/none") // never dialled
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = flippgx.NewFeed(pool, nil).Listen(ctx, func(b bool) { t.Errorf("listening(%v) on a closed pool", b) }, func(uuid.UUID) {})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Listen = %v (context: %v), want an error before the context ends", err, ctx.Err())
	}
}

// pgx hands notices to ConnConfig.OnNotification when it is set, and
// WaitForNotification never sees them: the feed says so at once rather
// than listening blind.
func TestFeed_RefusesAPoolWithItsOwnNotificationHandler(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig("postgres://flip@127.0.0.1:1/none") // never dialled
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.OnNotification = func(*pgconn.PgConn, *pgconn.Notification) {}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = flippgx.NewFeed(pool, nil).Listen(context.Background(), func(b bool) { t.Errorf("listening(%v)", b) }, func(uuid.UUID) {})
	if err == nil {
		t.Fatal("Listen = nil, want an error for a pool whose notices go to OnNotification")
	}
}

// pgx's errors while the feed (re)connects (a *pgconn.ConnectError names
// the user and database, never the password) are logged without the
// password, in every form a pool's connection string can hold it.
func TestFeed_LogsNoPassword(t *testing.T) {
	t.Parallel()
	for _, c := range cmddbtest.RefusedDSNs {
		if c.Unparsable {
			continue // pgxpool.New refuses it: there is no pool to give the feed
		}
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			pool, err := pgxpool.New(context.Background(), c.DSN)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			feedsuite.LogsNoPassword(t, c, "connecting failed", func(l *slog.Logger) flip.ChangeFeed { return flippgx.NewFeed(pool, l) })
		})
	}
}
