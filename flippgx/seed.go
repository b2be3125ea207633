package flippgx

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/dbexec"
)

// SeedMainUsers is s.SeedMainUsers on a pgx handle: the same checks,
// lookups, writes and report. db decides the transactions, as there: a
// pgx.Tx receives every write and is never committed or rolled back here
// (the caller does that, at READ COMMITTED); a *pgxpool.Pool, *pgx.Conn
// or *pgxpool.Conn gives each user's writes a short transaction of their
// own, committed before the next user's.
func SeedMainUsers(ctx context.Context, s *flip.Seeder, db Querier, idp flip.IdentityProvider) (flip.SeedReport, error) {
	var begin dbexec.Beginner
	if _, isTx := db.(pgx.Tx); !isTx {
		if b, ok := db.(TxBeginner); ok {
			begin = beginner{b}
		}
	}
	return seedMainUsers(s, ctx, executor{db}, begin, idp)
}
