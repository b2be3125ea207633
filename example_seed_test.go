package flip_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// Seed the main users at boot, twice: the second run finds everything in
// place and writes nothing. The example looks users up in a map and keeps
// rows in memory; in the hub the identity provider is
// cognito.New(cognitoidentityprovider.NewFromConfig(cfg), userPoolID), the
// store is store.New() and db is the hub's *sql.DB.
func ExampleSeeder_SeedMainUsers() {
	ctx := context.Background()
	users := []flip.MainUser{ // or flip.MainUsersFromEnv(os.Getenv)
		{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
		{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research", Organisation: "Example University"},
		{Email: "new.starter@example.com", Role: "Viewer", Name: "New Starter"},
	}
	idp := mapIdP{ // new.starter has no account yet
		"ada.admin@example.com":     {ID: uuid.MustParse("3f1c2b6e-6a0e-4d7e-9a51-2f0d8c1b7e11"), Email: "ada.admin@example.com", Enabled: true},
		"rita.research@example.com": {ID: uuid.MustParse("8b2e4c1d-0f3a-4b6c-8d7e-1a2b3c4d5e6f"), Email: "rita.research@example.com", Enabled: true},
	}
	seeder := flip.NewSeeder(newMemoryUsers(), users) // in production: store.New()

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

// memoryUsers is an in-memory flip.UserStore with the same decisions as
// store.Store: insert or update the profile, grant only to a user with no
// role.
type memoryUsers struct {
	mu       sync.Mutex
	roles    map[uuid.UUID]flip.Role
	profiles map[uuid.UUID]flip.UserProfile
	grants   map[uuid.UUID]uuid.UUID // user → role
}

var _ flip.UserStore = (*memoryUsers)(nil)

func newMemoryUsers() *memoryUsers {
	return &memoryUsers{roles: map[uuid.UUID]flip.Role{}, profiles: map[uuid.UUID]flip.UserProfile{}, grants: map[uuid.UUID]uuid.UUID{}}
}

func (m *memoryUsers) EnsureRoles(_ context.Context, _ flip.DBTX, roles []flip.Role, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range roles {
		if _, ok := m.roles[r.ID]; !ok {
			m.roles[r.ID] = r
		}
	}
	return nil
}

func (m *memoryUsers) ApplyMainUser(_ context.Context, _ flip.DBTX, p flip.UserProfile, roleID uuid.UUID, _ time.Time) (flip.UserChange, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c flip.UserChange
	if _, ok := m.roles[roleID]; !ok {
		return c, fmt.Errorf("no such role %s", roleID)
	}
	old, ok := m.profiles[p.UserID]
	c.ProfileCreated = !ok
	c.ProfileUpdated = ok && old != p
	m.profiles[p.UserID] = p
	if _, has := m.grants[p.UserID]; !has {
		m.grants[p.UserID] = roleID
		c.RoleGranted = true
	}
	return c, nil
}
