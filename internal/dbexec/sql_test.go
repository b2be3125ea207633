package dbexec_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/dbexec/dbexectest"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// setup returns an Executor on a transaction of a fresh database holding
// a table t(n int) with the rows 1 and 2, rolled back at cleanup.
func setup(t *testing.T) (context.Context, *sql.Tx, dbexec.Executor) {
	t.Helper()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, dbexectest.Table); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return ctx, tx, dbexec.FromSQL(tx)
}

func TestFromSQL_SendsEachMethodOnTheHandle(t *testing.T) {
	t.Parallel()
	ctx, _, ex := setup(t)
	dbexectest.SendsEachMethod(t, ctx, ex)
}

// The core decides what a failure means from the error values themselves,
// so the adapter must hand them back as the driver made them.
func TestFromSQL_KeepsErrorValues(t *testing.T) {
	t.Parallel()
	ctx, tx, ex := setup(t)
	if err := ex.QueryRow(ctx, `SELECT n FROM t WHERE n < 0`).Scan(new(int)); err != sql.ErrNoRows {
		t.Fatalf("no row: %v; want sql.ErrNoRows itself", err)
	}
	_, err := ex.Exec(ctx, `SELECT 1/0`)
	if state := pgsql.SQLState(err); state != "22012" {
		t.Fatalf("Exec: SQLSTATE %q (%v); want 22012", state, err)
	}
	if rows, err := ex.Query(ctx, `SELECT 1`); rows != nil || pgsql.SQLState(err) != "25P02" { // in_failed_sql_transaction
		t.Fatalf("Query on an aborted transaction = %v, %v; want no Rows and 25P02", rows, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if res, err := ex.Exec(ctx, `SELECT 1`); res != nil || !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("Exec after rollback = %v, %v; want no Result and sql.ErrTxDone", res, err)
	}
}

func TestSQLOf_ReturnsTheHandleFromSQLWasGiven(t *testing.T) {
	t.Parallel()
	_, tx, ex := setup(t)
	if db, ok := dbexec.SQLOf(ex); !ok || db != dbexec.SQL(tx) {
		t.Fatalf("SQLOf = %v, %v; want the transaction", db, ok)
	}
	if _, ok := dbexec.SQLOf(other{}); ok {
		t.Fatal("SQLOf of another Executor reported a database/sql handle")
	}
}

// A statement through the adapter costs no allocation beyond the
// driver's: the Verifier adapts its pool once and sends one lookup per
// request.
//
// Not parallel: testing.AllocsPerRun refuses to run beside other tests.
func TestFromSQL_StatementsAllocateNothing(t *testing.T) {
	dbexectest.AllocatesNothing(t, dbexec.FromSQL(fakeSQL{}))
}

// fakeSQL answers every statement with shared values, allocating nothing.
type fakeSQL struct{}

var (
	fakeRows = new(sql.Rows)
	fakeRow  = new(sql.Row)
)

func (fakeSQL) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return driverResult{}, nil
}
func (fakeSQL) QueryContext(context.Context, string, ...any) (*sql.Rows, error) { return fakeRows, nil }
func (fakeSQL) QueryRowContext(context.Context, string, ...any) *sql.Row        { return fakeRow }

type driverResult struct{}

func (driverResult) LastInsertId() (int64, error) { return 0, nil }
func (driverResult) RowsAffected() (int64, error) { return 0, nil }

type other struct{ dbexec.Executor }

// A Tx from BeginnerFromSQL is the *sql.Tx: its statements, commit and
// rollback are the transaction's, and SQLOf hands it back for a
// SlotStore of the caller's own.
func TestBeginnerFromSQL_BeginsCommitsAndRollsBack(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n int)`); err != nil {
		t.Fatal(err)
	}
	b := dbexec.BeginnerFromSQL(db)
	for _, commit := range []bool{true, false} {
		tx, err := b.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := dbexec.SQLOf(tx); !ok || h == nil {
			t.Fatalf("SQLOf(Tx) = %v, %v; want its *sql.Tx", h, ok)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		end := tx.Rollback
		if commit {
			end = tx.Commit
		}
		if err := end(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); !errors.Is(err, sql.ErrTxDone) {
			t.Fatalf("Rollback after the end: %v; want sql.ErrTxDone", err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows committed (%v); want the committed one", n, err)
	}
}
