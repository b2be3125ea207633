package flip

import (
	"context"

	"github.com/google/uuid"
)

// ChangeFeed delivers the notices flip sends when a trust's key changes
// (RotateKeys, RevokeKey, DeleteTrust): a NOTIFY on the PostgreSQL
// channel flip_trust_changes with the trust's id as the payload, sent on
// the caller's transaction and so delivered only if it commits, to every
// session listening on that database. pqfeed.New is lib/pq's and
// flippgx.NewFeed pgx's. Only flip's operations send it: code of the
// hub's own that changes a trust's key or deletes a trust should send the
// same notice in its transaction.
type ChangeFeed interface {
	// Listen listens until ctx ends, reconnecting as needed, and then
	// returns ctx's error (or an error if it cannot go on). It calls
	// listening(true) each time LISTEN is in effect on a connection (the
	// first time and after every reconnection), listening(false) as soon
	// as it may be missing notices (the connection was lost, or Listen is
	// returning), and changed(trustID) for every notice, from one
	// goroutine at a time.
	Listen(ctx context.Context, listening func(bool), changed func(trustID uuid.UUID)) error
}

// Listen keeps v's cache true to key changes made anywhere on its
// database, by any process, until ctx ends: when a rotation, revocation or
// deletion commits, the feed's notice drops the trust's cached grant, so
// its old key is refused within moments (the notice's delivery, measured
// in BENCHMARKS.md) instead of at the end of the cache's TTL. Run it in a
// goroutine of its own for the Verifier's life, once:
//
//	go v.Listen(ctx, pqfeed.New(databaseURL, logger))
//
// Caching pauses whenever the feed is not listening: from the start of
// Listen until LISTEN is in effect, while its connection is lost (every
// Verify then asks the database, so nothing changed meanwhile can be
// served from memory), and after Listen returns. Each time the feed starts
// listening again, the cache starts empty, as notices sent while it was
// away are lost. Without WithVerifierCache there is nothing to keep true,
// and Listen returns nil at once. It returns the feed's error.
func (v *Verifier) Listen(ctx context.Context, feed ChangeFeed) error {
	if v.cache == nil {
		return nil
	}
	v.cache.pause(true)
	defer v.cache.pause(true)
	return feed.Listen(ctx,
		func(live bool) { v.cache.pause(!live) },
		v.Invalidate)
}
