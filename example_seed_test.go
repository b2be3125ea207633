package flip_test

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// Seed the main users at boot, twice: the second run finds everything in
// place and writes nothing. The example uses the in-memory fakes of
// package fliptest, which decide as the real parts do; in the hub the
// identity provider is
// cognito.New(cognitoidentityprovider.NewFromConfig(cfg), userPoolID), the
// store is store.New() and db is the hub's *sql.DB.
func ExampleSeeder_SeedMainUsers() {
	ctx := context.Background()
	users := []flip.MainUser{ // or flip.MainUsersFromEnv(os.Getenv)
		{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
		{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research", Organisation: "Example University"},
		{Email: "new.starter@example.com", Role: "Viewer", Name: "New Starter"},
	}
	idp := fliptest.NewIdentityProvider() // new.starter has no account yet
	idp.AddUserWithID("ada.admin@example.com", uuid.MustParse("3f1c2b6e-6a0e-4d7e-9a51-2f0d8c1b7e11"))
	idp.AddUserWithID("rita.research@example.com", uuid.MustParse("8b2e4c1d-0f3a-4b6c-8d7e-1a2b3c4d5e6f"))
	seeder := flip.NewSeeder(fliptest.NewUserStore(), users) // in production: store.New()

	for run := 1; run <= 2; run++ {
		report, err := seeder.SeedMainUsers(ctx, nil /* in production: db */, idp)
		if err != nil { // a 400/403 from the provider, an invalid email, the database
			fmt.Println("seeding stopped:", err)
			return
		}
		fmt.Printf("run %d: %s\n", run, report)
		for _, o := range report.Users {
			fmt.Printf("  %s %s role_granted=%v\n", o.Email, o.Result, o.RoleGranted)
		}
	}
	// Output:
	// run 1: 3 users: 2 created, 1 skipped-not-found
	//   ada.admin@example.com created role_granted=true
	//   rita.research@example.com created role_granted=true
	//   new.starter@example.com skipped-not-found role_granted=false
	// run 2: 3 users: 2 unchanged, 1 skipped-not-found
	//   ada.admin@example.com unchanged role_granted=false
	//   rita.research@example.com unchanged role_granted=false
	//   new.starter@example.com skipped-not-found role_granted=false
}
