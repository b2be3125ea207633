// Package reliability holds flip's reliability suite: tests, run against a
// real PostgreSQL, that break RegisterTrust on purpose and check that the
// database and the caller's transaction come out sound. It has no API; the
// package exists for its tests.
//
// # What it proves
//
//   - Faults at every statement. A clean registration is recorded first, to
//     learn how many statements RegisterTrust sends. Then, for each statement
//     in turn, the caller's transaction is wrapped in a DBTX that, at that
//     statement, returns an error without sending it, makes the server reject
//     it, runs it but reports an error, cancels the call's context before it,
//     cancels the context the transaction was begun with, cancels while the
//     statement is blocked on a lock held by a second connection, or
//     terminates the backend (pg_terminate_backend) right before it. Faults
//     on the undo path (the rollback to the savepoint) come on top. After
//     each fault point the database must hold no trust without exactly one
//     slot and one audit row, no slot pointing at a missing trust, no
//     duplicate name or code, and no plaintext key anywhere (every table is
//     dumped as text and searched for every key the minter produced, and so
//     is the registry's debug log); and the caller's transaction must either
//     still work and commit nothing from the failed call, or have failed
//     cleanly, leaving nothing at all. It runs with lib/pq and with pgx's
//     database/sql driver, on flip's schema and on the hub's.
//   - Races, round after round: many goroutines on a smaller connection pool
//     registering one name, one code (in different letter cases), or more
//     trusts than there are free slots. Each round must end with exactly one
//     winner, or exactly as many winners as free slots, and the invariants.
//   - Backends killed at random moments during RegisterTrustDB: whatever the
//     moment, the invariants hold and a reported success is in the database.
//   - Secrets over a full cycle: trusts registered (some refused, one rolled
//     back by its caller, and on flip's schema one refused for an API key
//     another trust holds), main users seeded twice, keys verified through
//     the Verifier with its cache on (hits, cached hits, unknown keys,
//     internal-service keys, malformed keys derived from real ones), with
//     the registry, the seeder and a hub's own log lines (results and errors
//     included) captured at debug level. Every table is dumped as text; no
//     key minted or presented, nor any 16-character piece of one, may be in
//     the dump or the log, no key's hash in the log, no internal-service
//     key's hash in the database, and every registered trust's API-key hash
//     must be in its own row (the search is not blind).
//
// Every test logs a line starting with "RELIABILITY" that counts what it
// tried and the violations it found; scripts/reliability (make reliability,
// make soak) runs the suite and prints them as a summary.
//
// # Running it
//
//	go test ./reliability/                    # the short form, as in CI
//	FLIP_SOAK=1 go test -timeout 60m -v ./reliability/   # the soak
//	go test ./reliability/ -soak -v           # the same, as a flag
//
// The databases come from fliptest.NewDB (DATABASE_URL, default the local
// server); under CI=true a missing server fails the tests instead of
// skipping them. Whatever -parallel says, the package's tests hold at most
// 24 connections between them (a race round alone takes 15), so they fit
// beside other test packages in PostgreSQL's default max_connections of
// 100.
package reliability
