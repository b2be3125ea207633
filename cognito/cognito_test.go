package cognito_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
)

// fakeAPI is a cognito.API that records its inputs and answers with
// ListUsersFn.
type fakeAPI struct {
	mu          sync.Mutex
	inputs      []cip.ListUsersInput
	ListUsersFn func(*cip.ListUsersInput) (*cip.ListUsersOutput, error)
}

func (f *fakeAPI) ListUsers(_ context.Context, in *cip.ListUsersInput, _ ...func(*cip.Options)) (*cip.ListUsersOutput, error) {
	f.mu.Lock()
	f.inputs = append(f.inputs, *in)
	f.mu.Unlock()
	return f.ListUsersFn(in)
}

// user is an account as Cognito lists it: enabled, CONFIRMED, with a
// verified email.
func user(username, email, sub string) types.UserType {
	return types.UserType{
		Username:   aws.String(username),
		Enabled:    true,
		UserStatus: types.UserStatusTypeConfirmed,
		Attributes: []types.AttributeType{
			{Name: aws.String("sub"), Value: aws.String(sub)},
			{Name: aws.String("email"), Value: aws.String(email)},
			{Name: aws.String("email_verified"), Value: aws.String("true")},
		},
	}
}

func answer(users ...types.UserType) func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
	return func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return &cip.ListUsersOutput{Users: users}, nil
	}
}

// only returns a function taking a lookup's results that returns its one
// account, failing t unless there is exactly one and no error:
// only(t)(idp.LookupUsersByEmail(ctx, email)).
func only(t *testing.T) func([]flip.User, error) flip.User {
	return func(users []flip.User, err error) flip.User {
		t.Helper()
		if err != nil || len(users) != 1 {
			t.Fatalf("lookup = %+v, %v; want one account", users, err)
		}
		return users[0]
	}
}

func TestLookupUsersByEmail_SendsExactFilterWithLimitSixty(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: answer(user("u1", "ada.admin@example.com", "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10"))}
	u := only(t)(cognito.New(api, "eu-west-2_pool").LookupUsersByEmail(context.Background(), "ada.admin@example.com"))
	want := flip.User{ID: uuid.MustParse("0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10"), Username: "u1", Email: "ada.admin@example.com",
		Enabled: true, EmailVerified: true, Status: flip.UserConfirmed}
	if u != want {
		t.Errorf("user = %+v, want %+v", u, want)
	}
	in := api.inputs[0]
	// Limit 60, Cognito's maximum, so that up to 60 accounts holding the
	// address (look-alikes among them) fit in one answer.
	if aws.ToString(in.Filter) != `email = "ada.admin@example.com"` || aws.ToInt32(in.Limit) != 60 || aws.ToString(in.UserPoolId) != "eu-west-2_pool" || in.PaginationToken != nil {
		t.Errorf("input = filter %q limit %d pool %q token %v", aws.ToString(in.Filter), aws.ToInt32(in.Limit), aws.ToString(in.UserPoolId), in.PaginationToken)
	}
	if len(api.inputs) != 1 {
		t.Errorf("%d requests, want 1", len(api.inputs))
	}
}

func TestLookupUsersByEmail_ReportsWhatEachAccountProves(t *testing.T) {
	t.Parallel()
	// The adapter reports every account of the answer as Cognito holds it
	// and judges none; flip.Seeder does (see seed_trust_test.go).
	state := func(username string, status types.UserStatusType, enabled bool, verified ...string) types.UserType {
		u := user(username, "ada.admin@example.com", uuid.NewString())
		u.UserStatus, u.Enabled = status, enabled
		u.Attributes = u.Attributes[:2] // sub and email
		for _, v := range verified {
			u.Attributes = append(u.Attributes, types.AttributeType{Name: aws.String("email_verified"), Value: aws.String(v)})
		}
		return u
	}
	page := []types.UserType{
		state("confirmed", types.UserStatusTypeConfirmed, true, "true"),
		state("unconfirmed", types.UserStatusTypeUnconfirmed, true, "true"),
		state("no-attribute", types.UserStatusTypeConfirmed, true),
		state("verified-false", types.UserStatusTypeConfirmed, true, "false"),
		state("federated", types.UserStatusTypeExternalProvider, true, "true"),
		state("disabled", types.UserStatusTypeForceChangePassword, false, "true"),
		state("new-status", "SOMETHING_NEW", true, "true"),
	}
	api := &fakeAPI{ListUsersFn: answer(page...)}
	users, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada.admin@example.com")
	if err != nil || len(users) != len(page) {
		t.Fatalf("lookup = %+v, %v; want all %d accounts", users, err, len(page))
	}
	for i, want := range []struct {
		status            flip.UserStatus
		enabled, verified bool
		proves            bool
	}{
		{flip.UserConfirmed, true, true, true},
		{flip.UserUnconfirmed, true, true, false},
		{flip.UserConfirmed, true, false, false},
		{flip.UserConfirmed, true, false, false},
		{flip.UserExternalProvider, true, true, true},
		{flip.UserForceChangePassword, false, true, false},
		{"SOMETHING_NEW", true, true, false},
	} {
		u := users[i]
		if u.Username != aws.ToString(page[i].Username) || u.Status != want.status || u.Enabled != want.enabled ||
			u.EmailVerified != want.verified || u.ProvesAddress() != want.proves || u.Email != "ada.admin@example.com" {
			t.Errorf("account %s = %+v (proves %v), want %+v", aws.ToString(page[i].Username), u, u.ProvesAddress(), want)
		}
	}
}

func TestLookupUsersByEmail_AnswerSayingMoreFollowIsAmbiguous(t *testing.T) {
	t.Parallel()
	// One account proving the address, and a page that says more follow:
	// flip cannot see them, so it cannot know this one is the only one.
	api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return &cip.ListUsersOutput{PaginationToken: aws.String("next-page"),
			Users: []types.UserType{user("ada", "ada.admin@example.com", "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10")}}, nil
	}}
	users, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada.admin@example.com")
	var ipe *flip.IdentityProviderError
	if users != nil || !errors.As(err, &ipe) || ipe.Code != flip.CodeAmbiguousEmail || ipe.Status != 200 || ipe.Transient() ||
		!errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrUserNotFound) {
		t.Fatalf("lookup = %+v, %v; want a definitive %s", users, err, flip.CodeAmbiguousEmail)
	}
	for _, want := range []string{`"ada.admin@example.com"`, "holds 1 account(s) and says more follow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %q, want it to say %s", err, want)
		}
	}
	// An empty token is no token.
	api = &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return &cip.ListUsersOutput{PaginationToken: aws.String(""),
			Users: []types.UserType{user("ada", "ada.admin@example.com", "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10")}}, nil
	}}
	only(t)(cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada.admin@example.com"))
}

func TestLookupUsersByEmail_EmptyListIsNotFound(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: answer()}
	_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "nobody@example.com")
	if !errors.Is(err, flip.ErrUserNotFound) {
		t.Fatalf("err = %v, want ErrUserNotFound", err)
	}
}

func TestLookupUsersByEmail_UserNotFoundExceptionIsNotFound(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return nil, &types.UserNotFoundException{Message: aws.String("User does not exist.")}
	}}
	_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "nobody@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.Is(err, flip.ErrUserNotFound) || !errors.As(err, &ipe) || ipe.Code != "UserNotFoundException" {
		t.Fatalf("err = %v, want ErrUserNotFound with code UserNotFoundException", err)
	}
}

func TestLookupUsersByEmail_SubThatIsNotAUUIDIsDefinitive(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "0b5b1d1e8c1c4a559a3c6f1d2b7e9a10"} {
		api := &fakeAPI{ListUsersFn: answer(user("u1", "ada.admin@example.com", sub))}
		_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada.admin@example.com")
		if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrUserNotFound) {
			t.Errorf("sub %q: err = %v, want a definitive ErrIdentityProvider", sub, err)
		}
	}
}

func TestLookupUsersByEmail_ErrorWithoutAnswerIsDefinitiveUnlessNetwork(t *testing.T) {
	t.Parallel()
	// A configuration problem (no region, no credentials) has no HTTP
	// answer but will not pass by itself: seeding must stop, not skip.
	api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return nil, &smithy.OperationError{ServiceID: "Cognito Identity Provider", OperationName: "ListUsers",
			Err: errors.New("failed to resolve service endpoint, an AWS region is required")}
	}}
	_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada.admin@example.com")
	if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want definitive", err)
	}
}

func TestLookupUsersByEmail_InvalidEmailNeverCallsTheAPI(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: answer()}
	for _, email := range []string{`a"b@example.com`, `a\b@example.com`} {
		if _, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), email); !errors.Is(err, flip.ErrInvalidIdentifier) {
			t.Errorf("%q: err = %v", email, err)
		}
	}
	if len(api.inputs) != 0 {
		t.Errorf("the API was called %d times", len(api.inputs))
	}
}

func configError(t *testing.T, err error) *cognito.ConfigurationError {
	t.Helper()
	if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrUserNotFound) {
		t.Fatalf("err = %v, want a definitive ErrIdentityProvider", err)
	}
	var ce *cognito.ConfigurationError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *cognito.ConfigurationError", err)
	}
	if !strings.Contains(err.Error(), "configuration problem") || !strings.Contains(err.Error(), "check "+ce.Check) {
		t.Errorf("err = %q, want it to say it is a configuration problem and what to check", err)
	}
	return ce
}

func TestLookupUsersByEmail_AnswersPointingAtConfigurationSayWhatToCheck(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		code   string
		check  string
	}{
		{400, "ResourceNotFoundException", "user pool id"},
		{400, "UnrecognizedClientException", "AWS credentials"},
		{400, "NotAuthorizedException", "AWS credentials"},
		{400, "InvalidSignatureException", "AWS credentials"},
		{400, "ExpiredTokenException", "AWS credentials"},
		{403, "AccessDeniedException", "cognito-idp:ListUsers"},
	} {
		api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) { return nil, sdkError(c.status, c.code) }}
		_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada@example.com")
		ce := configError(t, err)
		var ipe *flip.IdentityProviderError
		if !errors.As(err, &ipe) || ipe.Status != c.status || ipe.Code != c.code {
			t.Errorf("%d %s: err = %#v", c.status, c.code, ipe)
		}
		if !strings.Contains(ce.Check, c.check) {
			t.Errorf("%d %s: check %q, want it to name %q", c.status, c.code, ce.Check, c.check)
		}
	}
	// A definitive answer that says nothing about the configuration is not
	// dressed up as one.
	api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return nil, sdkError(400, "InvalidParameterException")
	}}
	_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada@example.com")
	var ce *cognito.ConfigurationError
	if errors.As(err, &ce) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Errorf("InvalidParameterException: err = %v, want definitive without a configuration hint", err)
	}
}

// sendError is the SDK's error for a request that got no answer because
// of cause.
func sendError(cause error) error {
	return &smithy.OperationError{ServiceID: "Cognito Identity Provider", OperationName: "ListUsers",
		Err: &smithyhttp.RequestSendError{Err: cause}}
}

func TestLookupUsersByEmail_ClassifiesDNSErrors(t *testing.T) {
	t.Parallel()
	// A name that does not exist is a wrong region or endpoint; a resolver
	// that times out or fails temporarily is the network's trouble, and
	// the name may be right: transient, like a timeout.
	for _, c := range []struct {
		name      string
		dns       *net.DNSError
		transient bool
	}{
		{"NotFound", &net.DNSError{Err: "no such host", Name: "cognito-idp.eu-west-9.amazonaws.com", IsNotFound: true}, false},
		{"NotFoundAndTemporary", &net.DNSError{Err: "no such host", Name: "h", IsNotFound: true, IsTemporary: true}, false},
		{"NeitherTimeoutNorTemporary", &net.DNSError{Err: "server misbehaving", Name: "h"}, false},
		{"Timeout", &net.DNSError{Err: "i/o timeout", Name: "h", IsTimeout: true}, true},
		{"Temporary", &net.DNSError{Err: "temporary failure in name resolution", Name: "h", IsTemporary: true}, true},
	} {
		cause := &net.OpError{Op: "dial", Net: "tcp", Err: c.dns}
		api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) { return nil, sendError(cause) }}
		_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada@example.com")
		if got := errors.Is(err, flip.ErrIdentityProviderUnavailable); got != c.transient {
			t.Errorf("%s: err = %v, transient %v; want %v", c.name, err, got, c.transient)
		}
		if !c.transient {
			if ce := configError(t, err); !strings.Contains(ce.Check, "region") {
				t.Errorf("%s: check %q, want it to name the region", c.name, ce.Check)
			}
		}
	}
}
