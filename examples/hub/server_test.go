package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// liveHub is the hub as main wires it: NewServer over OpenPools' two
// pools, on a database of its own.
type liveHub struct {
	db  *fliptest.DB
	url string
}

// newLiveHub serves NewServer(cfg) with the pools, the fake authoriser and
// a verifier without a cache, so that every GET /trust/me asks the
// database.
func newLiveHub(t *testing.T, cfg Config, slots string) *liveHub {
	t.Helper()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, slots)
	verify, admin, err := OpenPools(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { verify.Close(); admin.Close() })
	cfg.DB, cfg.AdminDB, cfg.Authoriser = verify, admin, fakeAuth
	cfg.Verifier = flip.NewVerifier(verify)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = NewServer(cfg)
	srv.Start()
	t.Cleanup(srv.Close)
	return &liveHub{db: db, url: srv.URL}
}

// lockTrustTable takes LOCK TABLE trust IN EXCLUSIVE MODE in a transaction
// of its own and holds it until release (or the end of the test): trusts
// can still be read, as key verification does, but not inserted, as every
// registration must.
func lockTrustTable(t *testing.T, db *fliptest.DB) (release func()) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), `LOCK TABLE trust IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(func() { _ = tx.Rollback() })
	t.Cleanup(release)
	return release
}

// countBackends counts the other sessions on db's database that wait on a
// lock (waiting) or are anything but idle (busy).
func countBackends(t *testing.T, db *fliptest.DB) (waiting, busy int) {
	t.Helper()
	err := db.QueryRowContext(t.Context(), `
		SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) FILTER (WHERE state <> 'idle')
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&waiting, &busy)
	if err != nil {
		t.Fatal(err)
	}
	return waiting, busy
}

// eventually polls cond until it holds and reports whether it did within
// 30 seconds (less than tryDo's bound on a request): a bound against
// hanging, not a measurement.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// healthy reports whether /healthz at url answers 200 within
// eventually's bound. One 503 proves nothing: the ping behind it has
// HealthTimeout (a second), which a loaded machine may miss now and then.
func healthy(t *testing.T, url string) bool {
	return eventually(func() bool { return do(t, http.MethodGet, url+"/healthz", "", "", nil).status == http.StatusOK })
}

// result is one reply, or the transport error in its place.
type result struct {
	r   response
	err error
}

func postAsync(t *testing.T, url, body string, out chan<- result) {
	go func() {
		r, err := tryDo(t.Context(), http.MethodPost, url+"/admin/trusts", "application/json", body, asAdmin)
		out <- result{r, err}
	}()
}

// Issue 11, finding 8 (starvation): registrations pile up behind a held
// lock, more of them than the in-flight bound and the old shared pool
// together. Only the bound's worth wait, on their own pool; the rest are
// refused at once; a trust's key is still verified and /healthz is still
// right. After the lock goes, the trusts in the table are exactly the ones
// whose keys some client received.
func TestHub_RegistrationsBehindAHeldLockDoNotStarveVerification(t *testing.T) {
	t.Parallel()
	// A lock_timeout longer than the test holds the lock: the registrations
	// in flight wait until it is released.
	h := newLiveHub(t, Config{LockTimeout: time.Minute}, "Trust_001..Trust_100")
	alpha := postTrust(t, h.url, `{"name":"Alpha","code":"ALPHA"}`)
	wantStatus(t, alpha, http.StatusCreated)
	key, _ := alpha.body["trust_api_key"].(string)

	release := lockTrustTable(t, h.db)
	n := AdminPoolSize + VerifyPoolSize + 6
	results := make(chan result, n)
	for i := range n {
		postAsync(t, h.url, fmt.Sprintf(`{"name":"Trust %d","code":"T%d"}`, i, i), results)
	}
	var (
		got     []result
		waiting int
	)
	if !eventually(func() bool {
		for len(results) > 0 {
			got = append(got, <-results)
		}
		waiting, _ = countBackends(t, h.db)
		return len(got) == n-AdminPoolSize && waiting == AdminPoolSize
	}) {
		t.Errorf("%d registrations answered and %d waiting on the lock; want %d refused at once and %d waiting",
			len(got), waiting, n-AdminPoolSize, AdminPoolSize)
	}
	for _, res := range got {
		if res.err != nil {
			t.Fatalf("a registration got no reply: %v", res.err)
		}
		wantRetryLater(t, res.r)
	}

	// A starved verification would wait until the lock goes, which only
	// the test's release ends: tryDo's bound fails it.
	start := time.Now()
	me, err := tryDo(t.Context(), http.MethodGet, h.url+"/trust/me", "", "", map[string]string{"X-API-Key": key})
	if err != nil {
		t.Fatalf("GET /trust/me with a valid key under the held lock: %v", err)
	}
	t.Logf("GET /trust/me under the held lock answered in %v", time.Since(start)) // a figure, not asserted
	wantStatus(t, me, http.StatusOK)
	if me.body["name"] != "Alpha" {
		t.Errorf("/trust/me = %s", me.raw)
	}
	if !healthy(t, h.url) {
		t.Error("GET /healthz under the held lock never answered 200")
	}

	release()
	for len(got) < n {
		got = append(got, <-results)
	}
	received := []string{alpha.body["id"].(string)}
	statuses := map[int]int{}
	for _, res := range got {
		if res.err != nil {
			t.Fatalf("a registration got no reply: %v", res.err)
		}
		statuses[res.r.status]++
		switch res.r.status {
		case http.StatusCreated:
			received = append(received, res.r.body["id"].(string))
		case http.StatusServiceUnavailable:
			wantRetryLater(t, res.r)
		default:
			t.Errorf("status %d: %s", res.r.status, res.r.raw)
		}
	}
	t.Logf("statuses after the lock went: %v", statuses)
	if statuses[http.StatusServiceUnavailable] < n-AdminPoolSize {
		t.Errorf("statuses = %v, want at least %d×503", statuses, n-AdminPoolSize)
	}
	var stored []string
	if err := sqlx.NewDb(h.db.DB, "postgres").SelectContext(t.Context(), &stored, `SELECT id::text FROM trust`); err != nil {
		t.Fatal(err)
	}
	slices.Sort(received)
	slices.Sort(stored)
	if !slices.Equal(stored, received) {
		t.Errorf("trusts in the table %v, trusts whose keys a client received %v", stored, received)
	}
	if assigned := countAssignedSlots(t, h.db); assigned != len(stored) {
		t.Errorf("%d slots assigned to %d trusts", assigned, len(stored))
	}
}

func countAssignedSlots(t *testing.T, db *fliptest.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Issue 11, finding 8 (lost keys): a registration blocked past the
// server's WriteTimeout. Its deadline ends first, so the client gets a
// whole 503 (not an empty reply) and nothing is committed once the lock
// is released.
func TestHub_RegistrationPastItsDeadlineCommitsNothing(t *testing.T) {
	t.Parallel()
	// lock_timeout longer than the WriteTimeout: only the deadline can end
	// the wait.
	h := newLiveHub(t, Config{WriteTimeout: 3 * time.Second, LockTimeout: time.Minute}, "Trust_001")
	release := lockTrustTable(t, h.db)
	done := make(chan result, 1)
	postAsync(t, h.url, `{"name":"Late","code":"LATE"}`, done)
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		// Without a deadline the handler waits for the lock and answers
		// nobody; let it go on to show what it does then.
		release()
		res = <-done
	}
	release()
	if !eventually(func() bool { _, busy := countBackends(t, h.db); return busy == 0 }) {
		t.Fatal("the database sessions never settled")
	}
	if res.err != nil {
		t.Errorf("the client got no reply: %v", res.err)
	} else {
		wantRetryLater(t, res.r)
		if !strings.Contains(fmt.Sprint(res.r.body["error"]), "not made") {
			t.Errorf("error = %q, want it to say nothing was registered", res.r.body["error"])
		}
	}
	wantNothingWritten(t, h.db)
}

// A held lock ends the registration after lock_timeout with a retryable
// 503, not a 500, and nothing is written. Waits on the library mapping
// SQLSTATE 55P03 to flip.ErrRetryable (issue 11, finding 5).
func TestHub_LockTimeoutIsARetryable503(t *testing.T) {
	t.Parallel()
	h := newLiveHub(t, Config{LockTimeout: 50 * time.Millisecond}, "Trust_001")
	release := lockTrustTable(t, h.db)
	wantRetryLater(t, postTrust(t, h.url, `{"name":"A","code":"A"}`))
	release()
	wantNothingWritten(t, h.db)
	wantStatus(t, postTrust(t, h.url, `{"name":"A","code":"A"}`), http.StatusCreated)
}

// Free slots that are all row-locked by other registrations are a busy
// pool (503, retry), not an empty one (409). Waits on the library's
// flip.ErrKitSlotsBusy (issue 11, finding 5).
func TestHub_EveryFreeSlotBeingClaimedIs503NotConflict(t *testing.T) {
	t.Parallel()
	h := newLiveHub(t, Config{}, "Trust_001..Trust_003")
	tx, err := h.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `SELECT slot_name FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	r := postTrust(t, h.url, `{"name":"A","code":"A"}`)
	wantRetryLater(t, r)
	if r.body["error"] == flip.ErrNoFreeKitSlot.Error() {
		t.Errorf("busy slots reported as an exhausted pool")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, postTrust(t, h.url, `{"name":"A","code":"A"}`), http.StatusCreated)
}

// /healthz says 503 while key verification cannot get a connection, and
// 200 again once it can.
func TestHub_HealthzReflectsTheVerificationPool(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	verify, err := sql.Open("postgres", db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { verify.Close() })
	verify.SetMaxOpenConns(1)
	url := serveHandler(t, NewHandler(Config{DB: verify, AdminDB: db.DB, Authoriser: fakeAuth}))

	if !healthy(t, url) {
		t.Fatal("/healthz never answered 200 with the pool's connection free")
	}
	conn, err := verify.Conn(t.Context()) // the pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, http.MethodGet, url+"/healthz", "", "", nil)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	conn.Close()
	if !healthy(t, url) {
		t.Fatal("/healthz never answered 200 again once the connection was free")
	}
	verify.Close()
	wantStatus(t, do(t, http.MethodGet, url+"/healthz", "", "", nil), http.StatusServiceUnavailable)
}

func TestRegistrationTimeout_EndsBeforeTheWriteTimeout(t *testing.T) {
	t.Parallel()
	for _, write := range []time.Duration{time.Second, 3 * time.Second, DefaultWriteTimeout, 10 * time.Minute} {
		if got := RegistrationTimeout(write); got <= 0 || got >= write || got < write-5*time.Second {
			t.Errorf("RegistrationTimeout(%v) = %v", write, got)
		}
	}
	if srv := NewServer(Config{}); srv.WriteTimeout != DefaultWriteTimeout {
		t.Errorf("WriteTimeout = %v", srv.WriteTimeout)
	}
}
