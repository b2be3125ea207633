// Package pqfeed delivers flip's trust-change notices to a flip.Verifier
// over a LISTEN connection of lib/pq's, so that a key rotated, revoked or
// deleted by any process stops authenticating in this one within moments
// instead of at the end of the Verifier's cache TTL:
//
//	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
//	go v.Listen(ctx, pqfeed.New(databaseURL, logger))
//
// It opens one connection of its own (not from the hub's pool, whatever
// driver that uses), reconnects when it drops, and pings it every
// 10 seconds so that a connection that died silently is noticed.
package pqfeed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/cmddb"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// pingInterval is how often the listening connection is checked.
const pingInterval = 10 * time.Second

// Feed is a flip.ChangeFeed over lib/pq's Listener.
type Feed struct {
	dsn    string
	logger *slog.Logger
}

var _ flip.ChangeFeed = (*Feed)(nil)

// New returns a Feed that connects to dsn (a URL or key=value connection
// string, as lib/pq takes) when Listen is called. logger (nil discards)
// receives connection losses and failed reconnections, never the
// password: lib/pq parses dsn at every connection attempt and its errors
// may quote it, so each is logged with the password masked, or without
// lib/pq's message for a dsn that cannot be parsed safely. Notices are not
// logged.
func New(dsn string, logger *slog.Logger) *Feed {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Feed{dsn: dsn, logger: logger}
}

// Listen implements flip.ChangeFeed: it listens until ctx ends and returns
// ctx's error. listening(true) is called each time LISTEN is in effect on
// a fresh connection (the first and every reconnection), listening(false)
// as soon as the connection is lost, and changed for each notice.
func (f *Feed) Listen(ctx context.Context, listening func(bool), changed func(uuid.UUID)) error {
	s := &state{listening: listening}
	l := pq.NewListener(f.dsn, 10*time.Millisecond, time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected:
			f.logger.WarnContext(ctx, "flip change feed: connection lost; verifying without the cache until it is back", slog.Any("error", cmddb.RedactError(f.dsn, err)))
			s.down()
		case pq.ListenerEventReconnected:
			s.reconnected()
		case pq.ListenerEventConnectionAttemptFailed:
			f.logger.WarnContext(ctx, "flip change feed: reconnecting failed", slog.Any("error", cmddb.RedactError(f.dsn, err)))
		}
	})
	defer func() {
		_ = l.Close()
		s.down()
	}()
	go func() {
		downs := s.downs()
		if err := l.Listen(pgsql.ChangeChannel); err != nil {
			if ctx.Err() == nil {
				f.logger.ErrorContext(ctx, "flip change feed: LISTEN failed", slog.Any("error", cmddb.RedactError(f.dsn, err)))
			}
			return
		}
		s.up(downs)
	}()
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ping.C:
			_ = l.Ping() // a dead connection fails here, and the Listener reconnects
		case n, ok := <-l.Notify:
			switch {
			case !ok:
				return fmt.Errorf("flip change feed: listener closed")
			case n == nil: // reconnected: LISTEN is in effect again
				s.upAfterReconnect()
			default:
				if id, err := uuid.Parse(n.Extra); err == nil {
					changed(id)
				}
			}
		}
	}
}

// state orders the listener's events, which arrive from two goroutines
// (lib/pq's callback and the Notify channel), so that listening(true) is
// never called for a connection that has since been lost.
type state struct {
	mu          sync.Mutex
	listening   func(bool)
	lost        int // connections lost so far
	reconnectAt int // lost when the latest reconnection was made
}

func (s *state) downs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

func (s *state) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost++
	s.listening(false)
}

func (s *state) reconnected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reconnectAt = s.lost
}

// up reports the first LISTEN in effect, unless the connection was lost
// since it was sent (the reconnection then reports it).
func (s *state) up(downsBefore int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost == downsBefore {
		s.listening(true)
	}
}

func (s *state) upAfterReconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reconnectAt == s.lost {
		s.listening(true)
	}
}
