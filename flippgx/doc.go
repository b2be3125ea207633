// Package flippgx is flip's adapter for pgx v5: the entry points for a hub
// written on pgx (a *pgxpool.Pool, a pgx.Tx) rather than database/sql. It
// is a package of its own, as River keeps riverpgxv5 beside
// riverdatabasesql, so that a program on database/sql never compiles pgx:
// the root package flip imports no driver. More of flip's pgx-native entry
// points will live here; today it has the change feed.
//
// # Change feed
//
// NewFeed delivers flip's trust-change notices to a flip.Verifier over a
// LISTEN connection taken from the hub's pgx pool, so that a key rotated,
// revoked or deleted by any process stops authenticating in this one
// within moments instead of at the end of the Verifier's cache TTL:
//
//	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
//	go v.Listen(ctx, flippgx.NewFeed(pool, logger))
//
// It is pqfeed's counterpart: the same notices, the same reconnection
// and the same reports to the Verifier, over pgx's WaitForNotification
// instead of lib/pq's Listener.
package flippgx
