package flippgx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/londonaicentre/flip"
)

// Registry is a flip.Registry's operations on pgx handles: the same
// registration, rotation, revocation and deletion, run by the same code,
// with a pgx.Tx where flip's methods take a DBTX. Create one at start-up
// beside the Registry; it is as safe for concurrent use.
//
//	reg := flippgx.New(flip.NewRegistry(store.New()))
//	res, err := reg.RegisterTrust(ctx, tx, params) // tx is the handler's pgx.Tx
type Registry struct{ r *flip.Registry }

// New returns the pgx entry points of r, which configures them (slot
// store, key minter, clock, logger, slot-name source). A Registry given
// a SlotStore of the caller's own, which takes a database/sql handle,
// cannot claim slots on pgx: its registrations fail and are undone.
// store.New(), which claims within the registration statement, works.
func New(r *flip.Registry) *Registry { return &Registry{r: r} }

// RegisterTrust is flip.Registry.RegisterTrust inside the caller's open
// pgx transaction tx, and never begins, commits or rolls back a
// transaction: the registration becomes visible when the caller commits,
// and disappears if the caller rolls back. On any error tx is left
// exactly as it was before the call, and still usable (the work runs
// under a savepoint that is rolled back), with two exceptions that leave
// nothing committable: if ctx ends while a statement runs, pgx closes the
// connection, the server rolls the whole transaction back, the error
// matches ctx's error and the caller's Commit fails; and if the savepoint
// cannot be rolled back, the transaction is aborted on purpose and the
// error also matches flip.ErrRollbackRequired.
//
// Everything else is RegisterTrust's: the parameters are validated before
// anything is sent, the errors are the same values (flip.ErrDuplicateTrust
// from SQLSTATE 23505 or the duplicate check, flip.ErrRetryable for a
// deadlock, serialization failure or lock timeout, …), and the plaintext
// keys are returned here and nowhere else. The type of tx rules out a
// pool; a nil tx is flip.ErrNotInTransaction.
func (r *Registry) RegisterTrust(ctx context.Context, tx pgx.Tx, p flip.TrustParams) (flip.RegistrationResult, error) {
	return registerTrust(r.r, ctx, txExecutor(tx), p)
}

// RegisterTrustDB is RegisterTrust in a transaction of its own begun on
// db (a *pgxpool.Pool, *pgx.Conn or *pgxpool.Conn): it begins, registers,
// and commits, or rolls back on any error, as
// flip.Registry.RegisterTrustDB does. Use it where no caller transaction
// exists. BEGIN goes out in one batch with the registration statement,
// so a registration costs a round trip less than pgx's Begin would make
// it. An error that matches flip.ErrRetryable has left nothing behind;
// calling again is safe. (Given a pgx.Tx, pgx begins a nested
// transaction, a savepoint, and the registration is the caller's to
// commit.)
func (r *Registry) RegisterTrustDB(ctx context.Context, db TxBeginner, p flip.TrustParams) (flip.RegistrationResult, error) {
	return registerTrustDB(r.r, ctx, beginner{db}, p)
}

// RotateKeys is flip.Registry.RotateKeys inside the caller's open pgx
// transaction tx, with RegisterTrust's contract: never commits; on any
// error tx is as before. The new keys are returned once; the change is
// announced to listening Verifiers when the caller commits.
func (r *Registry) RotateKeys(ctx context.Context, tx pgx.Tx, c flip.TrustChange) (flip.RegistrationResult, error) {
	return rotateKeys(r.r, ctx, txExecutor(tx), c)
}

// RevokeKey is flip.Registry.RevokeKey inside the caller's open pgx
// transaction tx, with RegisterTrust's contract: never commits; on any
// error tx is as before.
func (r *Registry) RevokeKey(ctx context.Context, tx pgx.Tx, c flip.TrustChange) (flip.Trust, error) {
	return revokeKey(r.r, ctx, txExecutor(tx), c)
}

// DeleteTrust is flip.Registry.DeleteTrust inside the caller's open pgx
// transaction tx, with RegisterTrust's contract: never commits; on any
// error tx is as before.
func (r *Registry) DeleteTrust(ctx context.Context, tx pgx.Tx, c flip.TrustChange) (flip.DeletionResult, error) {
	return deleteTrust(r.r, ctx, txExecutor(tx), c)
}
