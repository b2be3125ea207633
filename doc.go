// Package flip registers NHS trusts with a FLIP federated-learning hub and
// seeds the hub's main users, inside the caller's own PostgreSQL
// transaction.
//
// Two guarantees shape the whole package:
//
//   - Everything happens in your transaction. RegisterTrust takes the
//     *sql.Tx or *sqlx.Tx you are already using (or a *sql.Conn on which
//     you began one), never begins, commits or rolls back a transaction,
//     and on any error leaves yours exactly as it was and still usable.
//     Your commit makes the registration visible; your rollback makes it
//     vanish.
//   - Keys are returned once and stored only as hashes. The trust API key
//     and the internal-service key are returned in RegistrationResult, each
//     a Secret whose plaintext only Reveal shows, and nowhere else: the
//     database holds the API key's SHA-256 (HashAPIKey) and nothing of the
//     internal-service key, and nothing flip logs or prints contains either,
//     nor does fmt, slog or JSON when you print the result.
//
// The root package holds the domain types, the small interfaces
// (KeyMinter, SlotStore, IdentityProvider, and the executor DBTX), and the
// one core that sends registration's and seeding's statements and undoes a
// failure. It imports no database driver and no AWS SDK: store/ is the
// PostgreSQL side (migrations, the kit-slot pool, lookups), flippgx/ runs
// the same operations, through the same core, on pgx's own handles (a
// pgx.Tx, a *pgxpool.Pool) for a hub without database/sql, cognito/ is the
// identity-provider adapter, and fliptest/ gives tests an isolated
// database in one call.
//
// # Registering a trust
//
//	reg := flip.NewRegistry(store.New()) // keys from crypto/rand
//
//	tx, err := db.BeginTxx(ctx, nil)
//	...
//	defer tx.Rollback()
//	res, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{
//		Name: "Guy's and St Thomas'", Code: "GSTT", Region: "London",
//		AuditUserID: adminSub, // uuid.Nil when no person acts (deploy tools)
//	})
//	switch {
//	case errors.Is(err, flip.ErrInvalidTrustParams): // 400 (blank name or code, bad input)
//	case errors.Is(err, flip.ErrDuplicateTrust), errors.Is(err, flip.ErrNoFreeKitSlot): // 409
//	case errors.Is(err, flip.ErrRetryable): // 503 + Retry-After: deadlock, lock timeout, busy pool
//	case err != nil: // 500
//	}
//	err = tx.Commit()
//	// hand res.APIKey.Reveal() and res.InternalServiceKey.Reveal() to the trust,
//	// then drop them; fmt, slog and JSON print each key as [REDACTED]
//
// RegisterTrust trims and validates the parameters before sending anything
// to the database, serialises registrations of the same name or code (so
// exactly one of two concurrent ones wins, even on the hub's schema, which
// has no unique index), claims the lowest-numbered free FL kit slot, and
// writes a trusts_audit row. Registry.RegisterTrustDB is the same in a
// transaction of its own, for callers that have none.
//
// # A trust's later life
//
// Registry.RotateKeys gives a trust new keys (returned once, like a
// registration's), RevokeKey stops its API key from authenticating until
// the next rotation, and DeleteTrust removes it with the reference hub's
// meaning: its kit slots freed, its rows in every table that references
// trust(id) deleted, a DELETED audit row. Each runs in the caller's
// transaction with RegisterTrust's contract and announces the change at
// commit on the PostgreSQL channel flip_trust_changes; Verifier.Listen
// (with package pqfeed, or flippgx on a pgx pool) hears it in every
// replica. trusts_audit cannot record a rotation or a revocation (its
// enum has no such value, and flip never adds one): flip_trust_key_audit,
// migration 3, does.
//
// # Errors
//
// Every registration error matches ErrTrustRegistration, and every error
// of a rotation, revocation or deletion ErrTrustChange. The specific
// sentinels are ErrInvalidTrustParams (with ErrEmptyTrustName and
// ErrEmptyTrustCode below it), ErrDuplicateTrust, ErrNoFreeKitSlot,
// ErrTrustNotFound and ErrTrustDeletionBlocked; the classes ErrRetryable,
// ErrNotInTransaction and ErrRollbackRequired appear beside either base.
// *InvalidTrustParamError, *DuplicateTrustError and *DeletionBlockedError
// carry detail for errors.As. Database errors are wrapped with %w, never
// replaced.
//
// # Keys
//
// New keys use PrefixedKeys by default: "flip_ak_" (API key) or "flip_sk_"
// (internal-service key), 43 base62 characters of randomness and a 6
// character checksum, so secret scanners can spot them and CheckKey can
// refuse a mistyped key without a lookup. RandomKeyMinter{Format:
// ReferenceKeys} mints the reference hub's 43-character base64url keys
// instead. Either way the stored hash is HashAPIKey(key).
//
// # Seeding the main users
//
// At boot the hub makes sure its main users (MainUser, from code, a file or
// the environment) exist: each is looked up by email in the
// IdentityProvider (cognito.Provider for AWS Cognito, the source of truth;
// nothing is created there), then given a user_profile row and, if they
// hold no role yet, their configured role:
//
//	report, err := flip.NewSeeder(users).SeedMainUsers(ctx, db, idp)
//
// The role goes only to the one account that proves the address
// (User.ProvesAddress: email_verified, enabled, a status meaning its owner
// holds it); any other account carrying the address, an unconfirmed
// sign-up with an admin's email, is ignored with a warning. A user the
// provider does not know, whose accounts do not prove the address, or
// that it cannot answer for right now (5xx, throttling, timeouts), is
// skipped with a warning and reported; a definitive refusal (400, 403, an
// invalid email, an address two verified accounts hold) stops the run
// with an error naming the user. A second run writes nothing, and two
// replicas seeding at once end with the same rows.
//
// # Verifying API keys
//
// Verifier checks the key a trust presents: CheckKey refuses a malformed
// key without any lookup, then one indexed query by HashAPIKey finds the
// trust and APIKeyMatchesHash compares in constant time. WithVerifierCache keeps
// grants (never refusals) in memory for a bounded time, and Verifier.Listen
// drops a grant as soon as any process commits a change to its trust.
//
// # Testing with flip
//
// Package fliptest gives each test its own migrated PostgreSQL database in
// one call (about 43 ms: a clone of a template migrated once), helpers to
// add kit slots, register a trust and dump every table, and small fakes of
// what is not PostgreSQL: an IdentityProvider holding a directory of
// accounts (those that prove their address, and those that do not), and a
// KeyMinter. There is no in-memory store: what depends on
// PostgreSQL's locks and visibility is tested on PostgreSQL.
//
// # The kit slot pool
//
// Slots live in fl_kit_slot and are only ever added (store.AddSlots); a
// slot's number is the trailing _<N> of its name. RegisterTrust fails with
// ErrNoFreeKitSlot when the pool is empty; the fix is to add slots, or to
// give the Registry a SlotNameSource (WithSlotNameSource), which it asks
// for names to add when it finds the pool empty.
package flip
