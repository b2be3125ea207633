package flippgx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/pgsql"
)

const (
	// pingInterval is how long the connection may stay quiet before it is
	// checked, so that one that died silently (a peer gone without a FIN)
	// is noticed instead of waited on for ever.
	pingInterval = 10 * time.Second
	// pingTimeout bounds that check's round trip.
	pingTimeout = 5 * time.Second
	// Reconnection waits minBackoff after the first failure, doubling up
	// to maxBackoff, and starts again at minBackoff once LISTEN is in
	// effect: lib/pq's Listener's intervals, as pqfeed uses them.
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
	// closeTimeout bounds the goodbye sent on a connection being dropped.
	closeTimeout = time.Second
)

// Feed is a flip.ChangeFeed over a connection of a pgx pool.
type Feed struct {
	pool         *pgxpool.Pool
	logger       *slog.Logger
	listenSQL    string
	pingInterval time.Duration // the constants; shortened by this package's tests
	pingTimeout  time.Duration
}

var _ flip.ChangeFeed = (*Feed)(nil)

// NewFeed returns a Feed that listens on a connection of pool when Listen
// is called. logger (nil discards) receives connection losses and failed
// reconnections; notices are not logged.
//
// The connection is acquired from pool and then hijacked (taken out of
// the pool for good), not held as an acquired pool connection and not
// dialled on the side:
//   - LISTEN is a session's state, so the session must stay one
//     connection for as long as it listens, and must never go back to the
//     pool, where a caller's queries would run on a session that collects
//     notices nobody reads. A hijacked connection is Listen's alone and
//     is closed, never released, when Listen is done with it.
//   - Acquiring it goes through the pool's own dialling, with its
//     ConnConfig and its BeforeConnect / AfterConnect hooks (a rotating
//     IAM token, a search_path), so it reaches the server the pool does,
//     as the pool would.
//   - Once hijacked it no longer counts against the pool's MaxConns
//     (the pool may dial a replacement), and pool.Close does not wait for
//     it: shutting the pool down before cancelling Listen cannot hang.
//     What it costs is one server connection beyond the pool's, as
//     pqfeed's does; and while every one of MaxConns is in use, the
//     (re)connection waits for one, as any caller of the pool would.
//
// A pool whose ConnConfig.OnNotification is set hands notices to that
// function instead of to WaitForNotification, so Listen refuses it at
// once with an error.
func NewFeed(pool *pgxpool.Pool, logger *slog.Logger) *Feed {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Feed{
		pool:         pool,
		logger:       logger,
		listenSQL:    "LISTEN " + pgx.Identifier{pgsql.ChangeChannel}.Sanitize(),
		pingInterval: pingInterval,
		pingTimeout:  pingTimeout,
	}
}

// Listen implements flip.ChangeFeed: it listens until ctx ends and returns
// ctx's error, or an error once it cannot go on (the pool was closed).
// listening(true) is called each time LISTEN is in effect on a fresh
// connection (the first and every reconnection), listening(false) once
// for each of those, as soon as that connection is lost or Listen is
// returning, and changed for each notice whose payload is a trust id. All
// three are called from Listen's own goroutine, one at a time: a
// listening(true) is always for the connection in use, and its loss is
// reported before anything else.
func (f *Feed) Listen(ctx context.Context, listening func(bool), changed func(uuid.UUID)) error {
	if f.pool.Config().ConnConfig.OnNotification != nil {
		return errors.New("flippgx: the pool's ConnConfig.OnNotification is set, so notices would never reach the feed")
	}
	backoff := minBackoff
	for {
		conn, err := f.connect(ctx)
		if err == nil {
			listening(true)
			backoff = minBackoff
			err = f.wait(ctx, conn, changed)
			listening(false)
			closeConn(conn)
			if ctx.Err() == nil {
				f.logger.WarnContext(ctx, "flip change feed: connection lost; verifying without the cache until it is back", slog.Any("error", err))
			}
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, puddle.ErrClosedPool):
			return fmt.Errorf("flippgx: change feed: %w", err)
		case conn == nil: // never listening: a failed (re)connection
			f.logger.WarnContext(ctx, "flip change feed: connecting failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// connect takes a connection out of the pool (see NewFeed for why) and
// runs LISTEN on it. It returns a nil connection with any error.
func (f *Feed) connect(ctx context.Context) (*pgx.Conn, error) {
	pc, err := f.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, f.listenSQL); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("flippgx: %s: %w", f.listenSQL, err)
	}
	return conn, nil
}

// wait delivers conn's notices until ctx ends or conn fails. After
// pingInterval without one, it re-sends the LISTEN: a round trip that
// fails on a dead connection and does nothing on a live one (the session
// already listens), and that leaves pg_stat_activity showing the session's
// purpose rather than a bare ping.
func (f *Feed) wait(ctx context.Context, conn *pgx.Conn, changed func(uuid.UUID)) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, f.pingInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			if id, err := uuid.Parse(n.Payload); err == nil {
				changed(id)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case conn.IsClosed() || !errors.Is(err, context.DeadlineExceeded):
			return err
		default: // quiet for pingInterval
			pingCtx, cancel := context.WithTimeout(ctx, f.pingTimeout)
			_, err := conn.Exec(pingCtx, f.listenSQL)
			cancel()
			if err != nil {
				return fmt.Errorf("flippgx: ping: %w", err)
			}
		}
	}
}

// closeConn closes a connection Listen has done with, waiting at most
// closeTimeout for the server to be told (not at all if it is gone).
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}
