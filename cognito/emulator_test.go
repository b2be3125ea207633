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

func TestLookupUserByEmail_ReturnsSubAndEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := cognitolocal.CreateUser(t, b.admin, b.pool, "ada.admin@example.com")
	bob := cognitolocal.CreateUser(t, b.admin, b.pool, "bob.viewer@example.com")

	u, err := b.idp.LookupUserByEmail(b.ctx, "ada.admin@example.com")
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if u.ID != sub || u.Email != "ada.admin@example.com" || !u.Enabled {
		t.Errorf("got %+v, want id %s, the email, enabled", u, sub)
	}
	if n := b.proxy.Lookups("ada.admin@example.com"); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	if u, err := b.idp.LookupUserByEmail(b.ctx, "bob.viewer@example.com"); err != nil || u.ID != bob || u.Email != "bob.viewer@example.com" || !u.Enabled {
		t.Errorf("bob = %+v, %v; want id %s, the email, enabled", u, err, bob)
	}
	if sub == bob || sub == uuid.Nil {
		t.Errorf("ids %s and %s: want two distinct non-zero ids", sub, bob)
	}
}

func TestLookupUserByEmail_DisabledUserIsFoundNotEnabled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sub := cognitolocal.CreateUser(t, b.admin, b.pool, "gone@example.com")
	cognitolocal.DisableUser(t, b.admin, b.pool, "gone@example.com")

	u, err := b.idp.LookupUserByEmail(b.ctx, "gone@example.com")
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if u.ID != sub || u.Email != "gone@example.com" || u.Enabled {
		t.Errorf("got %+v, want id %s, the email and not enabled", u, sub)
	}
}

func TestLookupUserByEmail_MissingUserIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "someone@example.com")

	_, err := b.idp.LookupUserByEmail(b.ctx, "nobody@example.com")
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

func TestLookupUserByEmail_OnlyTheExactAddressMatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "ada@example.com")
	for _, email := range []string{"da@example.com", "ada@example.co", "ada@example.com.evil.example", "xada@example.com"} {
		_, err := b.idp.LookupUserByEmail(b.ctx, email)
		wantNotFound(t, err)
	}
}

func TestLookupUserByEmail_InvalidEmailIsNeverSent(t *testing.T) {
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
		_, err := b.idp.LookupUserByEmail(b.ctx, email)
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

func TestLookupUserByEmail_ClassifiesFaults(t *testing.T) {
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

			_, err := b.idp.LookupUserByEmail(b.ctx, "faulty@example.com")
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
			if u, err := b.idp.LookupUserByEmail(b.ctx, "fine@example.com"); err != nil || u.ID != fine {
				t.Errorf("another user's lookup = %+v, %v; want id %s", u, err, fine)
			}
			// Once the fault is gone, the lookup works again.
			b.proxy.Fail("faulty@example.com", cognitolocal.Forward)
			if u, err := b.idp.LookupUserByEmail(b.ctx, "faulty@example.com"); err != nil || u.ID != faulty {
				t.Errorf("after clearing the fault: %+v, %v; want id %s", u, err, faulty)
			}
		})
	}
}

func TestLookupUserByEmail_SlowAnswerPastDeadlineIsTransient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "slow@example.com")
	b.proxy.Fail("slow@example.com", cognitolocal.FaultSlow)

	ctx, cancel := context.WithTimeout(b.ctx, 300*time.Millisecond)
	defer cancel()
	_, err := b.idp.LookupUserByEmail(ctx, "slow@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable wrapping context.DeadlineExceeded", err)
	}
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 0 || !ipe.Transient() {
		t.Errorf("err = %#v, want a transient IdentityProviderError without status", ipe)
	}
}

func TestLookupUserByEmail_EndedContextIsTransientAndNotSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cognitolocal.CreateUser(t, b.admin, b.pool, "late@example.com")
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	_, err := b.idp.LookupUserByEmail(ctx, "late@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable wrapping context.Canceled", err)
	}
	if n := b.proxy.Lookups("late@example.com"); n != 0 {
		t.Errorf("%d requests with a canceled context, want none", n)
	}
}

func TestLookupUserByEmail_ConcurrentLookupsEachGetTheirUser(t *testing.T) {
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
				u, err := b.idp.LookupUserByEmail(b.ctx, email)
				if err != nil || u.ID != ids[i] || u.Email != email {
					t.Errorf("round %d: lookup %s = %+v, %v; want id %s", round, email, u, err, ids[i])
				}
			})
		}
	}
	wg.Wait()
}

func TestLookupUserByEmail_ConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	idp := cognito.New(cognitolocal.NewClient("http://"+addr), "local_pool",
		cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5*time.Millisecond))
	_, err = idp.LookupUserByEmail(context.Background(), "anyone@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want ErrIdentityProviderUnavailable", err)
	}
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 0 {
		t.Errorf("err = %#v, want status 0", ipe)
	}
}

func TestLookupUserByEmail_RetriesAreBoundedAndConfigurable(t *testing.T) {
	t.Parallel()
	for _, attempts := range []int{1, 4} {
		b := setup(t, cognito.WithMaxAttempts(attempts))
		b.proxy.Fail("busy@example.com", cognitolocal.Fault503)
		_, err := b.idp.LookupUserByEmail(b.ctx, "busy@example.com")
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
	u, err := idp.LookupUserByEmail(context.Background(), "cfg@example.com")
	if err != nil || u.ID != sub {
		t.Fatalf("lookup = %+v, %v; want id %s", u, err, sub)
	}
}

func TestLookupUserByEmail_TwoAccountsWithOneEmailAreAmbiguous(t *testing.T) {
	t.Parallel()
	// A pool whose usernames are not emails (UsernameAttributes empty), as
	// Cognito allows: there, two accounts can hold one address.
	emu := cognitolocal.SharedPlainUsernames(t)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(t, admin)
	proxy := cognitolocal.NewProxy(t, emu.URL)
	idp := cognito.New(cognitolocal.NewClient(proxy.URL), pool, cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5*time.Millisecond))
	cognitolocal.CreateUserNamed(t, admin, pool, "ada-old", "ada.admin@example.com")
	cognitolocal.CreateUserNamed(t, admin, pool, "ada-new", "ada.admin@example.com")
	cognitolocal.CreateUserNamed(t, admin, pool, "ada-upper", "Ada.Admin@example.com")
	bob := cognitolocal.CreateUserNamed(t, admin, pool, "bob", "bob.viewer@example.com")

	_, err := idp.LookupUserByEmail(t.Context(), "ada.admin@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Code != flip.CodeAmbiguousEmail || ipe.Transient() ||
		!errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want a definitive %s", err, flip.CodeAmbiguousEmail)
	}
	// Exactly the two holders of the address: the emulator ignores Limit,
	// and the other spelling is another address.
	for _, want := range []string{`"ada.admin@example.com" belongs to 2 accounts`, `"ada-old"`, `"ada-new"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "ada-upper") {
		t.Errorf("err = %q counts the account with another spelling", err)
	}
	if n := proxy.Lookups("ada.admin@example.com"); n != 1 {
		t.Errorf("%d requests, want 1 (not retried)", n)
	}
	// A username other than the email is no obstacle to a lookup.
	if u, err := idp.LookupUserByEmail(t.Context(), "bob.viewer@example.com"); err != nil || u.ID != bob {
		t.Errorf("bob: %+v, %v; want id %s", u, err, bob)
	}
	// The other spelling is one account of its own.
	if _, err := idp.LookupUserByEmail(t.Context(), "Ada.Admin@example.com"); err != nil {
		t.Errorf("Ada.Admin: %v", err)
	}
}

func TestLookupUserByEmail_UnknownUserPoolIsAConfigurationError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	idp := cognito.New(cognitolocal.NewClient(b.proxy.URL), "eu-west-2_NoSuchPool", cognito.WithMaxAttempts(2))
	_, err := idp.LookupUserByEmail(b.ctx, "ada.admin@example.com")
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

func TestLookupUserByEmail_RefusedCredentialsAreAConfigurationError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.proxy.Fail("ada.admin@example.com", cognitolocal.FaultUnrecognizedClient)
	_, err := b.idp.LookupUserByEmail(b.ctx, "ada.admin@example.com")
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
			if _, err := b.idp.LookupUserByEmail(b.ctx, fmt.Sprintf("user%02d@example.com", i)); err != nil {
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
	_, err := b.idp.LookupUserByEmail(b.ctx, "busy@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want transient", err)
	}
	// Two throttled attempts (WithMaxAttempts(2)): 10 → 5 → 2.5 a second.
	if r := b.idp.RateAt(clock.Now()); r != cognito.DefaultRateLimit/4 {
		t.Errorf("rate = %v, want %v", r, cognito.DefaultRateLimit/4)
	}
}
