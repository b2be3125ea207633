package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// Key verification: the Verifier's indexed lookup against the reference
// hub's full scan. The setup and the scan copy verify_bench_test.go's
// (TestVerifyBench_KeysMatchSeededHashes checks the copy).

const (
	verifyRounds = 7                      // timed batches per measurement; the median is reported
	verifyBatch  = 150 * time.Millisecond // length of one batch
	verifyStride = 7919                   // prime: consecutive keys visit every trust, spread over the table
)

// seedKeyedTrusts inserts n trusts, trust i holding the key verifyKey(i).
func seedKeyedTrusts(ctx context.Context, db *sql.DB, n int) error {
	_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, code, api_key_hash, created_at)
SELECT gen_random_uuid(), 'Keyed trust ' || g, 'K' || g,
       encode(sha256(convert_to(lpad(g::text, 43, 'A'), 'UTF8')), 'hex'), now()
FROM generate_series(1, $1::int) AS g`, n)
	if err != nil {
		return fmt.Errorf("seed %d trusts: %w", n, err)
	}
	_, err = db.ExecContext(ctx, `VACUUM ANALYZE trust`)
	return err
}

// verifyKey is the reference-format key seedKeyedTrusts gave trust i
// (1-based); keys past n are well formed and held by no trust.
func verifyKey(i int) string {
	s := fmt.Sprint(i)
	return strings.Repeat("A", flip.ReferenceKeyLength-len(s)) + s
}

// verifyByScan is how the reference hub verifies a key: read every trust's
// hash and compare each in Go until one matches.
func verifyByScan(ctx context.Context, db *sql.DB, key string) (id uuid.UUID, found bool, err error) {
	rows, err := db.QueryContext(ctx, `SELECT id, api_key_hash FROM trust`)
	if err != nil {
		return uuid.Nil, false, err
	}
	defer rows.Close()
	var hash sql.NullString
	for err == nil && !found && rows.Next() {
		err = rows.Scan(&id, &hash)
		found = err == nil && hash.Valid && flip.APIKeyMatchesHash(key, hash.String)
	}
	if !found {
		id = uuid.Nil
	}
	return id, found, errors.Join(err, rows.Err())
}

// verifyCase is one method at one size, on keys trusts hold (hit) or not.
type verifyCase struct {
	size       int
	hit, scan  bool
	db         *sql.DB
	v          *flip.Verifier
	key        func(i int) string // the i-th key to verify
	next       int                // the next i
	perOp, cpu []float64          // seconds per operation, wall and client CPU, one per timed batch
}

// batch verifies keys for about verifyBatch, checking every answer, and
// returns the wall and client CPU seconds per verification.
func (c *verifyCase) batch(ctx context.Context) (wall, cpu float64, err error) {
	cpu0, t0, ops := processCPU(), time.Now(), 0
	for ; ops%64 != 0 || ops == 0 || time.Since(t0) < verifyBatch; ops, c.next = ops+1, c.next+1 {
		var found bool
		if key := c.key(c.next); c.scan {
			_, found, err = verifyByScan(ctx, c.db, key)
		} else if _, err = c.v.Verify(ctx, key); err == nil || errors.Is(err, flip.ErrUnknownAPIKey) {
			found, err = err == nil, nil
		}
		if err != nil || found != c.hit {
			return 0, 0, fmt.Errorf("verify, %d trusts, scan %v, hit %v: found %v, %v", c.size, c.scan, c.hit, found, err)
		}
	}
	return time.Since(t0).Seconds() / float64(ops), (processCPU() - cpu0).Seconds() / float64(ops), nil
}

func runVerify(ctx context.Context, e *env) (string, error) {
	var cases []*verifyCase
	var last *sql.DB
	for _, n := range []int{1_000, 10_000} {
		log.Printf("verify: database with %d keyed trusts", n)
		_, db, err := e.createMigratedDB(ctx, fmt.Sprintf("verify_%d", n))
		if err != nil {
			return "", err
		}
		defer db.Close()
		db.SetMaxOpenConns(1) // one caller, one connection, as in BenchmarkVerify_10kTrusts
		if err := seedKeyedTrusts(ctx, db, n); err != nil {
			return "", err
		}
		last = db
		v := flip.NewVerifier(db) // without a cache: every call looks up
		keys := map[bool]func(int) string{
			true:  func(i int) string { return verifyKey(1 + (i*verifyStride)%n) }, // held by a trust
			false: func(i int) string { return verifyKey(n + 1 + i%1_000_000) },    // held by none
		}
		for _, hit := range []bool{true, false} {
			cases = append(cases, &verifyCase{size: n, hit: hit, db: db, v: v, key: keys[hit]}, &verifyCase{size: n, hit: hit, scan: true, db: db, v: v, key: keys[hit]})
		}
	}
	// Round 0 warms the connections, the plans and the buffer cache.
	err := interleave(verifyRounds+1, len(cases), func(round, i int) error {
		wall, cpu, err := cases[i].batch(ctx)
		if round > 0 {
			cases[i].perOp, cases[i].cpu = append(cases[i].perOp, wall), append(cases[i].cpu, cpu)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	// For scale: the Verifier with a cache, on a key it has granted before.
	key := verifyKey(42)
	cached := &verifyCase{hit: true, v: flip.NewVerifier(last, flip.WithVerifierCache(time.Minute, 1000)), key: func(int) string { return key }}
	_, _, err = cached.batch(ctx)
	wall, _, err2 := cached.batch(ctx)
	if err = errors.Join(err, err2); err != nil {
		return "", err
	}
	return verifyReport(cases, wall), nil
}

const verifyText = "**Verifying a key a trust holds, the indexed lookup is %s than the full scan.**\n\n" +
	"Latency of one verification by one caller on one connection (lib/pq), median of %d timed batches of about %s each; the batches of all %d measurements are interleaved in one run (the order turning each round), and each ratio is the median of the per-round ratios. Client CPU is this process's user + system time per verification; the server's comes on top.\n\n" +
	"%s\nFor scale: with `flip.WithVerifierCache`, a key granted before is verified in %s (no database round trip; at %s trusts).\n\n" +
	"How it is measured:\n\n" +
	"- **Data**: a fresh database per size at the latest migration (the unique index `flip_trust_api_key_hash_key` on `trust.api_key_hash`), with N trusts inserted by one `INSERT … SELECT … FROM generate_series(1, N)`, trust i holding the reference-format key `lpad(i, 43, 'A')` (hashed by the server with the same rule as `flip.HashAPIKey`), then `VACUUM ANALYZE`. The setup, the keys and the scan are those of `BenchmarkVerify_10kTrusts` in `verify_bench_test.go`.\n" +
	"- **Indexed lookup**: `flip.NewVerifier(db).Verify(ctx, key)` without a cache: `CheckKey`, one SHA-256, an equality match on the index, a constant-time comparison. Keys held by a trust are drawn with a stride of %d over the table, so consecutive calls hit rows far apart.\n" +
	"- **Full scan** (the reference hub's method): `SELECT id, api_key_hash FROM trust`, then `flip.APIKeyMatchesHash` (hex decode, SHA-256 of the key, constant-time compare) on each row until one matches. Its cost grows with the table; the indexed lookup's does not.\n"

// verifyReport renders the cases: per size and kind of key, the indexed
// lookup, then the scan.
func verifyReport(cases []*verifyCase, cached float64) string {
	var heads []string
	var rows [][]string
	for k := 0; k+1 < len(cases); k += 2 {
		ix, sc := cases[k], cases[k+1]
		ratio := ratios(sc.perOp, ix.perOp, func(x float64) float64 { return x })
		if ix.hit {
			heads = append(heads, fmt.Sprintf("%.1f× faster at %s trusts (%s against %s)", ratio, thousands(float64(ix.size)), fmtSeconds(median(ix.perOp)), fmtSeconds(median(sc.perOp))))
		}
		what := map[bool]string{true: "held by a trust (the scan stops at the match: half the rows on average)", false: "held by none (well formed; the scan reads every row)"}[ix.hit]
		rows = append(rows, []string{thousands(float64(ix.size)), what, fmtSeconds(median(ix.perOp)), fmtSeconds(median(sc.perOp)),
			fmt.Sprintf("**%.1f×**", ratio), fmtSeconds(median(ix.cpu)), fmtSeconds(median(sc.cpu))})
	}
	table := mdTable("rlrrrrr", []string{"trusts", "keys", "indexed lookup", "full scan", "full scan / indexed", "client CPU, indexed", "client CPU, scan"}, rows)
	return fmt.Sprintf(verifyText, strings.Join(heads, " and "), verifyRounds, verifyBatch, len(cases), table,
		fmtSeconds(cached), thousands(float64(cases[len(cases)-1].size)), verifyStride)
}
