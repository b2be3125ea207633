package flip_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
)

func TestValidateEmail_AcceptsPlainAddresses(t *testing.T) {
	t.Parallel()
	for _, email := range []string{"ada.admin@example.com", "a+tag@sub.example.com", "ünï@example.com", "x@y"} {
		if err := flip.ValidateEmail(email); err != nil {
			t.Errorf("%q: %v", email, err)
		}
	}
}

func TestValidateEmail_RefusesWhatCouldChangeAFilter(t *testing.T) {
	t.Parallel()
	for _, email := range []string{
		"", `a"b@example.com`, `a\b@example.com`, `x" or email = "y@example.com`,
		" ada@example.com", "ada@example.com ", "a da@example.com", "ada\x00@example.com", "ada\n@example.com",
		"ada\u200b@example.com", "ada.example.com", "@example.com", "ada@", "a@b@example.com",
		"\xff@example.com", strings.Repeat("a", 250) + "@example.com",
	} {
		err := flip.ValidateEmail(email)
		if !errors.Is(err, flip.ErrInvalidIdentifier) || !errors.Is(err, flip.ErrIdentityProvider) {
			t.Errorf("%q: err = %v, want ErrInvalidIdentifier", email, err)
		}
	}
}

func TestIdentityProviderError_MatchesItsKindAndCause(t *testing.T) {
	t.Parallel()
	cause := errors.New("sdk said no")
	transient := &flip.IdentityProviderError{Op: "ListUsers", Status: 503, Code: "ServiceUnavailableException",
		Kind: flip.ErrIdentityProviderUnavailable, Err: cause}
	wrapped := errors.Join(errors.New("context"), transient)
	if !errors.Is(wrapped, flip.ErrIdentityProviderUnavailable) || !errors.Is(wrapped, flip.ErrIdentityProvider) ||
		!errors.Is(wrapped, cause) || errors.Is(wrapped, flip.ErrUserNotFound) {
		t.Errorf("errors.Is does not match kind and cause: %v", wrapped)
	}
	var ipe *flip.IdentityProviderError
	if !errors.As(wrapped, &ipe) || ipe.Status != 503 || !ipe.Transient() {
		t.Errorf("errors.As = %#v", ipe)
	}
	if got := transient.Error(); !strings.Contains(got, "HTTP 503") || !strings.Contains(got, "ServiceUnavailableException") || !strings.Contains(got, "sdk said no") {
		t.Errorf("Error() = %q", got)
	}

	definitive := &flip.IdentityProviderError{Status: 403}
	if definitive.Transient() || !errors.Is(definitive, flip.ErrIdentityProvider) || errors.Is(definitive, flip.ErrIdentityProviderUnavailable) {
		t.Errorf("a zero Kind must be a definitive ErrIdentityProvider: %v", definitive)
	}
}
