package flip

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
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
//
// An address alone proves nothing: in a pool that allows self sign-up
// anyone can create an account carrying the admin's address, and an
// account created by an administrator or asserted by a federated identity
// provider may hold an address nobody verified. So the provider reports
// every account it finds with what it knows of each (User), and seeding
// alone decides which one, if any, gets the main user's role (see
// User.ProvesAddress and Seeder.SeedMainUsers): the rule lives in one
// place, and a provider, or a fake of one, cannot get it wrong.

// IdentityProvider finds users in the identity provider. Implementations
// must be safe for concurrent use: the seeder looks several users up at
// once.
type IdentityProvider interface {
	// LookupUsersByEmail returns every account that holds the address
	// email, whatever its state (unconfirmed, unverified, disabled), as
	// the provider finds it: for Cognito, the answer to the filter
	// email = "<email>", which in a case-insensitive pool also holds
	// other spellings. Seeding itself keeps only the accounts whose Email
	// equals email case-insensitively, so a provider that returns too much
	// cannot hand it someone else. It returns an error that answers
	// errors.Is for:
	//   - ErrUserNotFound when no account holds the address (an empty
	//     list means the same);
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
	//     than not-found and throttling, a malformed answer, an answer that
	//     does not list every account holding the address (Code
	//     CodeAmbiguousEmail: seeding cannot choose among accounts it does
	//     not see), and the configuration faults: a host that does not
	//     resolve (wrong region or endpoint), a TLS failure (an untrusted or
	//     mismatched certificate, a refused handshake), missing or refused
	//     credentials, an unknown user pool.
	// A *IdentityProviderError carries the HTTP status and error code when
	// the provider answered.
	LookupUsersByEmail(ctx context.Context, email string) ([]User, error)
}

// User is an account of the identity provider, as seeding needs it: who it
// is, and whether its owner proved the address (ProvesAddress).
type User struct {
	// ID is the provider's immutable id for the user (Cognito's sub); it
	// is user_profile.user_id and user_role.user_id.
	ID uuid.UUID `json:"id"`
	// Username is the account's name in the provider (Cognito's
	// Username, which is the sub in a pool that signs in by email), so
	// that a warning or an error points an operator at the account.
	Username string `json:"username,omitempty"`
	// Email is the user's email address as the provider holds it (a
	// case-insensitive Cognito pool returns it lower-cased).
	Email string `json:"email"`
	// Enabled is false for an account an administrator disabled.
	Enabled bool `json:"enabled"`
	// EmailVerified is true only when the provider says the owner proved
	// the address (Cognito: the attribute email_verified is the string
	// "true"; absent means not verified).
	EmailVerified bool `json:"email_verified"`
	// Status is the account's state in the provider, in Cognito's words
	// (its UserStatusType), e.g. UserConfirmed. "" is unknown.
	Status UserStatus `json:"status,omitempty"`
}

// UserStatus is the state of an account in the identity provider, named
// as Cognito names it (UserStatusType). Trusted says which states mean
// that the account's owner holds it.
type UserStatus string

// Cognito's account states.
const (
	// UserConfirmed: the user confirmed the account (with a code sent to
	// them, or an administrator confirmed or set a permanent password).
	UserConfirmed UserStatus = "CONFIRMED"
	// UserExternalProvider: the account was made by a federated sign-in
	// (SAML, OIDC, a social provider); the external provider asserts its
	// attributes.
	UserExternalProvider UserStatus = "EXTERNAL_PROVIDER"
	// UserForceChangePassword: an administrator created the account
	// (AdminCreateUser) and the user has not signed in yet.
	UserForceChangePassword UserStatus = "FORCE_CHANGE_PASSWORD"
	// UserResetRequired: the account was confirmed, then an administrator
	// required a new password.
	UserResetRequired UserStatus = "RESET_REQUIRED"
	// UserUnconfirmed: the account signed itself up and never confirmed.
	UserUnconfirmed UserStatus = "UNCONFIRMED"
	// UserArchived, UserCompromised and UserUnknown are states Cognito may
	// report for accounts nobody should act on.
	UserArchived    UserStatus = "ARCHIVED"
	UserCompromised UserStatus = "COMPROMISED"
	UserUnknown     UserStatus = "UNKNOWN"
)

// Trusted reports whether the status means the account's owner holds it,
// so that the account may receive a main user's role (if its address is
// verified too, see User.ProvesAddress):
//   - CONFIRMED: the user confirmed the account with a code, or an
//     administrator confirmed it;
//   - EXTERNAL_PROVIDER: a federated sign-in; the pool's administrator
//     chose to trust that identity provider and how its claims map to
//     email_verified, which must still be "true";
//   - FORCE_CHANGE_PASSWORD: the pool's administrator created the account
//     through the admin API, which only an IAM-privileged caller can use. A
//     hub's main users are usually created this way, and must be seeded
//     before their first sign-in;
//   - RESET_REQUIRED: confirmed earlier; an administrator asked for a new
//     password, which does not change who owns it.
//
// Every other status is untrusted: UNCONFIRMED (a sign-up that never
// proved anything: anyone can make one, with any address), ARCHIVED,
// COMPROMISED (Cognito found the password leaked), UNKNOWN, "" and any
// status flip does not know yet. Failing safe costs a skipped user and a
// warning; trusting a status that turns out to mean "nobody proved
// anything" would hand the platform to whoever signed up.
func (s UserStatus) Trusted() bool {
	switch s {
	case UserConfirmed, UserExternalProvider, UserForceChangePassword, UserResetRequired:
		return true
	}
	return false
}

// ProvesAddress reports whether the account proves that its owner holds
// the address, so that seeding may grant it a main user's role: the
// provider says the address is verified, the account is enabled (an
// administrator disabled it for a reason, and a disabled account cannot
// sign in to use a role anyway), and its status means its owner holds it
// (UserStatus.Trusted). Seeding skips an account that does not, with a
// warning, and does not count it when deciding whether the address is
// ambiguous, so that signing up with someone's address neither takes
// their role nor stops the boot.
func (u User) ProvesAddress() bool {
	return u.EmailVerified && u.Enabled && u.Status.Trusted()
}

// sameEmail reports whether a, an address a provider returned, is the
// address b. Email addresses compare case-insensitively: domains are
// case-insensitive (DNS), and although RFC 5321 lets a local part be
// case-sensitive, mail systems do not treat it so, nor does a Cognito
// pool created in the console (case-insensitive, the default), which
// matches the filter case-insensitively and returns the address
// lower-cased: the configured "Ada.Admin@example.com" comes back as
// "ada.admin@example.com". strings.EqualFold (simple Unicode case
// folding, no normalisation) is enough because this comparison never
// finds an account: the provider's filter did, and this only drops
// accounts an over-broad provider returned for another address. Were
// EqualFold narrower than the provider's folding somewhere, the user
// would be skipped as not found, with a warning; were it broader, it
// could keep only accounts the provider itself returned for this
// address, which must still prove it.
func sameEmail(a, b string) bool { return strings.EqualFold(a, b) }

// chooseAccount is seeding's rule: of the accounts a lookup of email
// returned, it keeps those holding the address (sameEmail) and returns the
// one that proves it (User.ProvesAddress), with the others, which seeding
// warns about and ignores. Its error is a *IdentityProviderError:
//   - ErrUserNotFound: no account holds the address;
//   - ErrUserNotVerified: accounts hold it, none proves it (seeding skips
//     the user: whoever can sign up must not be able to stop the boot);
//   - ErrIdentityProvider with Code CodeAmbiguousEmail: two or more
//     accounts prove it, also when their addresses differ only in case
//     (definitive: the address does not say which one is meant).
func chooseAccount(email string, accounts []User) (User, []User, error) {
	var proven, ignored []User
	others := 0
	for _, a := range accounts {
		switch {
		case !sameEmail(a.Email, email):
			others++ // a provider that returned too much
		case a.ProvesAddress():
			proven = append(proven, a)
		default:
			ignored = append(ignored, a)
		}
	}
	switch {
	case len(proven) == 1:
		return proven[0], ignored, nil
	case len(proven) > 1:
		return User{}, ignored, &IdentityProviderError{Code: CodeAmbiguousEmail, Kind: ErrIdentityProvider,
			Err: fmt.Errorf("email %q belongs to %d accounts (%s) that each prove it, so it does not say which one is meant; "+
				"remove the address from all but one of them in the user pool", email, len(proven), accountNames(proven))}
	case len(ignored) > 0:
		return User{}, ignored, &IdentityProviderError{Kind: ErrUserNotVerified,
			Err: fmt.Errorf("email %q is held only by %s, none of which proves it (verified address, enabled, trusted status); "+
				"verify the address of the user's account, or confirm it, in the user pool", email, accountStates(ignored))}
	case others > 0:
		return User{}, nil, &IdentityProviderError{Kind: ErrUserNotFound,
			Err: fmt.Errorf("the identity provider returned %d account(s) for %q, none with that address", others, email)}
	}
	return User{}, nil, &IdentityProviderError{Kind: ErrUserNotFound}
}

// accountName names an account for an operator: its username, else its id.
func accountName(u User) string {
	if u.Username != "" {
		return "username " + strconv.Quote(u.Username)
	}
	return "id " + u.ID.String()
}

func accountNames(users []User) string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = accountName(u)
	}
	return strings.Join(names, ", ")
}

// accountStates lists accounts with what keeps each from proving its
// address.
func accountStates(users []User) string {
	states := make([]string, len(users))
	for i, u := range users {
		states[i] = fmt.Sprintf("the account with %s (status %s, email_verified %t, enabled %t)",
			accountName(u), cmp.Or(string(u.Status), `""`), u.EmailVerified, u.Enabled)
	}
	return strings.Join(states, "; ")
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
