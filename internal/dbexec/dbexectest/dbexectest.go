// Package dbexectest holds the checks every dbexec.Executor adapter must
// pass (database/sql's in dbexec, pgx's in flippgx), written once so the
// adapters are held to the same statements and the same bound on
// allocations. Only tests import it.
package dbexectest

import (
	"context"
	"testing"

	"github.com/londonaicentre/flip/internal/dbexec"
)

// Table is the SQL that creates the table the checks read and write:
// t(n int) with the rows 1 and 2.
const Table = `CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)`

// SendsEachMethod checks that ex's Exec, Query and QueryRow reach the
// transaction ex is on, which holds Table: an update's row count, the
// rows a query reads, a single row.
func SendsEachMethod(t *testing.T, ctx context.Context, ex dbexec.Executor) {
	t.Helper()
	res, err := ex.Exec(ctx, `UPDATE t SET n = n * 10`)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); n != 2 || err != nil {
		t.Fatalf("RowsAffected = %d, %v; want 2", n, err)
	}
	rows, err := ex.Query(ctx, `SELECT n FROM t ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(got) != 2 || got[0] != 10 || got[1] != 20 {
		t.Fatalf("Query = %v, %v; want [10 20]", got, err)
	}
	var sum int
	if err := ex.QueryRow(ctx, `SELECT sum(n) FROM t`).Scan(&sum); err != nil || sum != 30 {
		t.Fatalf("QueryRow = %d, %v; want 30", sum, err)
	}
}

// AllocatesNothing checks that a round of Exec, Query and QueryRow through
// ex, an adapter over a fake that allocates nothing itself, costs no
// allocation: the Verifier adapts its pool once and sends one lookup per
// request. The caller must not be parallel: testing.AllocsPerRun refuses
// to run beside other tests.
func AllocatesNothing(t *testing.T, ex dbexec.Executor) {
	t.Helper()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = ex.Exec(ctx, "")
		_, _ = ex.Query(ctx, "")
		_ = ex.QueryRow(ctx, "")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per round of Exec, Query and QueryRow; want 0", allocs)
	}
}
