package flip_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// keyLookups watches the Verifier's statements on a real database: it
// counts the API-key lookups, fails them with err or sends query instead
// when set, and, when block is set, signals entered and waits on block
// inside every lookup.
type keyLookups struct {
	db      *fliptest.DB
	mu      sync.Mutex
	err     error
	query   string
	calls   atomic.Int32
	block   chan struct{}
	entered chan struct{}
}

func (l *keyLookups) fault(_ context.Context, st faultdb.Stmt) faultdb.Fault {
	if st.Query != pgsql.TrustByAPIKeyHash {
		return faultdb.Fault{}
	}
	l.calls.Add(1)
	if l.entered != nil {
		l.entered <- struct{}{}
	}
	if l.block != nil {
		<-l.block
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return faultdb.Fault{Err: l.err, Query: l.query}
}

func (l *keyLookups) failWith(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

// add stores trust holding key, as RegisterTrust would have; a trust
// stored already gets key instead of the one it held.
func (l *keyLookups) add(t *testing.T, key string, trust flip.Trust) {
	t.Helper()
	if _, err := l.db.ExecContext(t.Context(), `INSERT INTO trust (id, name, code, api_key_hash, created_at) VALUES ($1, $2, $3, $4, now())
ON CONFLICT (id) DO UPDATE SET api_key_hash = excluded.api_key_hash`,
		trust.ID, trust.Name, trust.Code, flip.HashAPIKey(key)); err != nil {
		t.Fatal(err)
	}
}

// remove revokes key: its trust keeps its row without a hash.
func (l *keyLookups) remove(t *testing.T, key string) {
	t.Helper()
	if _, err := l.db.ExecContext(t.Context(), `UPDATE trust SET api_key_hash = NULL WHERE api_key_hash = $1`, flip.HashAPIKey(key)); err != nil {
		t.Fatal(err)
	}
}

// verifyClock is a settable time source for the cache's TTL.
type verifyClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *verifyClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *verifyClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type verifyFixture struct {
	lookup      *keyLookups
	verifyClock *verifyClock
	key         string
	trust       flip.Trust
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	key, err := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &verifyFixture{
		lookup:      &keyLookups{db: fliptest.NewDB(t)},
		verifyClock: &verifyClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		key:         key,
		trust:       flip.Trust{ID: uuid.New(), Name: "Guy's and St Thomas'", Code: "GSTT"},
	}
	f.lookup.add(t, key, f.trust)
	return f
}

// verifier returns a Verifier on the fixture's database, through
// f.lookup's watch, on the fixture's clock.
func (f *verifyFixture) verifier(opts ...flip.VerifierOption) *flip.Verifier {
	db := &faultdb.DB{Next: f.lookup.db.DB, Fault: f.lookup.fault}
	return flip.NewVerifier(db, append([]flip.VerifierOption{flip.WithVerifierClock(f.verifyClock.Now)}, opts...)...)
}

func mustMintKey(t *testing.T, m flip.KeyMinter, kind flip.KeyKind) string {
	t.Helper()
	k, err := m.MintKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerify_KnownKeyReturnsTrust(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	got, err := f.verifier().Verify(t.Context(), f.key)
	if err != nil || got.ID != f.trust.ID || got.Name != f.trust.Name || got.Code != f.trust.Code {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, f.trust)
	}
}

func TestVerify_MalformedKeyTouchesNoLookup(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Minute, 10))
	flipped := []byte(f.key)
	flipped[20] ^= 1 // a typo: the checksum no longer matches
	for name, key := range map[string]string{
		"empty":                "",
		"checksum":             string(flipped),
		"truncated":            f.key[:len(f.key)-1],
		"internal-service key": mustMintKey(t, flip.RandomKeyMinter{}, flip.InternalServiceKey),
		"wrong prefix":         "flip_xx_" + f.key[8:],
		"reference bad chars":  strings.Repeat("!", flip.ReferenceKeyLength),
		"with whitespace":      " " + f.key,
	} {
		_, err := v.Verify(t.Context(), key)
		if !errors.Is(err, flip.ErrMalformedKey) || !errors.Is(err, flip.ErrUnauthorized) {
			t.Errorf("%s: error = %v, want ErrMalformedKey and ErrUnauthorized", name, err)
		}
		if key != "" && strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %q contains the key", name, err)
		}
	}
	if n := f.lookup.calls.Load(); n != 0 {
		t.Errorf("malformed keys caused %d lookups, want 0", n)
	}
}

func TestVerify_ReferenceFormatKeyIsLookedUp(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	key := mustMintKey(t, flip.RandomKeyMinter{Format: flip.ReferenceKeys}, flip.TrustAPIKey)
	f.lookup.add(t, key, f.trust)
	if got, err := f.verifier().Verify(t.Context(), key); err != nil || got.ID != f.trust.ID {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}

func TestVerify_UnknownKeyIsNeverCached(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Minute, 10))
	unknown := mustMintKey(t, flip.RandomKeyMinter{}, flip.TrustAPIKey)
	for range 3 {
		_, err := v.Verify(t.Context(), unknown)
		if !errors.Is(err, flip.ErrUnknownAPIKey) || !errors.Is(err, flip.ErrUnauthorized) {
			t.Fatalf("error = %v, want ErrUnknownAPIKey", err)
		}
		if strings.Contains(err.Error(), unknown) || strings.Contains(err.Error(), flip.HashAPIKey(unknown)) {
			t.Fatalf("error %q reveals the key or its hash", err)
		}
	}
	if n := f.lookup.calls.Load(); n != 3 {
		t.Errorf("%d lookups for 3 refusals, want 3", n)
	}
	if n := v.CachedGrants(); n != 0 {
		t.Errorf("cache holds %d grants, want 0", n)
	}
	// Once the database knows the key, the very next call grants it.
	f.lookup.add(t, unknown, f.trust)
	if _, err := v.Verify(t.Context(), unknown); err != nil {
		t.Errorf("after registration: %v", err)
	}
}

func TestVerify_LookupReturningOtherHashIsRefused(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	other := mustMintKey(t, flip.RandomKeyMinter{}, flip.TrustAPIKey)
	// A lookup that answers for the wrong hash (say, a case-folding
	// collation) must not grant.
	f.lookup.query = `SELECT id, name, code, '', created_at, api_key_hash FROM trust LIMIT 2`
	if _, err := f.verifier().Verify(t.Context(), other); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Fatalf("error = %v, want ErrUnknownAPIKey", err)
	}
}

func TestVerify_LookupFailureIsNotUnauthorized(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Minute, 10))
	down := errors.New("connection refused")
	f.lookup.failWith(down)
	_, err := v.Verify(t.Context(), f.key)
	if !errors.Is(err, down) || errors.Is(err, flip.ErrUnauthorized) {
		t.Fatalf("error = %v, want the lookup's error and not ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), f.key) {
		t.Fatalf("error %q contains the key", err)
	}
	if v.CachedGrants() != 0 {
		t.Error("a failed lookup was cached")
	}
}

func TestVerify_CacheServesGrantsUntilTTL(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Minute, 10))
	for range 3 {
		if _, err := v.Verify(t.Context(), f.key); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.lookup.calls.Load(); n != 1 {
		t.Fatalf("%d lookups for 3 verifications within the TTL, want 1", n)
	}
	// The database revokes the key; the grant lasts at most the TTL.
	f.lookup.remove(t, f.key)
	f.verifyClock.Add(59 * time.Second)
	if _, err := v.Verify(t.Context(), f.key); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	f.verifyClock.Add(time.Second)
	if _, err := v.Verify(t.Context(), f.key); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Fatalf("at the TTL: error = %v, want ErrUnknownAPIKey", err)
	}
}

func TestVerify_InvalidateAndPurgeDropGrants(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Hour, 10))
	other := mustMintKey(t, flip.RandomKeyMinter{}, flip.TrustAPIKey)
	otherTrust := flip.Trust{ID: uuid.New(), Name: "Other", Code: "O"}
	f.lookup.add(t, other, otherTrust)
	for _, k := range []string{f.key, other} {
		if _, err := v.Verify(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	f.lookup.remove(t, f.key)
	v.Invalidate(f.trust.ID)
	if _, err := v.Verify(t.Context(), f.key); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Fatalf("after Invalidate: error = %v, want ErrUnknownAPIKey", err)
	}
	if v.CachedGrants() != 1 {
		t.Fatalf("Invalidate dropped %d grants of other trusts", 1-v.CachedGrants())
	}
	f.lookup.remove(t, other)
	v.Purge()
	if _, err := v.Verify(t.Context(), other); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Fatalf("after Purge: error = %v, want ErrUnknownAPIKey", err)
	}
}

// A lookup that read a grant before a Purge must not put it in the cache
// after the Purge: the database may have changed in between.
func TestVerify_PurgeDuringLookupKeepsGrantOutOfCache(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	f.lookup.block, f.lookup.entered = make(chan struct{}), make(chan struct{})
	v := f.verifier(flip.WithVerifierCache(time.Hour, 10))
	done := make(chan error)
	go func() {
		_, err := v.Verify(context.Background(), f.key)
		done <- err
	}()
	<-f.lookup.entered
	v.Purge()
	close(f.lookup.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := v.CachedGrants(); n != 0 {
		t.Errorf("cache holds %d grants read before the Purge, want 0", n)
	}
}

func TestVerify_CacheIsBounded(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Hour, 3))
	keys := []string{f.key}
	for range 5 {
		k := mustMintKey(t, flip.RandomKeyMinter{}, flip.TrustAPIKey)
		f.lookup.add(t, k, flip.Trust{ID: uuid.New(), Name: k, Code: k[8:20]})
		keys = append(keys, k)
	}
	for _, k := range keys {
		if _, err := v.Verify(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.CachedGrants(); n != 3 {
		t.Fatalf("cache holds %d grants, want its bound of 3", n)
	}
	before := f.lookup.calls.Load()
	if _, err := v.Verify(t.Context(), keys[len(keys)-1]); err != nil || f.lookup.calls.Load() != before {
		t.Errorf("the newest grant was evicted (err %v)", err)
	}
	if _, err := v.Verify(t.Context(), keys[0]); err != nil || f.lookup.calls.Load() != before+1 {
		t.Errorf("the oldest grant was kept (err %v)", err)
	}
}

func TestVerify_CacheOffByDefaultAndWithZeroTTL(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	for _, v := range []*flip.Verifier{f.verifier(), f.verifier(flip.WithVerifierCache(0, 10)), f.verifier(flip.WithVerifierCache(time.Minute, 0))} {
		_, _ = v.Verify(t.Context(), f.key)
		_, _ = v.Verify(t.Context(), f.key)
		if v.CachedGrants() != 0 {
			t.Error("a verifier without a cache cached")
		}
	}
	if n := f.lookup.calls.Load(); n != 6 {
		t.Errorf("%d lookups, want 6", n)
	}
}

func TestVerify_ZeroVerifierFailsWithoutPanic(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	var v flip.Verifier
	if _, err := v.Verify(t.Context(), f.key); err == nil || errors.Is(err, flip.ErrUnauthorized) {
		t.Errorf("error = %v, want a configuration error that is not ErrUnauthorized", err)
	}
	v.Purge()
	v.Invalidate(uuid.New())
}

func TestVerify_ConcurrentUseWithPurges(t *testing.T) {
	t.Parallel()
	f := newVerifyFixture(t)
	v := f.verifier(flip.WithVerifierCache(time.Minute, 4))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 200 {
				if i%4 == 0 {
					v.Purge()
				}
				if _, err := v.Verify(context.Background(), f.key); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
