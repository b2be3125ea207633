package fliptest_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

func TestIdentityProvider_FailNextFailsExactlyOneLookup(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	ada := idp.AddUser("ada@example.com")
	boom := errors.New("boom")
	idp.FailNext(boom)
	idp.FailNextStatus(http.StatusServiceUnavailable, "")

	if _, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); err != boom {
		t.Fatalf("first lookup: err = %v, want boom as it is", err)
	}
	_, err := idp.LookupUserByEmail(t.Context(), "ada@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.As(err, &ipe) || ipe.Status != 503 {
		t.Fatalf("second lookup: err = %v, want a transient 503", err)
	}
	if u, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); err != nil || u != ada {
		t.Fatalf("third lookup = %+v, %v; want %+v", u, err, ada)
	}
	if n := idp.Calls(); n != 3 {
		t.Errorf("Calls() = %d, want 3", n)
	}
}

func TestIdentityProvider_InvalidEmailUsesUpNoFaultAndIsNotCounted(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada@example.com")
	idp.FailNextStatus(http.StatusForbidden, "NotAuthorizedException")
	if _, err := idp.LookupUserByEmail(t.Context(), `a"b@example.com`); !errors.Is(err, flip.ErrInvalidIdentifier) {
		t.Fatalf("err = %v, want ErrInvalidIdentifier", err)
	}
	if n := idp.Calls(); n != 0 {
		t.Errorf("Calls() = %d after an invalid email, want 0", n)
	}
	_, err := idp.LookupUserByEmail(t.Context(), "ada@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 403 || ipe.Transient() {
		t.Fatalf("err = %v, want the queued definitive 403", err)
	}
}

func TestIdentityProvider_FailEmailFailsOnlyThatEmailUntilCleared(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	ada, bob := idp.AddUser("ada@example.com"), idp.AddUser("bob@example.com")
	idp.FailEmail("ada@example.com", fliptest.IdentityError(http.StatusBadRequest, "InvalidParameterException"))
	for range 2 {
		if _, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
			t.Fatalf("err = %v, want a definitive failure", err)
		}
	}
	if u, err := idp.LookupUserByEmail(t.Context(), "bob@example.com"); err != nil || u != bob {
		t.Fatalf("bob = %+v, %v", u, err)
	}
	idp.FailEmail("ada@example.com", nil)
	if u, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); err != nil || u != ada {
		t.Fatalf("after clearing: %+v, %v", u, err)
	}
	if a, b := idp.Lookups("ada@example.com"), idp.Lookups("bob@example.com"); a != 3 || b != 1 {
		t.Errorf("Lookups = %d and %d, want 3 and 1", a, b)
	}
}

func TestIdentityProvider_ReturnedErrorsAreCopies(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	idp.FailEmail("ada@example.com", fliptest.IdentityError(http.StatusInternalServerError, "InternalErrorException"))
	_, err := idp.LookupUserByEmail(t.Context(), "ada@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) {
		t.Fatal(err)
	}
	ipe.Status = 418
	_, err = idp.LookupUserByEmail(t.Context(), "ada@example.com")
	if !errors.As(err, &ipe) || ipe.Status != 500 {
		t.Errorf("a caller's change leaked into the next lookup: %v", err)
	}
}

func TestIdentityProvider_OnCallHookCanHangUntilTheDeadline(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada@example.com")
	var mu sync.Mutex
	var seen []string
	idp.OnCall(func(ctx context.Context, email string) error {
		mu.Lock()
		seen = append(seen, email)
		mu.Unlock()
		<-ctx.Done()
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := idp.LookupUserByEmail(ctx, "ada@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a transient timeout", err)
	}
	idp.OnCall(func(context.Context, string) error { return flip.ErrUserNotFound })
	if _, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); !errors.Is(err, flip.ErrUserNotFound) {
		t.Fatalf("err = %v, want the hook's error", err)
	}
	idp.OnCall(nil)
	if _, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); err != nil {
		t.Fatalf("after removing the hook: %v", err)
	}
	if len(seen) != 1 || seen[0] != "ada@example.com" {
		t.Errorf("hook saw %q", seen)
	}
}

func TestIdentityProvider_UsersCanBeDisabledEnabledAndRemoved(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	id := uuid.MustParse("3f1c2b6e-6a0e-4d7e-9a51-2f0d8c1b7e11")
	if u := idp.AddUserWithID("ada@example.com", id); u.ID != id || !u.Enabled {
		t.Fatalf("AddUserWithID = %+v", u)
	}
	lookup := func() (flip.User, error) { return idp.LookupUserByEmail(t.Context(), "ada@example.com") }
	if !idp.Disable("ada@example.com") {
		t.Fatal("Disable found no user")
	}
	if u, err := lookup(); err != nil || u.Enabled || u.ID != id {
		t.Errorf("disabled: %+v, %v", u, err)
	}
	idp.Enable("ada@example.com")
	if u, err := lookup(); err != nil || !u.Enabled {
		t.Errorf("enabled: %+v, %v", u, err)
	}
	if !idp.RemoveUser("ada@example.com") || idp.Disable("ada@example.com") {
		t.Error("RemoveUser or Disable reported the wrong presence")
	}
	if _, err := lookup(); !errors.Is(err, flip.ErrUserNotFound) {
		t.Errorf("removed: err = %v", err)
	}
}

func TestIdentityError_ClassifiesAsTheCognitoAdapter(t *testing.T) {
	t.Parallel()
	// The cognito package's tests compare these rules with the adapter's
	// over a wider grid; this table documents them.
	cases := []struct {
		status int
		code   string
		want   error
	}{
		{0, "", flip.ErrIdentityProviderUnavailable},
		{200, "", flip.ErrIdentityProviderUnavailable},
		{400, "TooManyRequestsException", flip.ErrIdentityProviderUnavailable},
		{400, "ThrottlingException", flip.ErrIdentityProviderUnavailable},
		{429, "", flip.ErrIdentityProviderUnavailable},
		{500, "InternalErrorException", flip.ErrIdentityProviderUnavailable},
		{502, "", flip.ErrIdentityProviderUnavailable},
		{503, "ServiceUnavailableException", flip.ErrIdentityProviderUnavailable},
		{400, "UserNotFoundException", flip.ErrUserNotFound},
		{400, "InvalidParameterException", flip.ErrIdentityProvider},
		{401, "", flip.ErrIdentityProvider},
		{403, "NotAuthorizedException", flip.ErrIdentityProvider},
		{404, "", flip.ErrIdentityProvider},
		{301, "", flip.ErrIdentityProvider},
	}
	for _, c := range cases {
		e := fliptest.IdentityError(c.status, c.code)
		if e.Kind != c.want || e.Status != c.status || e.Code != c.code || e.Op != "ListUsers" || e.Err == nil {
			t.Errorf("IdentityError(%d, %q) = %#v, want kind %v", c.status, c.code, e, c.want)
		}
		if e.Transient() != (c.want == flip.ErrIdentityProviderUnavailable) {
			t.Errorf("IdentityError(%d, %q).Transient() = %v", c.status, c.code, e.Transient())
		}
	}
}

func TestIdentityFault_DescribesItsError(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		f         fliptest.IdentityFault
		status    int
		transient bool
	}{
		{fliptest.FaultInternalError, 500, true},
		{fliptest.FaultThrottled, 400, true},
		{fliptest.FaultConnectionDropped, 0, true},
		{fliptest.FaultHang, 0, true},
		{fliptest.FaultNotAuthorized, 403, false},
	} {
		if e := c.f.Err(); e.Status != c.status || e.Transient() != c.transient || c.f.Transient() != c.transient {
			t.Errorf("%+v.Err() = %#v, want status %d transient %v", c.f, e, c.status, c.transient)
		}
	}
}

func TestIdentityProvider_InjectFaultZeroValueClears(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada@example.com")
	idp.InjectFault("ada@example.com", fliptest.FaultConnectionDropped)
	_, err := idp.LookupUserByEmail(t.Context(), "ada@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || ipe.Status != 0 || !ipe.Transient() {
		t.Fatalf("err = %v, want a transient failure without status", err)
	}
	idp.InjectFault("ada@example.com", fliptest.IdentityFault{})
	if _, err := idp.LookupUserByEmail(t.Context(), "ada@example.com"); err != nil {
		t.Fatalf("after clearing: %v", err)
	}
}

func TestUserStore_FailNextAndOnCall(t *testing.T) {
	t.Parallel()
	s := fliptest.NewUserStore()
	boom := errors.New("connection reset")
	s.FailNext(fliptest.MethodEnsureRoles, boom)
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada@example.com")
	seeder := flip.NewSeeder(s, []flip.MainUser{{Email: "ada@example.com", Role: "Admin", Name: "Ada"}})
	if _, err := seeder.SeedMainUsers(t.Context(), nil, idp); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the injected EnsureRoles failure", err)
	}
	s.OnCall(func(_ context.Context, m fliptest.Method) error {
		if m == fliptest.MethodApplyMainUser {
			return boom
		}
		return nil
	})
	_, err := seeder.SeedMainUsers(t.Context(), nil, idp)
	var sue *flip.SeedUserError
	if !errors.Is(err, boom) || !errors.As(err, &sue) || sue.Step != "write" {
		t.Fatalf("err = %v, want a write failure", err)
	}
	s.OnCall(nil)
	report, err := seeder.SeedMainUsers(t.Context(), nil, idp)
	if err != nil || report.Count(flip.SeedCreated) != 1 {
		t.Fatalf("report = %v, %v", report, err)
	}
	if len(s.Profiles()) != 1 || len(s.Grants(uuid.Nil)) != 1 || len(s.Roles()) != 4 {
		t.Errorf("state: %d profiles, %d grants, %d roles", len(s.Profiles()), len(s.Grants(uuid.Nil)), len(s.Roles()))
	}
	if n := s.Calls(fliptest.MethodEnsureRoles); n != 3 {
		t.Errorf("EnsureRoles called %d times, want 3", n)
	}
}

func TestUserStore_GrantRefusesAnUnknownRoleAndADuplicate(t *testing.T) {
	t.Parallel()
	s := fliptest.NewUserStore()
	g := fliptest.RoleGrant{UserID: uuid.New(), RoleID: flip.RoleViewer.ID}
	if err := s.Grant(g); err == nil {
		t.Error("granted a role the store does not hold")
	}
	if err := s.EnsureRoles(t.Context(), nil, flip.WellKnownRoles(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(g); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(g); err == nil {
		t.Error("granted the same role twice")
	}
}
