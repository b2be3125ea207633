package flippgx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip/internal/dbexec"
)

// A transaction flip owns (RegisterTrustDB's; a seeding run's, one per
// user) on a pool or a connection saves a round trip: BEGIN is not sent
// and waited for on its own, but goes in one batch with the transaction's
// first statement, whose answer comes back with BEGIN's. On a migrated
// database a registration is then two round trips (BEGIN with the
// registration statement, then COMMIT) where pgx.Conn.Begin makes it
// three. Nothing else changes: the server sees the same statements in
// the same order, and Commit and Rollback end the transaction as pgx.Tx's
// do (pgx.ErrTxCommitRollback for a COMMIT the server answered with
// ROLLBACK; a connection whose end failed is closed, and a pool drops
// it).

// Begin implements dbexec.Beginner. A pgx.Tx (or any other TxBeginner)
// begins as pgx begins it: a pgx.Tx's Begin is a savepoint.
func (b beginner) Begin(ctx context.Context) (dbexec.Tx, error) {
	switch db := b.db.(type) {
	case *pgxpool.Pool:
		c, err := db.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		return &pipelinedTx{conn: c.Conn(), release: c.Release}, nil
	case *pgxpool.Conn:
		return &pipelinedTx{conn: db.Conn()}, nil
	case *pgx.Conn:
		return &pipelinedTx{conn: db}, nil
	}
	tx, err := b.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return transaction{executor{tx}, tx}, nil
}

// transaction is a pgx.Tx beginner began.
type transaction struct {
	executor
	tx pgx.Tx
}

func (t transaction) Commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t transaction) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// pipelinedTx is a transaction on conn whose BEGIN goes out with its
// first statement. Like a pgx.Tx, it is not safe for concurrent use, and
// a QueryRow's row must be scanned before the next statement.
type pipelinedTx struct {
	conn    *pgx.Conn
	release func() // gives a pool's connection back; nil for a connection of the caller's
	begun   bool   // BEGIN has been sent
	ended   bool   // Commit or Rollback has been called
}

func (t *pipelinedTx) ex() executor { return executor{t.conn} }

// withBegin sends BEGIN and q in one batch and reads BEGIN's answer; the
// caller reads q's and closes the batch.
func (t *pipelinedTx) withBegin(ctx context.Context, q string, args []any) (pgx.BatchResults, error) {
	t.begun = true
	var b pgx.Batch
	b.Queue("begin")
	b.Queue(q, binaryUUIDs(args)...)
	br := t.conn.SendBatch(ctx, &b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, t.ex().gone(err)
	}
	return br, nil
}

func (t *pipelinedTx) Exec(ctx context.Context, q string, args ...any) (dbexec.Result, error) {
	if t.ended {
		return nil, t.ex().gone(pgx.ErrTxClosed)
	}
	if t.begun {
		return t.ex().Exec(ctx, q, args...)
	}
	br, err := t.withBegin(ctx, q, args)
	if err != nil {
		return nil, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, t.ex().gone(err)
	}
	return rowCount(tag.RowsAffected()), nil
}

// Query sends BEGIN on its own first: rows are read as the caller goes,
// and no first statement of flip's is a Query.
func (t *pipelinedTx) Query(ctx context.Context, q string, args ...any) (dbexec.Rows, error) {
	if t.ended {
		return nil, t.ex().gone(pgx.ErrTxClosed)
	}
	if !t.begun {
		t.begun = true
		if _, err := t.conn.Exec(ctx, "begin"); err != nil {
			return nil, t.ex().gone(err)
		}
	}
	return t.ex().Query(ctx, q, args...)
}

func (t *pipelinedTx) QueryRow(ctx context.Context, q string, args ...any) dbexec.Row {
	if t.ended {
		return errRow{t.ex().gone(pgx.ErrTxClosed)}
	}
	if t.begun {
		return t.ex().QueryRow(ctx, q, args...)
	}
	br, err := t.withBegin(ctx, q, args)
	if err != nil {
		return errRow{err}
	}
	return batchRow{t, br, br.QueryRow()}
}

// batchRow is the row of a batch's last statement; Scan also closes the
// batch.
type batchRow struct {
	t   *pipelinedTx
	br  pgx.BatchResults
	row pgx.Row
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r.t.ex().gone(err)
	}
	return nil
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (t *pipelinedTx) Commit(ctx context.Context) error {
	if t.ended {
		return pgx.ErrTxClosed
	}
	t.ended = true
	defer t.giveBack()
	if !t.begun { // nothing was sent: nothing to commit
		return nil
	}
	tag, err := t.conn.Exec(ctx, "commit")
	if err != nil {
		if t.conn.PgConn().TxStatus() != 'I' {
			_ = t.conn.Close(context.WithoutCancel(ctx)) // the error to return is err
		}
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

func (t *pipelinedTx) Rollback(ctx context.Context) error {
	if t.ended {
		return pgx.ErrTxClosed
	}
	t.ended = true
	defer t.giveBack()
	if !t.begun {
		return nil
	}
	if _, err := t.conn.Exec(ctx, "rollback"); err != nil {
		_ = t.conn.Close(context.WithoutCancel(ctx)) // its state is unknown
		return err
	}
	return nil
}

// giveBack returns a pool's connection; the pool drops one that is
// closed or still in a transaction.
func (t *pipelinedTx) giveBack() {
	if t.release != nil {
		t.release()
	}
}
