// Package faultdb wraps the executor flip sends its statements through (a
// flip.DBTX such as a *sql.Tx) so that a test sees every statement and can
// make chosen ones fail: in the client before they are sent, on the
// server, or after they ran with their answer lost. flip's own tests share
// it; it is internal because nothing outside them should fake a database.
//
//	db := &faultdb.DB{Next: tx, Fault: faultdb.Matching("INSERT INTO trusts_audit", 1, faultdb.Fault{Err: errBoom})}
//	_, err := reg.RegisterTrust(ctx, db, params) // the audit insert fails, never sent
//	queries := db.Queries()                       // what was sent, in order
package faultdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync"

	"github.com/londonaicentre/flip"
)

// Method names the DBTX method a statement came through.
type Method string

// The three methods of flip.DBTX.
const (
	Exec     Method = "exec"
	Query    Method = "query"
	QueryRow Method = "queryrow"
)

// Stmt is one statement as the code under test issued it.
type Stmt struct {
	N      int // its position among the statements issued through the DB, from 1
	Method Method
	Query  string
	Args   []any
}

// Fault is what becomes of one statement. The zero value sends it as it is.
type Fault struct {
	// Err fails the statement in the client: it is never sent, and the
	// call returns Err (a QueryRow's Row carries it to Scan).
	Err error
	// Query, when set, is sent instead of the statement, without
	// arguments: ServerError makes the server reject it, which aborts the
	// transaction as any failed statement does.
	Query string
	// ErrAfter runs the statement, then fails the call with ErrAfter as if
	// the answer had been lost on the way back.
	ErrAfter error
	// Then, when set, runs once the statement has been handled, e.g. to
	// release a lock a test took to hold the statement up.
	Then func()
}

// ServerError is a statement the server rejects (SQLSTATE 22P02).
const ServerError = `SELECT CAST('faultdb: injected fault' AS integer)`

// DB sends every statement to Next, recording it, after asking Fault (when
// set) what to do with it. Fault runs right before the statement would be
// sent, so it may also act then: cancel a context, take a lock, terminate
// the backend. A DB is safe for concurrent use if Fault is.
type DB struct {
	Next  flip.DBTX
	Fault func(ctx context.Context, s Stmt) Fault
	record
}

var _ flip.DBTX = (*DB)(nil)

// record is the statements issued through a DB or a PgxTx, in order.
type record struct {
	mu    sync.Mutex
	stmts []Stmt
}

// Stmts returns the statements issued so far, faulted ones included.
func (r *record) Stmts() []Stmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Stmt(nil), r.stmts...)
}

// Queries returns the text of the statements issued so far.
func (r *record) Queries() []string {
	stmts := r.Stmts()
	qs := make([]string, len(stmts))
	for i, s := range stmts {
		qs[i] = s.Query
	}
	return qs
}

// decide records the statement and asks fault (when set) about it.
func (r *record) decide(ctx context.Context, fault func(context.Context, Stmt) Fault, m Method, q string, args []any) Fault {
	r.mu.Lock()
	s := Stmt{N: len(r.stmts) + 1, Method: m, Query: q, Args: args}
	r.stmts = append(r.stmts, s)
	r.mu.Unlock()
	if fault == nil {
		return Fault{}
	}
	return fault(ctx, s)
}

// ExecContext implements flip.DBTX.
func (d *DB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	type answer struct {
		res sql.Result
		err error
	}
	a := call(d.decide(ctx, d.Fault, Exec, q, args), q, args, func(err error) answer { return answer{err: err} },
		func(q string, args ...any) answer {
			res, err := d.Next.ExecContext(ctx, q, args...)
			return answer{res, err}
		}, d.execOnly(ctx, q, args))
	return a.res, a.err
}

// QueryContext implements flip.DBTX.
func (d *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	type answer struct {
		rows *sql.Rows
		err  error
	}
	a := call(d.decide(ctx, d.Fault, Query, q, args), q, args, func(err error) answer { return answer{err: err} },
		func(q string, args ...any) answer {
			rows, err := d.Next.QueryContext(ctx, q, args...)
			return answer{rows, err}
		}, d.execOnly(ctx, q, args))
	return a.rows, a.err
}

// QueryRowContext implements flip.DBTX.
func (d *DB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return call(d.decide(ctx, d.Fault, QueryRow, q, args), q, args, errRow, func(q string, args ...any) *sql.Row {
		return d.Next.QueryRowContext(ctx, q, args...)
	}, d.execOnly(ctx, q, args))
}

func (d *DB) execOnly(ctx context.Context, q string, args []any) func() error {
	return func() error { _, err := d.Next.ExecContext(ctx, q, args...); return err }
}

// call carries out the fault f on the statement q, for each method and driver alike: failed
// builds the method's answer for an error, send sends a statement, and
// execOnly runs the original statement with its rows (if any) unread, for
// an ErrAfter fault.
func call[T any](f Fault, q string, args []any, failed func(error) T, send func(q string, args ...any) T, execOnly func() error) T {
	if f.Then != nil {
		defer f.Then()
	}
	switch {
	case f.Err != nil:
		return failed(f.Err)
	case f.Query != "":
		return send(f.Query)
	case f.ErrAfter != nil:
		if err := execOnly(); err != nil {
			return failed(err)
		}
		return failed(f.ErrAfter)
	}
	return send(q, args...)
}

// At returns a Fault function that applies f to the n-th statement only.
func At(n int, f Fault) func(context.Context, Stmt) Fault {
	return func(_ context.Context, s Stmt) Fault {
		if s.N == n {
			return f
		}
		return Fault{}
	}
}

// Matching returns a Fault function that applies f to the first times
// statements whose text contains substr. It is safe for concurrent use.
func Matching(substr string, times int, f Fault) func(context.Context, Stmt) Fault {
	var mu sync.Mutex
	return func(_ context.Context, s Stmt) Fault {
		mu.Lock()
		defer mu.Unlock()
		if times > 0 && strings.Contains(s.Query, substr) {
			times--
			return f
		}
		return Fault{}
	}
}

// errRow returns a *sql.Row whose Scan returns err. database/sql builds
// Rows only itself, so this asks a database whose every connection
// attempt fails with err.
func errRow(err error) *sql.Row {
	db := sql.OpenDB(failingConnector{err})
	defer db.Close()
	return db.QueryRowContext(context.Background(), "")
}

type failingConnector struct{ err error }

func (c failingConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c failingConnector) Driver() driver.Driver                        { return failingDriver(c) }

type failingDriver struct{ err error }

func (d failingDriver) Open(string) (driver.Conn, error) { return nil, d.err }
