package fliptest_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/exampledb"
)

// Seed main users without Cognito, and see what the seeder does when the
// identity provider fails for one of them: a transient failure skips the
// user until the next run, a definitive one stops seeding.
func ExampleIdentityProvider() {
	ctx := context.Background()
	db := exampleDB()
	idp := fliptest.NewIdentityProvider()
	ada := idp.AddUser("ada.admin@example.com")
	rita := idp.AddUser("rita.research@example.com")
	seeder := flip.NewSeeder([]flip.MainUser{
		{Email: ada.Email, Role: "Admin", Name: "Ada Admin"},
		{Email: rita.Email, Role: "Researcher", Name: "Rita Research"},
	})

	idp.FailEmail(ada.Email, &flip.IdentityProviderError{Op: "ListUsers", Status: http.StatusServiceUnavailable, Kind: flip.ErrIdentityProviderUnavailable})
	report, err := seeder.SeedMainUsers(ctx, db, idp)
	fmt.Println(report, err)

	idp.FailEmail(ada.Email, nil)
	report, err = seeder.SeedMainUsers(ctx, db, idp)
	fmt.Println(report, err)

	idp.FailEmail(rita.Email, &flip.IdentityProviderError{Op: "ListUsers", Status: http.StatusForbidden, Code: "NotAuthorizedException"})
	_, err = seeder.SeedMainUsers(ctx, db, idp)
	fmt.Println(err)
	// Output:
	// 2 users: 1 created, 1 skipped-transient <nil>
	// 2 users: 1 created, 1 unchanged <nil>
	// seed main user #2 "rita.research@example.com": lookup (HTTP 403 NotAuthorizedException): identity provider lookup failed: ListUsers: HTTP 403 NotAuthorizedException
}

// KeyMinter mints the same well-formed keys in every run, for stable test
// output.
func ExampleKeyMinter() {
	k1, _ := (&fliptest.KeyMinter{Seed: "docs"}).MintKey(flip.TrustAPIKey)
	k2, _ := (&fliptest.KeyMinter{Seed: "docs"}).MintKey(flip.TrustAPIKey)
	fmt.Println(k1 == k2, len(k1), flip.CheckKey(flip.TrustAPIKey, k1))
	// Output:
	// true 57 <nil>
}

// exampleDB is the database an example runs on, migrated and its own:
// what fliptest.NewDB(t) gives a test.
func exampleDB() *sql.DB { return exampledb.New().DB }
