package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// errRotateCommitUnknown is returned when the rotation's commit got no
// answer: the trust may hold new keys that nobody has, or still its old
// ones. Running --rotate again settles it either way.
var errRotateCommitUnknown = errors.New("the commit of the rotation got no answer, so it may or may not have taken effect: run register-trust --name NAME --rotate again")

// rotate gives the existing trust named opts.name new keys through
// rotateKeys and returns its full outcome, status "rotated". It never
// registers a trust. Lookups go to q: the database in a real run, the
// plan's transaction under --plan.
func rotate(ctx context.Context, q flip.DBTX, log *slog.Logger, opts options,
	rotateKeys func(flip.TrustChange) (flip.RegistrationResult, error)) (outcome, error) {
	asked, err := lookupParams(opts)
	if err != nil {
		return outcome{}, err
	}
	trusts, err := store.TrustsByName(ctx, q, asked.Name)
	if errors.Is(err, store.ErrTrustNotFound) {
		return outcome{}, fmt.Errorf("%w: no trust is named %q; --rotate re-keys only an existing trust", err, asked.Name)
	}
	if err != nil {
		return outcome{}, err
	}
	if len(trusts) > 1 { // legacy rows: refuse to guess whose keys to replace
		ids := make([]string, len(trusts))
		for i, t := range trusts {
			ids[i] = t.ID.String()
		}
		return outcome{}, fmt.Errorf("%d trusts are named %q (%s): nothing rotated; rotate one by id through the hub (POST /admin/trusts/{id}/rotate-key)",
			len(trusts), asked.Name, strings.Join(ids, ", "))
	}
	trust := trusts[0]
	if asked.Code != "" && !strings.EqualFold(trust.Code, asked.Code) {
		return outcome{}, fmt.Errorf("trust %q has code %q, not %q: nothing rotated", trust.Name, trust.Code, asked.Code)
	}
	// The Registry (newRegistry) logs the change, and on a database
	// without flip_trust_key_audit (not yet migrated) that log line is its
	// only record, so it goes to stderr with the command's own lines.
	res, err := rotateKeys(flip.TrustChange{TrustID: trust.ID})
	if err != nil {
		return outcome{}, err
	}
	return outcome{status: "rotated", res: res}, nil
}

// lookupParams normalises --name (and --code, when given) as registration
// does, so that the lookup matches what RegisterTrust stored.
func lookupParams(opts options) (flip.TrustParams, error) {
	name, err := flip.CanonicalTrustName(opts.name)
	if err != nil || opts.code == "" {
		return flip.TrustParams{Name: name}, err
	}
	return flip.TrustParams{Name: name, Code: opts.code}.Normalize()
}

// rotateTx rotates the keys in a transaction of its own and commits it.
// RotateKeys never commits: the transaction is the caller's, here the
// command's, and is rolled back on any error.
func rotateTx(ctx context.Context, reg *flip.Registry, db *sql.DB, c flip.TrustChange) (flip.RegistrationResult, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return flip.RegistrationResult{}, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	res, err := reg.RotateKeys(ctx, tx, c)
	if err != nil {
		return flip.RegistrationResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return flip.RegistrationResult{}, fmt.Errorf("%w: %w", errRotateCommitUnknown, err)
	}
	return res, nil
}
