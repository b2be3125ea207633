package flip_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// seedKeyedTrusts inserts n trusts in one statement, trust i holding the
// API key benchKey(i), and analyzes the table so the planner knows its
// size. Keys are in the reference format (43 base64url characters), built
// the same way in SQL and in Go.
func seedKeyedTrusts(tb testing.TB, db flip.DBTX, n int) {
	tb.Helper()
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, code, api_key_hash, created_at)
SELECT gen_random_uuid(), 'Keyed trust ' || g, 'K' || g,
       encode(sha256(convert_to(lpad(g::text, 43, 'A'), 'UTF8')), 'hex'), now()
FROM generate_series(1, $1::int) AS g`, n)
	if err != nil {
		tb.Fatalf("seed %d trusts: %v", n, err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE trust`); err != nil {
		tb.Fatal(err)
	}
}

// benchKey is the API key seedKeyedTrusts gave trust i (1-based).
func benchKey(i int) string {
	s := fmt.Sprint(i)
	return strings.Repeat("A", flip.ReferenceKeyLength-len(s)) + s
}

func TestVerifierLookup_FindsTrustByHash(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"postgres", "pgx"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t, fliptest.WithDriver(driver))
			fliptest.AddSlots(t, db, "Trust_001")
			res := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Alpha", Code: "A", Region: "London"})
			got, err := flip.NewVerifier(db).Verify(t.Context(), res.APIKey.Reveal())
			if err != nil || got.ID != res.Trust.ID || got.Name != "Alpha" || got.Region != "London" || !got.CreatedAt.Equal(res.Trust.CreatedAt) {
				t.Errorf("Verify = %+v, %v; want trust %+v", got, err, res.Trust)
			}
			if n := rowsFor(t, db, flip.HashAPIKey(res.InternalServiceKey.Reveal())); n != 0 {
				t.Errorf("the internal-service key's hash finds %d trusts, want none", n)
			}
		})
	}
}

func TestVerifierLookup_ReferenceHashesFromSQLMatchHashAPIKey(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	seedKeyedTrusts(t, db, 3)
	v := flip.NewVerifier(db)
	for i := 1; i <= 3; i++ {
		got, err := v.Verify(t.Context(), benchKey(i))
		if err != nil || got.Name != fmt.Sprint("Keyed trust ", i) {
			t.Errorf("Verify(key %d) = %+v, %v", i, got, err)
		}
	}
	if _, err := v.Verify(t.Context(), benchKey(4)); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("unknown key: error = %v, want ErrUnknownAPIKey", err)
	}
}

// The query must be served by flip's index on api_key_hash, not by
// reading every trust.
func TestVerifierLookup_UsesHashIndex(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	seedKeyedTrusts(t, db, 10_000)
	var plan []string
	rows, err := db.QueryContext(t.Context(), `EXPLAIN `+pgsql.TrustByAPIKeyHash, flip.HashAPIKey(benchKey(42)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "flip_trust_api_key_hash_key") || strings.Contains(text, "Seq Scan") {
		t.Errorf("plan does not use the api_key_hash index:\n%s", text)
	}
}

// On the hub's schema nothing stops two rows from holding one hash; such a
// key identifies neither trust.
func TestVerifierLookup_RefusesHashHeldTwice(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(1))
	hash := flip.HashAPIKey(benchKey(1))
	for _, name := range []string{"Copy 1", "Copy 2"} {
		if _, err := db.ExecContext(t.Context(), `INSERT INTO trust (id, name, api_key_hash, created_at) VALUES ($1, $2, $3, now())`,
			uuid.New(), name, hash); err != nil {
			t.Fatal(err)
		}
	}
	_, err := flip.NewVerifier(db).Verify(t.Context(), benchKey(1))
	if !errors.Is(err, flip.ErrAmbiguousAPIKeyHash) || errors.Is(err, flip.ErrUnauthorized) {
		t.Errorf("error = %v, want ErrAmbiguousAPIKeyHash (a 500, not a 401)", err)
	}
}

func TestVerifierLookup_TrustWithoutHashNeverMatches(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	if _, err := db.ExecContext(t.Context(), `INSERT INTO trust (id, name, created_at) VALUES ($1, 'No key', now())`, uuid.New()); err != nil {
		t.Fatal(err)
	}
	for _, hash := range []string{"", flip.HashAPIKey("")} {
		if n := rowsFor(t, db, hash); n != 0 {
			t.Errorf("lookup %q finds %d trusts, want none", hash, n)
		}
	}
}

// rowsFor counts the rows the Verifier's lookup finds for hash.
func rowsFor(t *testing.T, db *fliptest.DB, hash string) int {
	t.Helper()
	n := 0
	eachRow(t, t.Context(), db, strings.Replace(pgsql.TrustByAPIKeyHash, "$1", "'"+hash+"'", 1), func(*sql.Rows) error { n++; return nil })
	return n
}

func TestVerifierLookup_DatabaseFailureIsNotUnauthorized(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	v := flip.NewVerifier(db)
	db.Close()
	_, err := v.Verify(t.Context(), benchKey(1))
	if err == nil || errors.Is(err, flip.ErrUnauthorized) {
		t.Errorf("error = %v, want a lookup failure that is not ErrUnauthorized", err)
	}
}
