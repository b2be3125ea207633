// Package reliability holds flip's reliability suite: tests, run against a
// real PostgreSQL, that break RegisterTrust (also when it grows the kit-slot
// pool from a slot-name source), RotateKeys, RevokeKey and DeleteTrust on
// purpose and check that the database and the caller's transaction come
// out sound. It has no API; the package exists for its tests.
//
// Every check runs on variants of schema and driver: flip's schema and
// the hub's, with the caller's transactions those of database/sql (an
// *sqlx.Tx, on lib/pq or on pgx's database/sql driver) or pgx's own (a
// pgx.Tx from a *pgxpool.Pool, with flip called through flippgx), as a
// hub written on either would hold them. The checks are written once,
// against either kind of transaction, so that the pgx-native variants
// break and race flip exactly as the others do; the test's own queries
// (the dumps, the locks it holds, the backends it kills, the invariants)
// go through database/sql on a second pool in every variant, so that
// what judges the outcome never changes with the driver under test.
//
// # What it proves
//
//   - Faults at every statement, of every operation, through one harness
//     parameterised by the operation. A clean call (rolled back) is
//     recorded first, to learn which statements the operation sends. Then,
//     for each statement in turn, the caller's transaction is wrapped
//     (internal/faultdb: a DBTX over a *sql.Tx, a pgx.Tx over a pgx.Tx)
//     so that, at that statement, it returns an error without sending it,
//     makes the server reject it, runs it but reports an error, cancels the
//     call's context before it, cancels the context the transaction was
//     begun with (which ends a database/sql transaction, not a pgx.Tx:
//     there the transaction must stay usable, as after the call's own
//     cancel), cancels while the statement is blocked on a lock held by
//     a second connection (the trust's row, a table, the identity locks, a
//     kit slot's row), or terminates the backend (pg_terminate_backend,
//     then waiting until it is gone) right before it. Faults on the undo
//     path (the rollback to the savepoint) come on top. After each fault
//     point every row of every table is dumped and must be exactly what it
//     was before the caller began (plus the caller's own work, if its
//     commit succeeded), unless the call succeeded and was committed (a
//     cancel that raced an instant statement and lost), when its change
//     must be there; a listener on flip_trust_changes must have heard
//     nothing from a call that failed or was not committed (a notice the
//     harness sends afterwards marks the end: PostgreSQL delivers notices
//     in commit order, so no clock is read); the error must match the
//     operation's base error, not the other family's, and never
//     ErrTrustNotFound for a trust that exists; no key the call minted may
//     be in the dump, the registry's debug log or the error; and the
//     caller's transaction must either still work or have failed cleanly.
//     The invariants hold: no trust without exactly one slot and one
//     REGISTERED audit row, no slot of a missing trust, no audit row of a
//     trust that is gone but was never deleted, no trust that outlived its
//     DELETED row, no duplicate name or code, no hash that is not 64 hex
//     digits, and (migration 3) no NULL hash but after a revocation. A last
//     clean call of each operation commits, and its change and its one
//     notice must be seen. Registration is broken three ways: on a pool
//     with free slots; on a pool with no free slot (they are deleted before
//     each point) and a Registry with a slot-name source (a file in the
//     test's temporary directory, written anew for each point with three
//     new names and a blank one), so that it also sends the insert of the
//     missing names (AddSlots) and the second claim, and a failed call must
//     leave no added slot; and with a source whose names are all taken, so
//     that the insert adds nothing, the second claim misses, the busy check
//     is sent and the call is refused with ErrNoFreeKitSlot, which must
//     commit nothing even when the caller commits (a refusal's own undo
//     counts as the undo path: no second undo fault comes on top of it).
//     The insert is held by a second connection writing one of its names
//     (the transaction holds ROW EXCLUSIVE on fl_kit_slot since Register,
//     so no table lock can hold it); the second claim and the busy check
//     take no lock the transaction lacks, so the cancel races them. It runs
//     with lib/pq, with pgx's database/sql driver and with pgx-native
//     transactions (faultdb.PgxTx strikes a pgx.Tx as faultdb.DB strikes
//     a *sql.Tx), on flip's schema and on the hub's, and on the hub's own
//     database with its legacy rows (internal/hubfixture), unmigrated and
//     migrated (with a table that references a dependent table, so that a
//     deletion checks for blockers), each also with pgx-native
//     transactions. There rotation, revocation and deletion act on the legacy
//     trust with two slots, a trust-scoped grant and rows in every
//     dependent table, only the invariants that hold for any hub data are
//     checked, and the database is restored from a snapshot whenever a
//     deletion of it commits.
//   - Races, round after round: many goroutines on a smaller connection pool
//     registering one name, one code (in different letter cases), or more
//     trusts than there are free slots. Each round must end with exactly one
//     winner, or exactly as many winners as free slots, and the invariants.
//   - Races growing the pool, round after round: callers on a smaller
//     connection pool register at once, each round on a pool with no free
//     slot, with one slot-name source listing more new names than there
//     are callers, half through RegisterTrustDB and half through
//     RegisterTrust. None may fail, not even with an error worth retrying;
//     each name is reported added exactly once and is in the pool once;
//     every caller gets its own slot of the round, assigned to it; the
//     invariants hold; and some round must have had several callers
//     growing the pool at once (the source counts its readers).
//   - Races of a trust's later life, round after round on the same bounded
//     pool: verifications of a trust's old and new API keys (an uncached
//     Verifier) while its keys are rotated and committed, where a
//     verification begun after Commit returned never accepts the old key
//     nor refuses the new one, and one ended before Commit was called sees
//     the old state (atomic flags around Commit, not clocks); a deletion
//     against a registration of the same name (the registration refused as
//     a duplicate and the trust deleted, or the deletion first and the
//     registration done; never two trusts of one name, and the free slots
//     add up); two deletions of one trust (one deletes it, the other gets
//     ErrTrustNotFound; one DELETED audit row, the slot freed once); a
//     rotation against a deletion (both succeed, or the rotation gets
//     ErrTrustNotFound; no trust holds either key afterwards).
//   - Backends killed at random moments during RegisterTrustDB (on a
//     *sql.Conn, or a *pgxpool.Conn through flippgx): whatever the moment,
//     the invariants hold and a reported success is in the database.
//   - Secrets over a full cycle: trusts registered (some refused, one rolled
//     back by its caller, and on flip's schema one refused for an API key
//     another trust holds), keys rotated (one rotation rolled back by its
//     caller), a key revoked, a trust deleted, a trust that does not exist
//     rotated, main users seeded twice, keys verified through the Verifier
//     with its cache on (hits, cached hits, unknown keys, internal-service
//     keys, keys rotated away, revoked or of the deleted trust, malformed
//     keys derived from real ones), with the registry, the seeder and a
//     hub's own log lines (results and errors included) captured at debug
//     level. Every table is dumped as text; no key minted or presented, nor
//     any 16-character piece of one, may be in the dump or the log, no
//     key's hash in the log, no internal-service key's hash in the
//     database, no hash of a key that no longer authenticates in the
//     database, and every live trust's API-key hash must be in its own row
//     (the search is not blind).
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
