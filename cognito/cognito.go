// Package cognito is flip's IdentityProvider backed by AWS Cognito user
// pools, through github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider.
//
// A lookup is one ListUsers call with Filter `email = "<email>"` and
// Limit 1; the user's id is its sub attribute, checked to be a UUID. An
// address containing a double quote or backslash is refused before
// anything is sent (it could change the filter's meaning). SDK errors
// become flip's error values: a missing user is flip.ErrUserNotFound;
// HTTP 5xx, throttling, timeouts and connection failures are
// flip.ErrIdentityProviderUnavailable; other 4xx are definitive. Every
// failure is a *flip.IdentityProviderError carrying the HTTP status and
// error code.
//
//	client := cognitoidentityprovider.NewFromConfig(cfg)
//	idp := cognito.New(client, "eu-west-2_AbCdEf123", cognito.WithMaxAttempts(3))
//	user, err := idp.LookupUserByEmail(ctx, "ada.admin@example.com")
//
// The package depends only on the API interface below, so tests can hand
// it a fake; flip's own tests run it against the cognito-local emulator.
package cognito

import (
	"context"
	"fmt"
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

var (
	_ API                   = (*cip.Client)(nil)
	_ flip.IdentityProvider = (*Provider)(nil)
)

// Provider looks users up in one Cognito user pool. It is safe for
// concurrent use.
type Provider struct {
	api         API
	userPoolID  string
	maxAttempts int
	maxBackoff  time.Duration
}

// Option configures a Provider.
type Option func(*Provider)

// WithMaxAttempts bounds the attempts of one lookup, the first included,
// overriding the client's retryer (the SDK's default is 3). The SDK
// retries HTTP 5xx, throttling and connection failures; 1 disables
// retries.
func WithMaxAttempts(n int) Option { return func(p *Provider) { p.maxAttempts = n } }

// WithMaxBackoff caps the delay between retries (the SDK's default is 20s,
// with jitter), so that a throttled lookup gives up within a known time.
func WithMaxBackoff(d time.Duration) Option { return func(p *Provider) { p.maxBackoff = d } }

// New returns a Provider for the user pool userPoolID that calls api,
// usually a *cognitoidentityprovider.Client built by the caller (with its
// own region, credentials, endpoint and retryer).
func New(api API, userPoolID string, opts ...Option) *Provider {
	p := &Provider{api: api, userPoolID: userPoolID}
	for _, o := range opts {
		o(p)
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

// LookupUserByEmail implements flip.IdentityProvider. The address must
// match exactly (Cognito's filter is case-sensitive for email); it is
// checked with flip.ValidateEmail first and never sent when invalid.
func (p *Provider) LookupUserByEmail(ctx context.Context, email string) (flip.User, error) {
	if err := flip.ValidateEmail(email); err != nil {
		return flip.User{}, err
	}
	out, err := p.api.ListUsers(ctx, &cip.ListUsersInput{
		UserPoolId: aws.String(p.userPoolID),
		Filter:     aws.String(`email = "` + email + `"`),
		Limit:      aws.Int32(1),
	}, p.callOptions)
	if err != nil {
		return flip.User{}, classify("ListUsers", err)
	}
	// Limit 1 should leave one user at most; check the address anyway, in
	// case a provider (the emulator) ignores Limit or the filter.
	for _, u := range out.Users {
		if !strings.EqualFold(attribute(u, "email"), email) {
			continue
		}
		return toUser(u)
	}
	return flip.User{}, &flip.IdentityProviderError{Op: "ListUsers", Status: 200, Kind: flip.ErrUserNotFound}
}

// callOptions applies the Provider's retry bounds to one call.
func (p *Provider) callOptions(o *cip.Options) {
	if p.maxAttempts > 0 {
		o.RetryMaxAttempts = p.maxAttempts
	}
	if p.maxBackoff > 0 {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, p.maxBackoff)
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
