package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// Key verification: the Verifier's indexed lookup against the reference
// hub's method, reading every trust's hash and comparing each in Go. The
// setup and the scan are those of store/verify_bench_test.go
// (BenchmarkVerify_10kTrusts), which a command cannot import; they are
// short enough to copy (TestVerifyBench_KeysMatchSeededHashes checks that
// the SQL and the Go side of the copy agree).

// verifySizes are the trust counts measured.
var verifySizes = []int{1_000, 10_000}

const (
	verifyRounds = 7                      // timed batches per measurement; the median is reported
	verifyBatch  = 150 * time.Millisecond // aimed length of one batch
	verifyStride = 7919                   // prime: consecutive keys visit every trust, spread over the table
)

// seedKeyedTrusts inserts n trusts in one statement, trust i holding the
// API key verifyKey(i), as store/verify_bench_test.go does.
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

// verifyKey is the API key seedKeyedTrusts gave trust i (1-based): a
// reference-format key (43 base64url characters). Keys past n are well
// formed and held by no trust.
func verifyKey(i int) string {
	s := fmt.Sprint(i)
	return strings.Repeat("A", flip.ReferenceKeyLength-len(s)) + s
}

// verifyByScan is how the reference hub verifies a key: read every trust's
// hash and compare each in Go until one matches.
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

// verifyCase is one measured operation: a method at one size, on keys
// trusts hold (hit) or on keys none holds (miss).
type verifyCase struct {
	size   int
	method string // "indexed" or "scan"
	hit    bool
	op     func(ctx context.Context, i int) error // the i-th verification
	batch  int                                    // operations per timed batch, from calibration

	perOp []float64 // seconds, one per round
	cpu   []float64 // client CPU seconds per op, one per round
}

func (c *verifyCase) label() string {
	return fmt.Sprintf("%s %d %s", c.method, c.size, map[bool]string{true: "hit", false: "miss"}[c.hit])
}

func runVerify(ctx context.Context, e *env) (string, error) {
	dbs := map[int]*sql.DB{}
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	var cases []*verifyCase
	for _, n := range verifySizes {
		log.Printf("verify: database with %d keyed trusts", n)
		_, db, err := e.createMigratedDB(ctx, fmt.Sprintf("verify_%d", n))
		if err != nil {
			return "", err
		}
		db.SetMaxOpenConns(1) // one caller, one connection, as in the store benchmark
		dbs[n] = db
		if err := seedKeyedTrusts(ctx, db, n); err != nil {
			return "", err
		}
		cases = append(cases, verifyCases(db, n)...)
	}
	if err := calibrate(ctx, cases); err != nil {
		return "", err
	}
	if err := timeBatches(ctx, cases); err != nil {
		return "", err
	}
	big := verifySizes[len(verifySizes)-1]
	cached, err := cachedVerify(ctx, dbs[big])
	if err != nil {
		return "", err
	}
	return verifyReport(cases, cached, big), nil
}

// verifyCases are the four measurements at one size: each method on keys
// trusts hold and on keys none holds.
func verifyCases(db *sql.DB, n int) []*verifyCase {
	v := flip.NewVerifier(db) // no cache: every call looks up
	var cases []*verifyCase
	for _, hit := range []bool{true, false} {
		key := func(i int) string { return verifyKey(1 + (i*verifyStride)%n) }
		if !hit {
			key = func(i int) string { return verifyKey(n + 1 + i%1_000_000) }
		}
		cases = append(cases,
			&verifyCase{size: n, method: "indexed", hit: hit, op: func(ctx context.Context, i int) error {
				_, err := v.Verify(ctx, key(i))
				if hit && err != nil || !hit && !errors.Is(err, flip.ErrUnknownAPIKey) {
					return fmt.Errorf("indexed, %d trusts, hit %v: %v", n, hit, err)
				}
				return nil
			}},
			&verifyCase{size: n, method: "scan", hit: hit, op: func(ctx context.Context, i int) error {
				_, found, err := verifyByScan(ctx, db, key(i))
				if err != nil || found != hit {
					return fmt.Errorf("scan, %d trusts, hit %v: found %v, %v", n, hit, found, err)
				}
				return nil
			}})
	}
	return cases
}

// calibrate runs each case for about a batch's length (which also warms
// the connections, the plans and the buffer cache) and sizes its batches
// from what it did.
func calibrate(ctx context.Context, cases []*verifyCase) error {
	for _, c := range cases {
		ops, start := 0, time.Now()
		for ; time.Since(start) < verifyBatch || ops < 5; ops++ {
			if err := c.op(ctx, ops); err != nil {
				return err
			}
		}
		per := time.Since(start) / time.Duration(ops)
		c.batch = max(5, int(verifyBatch/per))
		log.Printf("verify: %s: %v per op, batches of %d", c.label(), per.Round(time.Microsecond), c.batch)
	}
	return nil
}

// timeBatches runs every case once per round, the order turning by one
// each round, each batch on keys not used before.
func timeBatches(ctx context.Context, cases []*verifyCase) error {
	next := make([]int, len(cases))
	for round := range verifyRounds {
		for _, i := range turned(len(cases), round) {
			c := cases[i]
			cpu0, t0 := processCPU(), time.Now()
			for j := range c.batch {
				if err := c.op(ctx, next[i]+j); err != nil {
					return err
				}
			}
			elapsed, cpu := time.Since(t0), processCPU()-cpu0
			next[i] += c.batch
			c.perOp = append(c.perOp, elapsed.Seconds()/float64(c.batch))
			c.cpu = append(c.cpu, cpu.Seconds()/float64(c.batch))
		}
	}
	return nil
}

// cachedVerify times the Verifier with WithVerifierCache on a key it has granted
// before, for scale.
func cachedVerify(ctx context.Context, db *sql.DB) (time.Duration, error) {
	cached := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 1000))
	key := verifyKey(42)
	const ops = 200_000
	var t0 time.Time
	for i := range ops + 1 {
		if i == 1 {
			t0 = time.Now()
		}
		if _, err := cached.Verify(ctx, key); err != nil {
			return 0, fmt.Errorf("cached verifier: %w", err)
		}
	}
	return time.Since(t0) / ops, nil
}

func verifyReport(cases []*verifyCase, cached time.Duration, big int) string {
	find := func(n int, method string, hit bool) *verifyCase {
		return cases[slices.IndexFunc(cases, func(c *verifyCase) bool { return c.size == n && c.method == method && c.hit == hit })]
	}
	// ratio is the median of the per-round ratios of the scan to the index.
	ratio := func(n int, hit bool) float64 {
		ix, sc := find(n, "indexed", hit), find(n, "scan", hit)
		xs := make([]float64, len(ix.perOp))
		for i := range xs {
			xs[i] = sc.perOp[i] / ix.perOp[i]
		}
		return median(xs)
	}
	var heads []string
	var rows [][]string
	for _, n := range verifySizes {
		heads = append(heads, fmt.Sprintf("%.1f× faster at %s trusts (%s against %s)", ratio(n, true), thousands(float64(n)),
			fmtSeconds(median(find(n, "indexed", true).perOp)), fmtSeconds(median(find(n, "scan", true).perOp))))
		for _, hit := range []bool{true, false} {
			ix, sc := find(n, "indexed", hit), find(n, "scan", hit)
			what := map[bool]string{true: "held by a trust (the scan stops at the match: half the rows on average)", false: "held by none (well formed; the scan reads every row)"}[hit]
			rows = append(rows, []string{thousands(float64(n)), what, fmtSeconds(median(ix.perOp)), fmtSeconds(median(sc.perOp)),
				fmt.Sprintf("**%.1f×**", ratio(n, hit)), fmtSeconds(median(ix.cpu)), fmtSeconds(median(sc.cpu))})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**Verifying a key a trust holds, the indexed lookup is %s than the full scan.**\n\n", strings.Join(heads, " and "))
	fmt.Fprintf(&b, "Latency of one verification by one caller on one connection (lib/pq), median of %d timed batches of about %s each; the batches of all %d measurements are interleaved in one run (the order turning each round), and each ratio is the median of the per-round ratios. Client CPU is this process's user + system time per verification; the server's comes on top.\n\n", verifyRounds, verifyBatch, len(cases))
	b.WriteString(mdTable("rlrrrrr", []string{"trusts", "keys", "indexed lookup", "full scan", "full scan / indexed", "client CPU, indexed", "client CPU, scan"}, rows))
	fmt.Fprintf(&b, "\nFor scale: with `flip.WithVerifierCache`, a key granted before is verified in %s (no database round trip; at %s trusts).\n\n", fmtSeconds(cached.Seconds()), thousands(float64(big)))
	b.WriteString("How it is measured:\n\n")
	b.WriteString("- **Data**: a fresh database per size at the latest migration (the unique index `flip_trust_api_key_hash_key` on `trust.api_key_hash`), with N trusts inserted by one `INSERT … SELECT … FROM generate_series(1, N)`, trust i holding the reference-format key `lpad(i, 43, 'A')` (hashed by the server with the same rule as `flip.HashAPIKey`), then `VACUUM ANALYZE`. The setup, the keys and the scan are those of `BenchmarkVerify_10kTrusts` in `store/verify_bench_test.go`.\n")
	fmt.Fprintf(&b, "- **Indexed lookup**: `flip.NewVerifier(db).Verify(ctx, key)` without a cache: `CheckKey`, one SHA-256, an equality match on the index, a constant-time comparison. Keys held by a trust are drawn with a stride of %d over the table, so consecutive calls hit rows far apart.\n", verifyStride)
	b.WriteString("- **Full scan** (the reference hub's method): `SELECT id, api_key_hash FROM trust`, then `flip.APIKeyMatchesHash` (hex decode, SHA-256 of the key, constant-time compare) on each row until one matches. Its cost grows with the table; the indexed lookup's does not.\n")
	return b.String()
}
