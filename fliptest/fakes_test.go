package fliptest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

func TestKeyMinter_IsDeterministicAndWellFormed(t *testing.T) {
	t.Parallel()
	a, b, other := &fliptest.KeyMinter{Seed: "seed"}, &fliptest.KeyMinter{Seed: "seed"}, &fliptest.KeyMinter{Seed: "other"}
	ref := &fliptest.KeyMinter{Seed: "seed", Format: flip.ReferenceKeys}
	seen := map[string]bool{}
	for _, kind := range []flip.KeyKind{flip.TrustAPIKey, flip.InternalServiceKey, flip.TrustAPIKey} {
		ka, _ := a.MintKey(kind)
		kb, _ := b.MintKey(kind)
		ko, _ := other.MintKey(kind)
		kr, _ := ref.MintKey(kind)
		if ka != kb || ka == ko || seen[ka] {
			t.Errorf("%s: same seed gave %v, other seed %v, repeat %v", kind, ka == kb, ka == ko, seen[ka])
		}
		seen[ka] = true
		for _, k := range []string{ka, kr} {
			if err := flip.CheckKey(kind, k); err != nil {
				t.Errorf("%s %q: %v", kind, k, err)
			}
		}
		if len(kr) != flip.ReferenceKeyLength {
			t.Errorf("reference key %q has length %d", kr, len(kr))
		}
	}
}

func TestKeyMinter_MintKeyFnAnswersInstead(t *testing.T) {
	t.Parallel()
	boom := errors.New("no entropy")
	var kinds []flip.KeyKind
	m := &fliptest.KeyMinter{MintKeyFn: func(kind flip.KeyKind) (string, error) {
		kinds = append(kinds, kind)
		return "", boom
	}}
	if _, err := m.MintKey(flip.TrustAPIKey); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want boom", err)
	}
	m.MintKeyFn = nil
	got, _ := m.MintKey(flip.TrustAPIKey)
	want, _ := (&fliptest.KeyMinter{}).MintKey(flip.TrustAPIKey)
	if got != want || len(kinds) != 1 || kinds[0] != flip.TrustAPIKey {
		t.Errorf("after MintKeyFn: key %q (want %q, the first of the sequence), calls %v", got, want, kinds)
	}
}

func TestIdentityProvider_AnswersAsTheAdapterDoes(t *testing.T) {
	t.Parallel()
	var idp fliptest.IdentityProvider // the zero value is ready
	ctx := t.Context()
	first := idp.AddUser("ada@example.com")
	ada := idp.AddUser("ada@example.com") // replaces
	if got, err := idp.LookupUsersByEmail(ctx, "ada@example.com"); err != nil || len(got) != 1 || got[0] != ada || ada == first || !ada.ProvesAddress() {
		t.Errorf("lookup = %+v, %v; want only %+v, which proves its address", got, err, ada)
	}
	// Like a pool created in the console: another spelling finds her.
	if got, err := idp.LookupUsersByEmail(ctx, "Ada@Example.com"); err != nil || len(got) != 1 || got[0] != ada {
		t.Errorf("another spelling = %+v, %v; want %+v", got, err, ada)
	}
	_, err := idp.LookupUsersByEmail(ctx, "bob@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.Is(err, flip.ErrUserNotFound) || !errors.As(err, &ipe) || ipe.Status != http.StatusOK {
		t.Errorf("unknown address: %v, want ErrUserNotFound on a 200 answer", err)
	}
	if _, err := idp.LookupUsersByEmail(ctx, `a"b@example.com`); err == nil || err.Error() != flip.ValidateEmail(`a"b@example.com`).Error() {
		t.Errorf("invalid address: %v, want flip.ValidateEmail's error", err)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := idp.LookupUsersByEmail(ended, "ada@example.com"); !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: %v, want a transient error wrapping context.Canceled", err)
	}
}

func TestIdentityProvider_AddAccountHoldsAccountsThatDoNotProveTheirAddress(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	impostor := idp.AddAccount(flip.User{Email: "ada@example.com", Enabled: true, EmailVerified: true, Status: flip.UserUnconfirmed})
	if impostor.ID == uuid.Nil || impostor.ProvesAddress() {
		t.Errorf("impostor = %+v, want a new id and an account that does not prove its address", impostor)
	}
	ada := idp.AddUser("ada@example.com") // replaces accounts with exactly this email
	upper := idp.AddAccount(flip.User{ID: uuid.New(), Email: "ADA@example.com", EmailVerified: true, Enabled: true, Status: flip.UserConfirmed})
	late := idp.AddAccount(flip.User{Email: "ada@example.com", Status: flip.UserForceChangePassword, Enabled: true})
	got, err := idp.LookupUsersByEmail(t.Context(), "ada@example.com")
	if err != nil || !slices.Equal(got, []flip.User{ada, upper, late}) {
		t.Errorf("lookup = %+v, %v; want every account holding the address, in order: %+v", got, err, []flip.User{ada, upper, late})
	}
}

func TestIdentityProvider_FailEmailFailsOnlyThatEmailUntilCleared(t *testing.T) {
	t.Parallel()
	idp := fliptest.NewIdentityProvider()
	ada, bob := idp.AddUser("ada@example.com"), idp.AddUser("bob@example.com")
	refused := &flip.IdentityProviderError{Op: "ListUsers", Status: http.StatusForbidden, Code: "NotAuthorizedException"}
	idp.FailEmail("ada@example.com", refused)
	for range 2 {
		if _, err := idp.LookupUsersByEmail(t.Context(), "ada@example.com"); err != refused {
			t.Fatalf("err = %v, want the injected error", err)
		}
	}
	if got, err := idp.LookupUsersByEmail(t.Context(), "bob@example.com"); err != nil || len(got) != 1 || got[0] != bob {
		t.Fatalf("bob = %+v, %v", got, err)
	}
	idp.FailEmail("ada@example.com", nil)
	if got, err := idp.LookupUsersByEmail(t.Context(), "ada@example.com"); err != nil || len(got) != 1 || got[0] != ada {
		t.Fatalf("after clearing: %+v, %v", got, err)
	}
}
