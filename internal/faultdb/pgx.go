package faultdb

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PgxTx is DB's faults on a pgx.Tx: each statement sent through Exec,
// Query or QueryRow is recorded and handed to Fault (when set), then
// carried out as DB carries it out. Begin, Commit, Rollback and the rest
// go to Tx untouched. Not safe for concurrent use; a transaction is not
// either.
type PgxTx struct {
	pgx.Tx
	Fault func(ctx context.Context, s Stmt) Fault
	record
}

// Exec implements pgx.Tx.
func (t *PgxTx) Exec(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error) {
	type answer struct {
		tag pgconn.CommandTag
		err error
	}
	a := call(t.decide(ctx, t.Fault, Exec, q, args), q, args, func(err error) answer { return answer{err: err} },
		func(q string, args ...any) answer {
			tag, err := t.Tx.Exec(ctx, q, args...)
			return answer{tag, err}
		}, t.execOnly(ctx, q, args))
	return a.tag, a.err
}

// Query implements pgx.Tx.
func (t *PgxTx) Query(ctx context.Context, q string, args ...any) (pgx.Rows, error) {
	type answer struct {
		rows pgx.Rows
		err  error
	}
	a := call(t.decide(ctx, t.Fault, Query, q, args), q, args, func(err error) answer { return answer{err: err} },
		func(q string, args ...any) answer {
			rows, err := t.Tx.Query(ctx, q, args...)
			return answer{rows, err}
		}, t.execOnly(ctx, q, args))
	return a.rows, a.err
}

// QueryRow implements pgx.Tx.
func (t *PgxTx) QueryRow(ctx context.Context, q string, args ...any) pgx.Row {
	return call(t.decide(ctx, t.Fault, QueryRow, q, args), q, args, func(err error) pgx.Row { return errPgxRow{err} },
		func(q string, args ...any) pgx.Row { return t.Tx.QueryRow(ctx, q, args...) }, t.execOnly(ctx, q, args))
}

func (t *PgxTx) execOnly(ctx context.Context, q string, args []any) func() error {
	return func() error { _, err := t.Tx.Exec(ctx, q, args...); return err }
}

type errPgxRow struct{ err error }

func (r errPgxRow) Scan(...any) error { return r.err }
