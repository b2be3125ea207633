package flip

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Identity provider
//
// Seeding looks the platform's main users up in the identity provider (AWS
// Cognito in production, the cognito-local emulator in tests) to learn
// their ids. IdentityProvider is the one question seeding asks; the
// cognito package answers it with the AWS SDK, and a test can answer it
// with a map. Its errors (in errors.go) let the seeder tell "no such user" (skip),
// "try again later" (skip, warn) and "this will never work" (stop) apart
// without knowing which provider it talks to.

// IdentityProvider finds users in the identity provider. Implementations
// must be safe for concurrent use: the seeder looks several users up at
// once.
type IdentityProvider interface {
	// LookupUserByEmail returns the user whose email address is exactly
	// email (byte for byte: no case folding). It returns an error that
	// answers errors.Is for:
	//   - ErrUserNotFound when no user has that address;
	//   - ErrInvalidIdentifier when email cannot be a lookup key (see
	//     ValidateEmail); nothing is sent to the provider;
	//   - ErrIdentityProviderUnavailable when the provider failed in a way
	//     that may pass: HTTP 5xx, throttling (HTTP 429, or a throttling
	//     error code such as TooManyRequestsException with 400) after
	//     retries, a timeout or the caller's context ending, a refused,
	//     reset or dropped connection to a host that resolves, a DNS
	//     timeout or temporary failure of the resolver;
	//   - ErrIdentityProvider for every failure, including the definitive
	//     ones, which are neither of the two above: HTTP 400 or 403 other
	//     than not-found and throttling, a malformed answer, an address
	//     two or more accounts hold (Code CodeAmbiguousEmail), and the
	//     configuration faults: a host that does not resolve (wrong region
	//     or endpoint), a TLS failure (an untrusted or mismatched
	//     certificate, a refused handshake), missing or refused
	//     credentials, an unknown user pool.
	// A *IdentityProviderError carries the HTTP status and error code when
	// the provider answered.
	LookupUserByEmail(ctx context.Context, email string) (User, error)
}

// User is a user of the identity provider, as seeding needs it.
type User struct {
	// ID is the provider's immutable id for the user (Cognito's sub); it
	// is user_profile.user_id and user_role.user_id.
	ID uuid.UUID `json:"id"`
	// Email is the user's email address as the provider holds it.
	Email string `json:"email"`
	// Enabled is false for a user an administrator disabled; seeding still
	// records the profile and role so that re-enabling needs no reboot.
	Enabled bool `json:"enabled"`
}

// maxEmailLength is the longest email address, in bytes, that ValidateEmail
// accepts (the limit of RFC 5321 for a forward path).
const maxEmailLength = 254

// ValidateEmail reports whether email can be used as a lookup key, and
// returns an error wrapping ErrInvalidIdentifier if not. It accepts exactly
// what it is given (no trimming): valid UTF-8 of at most 254
// bytes, one "@" with text on both sides, no whitespace, no control
// characters, and no double quote or backslash, the two characters that
// could escape the string of a Cognito filter such as email = "<email>".
// Identity providers call it before sending anything.
func ValidateEmail(email string) error {
	invalid := func(reason string) error {
		return fmt.Errorf("%w: email %q %s", ErrInvalidIdentifier, email, reason)
	}
	switch {
	case email == "":
		return fmt.Errorf("%w: email is empty", ErrInvalidIdentifier)
	case !utf8.ValidString(email):
		return fmt.Errorf("%w: email is not valid UTF-8", ErrInvalidIdentifier)
	case len(email) > maxEmailLength:
		return invalid(fmt.Sprintf("is %d bytes long; the limit is %d", len(email), maxEmailLength))
	case strings.ContainsAny(email, `"\`):
		return invalid(`contains a double quote or backslash`)
	}
	for _, r := range email {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return invalid(fmt.Sprintf("contains whitespace or control character %U", r))
		}
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return invalid(`is not of the form local@domain`)
	}
	return nil
}
