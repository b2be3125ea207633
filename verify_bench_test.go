package flip_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// verifyByScan is how the reference hub verifies a key: read every trust's
// hash and compare each in Go until one matches. It is the baseline the
// indexed lookup is measured against.
func verifyByScan(ctx context.Context, db *sql.DB, key string) (uuid.UUID, bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, api_key_hash FROM trust`)
	if err != nil {
		return uuid.Nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   uuid.UUID
			hash sql.NullString
		)
		if err := rows.Scan(&id, &hash); err != nil {
			return uuid.Nil, false, err
		}
		if hash.Valid && flip.APIKeyMatchesHash(key, hash.String) {
			return id, true, nil
		}
	}
	return uuid.Nil, false, rows.Err()
}

// BenchmarkVerify_10kTrusts compares verifying a trust API key among 10,000
// trusts with the indexed lookup (flip.Verifier without a cache), with a
// full scan of all hashes (the reference hub's method), and with the
// Verifier's cache serving 100 busy trusts (hits, once the first 100 calls
// have filled it). Keys are drawn across the whole table so the scan's
// early exit averages half the rows.
//
//	go test -run '^$' -bench Verify_10kTrusts .
func BenchmarkVerify_10kTrusts(b *testing.B) {
	const trusts = 10_000
	db := fliptest.NewDB(b)
	seedKeyedTrusts(b, db, trusts)
	ctx := context.Background()
	keyFor := func(i int) string { return benchKey(1 + (i*7919)%trusts) } // 7919 is prime: visits every trust

	b.Run("indexed", func(b *testing.B) {
		v := flip.NewVerifier(db)
		i := 0
		for b.Loop() {
			if _, err := v.Verify(ctx, keyFor(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("full_scan", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := verifyByScan(ctx, db.DB, keyFor(i)); err != nil || !ok {
				b.Fatalf("scan: found %v, %v", ok, err)
			}
			i++
		}
	})
	b.Run("indexed_cached_100_hot", func(b *testing.B) {
		v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, trusts))
		i := 0
		for b.Loop() {
			if _, err := v.Verify(ctx, keyFor(i%100)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
