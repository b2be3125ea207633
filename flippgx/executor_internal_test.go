package flippgx

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// executorSetup returns a pgx transaction on a fresh database holding a
// table t(n int) with the rows 1 and 2, and the executor on it.
func executorSetup(t *testing.T) (context.Context, pgx.Tx, executor) {
	t.Helper()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, tx, executor{tx}
}

func TestExecutor_SendsEachMethodOnTheTx(t *testing.T) {
	t.Parallel()
	ctx, _, ex := executorSetup(t)
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

// The core reads what a failure means from the error values: pgx's must
// answer as database/sql's do.
func TestExecutor_ErrorsAnswerAsDatabaseSQLs(t *testing.T) {
	t.Parallel()
	ctx, tx, ex := executorSetup(t)
	if err := ex.QueryRow(ctx, `SELECT n FROM t WHERE n < 0`).Scan(new(int)); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("no row: %v; want one matching sql.ErrNoRows", err)
	}
	res, err := ex.Exec(ctx, `SELECT 1/0`)
	if state := pgsql.SQLState(err); res != nil || state != "22012" {
		t.Fatalf("Exec = %v, SQLSTATE %q (%v); want no Result and 22012", res, state, err)
	}
	if errors.Is(err, sql.ErrTxDone) || errors.Is(err, sql.ErrConnDone) {
		t.Fatalf("a server error reads as a transaction that is gone: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = ex.Exec(ctx, `SELECT 1`)
	if res != nil || !errors.Is(err, sql.ErrTxDone) || !errors.Is(err, pgx.ErrTxClosed) {
		t.Fatalf("Exec after rollback = %v, %v; want no Result and an error matching sql.ErrTxDone and pgx.ErrTxClosed", res, err)
	}
	if rows, err := ex.Query(ctx, `SELECT 1`); rows != nil || !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("Query after rollback = %v, %v; want no Rows and sql.ErrTxDone", rows, err)
	}
}

func TestExecutor_ClosedConnectionIsConnDone(t *testing.T) {
	t.Parallel()
	ctx, tx, ex := executorSetup(t)
	if err := tx.Conn().Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := ex.Exec(ctx, pgsql.RollbackToSavepoint)
	if !errors.Is(err, sql.ErrConnDone) || !errors.Is(err, pgconn.ErrConnClosed) {
		t.Fatalf("Exec on a closed connection: %v; want sql.ErrConnDone and pgconn.ErrConnClosed", err)
	}
}

// A statement through the adapter costs no allocation beyond pgx's: the
// Verifier adapts its pool once and sends one lookup per request.
//
// Not parallel: testing.AllocsPerRun refuses to run beside other tests.
func TestExecutor_StatementsAllocateNothing(t *testing.T) {
	var ex dbexec.Executor = executor{fakeQuerier{}} // as the core holds it
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

// fakeQuerier answers every statement with shared values, allocating
// nothing.
type fakeQuerier struct{}

var fakeRows pgx.Rows = &emptyRows{}

func (fakeQuerier) Exec(context.Context, string, ...any) (pgconn.CommandTag, error) {
	return pgconn.NewCommandTag("UPDATE 1"), nil
}
func (fakeQuerier) Query(context.Context, string, ...any) (pgx.Rows, error) { return fakeRows, nil }
func (fakeQuerier) QueryRow(context.Context, string, ...any) pgx.Row        { return fakeRows }

type emptyRows struct{ pgx.Rows }

func (*emptyRows) Scan(...any) error { return nil }
