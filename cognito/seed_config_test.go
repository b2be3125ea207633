package cognito_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// Seeding through the Cognito adapter on a misconfigured hub: the boot
// must fail with an error naming the first user and the setting to check,
// not end with every main user skipped.

var seedUsers = []flip.MainUser{
	{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
	{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research", Organisation: "Example University"},
}

// seedFails runs a seeder over seedUsers with idp and fails the test
// unless seeding stops at the first user with a definitive error that
// says what.
func seedFails(t *testing.T, idp flip.IdentityProvider, says ...string) {
	t.Helper()
	db := fliptest.NewDB(t)
	report, err := flip.NewSeeder(seedUsers).SeedMainUsers(t.Context(), db, idp)
	if err == nil {
		t.Fatalf("seeding succeeded: %s", report)
	}
	var sue *flip.SeedUserError
	if !errors.As(err, &sue) || sue.Email != seedUsers[0].Email || sue.Step != "lookup" {
		t.Fatalf("err = %v, want a *flip.SeedUserError for %s at lookup", err, seedUsers[0].Email)
	}
	if !errors.Is(err, flip.ErrSeedMainUsers) || !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Errorf("err = %v, want a definitive identity-provider failure", err)
	}
	for _, want := range append([]string{seedUsers[0].Email}, says...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %q", err, want)
		}
	}
	var profiles int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM user_profile`).Scan(&profiles); err != nil {
		t.Fatal(err)
	}
	if report.Count(flip.SeedSkippedTransient) != 0 || profiles != 0 {
		t.Errorf("report %s, %d profiles: nothing should be skipped or written", report, profiles)
	}
}

func TestSeedMainUsers_ConfigurationFaultFailsTheBoot(t *testing.T) {
	t.Parallel()
	eachConfigFault(t, func(t *testing.T, f configFault) {
		seedFails(t, provider(f.cfg), "configuration problem", f.check)
	})
}

func TestSeedMainUsers_UnknownUserPoolFailsTheBoot(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	idp := cognito.New(emu.Client(), "eu-west-2_NoSuchPool", cognito.WithMaxAttempts(2))
	seedFails(t, idp, "ResourceNotFoundException", "configuration problem", "user pool id")
}

func TestSeedMainUsers_AmbiguousEmailFailsTheBoot(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.SharedPlainUsernames(t)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(t, admin)
	cognitolocal.CreateUserNamed(t, admin, pool, "ada-1", seedUsers[0].Email)
	cognitolocal.CreateUserNamed(t, admin, pool, "ada-2", seedUsers[0].Email)
	cognitolocal.CreateUserNamed(t, admin, pool, "rita", seedUsers[1].Email)
	seedFails(t, cognito.New(emu.Client(), pool), flip.CodeAmbiguousEmail, "2 accounts")
}

func TestSeedMainUsers_RefusedConnectionStillSkips(t *testing.T) {
	t.Parallel()
	// The contrast: a host that resolves but refuses is transient, so
	// seeding skips every user and returns no error.
	idp := cognito.New(cognitolocal.NewClient("http://"+closedPort(t)), "eu-west-2_AbCdEf123",
		cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(time.Millisecond))
	report, err := flip.NewSeeder(seedUsers).SeedMainUsers(t.Context(), fliptest.NewDB(t), idp)
	if err != nil {
		t.Fatalf("seeding failed: %v", err)
	}
	if n := report.Count(flip.SeedSkippedTransient); n != len(seedUsers) {
		t.Errorf("report %s, want every user skipped as transient", report)
	}
}
