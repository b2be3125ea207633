package flippgx

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/dbexec/dbexectest"
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
	if _, err := conn.Exec(ctx, dbexectest.Table); err != nil {
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
	dbexectest.SendsEachMethod(t, ctx, ex)
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

// A uuid.UUID argument reaches the server as the same value whatever the
// parameter's type and the query mode.
func TestExecutor_SendsUUIDArgumentsAsTheyAre(t *testing.T) {
	t.Parallel()
	ctx, _, ex := executorSetup(t)
	id := uuid.New()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		var asUUID, asText string
		var same bool
		if err := ex.QueryRow(ctx, `SELECT $1::uuid::text, $2::text, $3 = $1::uuid`, mode, id, id, id).Scan(&asUUID, &asText, &same); err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if asUUID != id.String() || asText != id.String() || !same {
			t.Errorf("%v: sent %s as uuid %q, as text %q, equal %v", mode, id, asUUID, asText, same)
		}
	}
}

// binaryUUIDs costs one allocation per uuid.UUID (the pgtype.UUID's box)
// and none for any other argument.
//
// Not parallel: testing.AllocsPerRun refuses to run beside other tests.
func TestBinaryUUIDs_OneAllocationPerUUID(t *testing.T) {
	var id any = uuid.New()
	args := []any{nil, "name", 7, true}
	if n := testing.AllocsPerRun(100, func() { args[0] = id; binaryUUIDs(args) }); n != 1 {
		t.Errorf("%v allocations for one uuid.UUID among other arguments; want 1", n)
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
	dbexectest.AllocatesNothing(t, executor{fakeQuerier{}})
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
