package cognito_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// bundle is what an emulator test needs: its own user pool, a client that
// talks to the emulator directly (to create users) and a Provider that
// goes through a fault-injecting proxy.
type bundle struct {
	ctx   context.Context
	admin *cip.Client
	pool  string
	proxy *cognitolocal.Proxy
	idp   *cognito.Provider
}

func setup(t *testing.T, opts ...cognito.Option) bundle {
	t.Helper()
	emu := cognitolocal.Shared(t)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(t, admin)
	proxy := cognitolocal.NewProxy(t, emu.URL)
	opts = append([]cognito.Option{cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5 * time.Millisecond)}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return bundle{ctx: ctx, admin: admin, pool: pool, proxy: proxy,
		idp: cognito.New(cognitolocal.NewClient(proxy.URL), pool, opts...)}
}

func TestLookupUsersByEmail_ReturnsSubAndEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := cognitolocal.CreateUser(t, b.admin, b.pool, "ada.admin@example.com")
	bob := cognitolocal.CreateUser(t, b.admin, b.pool, "bob.viewer@example.com")

	u := only(t)(b.idp.LookupUsersByEmail(b.ctx, "ada.admin@example.com"))
	// An administrator created it with a verified address: it proves the
	// address before its first sign-in (FORCE_CHANGE_PASSWORD, the status
	// cognito-local 5.3.0 gives, as Cognito does).
	want := flip.User{ID: sub, Username: sub.String(), Email: "ada.admin@example.com", Enabled: true, EmailVerified: true,
		Status: flip.UserForceChangePassword}
	if u != want || !u.ProvesAddress() {
		t.Errorf("got %+v, want %+v, which proves the address", u, want)
	}
	if n := b.proxy.Lookups("ada.admin@example.com"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if u := only(t)(b.idp.LookupUsersByEmail(b.ctx, "bob.viewer@example.com")); u.ID != bob || u.Email != "bob.viewer@example.com" || !u.Enabled {
		t.Errorf("bob = %+v; want id %s, the email, enabled", u, bob)
	}
	if sub == bob || sub == uuid.Nil {
		t.Errorf("ids %s and %s: want two distinct non-zero ids", sub, bob)
	}
}

func TestLookupUsersByEmail_DisabledUserIsFoundNotEnabled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := cognitolocal.CreateUser(t, b.admin, b.pool, "gone@example.com")
	cognitolocal.DisableUser(t, b.admin, b.pool, "gone@example.com")

	u := only(t)(b.idp.LookupUsersByEmail(b.ctx, "gone@example.com"))
	if u.ID != sub || u.Email != "gone@example.com" || u.Enabled || u.ProvesAddress() {
		t.Errorf("got %+v, want id %s, the email, not enabled, so not proving the address", u, sub)
	}
}

func TestLookupUsersByEmail_MissingUserIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "someone@example.com")

	_, err := b.idp.LookupUsersByEmail(b.ctx, "nobody@example.com")
	wantNotFound(t, err)
	// cognito-local 5.3.0, like Cognito, answers an empty list; the
	// UserNotFoundException path is covered with a fake in cognito_test.go.
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 200 {
		t.Errorf("err = %#v, want a 200 answer without the user", ipe)
	}
	if n := b.proxy.Lookups("nobody@example.com"); n != 1 {
		t.Errorf("%d requests, want 1 (not found is not retried)", n)
	}
}

// wantNotFound fails unless err is ErrUserNotFound and nothing else.
func wantNotFound(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, flip.ErrUserNotFound) || !errors.Is(err, flip.ErrIdentityProvider) ||
		errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrInvalidIdentifier) {
		t.Errorf("err = %v, want ErrUserNotFound only", err)
	}
}

func TestLookupUsersByEmail_OnlyTheExactAddressMatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "ada@example.com")
	for _, email := range []string{"da@example.com", "ada@example.co", "ada@example.com.evil.example", "xada@example.com"} {
		_, err := b.idp.LookupUsersByEmail(b.ctx, email)
		wantNotFound(t, err)
	}
}

func TestLookupUsersByEmail_InvalidEmailIsNeverSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, email := range []string{
		`a"b@example.com`,
		`a\b@example.com`,
		`x" or email = "y@example.com`,
		``,
		` padded@example.com`,
		`no-at-sign.example.com`,
		"new\nline@example.com",
		"two@at@example.com",
	} {
		_, err := b.idp.LookupUsersByEmail(b.ctx, email)
		if !errors.Is(err, flip.ErrInvalidIdentifier) || !errors.Is(err, flip.ErrIdentityProvider) ||
			errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrUserNotFound) {
			t.Errorf("%q: err = %v, want ErrInvalidIdentifier", email, err)
		}
		if want := flip.ValidateEmail(email); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%q: err = %v, want exactly flip.ValidateEmail's %v", email, err, want)
		}
	}
	if n := b.proxy.TotalLookups(); n != 0 {
		t.Errorf("the proxy saw %d lookups, want none", n)
	}
}

func TestLookupUsersByEmail_ClassifiesFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fault     cognitolocal.Fault
		transient bool
		status    int
		code      string
		requests  int // with WithMaxAttempts(2)
	}{
		{cognitolocal.Fault500, true, 500, "InternalErrorException", 2},
		{cognitolocal.Fault503, true, 503, "ServiceUnavailableException", 2},
		{cognitolocal.Fault429, true, 429, "TooManyRequestsException", 2},
		{cognitolocal.FaultThrottle400, true, 400, "TooManyRequestsException", 2},
		{cognitolocal.Fault502HTML, true, 502, "", 2},
		{cognitolocal.FaultDrop, true, 0, "", 2},
		{cognitolocal.Fault400, false, 400, "InvalidParameterException", 1},
		{cognitolocal.Fault403, false, 403, "NotAuthorizedException", 1},
	}
	for _, c := range cases {
		t.Run(string(c.fault), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			faulty := cognitolocal.CreateUser(t, b.admin, b.pool, "faulty@example.com")
			fine := cognitolocal.CreateUser(t, b.admin, b.pool, "fine@example.com")
			b.proxy.Fail("faulty@example.com", c.fault)

			_, err := b.idp.LookupUsersByEmail(b.ctx, "faulty@example.com")
			if err == nil {
				t.Fatal("lookup succeeded")
			}
			if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) != c.transient {
				t.Errorf("err = %v; want transient=%v", err, c.transient)
			}
			if errors.Is(err, flip.ErrUserNotFound) {
				t.Errorf("err = %v is ErrUserNotFound", err)
			}
			var ipe *flip.IdentityProviderError
			if !errors.As(err, &ipe) || ipe.Status != c.status || ipe.Code != c.code || ipe.Transient() != c.transient {
				t.Errorf("err = %#v, want status %d code %q", ipe, c.status, c.code)
			}
			if n := b.proxy.Lookups("faulty@example.com"); n != c.requests {
				t.Errorf("%d requests, want %d", n, c.requests)
			}
			if errors.Is(err, flip.ErrInvalidIdentifier) {
				t.Errorf("err = %v is ErrInvalidIdentifier", err)
			}
			if u := only(t)(b.idp.LookupUsersByEmail(b.ctx, "fine@example.com")); u.ID != fine {
				t.Errorf("another user's lookup = %+v; want id %s", u, fine)
			}
			// Once the fault is gone, the lookup works again.
			b.proxy.Fail("faulty@example.com", cognitolocal.Forward)
			if u := only(t)(b.idp.LookupUsersByEmail(b.ctx, "faulty@example.com")); u.ID != faulty {
				t.Errorf("after clearing the fault: %+v; want id %s", u, faulty)
			}
		})
	}
}

func TestLookupUsersByEmail_SlowAnswerPastDeadlineIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "slow@example.com")
	b.proxy.Fail("slow@example.com", cognitolocal.FaultSlow)

	ctx, cancel := context.WithTimeout(b.ctx, 300*time.Millisecond)
	defer cancel()
	_, err := b.idp.LookupUsersByEmail(ctx, "slow@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable wrapping context.DeadlineExceeded", err)
	}
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 0 || !ipe.Transient() {
		t.Errorf("err = %#v, want a transient IdentityProviderError without status", ipe)
	}
}

func TestLookupUsersByEmail_EndedContextIsTransientAndNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "late@example.com")
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	_, err := b.idp.LookupUsersByEmail(ctx, "late@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable wrapping context.Canceled", err)
	}
	if n := b.proxy.Lookups("late@example.com"); n != 0 {
		t.Errorf("%d requests with a canceled context, want none", n)
	}
}

func TestLookupUsersByEmail_ConcurrentLookupsEachGetTheirUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 8
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = cognitolocal.CreateUser(t, b.admin, b.pool, fmt.Sprintf("user%d@example.com", i))
	}
	var wg sync.WaitGroup
	for round := range 3 {
		for i := range ids {
			wg.Go(func() {
				email := fmt.Sprintf("user%d@example.com", i)
				u, err := b.idp.LookupUsersByEmail(b.ctx, email)
				if err != nil || len(u) != 1 || u[0].ID != ids[i] || u[0].Email != email {
					t.Errorf("round %d: lookup %s = %+v, %v; want id %s", round, email, u, err, ids[i])
				}
			})
		}
	}
	wg.Wait()
}

func TestLookupUsersByEmail_ConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	idp := cognito.New(cognitolocal.NewClient("http://"+addr), "local_pool",
		cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5*time.Millisecond))
	_, err = idp.LookupUsersByEmail(context.Background(), "anyone@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable", err)
	}
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 0 {
		t.Errorf("err = %#v, want status 0", ipe)
	}
}

func TestLookupUsersByEmail_RetriesAreBoundedAndConfigurable(t *testing.T) {
	t.Parallel()
	for _, attempts := range []int{1, 4} {
		b := setup(t, cognito.WithMaxAttempts(attempts))
		b.proxy.Fail("busy@example.com", cognitolocal.Fault503)
		_, err := b.idp.LookupUsersByEmail(b.ctx, "busy@example.com")
		if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
			t.Fatalf("err = %v", err)
		}
		if n := b.proxy.Lookups("busy@example.com"); n != attempts {
			t.Errorf("WithMaxAttempts(%d): %d requests", attempts, n)
		}
	}
}

func TestNewFromConfig_UsesConfigEndpoint(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	sub := cognitolocal.CreateUser(t, emu.Client(), pool, "cfg@example.com")
	cfg := aws.Config{
		Region:       cognitolocal.Region,
		BaseEndpoint: aws.String(emu.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(cognitolocal.AccessKeyID, cognitolocal.SecretAccessKey, ""),
	}
	idp := cognito.NewFromConfig(cfg, pool)
	if idp.UserPoolID() != pool {
		t.Errorf("UserPoolID() = %q", idp.UserPoolID())
	}
	if u := only(t)(idp.LookupUsersByEmail(context.Background(), "cfg@example.com")); u.ID != sub {
		t.Fatalf("lookup = %+v; want id %s", u, sub)
	}
}

func TestLookupUsersByEmail_ReturnsEveryAccountWithTheAddress(t *testing.T) {
	t.Parallel()
	// A pool whose usernames are not emails (UsernameAttributes empty), as
	// Cognito allows: there, several accounts can hold one address. The
	// adapter returns them all, in whatever state; flip.Seeder judges them.
	emu := cognitolocal.SharedPlainUsernames(t)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(t, admin)
	proxy := cognitolocal.NewProxy(t, emu.URL)
	idp := cognito.New(cognitolocal.NewClient(proxy.URL), pool, cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5*time.Millisecond))
	const email = "ada.admin@example.com"
	verified, unverified := cognitolocal.EmailAttributes(email, true), cognitolocal.EmailAttributes(email, false)
	want := map[string]flip.User{
		// Created by the pool's administrator, verified or not.
		"ada-new":        {ID: cognitolocal.CreateUserWith(t, admin, pool, "ada-new", verified...), Status: flip.UserForceChangePassword, EmailVerified: true},
		"ada-unverified": {ID: cognitolocal.CreateUserWith(t, admin, pool, "ada-unverified", unverified...), Status: flip.UserForceChangePassword},
		// Signed up by anyone: UNCONFIRMED, whatever email_verified says
		// (the emulator keeps what the sign-up sent; Cognito would not).
		"mallory": {ID: cognitolocal.SignUp(t, admin, pool, "mallory", verified...), Status: flip.UserUnconfirmed, EmailVerified: true},
		// Signed up, then confirmed by an administrator.
		"ada-signed-up": {ID: cognitolocal.SignUp(t, admin, pool, "ada-signed-up", verified...), Status: flip.UserConfirmed, EmailVerified: true},
		// Created, then given a permanent password.
		"ada-permanent": {ID: cognitolocal.CreateUserWith(t, admin, pool, "ada-permanent", verified...), Status: flip.UserConfirmed, EmailVerified: true},
		"ada-disabled":  {ID: cognitolocal.CreateUserWith(t, admin, pool, "ada-disabled", verified...), Status: flip.UserForceChangePassword, EmailVerified: true},
	}
	cognitolocal.ConfirmSignUp(t, admin, pool, "ada-signed-up")
	cognitolocal.SetPermanentPassword(t, admin, pool, "ada-permanent")
	cognitolocal.DisableUser(t, admin, pool, "ada-disabled")
	cognitolocal.CreateUserNamed(t, admin, pool, "ada-upper", "Ada.Admin@example.com") // the emulator's filter is case-sensitive
	cognitolocal.CreateUserNamed(t, admin, pool, "bob", "bob.viewer@example.com")

	users, err := idp.LookupUsersByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]flip.User{}
	for _, u := range users {
		got[u.Username] = u
	}
	for name, w := range want {
		w.Username, w.Email, w.Enabled = name, email, name != "ada-disabled"
		if got[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got[name], w)
		}
	}
	if len(users) != len(want) {
		t.Errorf("%d accounts, want %d: %+v", len(users), len(want), users)
	}
	if n := proxy.Lookups(email); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
func TestLookupUsersByEmail_UnknownUserPoolIsAConfigurationError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	idp := cognito.New(cognitolocal.NewClient(b.proxy.URL), "eu-west-2_NoSuchPool", cognito.WithMaxAttempts(2))
	_, err := idp.LookupUsersByEmail(b.ctx, "ada.admin@example.com")
	configErrorAfterOneRequest(t, b, err, "user pool id")
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 400 || ipe.Code != "ResourceNotFoundException" {
		t.Errorf("err = %#v, want 400 ResourceNotFoundException", ipe)
	}
}

// configErrorAfterOneRequest fails t unless err is a configuration error
// naming check, from a lookup of ada.admin@example.com sent only once.
func configErrorAfterOneRequest(t *testing.T, b bundle, err error, check string) {
	t.Helper()
	if ce := configError(t, err); !strings.Contains(ce.Check, check) {
		t.Errorf("check %q, want it to name %q", ce.Check, check)
	}
	if n := b.proxy.Lookups("ada.admin@example.com"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestLookupUsersByEmail_RefusedCredentialsAreAConfigurationError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.proxy.Fail("ada.admin@example.com", cognitolocal.FaultUnrecognizedClient)
	_, err := b.idp.LookupUsersByEmail(b.ctx, "ada.admin@example.com")
	configErrorAfterOneRequest(t, b, err, "AWS credentials")
}

func TestWithRateLimit_HoldsConcurrentLookupsOnTheEmulator(t *testing.T) {
	t.Parallel()
	clock := cognito.NewFakeClock(t0)
	b := setup(t, cognito.WithFakeClock(clock))
	const n = 12
	for i := range n {
		cognitolocal.CreateUser(t, b.admin, b.pool, fmt.Sprintf("user%02d@example.com", i))
	}
	clock.GatherWaits(n) // every first attempt; a retry comes after its answer
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := b.idp.LookupUsersByEmail(b.ctx, fmt.Sprintf("user%02d@example.com", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Every attempt, a retry of one the loaded emulator dropped included,
	// takes its turn from the one limiter before it is sent.
	sent := b.proxy.TotalLookups()
	if sent < n {
		t.Errorf("%d requests, want at least %d", sent, n)
	}
	grants := clock.Grants()
	if len(grants) < sent {
		t.Fatalf("%d grants for %d requests: some went without a turn", len(grants), sent)
	}
	checkSpacing(t, grants, cognito.DefaultRateLimit, cognito.DefaultRateBurst)
}

func TestWithRateLimit_ThrottlingFromTheProxyHalvesTheRate(t *testing.T) {
	t.Parallel()
	clock := cognito.NewFakeClock(t0)
	b := setup(t, cognito.WithFakeClock(clock))
	b.proxy.Fail("busy@example.com", cognitolocal.FaultThrottle400)
	_, err := b.idp.LookupUsersByEmail(b.ctx, "busy@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want transient", err)
	}
	// Two throttled attempts (WithMaxAttempts(2)): 10 → 5 → 2.5 a second.
	if r := b.idp.RateAt(clock.Now()); r != cognito.DefaultRateLimit/4 {
		t.Errorf("rate = %v, want %v", r, cognito.DefaultRateLimit/4)
	}
}
