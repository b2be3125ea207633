package flip_test

import (
	"context"
	"fmt"

	"github.com/londonaicentre/flip"
)

// Seed the main users at boot, twice: the second run finds everything in
// place and writes nothing. Ada and Rita have accounts in the identity
// provider; New Starter has none yet, and is skipped until the next boot.
func ExampleSeeder_SeedMainUsers() {
	ctx := context.Background()
	db := exampleDB()
	idp := exampleIdentityProvider()
	users := []flip.MainUser{ // or flip.MainUsersFromEnv(os.Getenv)
		{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
		{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research", Organisation: "Example University"},
		{Email: "new.starter@example.com", Role: "Viewer", Name: "New Starter"},
	}
	seeder := flip.NewSeeder(users)

	for run := 1; run <= 2; run++ {
		report, err := seeder.SeedMainUsers(ctx, db, idp)
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
