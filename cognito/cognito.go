// Package cognito is flip's IdentityProvider backed by AWS Cognito user
// pools, through github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider.
//
//	client := cognitoidentityprovider.NewFromConfig(cfg)
//	idp := cognito.New(client, "eu-west-2_AbCdEf123", cognito.WithMaxAttempts(3))
//	accounts, err := idp.LookupUsersByEmail(ctx, "ada.admin@example.com")
//
// # Lookups
//
// A lookup is one ListUsers call with Filter `email = "<email>"` and
// Limit 60, Cognito's maximum: the answer then holds every account with
// the address unless more than 60 do, and an answer that says more follow
// (a PaginationToken) is a definitive error with Code
// flip.CodeAmbiguousEmail, since seeding cannot choose among accounts it
// does not see. An address containing a double quote or backslash is
// refused before anything is sent (it could change the filter's meaning).
// None is flip.ErrUserNotFound. Each account found becomes a flip.User
// with its sub (checked to be a UUID), username, email, whether it is
// enabled, whether email_verified is the string "true", and its
// UserStatus. The adapter judges none of them: flip.Seeder decides which
// account, if any, proves the address (flip.User.ProvesAddress), compares
// emails case-insensitively (a case-insensitive pool, the console's
// default, matches the filter case-insensitively and returns the address
// lower-cased), and stops when two accounts prove it.
//
// # Errors
//
// Every failure is a *flip.IdentityProviderError carrying the HTTP status
// and error code, classified after the SDK's retries by the HTTP status
// first (not smithy's ErrorFault):
//   - not found: UserNotFoundException, or an answer without the user;
//   - transient (flip.ErrIdentityProviderUnavailable): HTTP 5xx; HTTP 429
//     or one of the SDK's throttling codes (TooManyRequestsException, …)
//     whatever the status; an answer that broke off; without an answer, a
//     timeout or the lookup's context ending, a refused, reset or dropped
//     connection, and a DNS timeout or temporary failure (the name may well
//     be right, so a hiccup of the resolver skips users instead of failing
//     the boot, and the SDK retries it);
//   - definitive configuration faults (flip.ErrIdentityProvider, caused by
//     a *ConfigurationError saying what to check): a host that does not
//     resolve (a wrong region or endpoint), a TLS failure (certificate
//     verification, a TLS alert, an endpoint that does not speak TLS), a
//     failing credential chain (whatever its cause, network errors of the
//     instance metadata service included), credentials Cognito refuses
//     (HTTP 400 or 403 UnrecognizedClientException, AccessDenied…), and an
//     unknown user pool (ResourceNotFoundException);
//   - definitive otherwise: any other 4xx, an answer that does not list
//     every account with the address, a sub that is not a UUID, and any
//     other failure without an answer (no region).
//
// A configuration fault costs one attempt: the Provider's retryer refuses
// to retry a TLS failure or a failing credential chain, and the SDK does
// not retry a host that does not resolve nor a 4xx answer (except to
// correct clock skew). flip.Seeder.SeedMainUsers skips a user on a
// transient failure and stops on a definitive one, so a misconfigured hub
// fails its boot naming the first user and the setting to check, instead
// of booting with every main user skipped.
//
// # Rate limit
//
// A Provider sends at most DefaultRateLimit (10) ListUsers requests per
// second, retries included, after a burst of DefaultRateBurst (5), shared
// by all its concurrent lookups, and halves that rate for a while after a
// throttling answer; see WithRateLimit.
//
// The package depends only on the API interface below, so tests can hand
// it a fake; flip's own tests run it against the cognito-local emulator.
package cognito

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// API is the part of *cognitoidentityprovider.Client that Provider calls.
// Keeping it this narrow lets a test substitute a fake.
type API interface {
	ListUsers(ctx context.Context, params *cip.ListUsersInput, optFns ...func(*cip.Options)) (*cip.ListUsersOutput, error)
}

var _ flip.IdentityProvider = (*Provider)(nil)

// Provider looks users up in one Cognito user pool. It is safe for
// concurrent use; its rate limit is shared by every lookup it makes.
type Provider struct {
	api         API
	userPoolID  string
	maxAttempts int
	maxBackoff  time.Duration

	rate    float64
	burst   int
	clock   clock
	limiter *limiter // nil when the rate limit is off
}

// Option configures a Provider.
type Option func(*Provider)

// WithMaxAttempts bounds the attempts of one lookup, the first included,
// overriding the client's retryer (the SDK's default is 3). The SDK
// retries HTTP 5xx, throttling and connection failures; 1 disables
// retries. Configuration faults are never retried.
func WithMaxAttempts(n int) Option { return func(p *Provider) { p.maxAttempts = n } }

// WithMaxBackoff caps the delay between retries (the SDK's default is 20s,
// with jitter), so that a throttled lookup gives up within a known time.
func WithMaxBackoff(d time.Duration) Option { return func(p *Provider) { p.maxBackoff = d } }

// WithRateLimit sets how many ListUsers requests per second the Provider
// sends at most, retries included, and how many may go at once before the
// rate applies (burst; less than 1 means 1). perSecond of 0 or less turns
// the limit off, and with it the slow-down after throttling. The default
// is DefaultRateLimit with DefaultRateBurst.
//
// Every lookup through the Provider, however many run at once, takes its
// turn from one limiter, waiting as long as its context allows (a lookup
// whose context ends while it waits fails as a transient timeout, without
// sending anything). After a throttling answer the limiter halves its
// rate, down to 1 request per second, drops any saved-up burst, and
// returns to the configured rate 10 seconds after the last throttling
// answer; the SDK's retryer also backs off with jitter before retrying
// (WithMaxAttempts, WithMaxBackoff). The limiter acts through the SDK's
// retryer, so a fake API (one that ignores the per-call options) is not
// limited.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(p *Provider) { p.rate, p.burst = perSecond, burst }
}

// New returns a Provider for the user pool userPoolID that calls api,
// usually a *cognitoidentityprovider.Client built by the caller (with its
// own region, credentials, endpoint and retryer).
func New(api API, userPoolID string, opts ...Option) *Provider {
	p := &Provider{api: api, userPoolID: userPoolID, rate: DefaultRateLimit, burst: DefaultRateBurst, clock: realClock{}}
	for _, o := range opts {
		o(p)
	}
	if p.rate > 0 {
		p.limiter = newLimiter(p.clock, p.rate, p.burst)
	}
	return p
}

// NewFromConfig builds the Cognito client from cfg (e.g. from
// config.LoadDefaultConfig; cfg.BaseEndpoint points it at an emulator) and
// returns a Provider for userPoolID.
func NewFromConfig(cfg aws.Config, userPoolID string, opts ...Option) *Provider {
	return New(cip.NewFromConfig(cfg), userPoolID, opts...)
}

// UserPoolID returns the user pool the Provider searches.
func (p *Provider) UserPoolID() string { return p.userPoolID }

// listUsersLimit is the most accounts one ListUsers answer may hold
// (Cognito refuses a larger Limit). Asking for that many, not 2, means
// that up to 60 accounts holding an address (look-alikes an attacker
// signed up among them) still fit in one answer, so seeding sees them all
// and can set aside those that do not prove the address; one request per
// lookup keeps the rate limit's arithmetic as it is.
const listUsersLimit = 60

// LookupUsersByEmail implements flip.IdentityProvider as the package doc
// describes (an address that fails flip.ValidateEmail is never sent): it
// returns every account of the answer, in Cognito's order, for the seeder
// to judge.
func (p *Provider) LookupUsersByEmail(ctx context.Context, email string) ([]flip.User, error) {
	if err := flip.ValidateEmail(email); err != nil {
		return nil, err
	}
	out, err := p.api.ListUsers(ctx, &cip.ListUsersInput{
		UserPoolId: aws.String(p.userPoolID),
		Filter:     aws.String(`email = "` + email + `"`),
		Limit:      aws.Int32(listUsersLimit),
	}, p.callOptions)
	if err != nil {
		return nil, classify(ctx, "ListUsers", err)
	}
	if aws.ToString(out.PaginationToken) != "" {
		return nil, incomplete(email, out.Users)
	}
	if len(out.Users) == 0 {
		return nil, &flip.IdentityProviderError{Op: "ListUsers", Status: 200, Kind: flip.ErrUserNotFound}
	}
	users := make([]flip.User, len(out.Users))
	for i, u := range out.Users {
		if users[i], err = toUser(u); err != nil {
			return nil, err
		}
	}
	return users, nil
}

// incomplete is the error for an answer that says more accounts follow
// than it holds: whichever of them proves the address, seeding cannot
// tell it from one it does not see.
func incomplete(email string, users []types.UserType) error {
	return &flip.IdentityProviderError{Op: "ListUsers", Status: 200, Code: flip.CodeAmbiguousEmail,
		Kind: flip.ErrIdentityProvider,
		Err: fmt.Errorf("the answer for email %q holds %d account(s) and says more follow, "+
			"so flip cannot see every account holding the address, nor tell which one is meant; "+
			"remove the address from the accounts that are not the user's in the user pool", email, len(users))}
}

// callOptions applies the Provider's retry bounds, rate limit and
// credential marking to one call.
func (p *Provider) callOptions(o *cip.Options) {
	if p.maxAttempts > 0 {
		o.RetryMaxAttempts = p.maxAttempts
	}
	if p.maxBackoff > 0 {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, p.maxBackoff)
	}
	if o.Retryer != nil {
		v, ok := o.Retryer.(aws.RetryerV2)
		if !ok {
			v = retryerV2{o.Retryer}
		}
		o.Retryer = &attemptRetryer{RetryerV2: v, limiter: p.limiter}
	}
	if o.Credentials != nil {
		o.Credentials = markedCredentials{o.Credentials}
	}
}

func toUser(u types.UserType) (flip.User, error) {
	sub := attribute(u, "sub")
	id, err := uuid.Parse(sub)
	if err != nil || id == uuid.Nil || len(sub) != 36 {
		return flip.User{}, &flip.IdentityProviderError{Op: "ListUsers", Status: 200, Code: "InvalidSub",
			Err: fmt.Errorf("user %q has sub %q, not a UUID", aws.ToString(u.Username), sub)}
	}
	return flip.User{ID: id, Username: aws.ToString(u.Username), Email: attribute(u, "email"), Enabled: u.Enabled,
		// Cognito returns the attribute as a string; only "true" is
		// verified, and an absent attribute is not.
		EmailVerified: attribute(u, "email_verified") == "true",
		Status:        flip.UserStatus(u.UserStatus)}, nil
}

func attribute(u types.UserType, name string) string {
	for _, a := range u.Attributes {
		if aws.ToString(a.Name) == name {
			return aws.ToString(a.Value)
		}
	}
	return ""
}
