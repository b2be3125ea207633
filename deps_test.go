package flip_test

import (
	"testing"

	"github.com/londonaicentre/flip/internal/importcheck"
)

// The root package imports no database driver and no AWS SDK: pgx
// callers reach its core through flippgx and internal/bridge, so a
// program on database/sql never compiles pgx, and one on pgx never
// compiles lib/pq.
func TestFlip_ImportsNoDriver(t *testing.T) {
	t.Parallel()
	importcheck.Forbid(t, "github.com/jackc/", "github.com/lib/pq", "github.com/aws/", "github.com/jmoiron/sqlx")
}
