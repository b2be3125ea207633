package fliptest_test

import (
	"testing"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
)

// The Cognito adapter runs the same suite on the cognito-local emulator,
// in cognito/identity_suite_test.go.
func TestIdentityProvider_Fake(t *testing.T) {
	t.Parallel()
	fliptest.TestIdentityProvider(t, func(t *testing.T) fliptest.IdentityHarness { return fliptest.FakeIdentityHarness(t) })
}

func TestUserStore_Fake(t *testing.T) {
	t.Parallel()
	fliptest.TestUserStore(t, func(t *testing.T) fliptest.UserStoreHarness { return fliptest.FakeUserStoreHarness(t) })
}

func TestUserStore_Postgres(t *testing.T) {
	t.Parallel()
	fliptest.TestUserStore(t, func(t *testing.T) fliptest.UserStoreHarness { return fliptest.PostgresUserStoreHarness(t) })
}

// The same suite on flip's migration 1 alone, on the hub's own schema
// (internal/hubfixture, with the hub's roles rows) before and after flip's
// migrations, and through the pgx stdlib driver.
func TestUserStore_PostgresHubSchema(t *testing.T) {
	t.Parallel()
	fliptest.TestUserStore(t, func(t *testing.T) fliptest.UserStoreHarness {
		return fliptest.PostgresUserStoreHarness(t, fliptest.AtVersion(1))
	})
}

func TestUserStore_PostgresHubFixture(t *testing.T) {
	t.Parallel()
	fliptest.TestUserStore(t, func(t *testing.T) fliptest.UserStoreHarness {
		return fliptest.PostgresUserStoreHarness(t, fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0))
	})
}

func TestUserStore_PostgresHubFixtureMigrated(t *testing.T) {
	t.Parallel()
	fliptest.TestUserStore(t, func(t *testing.T) fliptest.UserStoreHarness {
		return fliptest.PostgresUserStoreHarness(t, fliptest.FromSQL(hubfixture.Schema))
	})
}

func TestUserStore_PostgresPgx(t *testing.T) {
	t.Parallel()
	fliptest.TestUserStore(t, func(t *testing.T) fliptest.UserStoreHarness {
		return fliptest.PostgresUserStoreHarness(t, fliptest.WithDriver("pgx"))
	})
}
