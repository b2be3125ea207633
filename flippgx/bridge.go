package flippgx

import (
	"context"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/bridge"
	"github.com/londonaicentre/flip/internal/dbexec"
)

// flip's core, as it takes an Executor (see internal/bridge). Package flip
// is initialised before this one and sets them; a signature that drifted
// from these types panics here, when the package is initialised, so any
// test of the package catches it.
var (
	registerTrust   = bridge.RegisterTrust.(func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustParams) (flip.RegistrationResult, error))
	registerTrustDB = bridge.RegisterTrustDB.(func(*flip.Registry, context.Context, dbexec.Beginner, flip.TrustParams) (flip.RegistrationResult, error))
	rotateKeys      = bridge.RotateKeys.(func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustChange) (flip.RegistrationResult, error))
	revokeKey       = bridge.RevokeKey.(func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustChange) (flip.Trust, error))
	deleteTrust     = bridge.DeleteTrust.(func(*flip.Registry, context.Context, dbexec.Executor, flip.TrustChange) (flip.DeletionResult, error))
	newVerifier     = bridge.NewVerifier.(func(dbexec.Executor, ...flip.VerifierOption) *flip.Verifier)
	seedMainUsers   = bridge.SeedMainUsers.(func(*flip.Seeder, context.Context, dbexec.Executor, dbexec.Beginner, flip.IdentityProvider) (flip.SeedReport, error))
)
