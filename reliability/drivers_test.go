package reliability

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
)

// The ways the callers under test reach the database: database/sql (on
// the variant's driver) or pgx's own (a pgx.Tx from a *pgxpool.Pool,
// calling flip through flippgx). Every check is written once, against
// callertx.Tx, the bundle's callertx.Pools and heldConn below, so that a
// pgx-native variant runs the same harness and the same rounds rather
// than a copy; the test's own queries (b.admin: dumps, locks, kills,
// invariants) stay on database/sql whatever the variant, so what checks
// the outcome never changes with what is checked.

// heldConn is one connection taken from the variant's pool for a
// registration of its own, whose backend the test may kill.
type heldConn interface {
	PID() int
	RegisterTrustDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error)
	// Discard closes the connection and gives it back to its pool, which
	// will not hand it out again: its backend is dead, or may be.
	Discard()
}

type sqlHeldConn struct {
	conn *sql.Conn
	pid  int
}

func (c sqlHeldConn) PID() int { return c.pid }

func (c sqlHeldConn) RegisterTrustDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return reg.RegisterTrustDB(ctx, c.conn, p)
}

func (c sqlHeldConn) Discard() {
	_ = c.conn.Raw(func(any) error { return driver.ErrBadConn })
	c.conn.Close()
}

type pgxHeldConn struct{ conn *pgxpool.Conn }

func (c pgxHeldConn) PID() int { return int(c.conn.Conn().PgConn().PID()) }

func (c pgxHeldConn) RegisterTrustDB(ctx context.Context, reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	return flippgx.New(reg).RegisterTrustDB(ctx, c.conn, p)
}

func (c pgxHeldConn) Discard() {
	_ = c.conn.Conn().Close(context.Background()) // a closed connection is destroyed on Release
	c.conn.Release()
}

// conn takes a connection from the variant's pool.
func (b *bundle) conn(ctx context.Context) (heldConn, error) {
	if b.Pgx != nil {
		c, err := b.Pgx.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		return pgxHeldConn{c}, nil
	}
	c, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	held := sqlHeldConn{conn: c}
	if err := c.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&held.pid); err != nil {
		held.Discard()
		return nil, err
	}
	return held, nil
}
