package fliptest_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// Seed main users without Cognito or PostgreSQL, and see what the seeder
// does when the identity provider throttles one lookup (the user is
// skipped and tried again at the next run) or refuses one (seeding stops).
func ExampleIdentityProvider() {
	ctx := context.Background()
	idp := fliptest.NewIdentityProvider()
	idp.AddUserWithID("ada.admin@example.com", uuid.MustParse("3f1c2b6e-6a0e-4d7e-9a51-2f0d8c1b7e11"))
	idp.AddUserWithID("rita.research@example.com", uuid.MustParse("8b2e4c1d-0f3a-4b6c-8d7e-1a2b3c4d5e6f"))
	users := fliptest.NewUserStore()
	seeder := flip.NewSeeder(users, []flip.MainUser{
		{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin"},
		{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research"},
	})
	seeder.Concurrency = 1 // lookups in configuration order, so FailNext hits Ada's

	idp.FailNextStatus(http.StatusTooManyRequests, "TooManyRequestsException")
	report, err := seeder.SeedMainUsers(ctx, nil, idp)
	fmt.Println(report, err)

	report, err = seeder.SeedMainUsers(ctx, nil, idp)
	fmt.Println(report, err)

	idp.FailEmail("rita.research@example.com", fliptest.IdentityError(http.StatusForbidden, "NotAuthorizedException"))
	_, err = seeder.SeedMainUsers(ctx, nil, idp)
	fmt.Println(err)
	fmt.Println(len(users.Profiles()), "profiles,", idp.Calls(), "lookups")
	// Output:
	// 2 users: 1 created, 1 skipped-transient <nil>
	// 2 users: 1 created, 1 unchanged <nil>
	// seed main user #2 "rita.research@example.com": lookup (HTTP 403 NotAuthorizedException): identity provider lookup failed: ListUsers: HTTP 403 NotAuthorizedException: injected by fliptest
	// 2 profiles, 6 lookups
}
