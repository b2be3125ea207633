package flip_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// Who may be seeded: only an account that proves the main user's address
// (User.ProvesAddress) gets the role. The provider here is
// fliptest.IdentityProvider, as other teams' tests use it; the same cases
// through the Cognito adapter are in cognito/seed_trust_test.go and, where
// the emulator can make them, in seed_emulator_test.go.

func TestUser_ProvesAddressOnlyWhenVerifiedEnabledAndOwned(t *testing.T) {
	t.Parallel()
	trusted := map[flip.UserStatus]bool{
		flip.UserConfirmed: true, flip.UserExternalProvider: true, flip.UserForceChangePassword: true, flip.UserResetRequired: true,
		flip.UserUnconfirmed: false, flip.UserArchived: false, flip.UserCompromised: false, flip.UserUnknown: false,
		"": false, "confirmed": false, "SOMETHING_NEW": false,
	}
	for status, ok := range trusted {
		if status.Trusted() != ok {
			t.Errorf("%q.Trusted() = %v, want %v", status, !ok, ok)
		}
		for _, verified := range []bool{false, true} {
			for _, enabled := range []bool{false, true} {
				u := flip.User{ID: uuid.New(), Email: "ada@example.com", Status: status, EmailVerified: verified, Enabled: enabled}
				if got, want := u.ProvesAddress(), ok && verified && enabled; got != want {
					t.Errorf("%+v: ProvesAddress() = %v, want %v", u, got, want)
				}
			}
		}
	}
}

// seedFake seeds users through idp into a database of the test's own,
// logging into a buffer it returns.
func seedFake(t *testing.T, idp flip.IdentityProvider, users ...flip.MainUser) (flip.SeedReport, string, error) {
	t.Helper()
	logs := &syncBuffer{}
	seeder := flip.NewSeeder(users)
	seeder.Logger = slog.New(slog.NewTextHandler(logs, nil))
	report, _, err := seedOn(t, t.Context(), nil, seeder, idp, nil)
	return report, logs.String(), err
}

func TestSeeder_AnImpostorAloneIsSkippedAndTheRestSeeded(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	idp.AddAccount(flip.User{Username: "mallory", Email: ada.Email, Enabled: true, Status: flip.UserUnconfirmed})
	idp.AddUser(rita.Email)

	report, logs, err := seedFake(t, idp, ada, rita)
	if err != nil {
		t.Fatalf("an impostor must not stop the run: %v", err)
	}
	o := report.Users[0]
	if o.Result != flip.SeedSkippedUnverified || !o.Skipped() || o.IgnoredAccounts != 1 || o.UserID != uuid.Nil ||
		!errors.Is(o.Cause, flip.ErrUserNotVerified) || !errors.Is(o.Cause, flip.ErrIdentityProvider) ||
		!strings.Contains(o.Reason, `username "mallory" (status UNCONFIRMED, email_verified false, enabled true)`) {
		t.Errorf("outcome = %+v, want skipped-unverified naming the account and its state", o)
	}
	if report.Users[1].Result != flip.SeedCreated {
		t.Errorf("rita = %+v, want created", report.Users[1])
	}
	if !warned(logs, "email="+ada.Email, "username=mallory", "status=UNCONFIRMED", "email_verified=false") ||
		!warned(logs, "main user skipped", "email="+ada.Email) {
		t.Errorf("want a warning about the account and one about the skipped user:\n%s", logs)
	}
	if got := report.String(); got != "2 users: 1 created, 1 skipped-unverified" {
		t.Errorf("report = %s", got)
	}
}

func TestSeeder_TheAccountThatProvesTheAddressWinsOverOthers(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	adaAcct := idp.AddUser(ada.Email) // first: AddUser replaces accounts with its address
	idp.AddAccount(flip.User{Username: "mallory", Email: ada.Email, Enabled: true, EmailVerified: true, Status: flip.UserUnconfirmed})
	idp.AddAccount(flip.User{Username: "ada-old", Email: ada.Email, EmailVerified: true, Status: flip.UserConfirmed}) // disabled

	report, logs, err := seedFake(t, idp, ada)
	if err != nil {
		t.Fatalf("accounts that do not prove the address must not make it ambiguous: %v", err)
	}
	if o := report.Users[0]; o.Result != flip.SeedCreated || o.UserID != adaAcct.ID || o.IgnoredAccounts != 2 || o.Reason != "" {
		t.Errorf("outcome = %+v, want created for %s with 2 accounts ignored", o, adaAcct.ID)
	}
	if !warned(logs, "username=mallory", "status=UNCONFIRMED", "email_verified=true") || !warned(logs, "username=ada-old", "enabled=false") {
		t.Errorf("want a warning for each ignored account:\n%s", logs)
	}
}

func TestSeeder_EmailsCompareCaseInsensitively(t *testing.T) {
	t.Parallel()
	// A case-insensitive pool returns the address lower-cased.
	idp := fliptest.NewIdentityProvider()
	lower := idp.AddUser("ada.admin@example.com")
	configured := ada
	configured.Email = "Ada.Admin@example.com"
	report, _, err := seedFake(t, idp, configured)
	if err != nil || report.Users[0].Result != flip.SeedCreated || report.Users[0].UserID != lower.ID {
		t.Fatalf("report = %+v, %v; want %s created", report, err, lower.ID)
	}

	// Two accounts proving addresses that differ only in case hold the
	// same address: ambiguous.
	idp.AddAccount(flip.User{Username: "ada-upper", Email: "ADA.ADMIN@example.com", Enabled: true, EmailVerified: true, Status: flip.UserExternalProvider})
	_, _, err = seedFake(t, idp, configured)
	var sue *flip.SeedUserError
	if !errors.As(err, &sue) || sue.Code != flip.CodeAmbiguousEmail || sue.Email != configured.Email ||
		!errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) ||
		!strings.Contains(err.Error(), `belongs to 2 accounts (id `+lower.ID.String()+`, username "ada-upper")`) {
		t.Errorf("err = %v, want a definitive %s naming both accounts", err, flip.CodeAmbiguousEmail)
	}
}

func TestSeeder_AnAccountWithAnotherAddressIsNotTheUser(t *testing.T) {
	t.Parallel()
	// A provider that ignores its filter must not hand seeding someone
	// else.
	idp := newScriptedIdP()
	idp.users[ada.Email] = provenUser("someone.else@example.com")
	report, _, err := seedFake(t, idp, ada)
	if err != nil || report.Users[0].Result != flip.SeedSkippedNotFound || !errors.Is(report.Users[0].Cause, flip.ErrUserNotFound) {
		t.Fatalf("report = %+v, %v; want skipped-not-found", report, err)
	}
}
