package fliptest_test

import (
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver for TestStore_PostgresPgx

	"github.com/londonaicentre/flip/fliptest"
)

func TestStore_Fake(t *testing.T) {
	t.Parallel()
	fliptest.TestStore(t, func(t *testing.T) fliptest.Harness { return fliptest.FakeHarness(t) })
}

func TestStore_Postgres(t *testing.T) {
	t.Parallel()
	fliptest.TestStore(t, func(t *testing.T) fliptest.Harness { return fliptest.PostgresHarness(t) })
}

// The same suite through the pgx stdlib driver: nothing in store may depend
// on lib/pq's types.
func TestStore_PostgresPgx(t *testing.T) {
	t.Parallel()
	fliptest.TestStore(t, func(t *testing.T) fliptest.Harness {
		return fliptest.PostgresHarness(t, fliptest.WithDriver("pgx"))
	})
}

// The same suite on the hub's own schema (migration 1 only, none of flip's
// unique indexes): correctness must not depend on them.
func TestStore_PostgresHubSchema(t *testing.T) {
	t.Parallel()
	fliptest.TestStore(t, func(t *testing.T) fliptest.Harness {
		return fliptest.PostgresHarness(t, fliptest.AtVersion(1))
	})
}
