// Package bridge hands this module's driver adapters (flippgx) the root
// package's operations as they take a dbexec.Executor, so that a pgx
// caller runs the very code a database/sql caller does: the statements,
// the duplicate-check ordering and the undo policy exist once, in package
// flip, and an adapter only turns its driver's handle into an Executor.
//
// Why a bridge and not exported methods: flip's public API stays
// database/sql-shaped (its methods take a DBTX) and free of any driver
// import, and it does not grow a second, executor-taking method per
// operation that every user would see and that dbexec, being internal,
// could not even be named in. Nothing outside this module can import this
// package, so the seam stays private, as River's riverdriver is ("do not
// implement").
//
// Each variable is set once, by package flip's init, to a func of the type
// its comment gives, and read by an adapter's package-level variables,
// which assert that type. Package initialisation runs flip's init first
// (the adapter imports flip), and a mismatch panics when the adapter's
// package is initialised, so any test of it catches a drifted signature.
// The types cannot be written here: this package cannot import flip,
// which imports it.
package bridge

var (
	// RegisterTrust is
	// func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustParams) (flip.RegistrationResult, error):
	// Registry.RegisterTrust in the caller's transaction, under flip's
	// savepoint. A nil Executor is refused with ErrNotInTransaction.
	RegisterTrust any
	// RegisterTrustDB is
	// func(*flip.Registry, context.Context, dbexec.Beginner, flip.TrustParams) (flip.RegistrationResult, error):
	// Registry.RegisterTrustDB in a transaction it begins and commits.
	RegisterTrustDB any
	// RotateKeys is
	// func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustChange) (flip.RegistrationResult, error).
	RotateKeys any
	// RevokeKey is
	// func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustChange) (flip.Trust, error).
	RevokeKey any
	// DeleteTrust is
	// func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustChange) (flip.DeletionResult, error).
	DeleteTrust any
	// NewVerifier is
	// func(dbexec.Executor, ...flip.VerifierOption) *flip.Verifier;
	// a nil Executor makes a Verifier whose lookups fail.
	NewVerifier any
	// SeedMainUsers is
	// func(*flip.Seeder, context.Context, dbexec.Executor, dbexec.Beginner, flip.IdentityProvider) (flip.SeedReport, error):
	// with a Beginner each user's writes get a transaction of their own
	// from it; with nil, every statement goes on the Executor, the
	// caller's transaction.
	SeedMainUsers any
)
