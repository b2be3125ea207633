// Package cognito is flip's IdentityProvider backed by AWS Cognito user
// pools, through github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider.
//
//	client := cognitoidentityprovider.NewFromConfig(cfg)
//	idp := cognito.New(client, "eu-west-2_AbCdEf123", cognito.WithMaxAttempts(3))
//	user, err := idp.LookupUserByEmail(ctx, "ada.admin@example.com")
//
// # Lookups
//
// A lookup is one ListUsers call with Filter `email = "<email>"` and
// Limit 2; the user's id is its sub attribute, checked to be a UUID. An
// address containing a double quote or backslash is refused before
// anything is sent (it could change the filter's meaning). Only users
// whose email attribute is exactly the address count (Cognito's filter is
// case-sensitive, and so is the check here). None is flip.ErrUserNotFound;
// two or more are a definitive error with Code flip.CodeAmbiguousEmail.
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
//   - definitive otherwise: any other 4xx, an ambiguous email, a sub that
//     is not a UUID, and any other failure without an answer (no region).
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
	"strconv"
	"strings"
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

// LookupUserByEmail implements flip.IdentityProvider as the package doc
// describes (an address that fails flip.ValidateEmail is never sent). Two
// or more matching users are definitive, naming the email, how many
// accounts and their usernames: seeding cannot know which is the main
// user, so it stops. cognito-local ignores Limit, so matches are counted.
func (p *Provider) LookupUserByEmail(ctx context.Context, email string) (flip.User, error) {
	if err := flip.ValidateEmail(email); err != nil {
		return flip.User{}, err
	}
	out, err := p.api.ListUsers(ctx, &cip.ListUsersInput{
		UserPoolId: aws.String(p.userPoolID),
		Filter:     aws.String(`email = "` + email + `"`),
		Limit:      aws.Int32(2), // so that a second account with the email shows
	}, p.callOptions)
	if err != nil {
		return flip.User{}, classify(ctx, "ListUsers", err)
	}
	var matches []types.UserType
	for _, u := range out.Users {
		if attribute(u, "email") == email {
			matches = append(matches, u)
		}
	}
	switch len(matches) {
	case 0:
		return flip.User{}, &flip.IdentityProviderError{Op: "ListUsers", Status: 200, Kind: flip.ErrUserNotFound}
	case 1:
		return toUser(matches[0])
	}
	return flip.User{}, ambiguous(email, matches, out.PaginationToken != nil)
}

// ambiguous is the error for an email that several accounts hold; more
// says that the answer was cut short by Limit, so there may be others.
func ambiguous(email string, users []types.UserType, more bool) error {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = strconv.Quote(aws.ToString(u.Username))
	}
	count := strconv.Itoa(len(users))
	if more {
		count = "at least " + count
	}
	return &flip.IdentityProviderError{Op: "ListUsers", Status: 200, Code: flip.CodeAmbiguousEmail,
		Kind: flip.ErrIdentityProvider,
		Err: fmt.Errorf("email %q belongs to %s accounts (usernames %s), so it does not say which one is meant; "+
			"remove the address from all but one of them in the user pool", email, count, strings.Join(names, ", "))}
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
	return flip.User{ID: id, Email: attribute(u, "email"), Enabled: u.Enabled}, nil
}

func attribute(u types.UserType, name string) string {
	for _, a := range u.Attributes {
		if aws.ToString(a.Name) == name {
			return aws.ToString(a.Value)
		}
	}
	return ""
}
