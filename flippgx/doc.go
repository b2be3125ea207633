// Package flippgx is flip's adapter for pgx v5: the entry points for a hub
// written on pgx (a pgx.Tx, a *pgxpool.Pool) rather than database/sql,
// with flip's first promise intact: everything happens in your
// transaction. RegisterTrust, RotateKeys, RevokeKey and DeleteTrust take
// the pgx.Tx your handler is already using, never begin, commit or roll
// back a transaction, and on any error leave yours exactly as it was and
// still usable. Your commit makes the change visible; your rollback makes
// it vanish.
//
// It is a package of its own, as River keeps riverpgxv5 beside
// riverdatabasesql, so that a program on database/sql never compiles pgx:
// the root package flip imports no driver. It is not a second
// implementation: each entry point turns its pgx handle into the executor
// flip's core sends statements through and calls that core (through
// flip's internal/bridge), so the statements, the duplicate-check
// ordering, the undo policy, the errors and the logs are the ones flip's
// database/sql methods have. pgx's errors are read as flip reads any
// driver's: *pgconn.PgError's SQLSTATE (23505 is flip.ErrDuplicateTrust;
// 40001, 40P01, 55P03 and 57014 are flip.ErrRetryable), pgx.ErrNoRows as
// sql.ErrNoRows, and a transaction pgx has ended or a connection it has
// closed as a transaction that is gone.
//
// # Registering a trust
//
//	reg := flippgx.New(flip.NewRegistry(store.New()))
//
//	tx, err := pool.Begin(ctx)
//	...
//	defer tx.Rollback(ctx)
//	res, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
//	switch {
//	case errors.Is(err, flip.ErrDuplicateTrust), errors.Is(err, flip.ErrNoFreeKitSlot): // 409
//	case errors.Is(err, flip.ErrRetryable): // 503: roll back and run the transaction again
//	case err != nil: // 500
//	}
//	err = tx.Commit(ctx)
//
// RegisterTrustDB owns its transaction on a pool or connection, for
// callers that have none, and sends BEGIN in one batch with the
// registration statement: two round trips in all, with COMMIT. A context that ends while a statement runs
// makes pgx close the connection: the server rolls the transaction back,
// the error matches the context's, and the caller's Commit fails, so
// nothing of it is committed.
//
// # Verifying keys and seeding users
//
// NewVerifier returns a flip.Verifier whose lookups run on a pgx pool;
// SeedMainUsers seeds the main users on a pool (a transaction per user)
// or inside a pgx.Tx.
//
//	v := flippgx.NewVerifier(pool, flip.WithVerifierCache(time.Minute, 10_000))
//	trust, err := v.Verify(ctx, r.Header.Get("X-API-Key"))
//
// # Change feed
//
// NewFeed delivers flip's trust-change notices to a flip.Verifier over a
// LISTEN connection taken from the hub's pgx pool, so that a key rotated,
// revoked or deleted by any process stops authenticating in this one
// within moments instead of at the end of the Verifier's cache TTL:
//
//	go v.Listen(ctx, flippgx.NewFeed(pool, logger))
//
// It is pqfeed's counterpart: the same notices, the same reconnection
// and the same reports to the Verifier, over pgx's WaitForNotification
// instead of lib/pq's Listener.
package flippgx
