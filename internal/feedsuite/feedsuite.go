// Package feedsuite is the one set of replica scenarios every
// flip.ChangeFeed must pass, run by each feed's tests with its own
// constructor, so that lib/pq's feed (pqfeed) and pgx's (flippgx) are held
// to the same behaviour by the same code instead of by copies:
//
//	func TestFeed(t *testing.T) {
//		t.Parallel()
//		feedsuite.Run(t, func(t *testing.T, db *fliptest.DB) flip.ChangeFeed {
//			return pqfeed.New(db.URL, nil)
//		})
//	}
//
// Each scenario has a database of its own (fliptest.NewDB) and a second
// hub process in it: a Verifier with an hour-long cache on a pool of its
// own, listening through the feed under test. LogsNoPassword holds every
// feed to the same check of its logs. It is imported only by tests; it is
// internal because nothing outside flip should depend on it.
package feedsuite

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the replicas' own pools
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
	"github.com/londonaicentre/flip/store"
)

// NewFeed returns the feed under test, listening on db. Whatever it opens
// it closes in t.Cleanup; Listen has returned by the time that runs.
type NewFeed func(t *testing.T, db *fliptest.DB) flip.ChangeFeed

// Run runs every scenario as a parallel subtest of t, with feeds from
// newFeed.
func Run(t *testing.T, newFeed NewFeed) {
	t.Helper()
	s := suite{newFeed: newFeed}
	t.Run("SecondReplicaRefusesOnceTheChangeIsDelivered", s.secondReplicaRefusesOnceTheChangeIsDelivered)
	t.Run("RolledBackChangeAnnouncesNothing", s.rolledBackChangeAnnouncesNothing)
	t.Run("LostConnectionPausesTheCacheAndReconnects", s.lostConnectionPausesTheCacheAndReconnects)
}

type suite struct{ newFeed NewFeed }

// Two replicas with hour-long caches: a change committed through one
// pool is refused by the other once its notice is delivered, and not
// before the commit.
func (s suite) secondReplicaRefusesOnceTheChangeIsDelivered(t *testing.T) {
	t.Parallel()
	ops := map[string]func(*flip.Registry, context.Context, *sql.Tx, uuid.UUID) error{
		"rotate": func(r *flip.Registry, ctx context.Context, tx *sql.Tx, id uuid.UUID) error {
			_, err := r.RotateKeys(ctx, tx, flip.TrustChange{TrustID: id})
			return err
		},
		"revoke": func(r *flip.Registry, ctx context.Context, tx *sql.Tx, id uuid.UUID) error {
			_, err := r.RevokeKey(ctx, tx, flip.TrustChange{TrustID: id})
			return err
		},
		"delete": func(r *flip.Registry, ctx context.Context, tx *sql.Tx, id uuid.UUID) error {
			_, err := r.DeleteTrust(ctx, tx, flip.TrustChange{TrustID: id})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := s.setup(t)
			res := fliptest.RegisterTrust(t, b.db, flip.TrustParams{Name: "Replicated", Code: "REP"})
			second := b.startReplica(t)
			second.mustCache(t, b.ctx, res.APIKey.Reveal())

			tx, err := b.db.BeginTx(b.ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := op(b.reg, b.ctx, tx, res.Trust.ID); err != nil {
				t.Fatal(err)
			}
			// Not committed: the other replica still grants the key it holds.
			if _, err := second.v.Verify(b.ctx, res.APIKey.Reveal()); err != nil {
				t.Errorf("before the commit, the second replica refused the key: %v", err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if id := next(t, b.ctx, second.feed.changed, "the change notice"); id != res.Trust.ID {
				t.Fatalf("notice for %s, want %s", id, res.Trust.ID)
			}
			if _, err := second.v.Verify(b.ctx, res.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
				t.Errorf("after the notice, the second replica answered %v for the old key, want ErrUnknownAPIKey", err)
			}
		})
	}
}

// A change rolled back, by the caller or to flip's savepoint, announces
// nothing: the next notice the replica gets is that of the change that
// committed after it.
func (s suite) rolledBackChangeAnnouncesNothing(t *testing.T) {
	t.Parallel()
	b := s.setup(t)
	kept := fliptest.RegisterTrust(t, b.db, flip.TrustParams{Name: "Kept", Code: "KEPT"})
	changed := fliptest.RegisterTrust(t, b.db, flip.TrustParams{Name: "Changed", Code: "CHG"})
	second := b.startReplica(t)
	second.mustCache(t, b.ctx, kept.APIKey.Reveal())

	b.inTx(t, false, func(tx *sql.Tx) error {
		_, err := b.reg.RevokeKey(b.ctx, tx, flip.TrustChange{TrustID: kept.Trust.ID})
		return err
	})
	b.inTx(t, true, func(tx *sql.Tx) error {
		_, err := b.reg.RotateKeys(b.ctx, tx, flip.TrustChange{TrustID: changed.Trust.ID})
		return err
	})
	if id := next(t, b.ctx, second.feed.changed, "the committed change's notice"); id != changed.Trust.ID {
		t.Fatalf("first notice is for %s, want %s (the rolled-back revocation's was delivered)", id, changed.Trust.ID)
	}
	if _, err := second.v.Verify(b.ctx, kept.APIKey.Reveal()); err != nil {
		t.Errorf("a rolled-back revocation refused the key: %v", err)
	}
}

// When the listening connection is terminated, caching pauses at once and
// resumes, emptied, once the feed has reconnected and listens again; a
// change committed after that is delivered as before.
func (s suite) lostConnectionPausesTheCacheAndReconnects(t *testing.T) {
	t.Parallel()
	b := s.setup(t)
	res := fliptest.RegisterTrust(t, b.db, flip.TrustParams{Name: "Reconnected", Code: "REC"})
	second := b.startReplica(t)
	second.mustCache(t, b.ctx, res.APIKey.Reveal())

	// The feed's session is the one whose latest statement is its LISTEN
	// (each feed re-sends it or pings with a query of its own only after
	// 10 quiet seconds); the test's database has no other listener.
	var killed int
	err := b.db.QueryRowContext(b.ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listening backends (%v), want 1", killed, err)
	}
	if next(t, b.ctx, second.feed.live, "the lost connection") {
		t.Fatal("want listening(false) after the connection was terminated")
	}
	if n := second.v.CachedGrants(); n != 0 {
		t.Errorf("%d grants cached while the feed is down, want 0", n)
	}
	if !next(t, b.ctx, second.feed.live, "the reconnection") {
		t.Fatal("want listening(true) after reconnecting")
	}
	second.mustCache(t, b.ctx, res.APIKey.Reveal())
	b.inTx(t, true, func(tx *sql.Tx) error {
		_, err := b.reg.RevokeKey(b.ctx, tx, flip.TrustChange{TrustID: res.Trust.ID})
		return err
	})
	next(t, b.ctx, second.feed.changed, "the notice after reconnecting")
	if _, err := second.v.Verify(b.ctx, res.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("revoked key after reconnecting: %v, want ErrUnknownAPIKey", err)
	}
}

// bundle is what a scenario starts from: a database with ten free kit
// slots, the registry that changes trusts in it, and the feed to test.
type bundle struct {
	ctx     context.Context
	db      *fliptest.DB
	reg     *flip.Registry
	newFeed NewFeed
}

func (s suite) setup(t *testing.T) bundle {
	t.Helper()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_010")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return bundle{ctx: ctx, db: db, reg: flip.NewRegistry(store.New()), newFeed: s.newFeed}
}

// replica is a second hub process: its own pool and a Verifier with an
// hour-long cache, listening for changes through the feed under test.
type replica struct {
	v    *flip.Verifier
	feed *watched
}

// startReplica starts a replica and returns once its feed listens.
func (b bundle) startReplica(t *testing.T) replica {
	t.Helper()
	pool, err := sql.Open("postgres", b.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	r := replica{v: flip.NewVerifier(pool, flip.WithVerifierCache(time.Hour, 100)), feed: watch(b.newFeed(t, b.db))}
	listenCtx, stop := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- r.v.Listen(listenCtx, r.feed) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen = %v, want context.Canceled", err)
		}
	})
	if !next(t, b.ctx, r.feed.live, "LISTEN") {
		t.Fatal("the feed reported it stopped listening before it started")
	}
	return r
}

// mustCache verifies key on r and fails unless the grant is now cached.
func (r replica) mustCache(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	if _, err := r.v.Verify(ctx, key); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if r.v.CachedGrants() == 0 {
		t.Fatal("a verified key was not cached while the feed listens")
	}
}

// inTx runs op in a transaction on the bundle's database and commits it,
// or rolls it back when commit is false.
func (b bundle) inTx(t *testing.T, commit bool, op func(*sql.Tx) error) {
	t.Helper()
	tx, err := b.db.BeginTx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := op(tx); err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if !commit {
		err = tx.Rollback()
	} else {
		err = tx.Commit()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// watched is a ChangeFeed that reports what its feed delivered, after the
// Verifier has acted on it, so a test can wait for a delivery instead of a
// clock.
type watched struct {
	feed    flip.ChangeFeed
	live    chan bool
	changed chan uuid.UUID
}

func watch(f flip.ChangeFeed) *watched {
	return &watched{feed: f, live: make(chan bool, 64), changed: make(chan uuid.UUID, 64)}
}

func (w *watched) Listen(ctx context.Context, listening func(bool), changed func(uuid.UUID)) error {
	return w.feed.Listen(ctx,
		func(live bool) { listening(live); w.live <- live },
		func(id uuid.UUID) { changed(id); w.changed <- id })
}

func next[T any](t *testing.T, ctx context.Context, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
		panic("unreachable")
	}
}

// LogsNoPassword runs the feed newFeed makes with the logger it is given,
// pointed at c's server, which refuses it, until the feed has logged its
// first failure; it fails t unless what was logged by the time the feed
// stopped holds want and none of c's passwords.
func LogsNoPassword(t *testing.T, c cmddbtest.RefusedDSN, want string, newFeed func(*slog.Logger) flip.ChangeFeed) {
	t.Helper()
	records := make(logRecords, 64)
	feed := newFeed(slog.New(slog.NewTextHandler(records, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- feed.Listen(ctx, func(bool) {}, func(uuid.UUID) {}) }()
	var logged strings.Builder
	select {
	case r := <-records:
		logged.WriteString(r)
	case <-time.After(30 * time.Second):
	}
	cancel()
	<-done
	for len(records) > 0 {
		logged.WriteString(<-records)
	}
	if !strings.Contains(logged.String(), want) {
		t.Errorf("the feed logged no %q in 30s against a server that refuses it:\n%s", want, logged.String())
	}
	cmddbtest.NoPassword(t, c, "the log", logged.String())
}

// logRecords is a log's output, one record a write (as slog's handlers
// write), for a test to wait on; a record beyond its capacity is dropped
// rather than block the feed.
type logRecords chan string

func (l logRecords) Write(p []byte) (int, error) {
	select {
	case l <- string(p):
	default:
	}
	return len(p), nil
}
