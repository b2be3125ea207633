package cognito_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
)

// Seeding through the adapter over Cognito answers the emulator cannot
// give (it knows neither federated accounts nor case-insensitive pools nor
// pagination): a main user's role goes only to the one account that
// proves the address, whatever else holds it.

// account is an account holding addr as Cognito lists it, with a new sub;
// verified is its email_verified attribute ("" leaves it out).
func account(username, addr string, status types.UserStatusType, verified string) types.UserType {
	u := user(username, addr, uuid.NewString())
	u.UserStatus = status
	u.Attributes = u.Attributes[:2] // sub and email
	if verified != "" {
		u.Attributes = append(u.Attributes, types.AttributeType{Name: aws.String("email_verified"), Value: aws.String(verified)})
	}
	return u
}

func disabled(u types.UserType) types.UserType { u.Enabled = false; return u }

func TestSeedMainUsers_TrustsOnlyAccountsThatProveTheAddress(t *testing.T) {
	t.Parallel()
	const email = "ada.admin@example.com"
	cases := []struct {
		name       string
		configured string // the main user's email; default email
		page       []types.UserType
		more       bool     // the answer says more follow
		want       string   // the outcome, or the Code of the error that stops the run
		ignored    []string // what the warnings name about each ignored account
	}{
		{name: "Confirmed", page: []types.UserType{account("ada", email, types.UserStatusTypeConfirmed, "true")}, want: "created"},
		{name: "ExternalProvider", page: []types.UserType{account("ada", email, types.UserStatusTypeExternalProvider, "true")}, want: "created"},
		{name: "ForceChangePassword", page: []types.UserType{account("ada", email, types.UserStatusTypeForceChangePassword, "true")}, want: "created"},
		{name: "ResetRequired", page: []types.UserType{account("ada", email, types.UserStatusTypeResetRequired, "true")}, want: "created"},

		{name: "UnconfirmedEvenVerified", page: []types.UserType{account("mallory", email, types.UserStatusTypeUnconfirmed, "true")},
			want: "skipped-unverified", ignored: []string{"username=mallory status=UNCONFIRMED email_verified=true enabled=true"}},
		{name: "ConfirmedWithoutEmailVerified", page: []types.UserType{account("ada", email, types.UserStatusTypeConfirmed, "")},
			want: "skipped-unverified", ignored: []string{"username=ada status=CONFIRMED email_verified=false"}},
		{name: "EmailVerifiedFalse", page: []types.UserType{account("ada", email, types.UserStatusTypeForceChangePassword, "false")},
			want: "skipped-unverified", ignored: []string{"username=ada status=FORCE_CHANGE_PASSWORD email_verified=false"}},
		{name: "FederatedWithoutVerifiedEmail", page: []types.UserType{account("Google_123", email, types.UserStatusTypeExternalProvider, "false")},
			want: "skipped-unverified", ignored: []string{"username=Google_123 status=EXTERNAL_PROVIDER email_verified=false"}},
		{name: "Disabled", page: []types.UserType{disabled(account("ada", email, types.UserStatusTypeConfirmed, "true"))},
			want: "skipped-unverified", ignored: []string{"username=ada status=CONFIRMED email_verified=true enabled=false"}},
		{name: "ArchivedCompromisedUnknownAndNew", page: []types.UserType{
			account("a", email, types.UserStatusTypeArchived, "true"), account("c", email, types.UserStatusTypeCompromised, "true"),
			account("u", email, types.UserStatusTypeUnknown, "true"), account("n", email, "SOMETHING_NEW", "true"),
			account("e", email, "", "true")},
			want: "skipped-unverified", ignored: []string{"username=a status=ARCHIVED", "username=c status=COMPROMISED",
				"username=u status=UNKNOWN", "username=n status=SOMETHING_NEW", `username=e status="" email_verified=true`}},

		{name: "AdminAndAnUnconfirmedImpostor", page: []types.UserType{
			account("mallory", email, types.UserStatusTypeUnconfirmed, ""), account("ada", email, types.UserStatusTypeConfirmed, "true")},
			want: "created", ignored: []string{"username=mallory status=UNCONFIRMED email_verified=false"}},
		{name: "ConfiguredWithCapitalsReturnedLowerCased", configured: "Ada.Admin@example.com",
			page: []types.UserType{account("ada", email, types.UserStatusTypeConfirmed, "true")}, want: "created"},
		{name: "TwoProvingAccountsWhoseEmailsDifferInCase", page: []types.UserType{
			account("ada", email, types.UserStatusTypeConfirmed, "true"), account("ada-2", "Ada.Admin@Example.com", types.UserStatusTypeConfirmed, "true")},
			want: flip.CodeAmbiguousEmail},
		{name: "AnswerSayingMoreFollow", more: true, page: []types.UserType{account("ada", email, types.UserStatusTypeConfirmed, "true")},
			want: flip.CodeAmbiguousEmail},
		{name: "AnotherAddressOnly", page: []types.UserType{account("x", "someone.else@example.com", types.UserStatusTypeConfirmed, "true")},
			want: "skipped-not-found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ada := flip.MainUser{Email: email, Role: "Admin", Name: "Ada Admin"}
			if c.configured != "" {
				ada.Email = c.configured
			}
			rita := flip.MainUser{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research"}
			ritaAccount := account("rita", rita.Email, types.UserStatusTypeConfirmed, "true")
			api := &fakeAPI{ListUsersFn: func(in *cip.ListUsersInput) (*cip.ListUsersOutput, error) {
				switch aws.ToString(in.Filter) {
				case `email = "` + ada.Email + `"`:
					out := &cip.ListUsersOutput{Users: c.page}
					if c.more {
						out.PaginationToken = aws.String("next-page")
					}
					return out, nil
				case `email = "` + rita.Email + `"`:
					return &cip.ListUsersOutput{Users: []types.UserType{ritaAccount}}, nil
				}
				return nil, fmt.Errorf("unexpected filter %q", aws.ToString(in.Filter))
			}}
			logs := &bytes.Buffer{} // the seeder logs from the caller's goroutine only
			seeder := flip.NewSeeder([]flip.MainUser{ada, rita})
			seeder.Logger = slog.New(slog.NewTextHandler(logs, nil))
			report, err := seeder.SeedMainUsers(t.Context(), fliptest.NewDB(t), cognito.New(api, "eu-west-2_pool"))

			if strings.HasPrefix(c.want, "skipped") || c.want == "created" {
				// Seeding goes on, whatever this user's accounts.
				if err != nil || len(report.Users) != 2 || report.Users[1].Result != flip.SeedCreated {
					t.Fatalf("report %s, err %v; want the run to go on and seed the next user", report, err)
				}
				o := report.Users[0]
				if string(o.Result) != c.want || o.IgnoredAccounts != len(c.ignored) {
					t.Errorf("outcome = %+v, want %s with %d accounts ignored", o, c.want, len(c.ignored))
				}
				if c.want == "created" && o.UserID.String() != attribute(c.page[len(c.page)-1], "sub") {
					t.Errorf("seeded %s, want the account that proves the address", o.UserID)
				}
				if c.want == "skipped-unverified" && (!errors.Is(o.Cause, flip.ErrUserNotVerified) || !warned(logs.String(), "main user skipped", "email="+ada.Email)) {
					t.Errorf("cause %v, logs:\n%s\nwant ErrUserNotVerified and a warning", o.Cause, logs)
				}
			} else {
				var sue *flip.SeedUserError
				if !errors.As(err, &sue) || sue.Email != ada.Email || sue.Code != c.want || len(report.Users) != 0 ||
					!errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
					t.Fatalf("report %s, err %v; want the run stopped at %s with %s", report, err, ada.Email, c.want)
				}
			}
			for _, w := range c.ignored {
				if !warned(logs.String(), append([]string{"account ignored", "email=" + ada.Email, "account_email=" + email}, strings.Fields(w)...)...) {
					t.Errorf("no warning saying %s:\n%s", w, logs)
				}
			}
			if err == nil {
				// (After a stop, the next user's lookup may still be on
				// its way.)
				api.mu.Lock()
				if n := len(api.inputs); n != 2 {
					t.Errorf("%d requests, want one per user", n)
				}
				api.mu.Unlock()
			}
		})
	}
}

// attribute returns the value of u's attribute name.
func attribute(u types.UserType, name string) string {
	for _, a := range u.Attributes {
		if aws.ToString(a.Name) == name {
			return aws.ToString(a.Value)
		}
	}
	return ""
}

// warned reports whether a warning line of logs holds every one of parts.
func warned(logs string, parts ...string) bool {
	for line := range strings.Lines(logs) {
		ok := strings.Contains(line, "level=WARN")
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}
