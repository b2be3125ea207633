package flip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// API-key verification
//
// A trust authenticates to the hub with the trust API key RegisterTrust
// returned. The hub stores only HashAPIKey(key), so verifying a key means
// hashing it, finding the trust that holds that hash with one indexed
// lookup, and comparing the hashes in constant time. Verifier does exactly
// that, refuses malformed keys before any lookup, and can keep recent grants
// in memory for a short time.

// Verifier checks trust API keys presented to the hub. Create one at
// start-up and share it: it is safe for concurrent use.
//
//	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
//	trust, err := v.Verify(ctx, r.Header.Get("X-API-Key"))
//	if errors.Is(err, flip.ErrUnauthorized) { /* 401 */ }
//
// With WithVerifierCache, a verified key is remembered for at most the
// cache's TTL. Run Listen beside it: a key rotated, revoked or deleted by
// any process is then forgotten as soon as the change's notice arrives
// (without it, a changed key keeps working here for up to the TTL, unless
// this process calls Invalidate or Purge). Refusals are never cached: a
// key the database does not know is looked up again on every request, and
// a grant is only ever remembered from a lookup that found the trust.
type Verifier struct {
	db    dbexec.Executor // nil when NewVerifier was given none
	now   func() time.Time
	cache *grantCache // nil without WithVerifierCache
}

// VerifierOption configures a Verifier. The Verifier's options are named
// WithVerifier…, the Registry's (Option) With….
type VerifierOption func(*Verifier)

// WithVerifierCache keeps successful verifications in memory for up to
// ttl, in at most maxEntries entries (the oldest go first when it is full).
// It saves a database round trip per request for trusts that call often. A
// ttl or maxEntries of zero or less leaves caching off. Only hashes of keys
// are kept, never the keys themselves.
func WithVerifierCache(ttl time.Duration, maxEntries int) VerifierOption {
	return func(v *Verifier) {
		if ttl <= 0 || maxEntries <= 0 {
			v.cache = nil
			return
		}
		v.cache = newGrantCache(ttl, maxEntries)
	}
}

// WithVerifierClock sets the clock the cache's expiry is measured with
// (default time.Now); tests use it to step past the TTL.
func WithVerifierClock(now func() time.Time) VerifierOption {
	return func(v *Verifier) { v.now = now }
}

// NewVerifier returns a Verifier that finds trusts on db, usually the
// hub's connection pool (*sql.DB or *sqlx.DB), with one indexed query per
// key it has not cached (pgsql.TrustByAPIKeyHash: an equality match on
// trust.api_key_hash, served by flip's unique index where migration 2
// could build it, a scan of trust on the hub's bare schema). Caching is off
// unless WithVerifierCache is given.
func NewVerifier(db DBTX, opts ...VerifierOption) *Verifier {
	var ex dbexec.Executor
	if db != nil {
		ex = dbexec.FromSQL(db) // once, not per Verify
	}
	return newVerifier(ex, opts...)
}

// newVerifier is NewVerifier on db, whatever its driver.
func newVerifier(db dbexec.Executor, opts ...VerifierOption) *Verifier {
	v := &Verifier{db: db, now: time.Now}
	for _, opt := range opts {
		opt(v)
	}
	return v
}

// Verify returns the trust that holds key.
//
// A key that is not well formed for a trust API key (wrong length, prefix,
// alphabet or checksum; see CheckKey) is refused with an error matching
// ErrMalformedKey and ErrUnauthorized without any lookup. A well-formed key
// no trust holds returns ErrUnknownAPIKey (also ErrUnauthorized). A failed
// lookup returns its error, which does not match ErrUnauthorized. No error
// contains the key or its hash.
func (v *Verifier) Verify(ctx context.Context, key string) (Trust, error) {
	if err := CheckKey(TrustAPIKey, key); err != nil {
		return Trust{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if v.db == nil {
		return Trust{}, errNoDatabase
	}
	hash := HashAPIKey(key)
	var (
		gen     uint64
		started time.Time
	)
	if v.cache != nil {
		started = v.now()
		t, ok, g := v.cache.get(hash, started)
		if ok {
			return t, nil
		}
		gen = g
	}
	trust, storedHash, found, err := lookupAPIKeyHash(ctx, v.db, hash)
	if err != nil {
		return Trust{}, fmt.Errorf("verify trust API key: %w", err)
	}
	// The lookup matched on the hash already; comparing again in constant
	// time guards against a lookup that returns the wrong row (a
	// case-insensitive collation, a bug) and costs one SHA-256.
	if !found || !APIKeyMatchesHash(key, storedHash) {
		return Trust{}, ErrUnknownAPIKey
	}
	if v.cache != nil {
		// Dated from before the lookup: the grant expires no later than
		// ttl after the database confirmed it.
		v.cache.put(hash, trust, started, gen)
	}
	return trust, nil
}

// Invalidate forgets cached grants for trustID. Listen calls it for every
// change notice; call it yourself after committing a change that must
// take effect in this process before the notice arrives. Without a cache
// it does nothing.
func (v *Verifier) Invalidate(trustID uuid.UUID) {
	if v.cache != nil {
		v.cache.invalidate(func(t Trust) bool { return t.ID == trustID })
	}
}

// Purge forgets every cached grant. The hub calls it after committing any
// change to the trust table, registrations included. (A registration alone
// cannot make a cached grant wrong, as only grants are cached and a new
// trust's key is new; purging on every change keeps the rule simple: no
// grant survives a change this process made.) Without a cache it does
// nothing.
func (v *Verifier) Purge() {
	if v.cache != nil {
		v.cache.invalidate(func(Trust) bool { return true })
	}
}

// CachedGrants returns how many grants the cache holds (expired ones not
// yet dropped included), for metrics and tests; 0 without a cache.
func (v *Verifier) CachedGrants() int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}

// errNoDatabase keeps a zero Verifier from panicking on a nil interface.
var errNoDatabase = errors.New("flip: Verifier has no database; create it with NewVerifier")

// lookupAPIKeyHash returns the trust that holds hash and the hash as
// stored; found is false, with a nil error, when no trust holds it. A hash
// held by two trusts (only rows copied by hand can do that) is refused
// with ErrAmbiguousAPIKeyHash rather than granted to either.
func lookupAPIKeyHash(ctx context.Context, db dbexec.Executor, hash string) (t Trust, storedHash string, found bool, err error) {
	rows, err := db.Query(ctx, pgsql.TrustByAPIKeyHash, hash)
	if err != nil {
		return Trust{}, "", false, fmt.Errorf("look up trust by API-key hash: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if found {
			return Trust{}, "", false, ErrAmbiguousAPIKeyHash
		}
		if err := rows.Scan(&t.ID, &t.Name, &t.Code, &t.Region, &t.CreatedAt, &storedHash); err != nil {
			return Trust{}, "", false, fmt.Errorf("look up trust by API-key hash: %w", err)
		}
		t.CreatedAt, found = t.CreatedAt.UTC(), true
	}
	if err := rows.Err(); err != nil {
		return Trust{}, "", false, fmt.Errorf("look up trust by API-key hash: %w", err)
	}
	return t, storedHash, found, nil
}
