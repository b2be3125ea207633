package flippgx

import (
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/dbexec"
)

// NewVerifier is flip.NewVerifier on a pgx handle, usually the hub's
// *pgxpool.Pool: a flip.Verifier that looks keys up with pgx, one indexed
// query per key it has not cached, adapted once here rather than per
// Verify. Its options, cache and Listen are flip's; NewFeed is the change
// feed for a pgx pool.
func NewVerifier(db Querier, opts ...flip.VerifierOption) *flip.Verifier {
	var ex dbexec.Executor
	if db != nil {
		ex = executor{db}
	}
	return newVerifier(ex, opts...)
}
