package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

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
