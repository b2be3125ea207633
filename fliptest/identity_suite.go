package fliptest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// IdentityHarness adapts one flip.IdentityProvider, and the user directory
// behind it, to TestIdentityProvider. FakeIdentityHarness builds the one
// for IdentityProvider; the cognito package's tests build one for its
// Provider on the cognito-local emulator behind a fault-injecting proxy.
type IdentityHarness struct {
	// Provider is the implementation under test.
	Provider flip.IdentityProvider
	// AddUser creates an enabled user with this email in the directory and
	// returns the id lookups must report.
	AddUser func(ctx context.Context, email string) (uuid.UUID, error)
	// DisableUser disables the user with this email.
	DisableUser func(ctx context.Context, email string) error
	// Fail makes every lookup of email that reaches the directory fail as
	// f describes, from now on; the zero IdentityFault clears it. It
	// returns an error for a fault the harness cannot produce.
	Fail func(email string, f IdentityFault) error
	// Lookups returns how many requests for email reached the directory,
	// retries included.
	Lookups func(email string) int
	// TotalLookups returns how many lookup requests reached the directory.
	TotalLookups func() int
	// MaxAttempts is how many requests one lookup makes when every one of
	// them fails transiently: the provider's bounded retries, the first
	// attempt included. 0 means 1 (no retries).
	MaxAttempts int
}

// FakeIdentityHarness returns an IdentityHarness over a new
// IdentityProvider.
func FakeIdentityHarness(t testing.TB) IdentityHarness {
	t.Helper()
	p := NewIdentityProvider()
	return IdentityHarness{
		Provider:    p,
		AddUser:     func(_ context.Context, email string) (uuid.UUID, error) { return p.AddUser(email).ID, nil },
		DisableUser: func(_ context.Context, email string) error { return disableErr(p.Disable(email), email) },
		Fail: func(email string, f IdentityFault) error {
			p.InjectFault(email, f)
			return nil
		},
		Lookups:      p.Lookups,
		TotalLookups: p.Calls,
		MaxAttempts:  1,
	}
}

func disableErr(found bool, email string) error {
	if !found {
		return fmt.Errorf("fliptest: no user %q to disable", email)
	}
	return nil
}

// TestIdentityProvider runs flip's identity-provider behaviour suite
// against the provider a harness wraps, each case in a parallel subtest
// with a harness of its own: found, disabled and missing users, invalid
// addresses that are never sent, transient and definitive failures with
// their HTTP status, bounded retries, and the caller's deadline. This
// package runs it against IdentityProvider and the cognito package runs it
// against its adapter on the emulator, so the fake answers as Cognito
// does. Run it against your own flip.IdentityProvider the same way:
//
//	func TestMyProvider(t *testing.T) {
//		t.Parallel()
//		fliptest.TestIdentityProvider(t, func(t *testing.T) fliptest.IdentityHarness { return myHarness(t) })
//	}
func TestIdentityProvider(t *testing.T, newHarness func(t *testing.T) IdentityHarness) {
	t.Helper()
	for _, c := range identityCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newIdentitySuite(t, newHarness(t)))
		})
	}
	for _, c := range identityFaultCases {
		t.Run("Fault/"+c.name, func(t *testing.T) {
			t.Parallel()
			runIdentityFault(t, newIdentitySuite(t, newHarness(t)), c.fault, c.transient)
		})
	}
}

// identitySuite is one case's harness plus helpers that fail the test on
// setup errors.
type identitySuite struct {
	IdentityHarness
	t   *testing.T
	ctx context.Context
}

func newIdentitySuite(t *testing.T, h IdentityHarness) *identitySuite {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	if h.MaxAttempts < 1 {
		h.MaxAttempts = 1
	}
	return &identitySuite{IdentityHarness: h, t: t, ctx: ctx}
}

func (s *identitySuite) addUser(email string) uuid.UUID {
	s.t.Helper()
	id, err := s.AddUser(s.ctx, email)
	if err != nil {
		s.t.Fatalf("add user %s: %v", email, err)
	}
	return id
}

func (s *identitySuite) fail(email string, f IdentityFault) {
	s.t.Helper()
	if err := s.Fail(email, f); err != nil {
		s.t.Fatalf("inject %+v for %s: %v", f, email, err)
	}
}

// wantFound fails unless email is found with id and enabled.
func (s *identitySuite) wantFound(email string, id uuid.UUID, enabled bool) {
	s.t.Helper()
	u, err := s.Provider.LookupUserByEmail(s.ctx, email)
	if err != nil {
		s.t.Fatalf("lookup %s: %v", email, err)
	}
	if u.ID != id || u.Email != email || u.Enabled != enabled {
		s.t.Errorf("lookup %s = %+v, want id %s, that email, enabled %v", email, u, id, enabled)
	}
}

// wantNotFound fails unless looking email up is ErrUserNotFound and
// nothing else.
func (s *identitySuite) wantNotFound(email string) {
	s.t.Helper()
	_, err := s.Provider.LookupUserByEmail(s.ctx, email)
	if !errors.Is(err, flip.ErrUserNotFound) || !errors.Is(err, flip.ErrIdentityProvider) ||
		errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrInvalidIdentifier) {
		s.t.Errorf("lookup %s: err = %v, want ErrUserNotFound only", email, err)
	}
}

// invalidEmails are addresses every provider must refuse before sending
// anything: the first three could change the meaning of Cognito's filter.
var invalidEmails = []string{
	`a"b@example.com`,
	`a\b@example.com`,
	`x" or email = "y@example.com`,
	``,
	` padded@example.com`,
	`no-at-sign.example.com`,
	"new\nline@example.com",
	"two@at@example.com",
}

var identityCases = []struct {
	name string
	run  func(t *testing.T, s *identitySuite)
}{
	{"FoundUserHasIDEmailAndEnabled", func(t *testing.T, s *identitySuite) {
		ada := s.addUser("ada.admin@example.com")
		bob := s.addUser("bob.viewer@example.com")
		s.wantFound("ada.admin@example.com", ada, true)
		s.wantFound("bob.viewer@example.com", bob, true)
		if ada == bob || ada == uuid.Nil {
			t.Errorf("ids %s and %s: want two distinct non-zero ids", ada, bob)
		}
		if n := s.Lookups("ada.admin@example.com"); n != 1 {
			t.Errorf("%d requests for one successful lookup, want 1", n)
		}
	}},
	{"DisabledUserIsFoundNotEnabled", func(t *testing.T, s *identitySuite) {
		id := s.addUser("gone@example.com")
		if err := s.DisableUser(s.ctx, "gone@example.com"); err != nil {
			t.Fatal(err)
		}
		s.wantFound("gone@example.com", id, false)
	}},
	{"MissingUserIsNotFoundAndNotRetried", func(t *testing.T, s *identitySuite) {
		s.addUser("someone@example.com")
		s.wantNotFound("nobody@example.com")
		if n := s.Lookups("nobody@example.com"); n != 1 {
			t.Errorf("%d requests, want 1 (not found is an answer, not a failure)", n)
		}
	}},
	{"OnlyTheExactAddressMatches", func(t *testing.T, s *identitySuite) {
		s.addUser("ada@example.com")
		for _, email := range []string{"da@example.com", "ada@example.co", "ada@example.com.evil.example", "xada@example.com"} {
			s.wantNotFound(email)
		}
	}},
	{"InvalidEmailIsRefusedAndNeverSent", func(t *testing.T, s *identitySuite) {
		s.addUser("someone@example.com")
		for _, email := range invalidEmails {
			_, err := s.Provider.LookupUserByEmail(s.ctx, email)
			if !errors.Is(err, flip.ErrInvalidIdentifier) || !errors.Is(err, flip.ErrIdentityProvider) ||
				errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrUserNotFound) {
				t.Errorf("%q: err = %v, want ErrInvalidIdentifier", email, err)
			}
			if want := flip.ValidateEmail(email); err == nil || want == nil || err.Error() != want.Error() {
				t.Errorf("%q: err = %v, want exactly flip.ValidateEmail's %v", email, err, want)
			}
		}
		if n := s.TotalLookups(); n != 0 {
			t.Errorf("%d lookups reached the directory, want none", n)
		}
	}},
	{"DeadlineEndsAHangingLookup", func(t *testing.T, s *identitySuite) {
		s.addUser("slow@example.com")
		s.fail("slow@example.com", FaultHang)
		ctx, cancel := context.WithTimeout(s.ctx, 300*time.Millisecond)
		defer cancel()
		_, err := s.Provider.LookupUserByEmail(ctx, "slow@example.com")
		if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrIdentityProviderUnavailable wrapping context.DeadlineExceeded", err)
		}
		var ipe *flip.IdentityProviderError
		if !errors.As(err, &ipe) || ipe.Status != 0 || !ipe.Transient() {
			t.Errorf("err = %#v, want a transient IdentityProviderError without status", ipe)
		}
	}},
	{"EndedContextIsTransientAndNotSent", func(t *testing.T, s *identitySuite) {
		s.addUser("late@example.com")
		ctx, cancel := context.WithCancel(s.ctx)
		cancel()
		_, err := s.Provider.LookupUserByEmail(ctx, "late@example.com")
		if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want ErrIdentityProviderUnavailable wrapping context.Canceled", err)
		}
		if n := s.Lookups("late@example.com"); n != 0 {
			t.Errorf("%d requests with a canceled context, want none", n)
		}
	}},
	{"ConcurrentLookupsEachGetTheirUser", func(t *testing.T, s *identitySuite) {
		const n = 8
		ids := make([]uuid.UUID, n)
		for i := range ids {
			ids[i] = s.addUser(fmt.Sprintf("user%d@example.com", i))
		}
		var wg sync.WaitGroup
		for round := range 3 {
			for i := range ids {
				wg.Go(func() {
					email := fmt.Sprintf("user%d@example.com", i)
					u, err := s.Provider.LookupUserByEmail(s.ctx, email)
					if err != nil || u.ID != ids[i] || u.Email != email {
						t.Errorf("round %d: lookup %s = %+v, %v; want id %s", round, email, u, err, ids[i])
					}
				})
			}
		}
		wg.Wait()
	}},
}

var identityFaultCases = []struct {
	name      string
	fault     IdentityFault
	transient bool
}{
	{"500", FaultInternalError, true},
	{"503", FaultServiceUnavailable, true},
	{"429", FaultTooManyRequests, true},
	{"400Throttled", FaultThrottled, true},
	{"502WithoutCode", FaultBadGatewayHTML, true},
	{"ConnectionDropped", FaultConnectionDropped, true},
	{"400", FaultInvalidParameter, false},
	{"403", FaultNotAuthorized, false},
}

// runIdentityFault checks one fault: its class and status, how many
// requests it cost, that it touches no other user, and that clearing it
// restores the lookup.
func runIdentityFault(t *testing.T, s *identitySuite, f IdentityFault, transient bool) {
	if f.Transient() != transient {
		t.Fatalf("IdentityFault%+v.Transient() = %v, want %v", f, f.Transient(), transient)
	}
	faulty := s.addUser("faulty@example.com")
	fine := s.addUser("fine@example.com")
	s.fail("faulty@example.com", f)

	_, err := s.Provider.LookupUserByEmail(s.ctx, "faulty@example.com")
	if err == nil {
		t.Fatal("lookup succeeded")
	}
	if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) != transient ||
		errors.Is(err, flip.ErrUserNotFound) || errors.Is(err, flip.ErrInvalidIdentifier) {
		t.Errorf("err = %v; want ErrIdentityProvider with transient=%v", err, transient)
	}
	var ipe *flip.IdentityProviderError
	wantStatus := f.Status
	if f.NoAnswer {
		wantStatus = 0
	}
	if !errors.As(err, &ipe) {
		t.Fatalf("err = %v, want a *flip.IdentityProviderError", err)
	}
	if ipe.Status != wantStatus || ipe.Code != f.Code || ipe.Transient() != transient {
		t.Errorf("err = status %d code %q transient %v; want %d %q %v", ipe.Status, ipe.Code, ipe.Transient(), wantStatus, f.Code, transient)
	}
	want := 1
	if transient {
		want = s.MaxAttempts
	}
	if n := s.Lookups("faulty@example.com"); n != want {
		t.Errorf("%d requests, want %d", n, want)
	}

	s.wantFound("fine@example.com", fine, true)
	s.fail("faulty@example.com", IdentityFault{})
	s.wantFound("faulty@example.com", faulty, true)
}
