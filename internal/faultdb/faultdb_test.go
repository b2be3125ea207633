package faultdb_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/faultdb"
)

var errInjected = errors.New("injected")

// setup returns a transaction on a fresh database holding a table t(n int),
// rolled back at cleanup.
func setup(t *testing.T) (context.Context, *fliptest.DB, *sql.Tx) {
	t.Helper()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n int)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return ctx, db, tx
}

func count(t *testing.T, ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	t.Helper()
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDB_RecordsAndForwardsEveryStatement(t *testing.T) {
	t.Parallel()
	ctx, _, tx := setup(t)
	db := &faultdb.DB{Next: tx}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES ($1)`, 7); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT n FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT n FROM t`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("QueryRow = %d, %v", n, err)
	}
	stmts := db.Stmts()
	if len(stmts) != 3 || stmts[0].N != 1 || stmts[0].Method != faultdb.Exec || len(stmts[0].Args) != 1 ||
		stmts[1].Method != faultdb.Query || stmts[2].N != 3 || stmts[2].Method != faultdb.QueryRow {
		t.Errorf("stmts = %+v", stmts)
	}
	if got := strings.Join(db.Queries(), ";"); got != `INSERT INTO t VALUES ($1);SELECT n FROM t;SELECT n FROM t` {
		t.Errorf("queries = %s", got)
	}
}

func TestDB_ErrFailsInTheClientWithoutSending(t *testing.T) {
	t.Parallel()
	ctx, _, tx := setup(t)
	db := &faultdb.DB{Next: tx, Fault: func(context.Context, faultdb.Stmt) faultdb.Fault { return faultdb.Fault{Err: errInjected} }}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != errInjected {
		t.Errorf("exec: %v", err)
	}
	if _, err := db.QueryContext(ctx, `INSERT INTO t VALUES (1) RETURNING n`); err != errInjected {
		t.Errorf("query: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `INSERT INTO t VALUES (1) RETURNING n`).Scan(&n); err != errInjected {
		t.Errorf("query row: %v", err)
	}
	if n := count(t, ctx, tx); n != 0 {
		t.Errorf("%d rows written by statements that were never to be sent", n)
	}
}

func TestDB_ErrAfterRunsTheStatementAndLosesTheAnswer(t *testing.T) {
	t.Parallel()
	ctx, _, tx := setup(t)
	db := &faultdb.DB{Next: tx, Fault: func(context.Context, faultdb.Stmt) faultdb.Fault { return faultdb.Fault{ErrAfter: errInjected} }}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != errInjected {
		t.Errorf("exec: %v", err)
	}
	if _, err := db.QueryContext(ctx, `INSERT INTO t VALUES (2) RETURNING n`); err != errInjected {
		t.Errorf("query: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `INSERT INTO t VALUES (3) RETURNING n`).Scan(&n); err != errInjected {
		t.Errorf("query row: %v", err)
	}
	if n := count(t, ctx, tx); n != 3 {
		t.Errorf("%d rows, want the 3 the statements wrote", n)
	}
}

func TestDB_ServerErrorAbortsTheTransaction(t *testing.T) {
	t.Parallel()
	ctx, _, tx := setup(t)
	db := &faultdb.DB{Next: tx, Fault: faultdb.At(1, faultdb.Fault{Query: faultdb.ServerError})}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&n); err == nil || !strings.Contains(err.Error(), "22P02") && !strings.Contains(err.Error(), "invalid input syntax") {
		t.Errorf("query row: %v, want the server's refusal", err)
	}
	if _, err := db.ExecContext(ctx, `SELECT 1`); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Errorf("the statement after: %v, want the transaction aborted", err)
	}
}

func TestMatching_FaultsTheFirstMatchesOnlyAndThenRuns(t *testing.T) {
	t.Parallel()
	ctx, _, tx := setup(t)
	var after []int
	match := faultdb.Matching("VALUES (1)", 2, faultdb.Fault{Err: errInjected})
	db := &faultdb.DB{Next: tx, Fault: func(ctx context.Context, s faultdb.Stmt) faultdb.Fault {
		f := match(ctx, s)
		f.Then = func() { after = append(after, s.N) }
		return f
	}}
	var errs []error
	for _, q := range []string{`INSERT INTO t VALUES (2)`, `INSERT INTO t VALUES (1)`, `INSERT INTO t VALUES (1)`, `INSERT INTO t VALUES (1)`} {
		_, err := db.ExecContext(ctx, q)
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != errInjected || errs[2] != errInjected || errs[3] != nil {
		t.Errorf("errors = %v, want the 2nd and 3rd statements failed", errs)
	}
	if n := count(t, ctx, tx); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
	if len(after) != 4 || after[3] != 4 {
		t.Errorf("Then ran after statements %v, want each of the 4", after)
	}
}
