package flip

import (
	"context"
	"errors"
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
// with a map. The errors below let the seeder tell "no such user" (skip),
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

// ErrIdentityProvider is the base of every error an IdentityProvider
// returns, whether the user is missing, the address invalid or the
// provider down: errors.Is(err, ErrIdentityProvider) holds for all of them.
// A hub that looks users up on a request maps the definitive ones (those
// that are not ErrUserNotFound or ErrIdentityProviderUnavailable) to 500.
var ErrIdentityProvider error = &sentinel{msg: "identity provider lookup failed"}

// ErrUserNotFound is returned when no user of the identity provider has the
// address looked up. Seeding skips such a user with a warning (the account
// may not be created yet); a hub answering a request maps it to 404.
var ErrUserNotFound error = &sentinel{msg: "user not found in identity provider", parent: ErrIdentityProvider}

// ErrInvalidIdentifier is returned, before anything is sent, for an email
// address that cannot be used as a lookup key: empty, with whitespace or
// control characters, without exactly one "@" between non-empty parts, or
// with a double quote or backslash, which would change the meaning of a
// Cognito ListUsers filter. Seeding stops on it (the configuration is
// wrong); a hub maps it to 400.
var ErrInvalidIdentifier error = &sentinel{msg: "invalid user identifier", parent: ErrIdentityProvider}

// ErrIdentityProviderUnavailable is returned when the identity provider
// could not answer but might if asked again later: HTTP 5xx, throttling
// that outlasted the bounded retries, a timeout, a refused, reset or
// dropped connection to a host that resolves. A configuration fault (a
// host that does not resolve, a TLS failure, missing or refused
// credentials, an unknown user pool) is not unavailability: it is a
// definitive ErrIdentityProvider, so that a misconfigured hub fails at
// boot instead of skipping every user. Seeding logs a warning, skips the
// user and carries on; a hub answering a request maps it to 503.
var ErrIdentityProviderUnavailable error = &sentinel{msg: "identity provider unavailable", parent: ErrIdentityProvider}

// IdentityProviderError describes a failed lookup: the HTTP status and
// error code the provider answered with, if any. errors.Is matches its
// Kind (ErrUserNotFound, ErrIdentityProviderUnavailable or
// ErrIdentityProvider, and through them ErrIdentityProvider) and its cause;
// errors.As reaches it through any wrapping:
//
//	var ipe *flip.IdentityProviderError
//	if errors.As(err, &ipe) && ipe.Status == http.StatusForbidden { … }
type IdentityProviderError struct {
	// Op is the provider operation that failed, e.g. "ListUsers".
	Op string
	// Status is the HTTP status of the provider's answer, or 0 when there
	// was none (connection refused or dropped, timeout, and the
	// configuration faults without an answer: a host that does not
	// resolve, a TLS failure, a failing credential chain).
	Status int
	// Code is the provider's error code (e.g. "TooManyRequestsException",
	// "NotAuthorizedException"), or one the adapter names for a fault it
	// found in a successful answer (CodeAmbiguousEmail), or "" when there
	// was none.
	Code string
	// Kind is the sentinel the error answers to: ErrUserNotFound,
	// ErrIdentityProviderUnavailable (transient) or ErrIdentityProvider
	// (definitive). Nil means ErrIdentityProvider.
	Kind error
	// Err is the underlying error, e.g. the SDK's.
	Err error
}

// CodeAmbiguousEmail is the IdentityProviderError.Code of a lookup whose
// address two or more accounts of the identity provider hold (Status 200,
// definitive): the address does not say which account is meant, so
// seeding stops instead of granting a role to either.
const CodeAmbiguousEmail = "AmbiguousEmail"

func (e *IdentityProviderError) Error() string {
	var b strings.Builder
	b.WriteString(e.kind().Error())
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and the cause, so that errors.Is matches both.
func (e *IdentityProviderError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.kind()}
	}
	return []error{e.kind(), e.Err}
}

// Transient reports whether the failure may pass on a later attempt (Kind
// is ErrIdentityProviderUnavailable).
func (e *IdentityProviderError) Transient() bool {
	return errors.Is(e.kind(), ErrIdentityProviderUnavailable)
}

func (e *IdentityProviderError) kind() error {
	if e.Kind == nil {
		return ErrIdentityProvider
	}
	return e.Kind
}

// MaxEmailLength is the longest email address, in bytes, that ValidateEmail
// accepts (the limit of RFC 5321 for a forward path).
const MaxEmailLength = 254

// ValidateEmail reports whether email can be used as a lookup key, and
// returns an error wrapping ErrInvalidIdentifier if not. It accepts exactly
// what it is given (no trimming): valid UTF-8 of at most MaxEmailLength
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
	case len(email) > MaxEmailLength:
		return invalid(fmt.Sprintf("is %d bytes long; the limit is %d", len(email), MaxEmailLength))
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
