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

func user(username, email, sub string) types.UserType {
	return types.UserType{
		Username: aws.String(username),
		Enabled:  true,
		Attributes: []types.AttributeType{
			{Name: aws.String("sub"), Value: aws.String(sub)},
			{Name: aws.String("email"), Value: aws.String(email)},
		},
	}
}

func answer(users ...types.UserType) func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
	return func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return &cip.ListUsersOutput{Users: users}, nil
	}
}

func TestLookupUserByEmail_SendsExactFilterWithLimitTwo(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: answer(user("u1", "ada.admin@example.com", "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10"))}
	u, err := cognito.New(api, "eu-west-2_pool").LookupUserByEmail(context.Background(), "ada.admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID.String() != "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10" || u.Email != "ada.admin@example.com" || !u.Enabled {
		t.Errorf("user = %+v", u)
	}
	in := api.inputs[0]
	// Limit 2, so that a second account with the address shows.
	if aws.ToString(in.Filter) != `email = "ada.admin@example.com"` || aws.ToInt32(in.Limit) != 2 || aws.ToString(in.UserPoolId) != "eu-west-2_pool" {
		t.Errorf("input = filter %q limit %d pool %q", aws.ToString(in.Filter), aws.ToInt32(in.Limit), aws.ToString(in.UserPoolId))
	}
}

func TestLookupUserByEmail_EmptyListIsNotFound(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: answer()}
	_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "nobody@example.com")
	if !errors.Is(err, flip.ErrUserNotFound) {
		t.Fatalf("err = %v, want ErrUserNotFound", err)
	}
}

func TestLookupUserByEmail_UserNotFoundExceptionIsNotFound(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return nil, &types.UserNotFoundException{Message: aws.String("User does not exist.")}
	}}
	_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "nobody@example.com")
	var ipe *flip.IdentityProviderError
	if !errors.Is(err, flip.ErrUserNotFound) || !errors.As(err, &ipe) || ipe.Code != "UserNotFoundException" {
		t.Fatalf("err = %v, want ErrUserNotFound with code UserNotFoundException", err)
	}
}

func TestLookupUserByEmail_IgnoresUsersWithAnotherEmail(t *testing.T) {
	t.Parallel()
	// A provider that ignores the filter must not hand back someone else.
	api := &fakeAPI{ListUsersFn: answer(user("u2", "other@example.com", "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f"))}
	_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada.admin@example.com")
	if !errors.Is(err, flip.ErrUserNotFound) {
		t.Fatalf("err = %v, want ErrUserNotFound", err)
	}
}

func TestLookupUserByEmail_SubThatIsNotAUUIDIsDefinitive(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "0b5b1d1e8c1c4a559a3c6f1d2b7e9a10"} {
		api := &fakeAPI{ListUsersFn: answer(user("u1", "ada.admin@example.com", sub))}
		_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada.admin@example.com")
		if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrUserNotFound) {
			t.Errorf("sub %q: err = %v, want a definitive ErrIdentityProvider", sub, err)
		}
	}
}

func TestLookupUserByEmail_ErrorWithoutAnswerIsDefinitiveUnlessNetwork(t *testing.T) {
	t.Parallel()
	// A configuration problem (no region, no credentials) has no HTTP
	// answer but will not pass by itself: seeding must stop, not skip.
	api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
		return nil, &smithy.OperationError{ServiceID: "Cognito Identity Provider", OperationName: "ListUsers",
			Err: errors.New("failed to resolve service endpoint, an AWS region is required")}
	}}
	_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada.admin@example.com")
	if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want definitive", err)
	}
}

func TestLookupUserByEmail_InvalidEmailNeverCallsTheAPI(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{ListUsersFn: answer()}
	for _, email := range []string{`a"b@example.com`, `a\b@example.com`} {
		if _, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), email); !errors.Is(err, flip.ErrInvalidIdentifier) {
			t.Errorf("%q: err = %v", email, err)
		}
	}
	if len(api.inputs) != 0 {
		t.Errorf("the API was called %d times", len(api.inputs))
	}
}

func TestLookupUserByEmail_TwoAccountsWithTheEmailAreAmbiguous(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		token *string
		count string
	}{
		{"AllInTheAnswer", nil, "belongs to 2 accounts"},
		{"MoreBeyondTheLimit", aws.String("next-page"), "belongs to at least 2 accounts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) {
				return &cip.ListUsersOutput{PaginationToken: c.token, Users: []types.UserType{
					user("ada-1", "ada.admin@example.com", "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10"),
					user("ada-2", "ada.admin@example.com", "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f"),
				}}, nil
			}}
			_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada.admin@example.com")
			var ipe *flip.IdentityProviderError
			if !errors.As(err, &ipe) || ipe.Code != flip.CodeAmbiguousEmail || ipe.Status != 200 || ipe.Transient() {
				t.Fatalf("err = %#v, want a definitive %s", err, flip.CodeAmbiguousEmail)
			}
			if !errors.Is(err, flip.ErrIdentityProvider) || errors.Is(err, flip.ErrIdentityProviderUnavailable) || errors.Is(err, flip.ErrUserNotFound) {
				t.Errorf("err = %v, want definitive", err)
			}
			for _, want := range []string{`"ada.admin@example.com"`, c.count, `"ada-1"`, `"ada-2"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to say %s", err, want)
				}
			}
		})
	}
}

func TestLookupUserByEmail_MatchIsExactNotCaseFolded(t *testing.T) {
	t.Parallel()
	// Cognito's filter is case-sensitive; an answer holding another
	// spelling (a provider that ignores the filter) does not match, nor
	// does it make the exact match ambiguous.
	other := user("u2", "Ada.Admin@example.com", "5f0c7d8e-2b1a-4c3d-9e8f-7a6b5c4d3e2f")
	api := &fakeAPI{ListUsersFn: answer(other)}
	if _, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada.admin@example.com"); !errors.Is(err, flip.ErrUserNotFound) {
		t.Errorf("another case only: err = %v, want ErrUserNotFound", err)
	}
	api = &fakeAPI{ListUsersFn: answer(other, user("u1", "ada.admin@example.com", "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10"))}
	u, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada.admin@example.com")
	if err != nil || u.ID.String() != "0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10" {
		t.Errorf("exact and another case: got %+v, %v; want the exact one", u, err)
	}
}

// configError returns the *cognito.ConfigurationError err wraps, failing
// the test unless err is a definitive lookup error carrying one.
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

func TestLookupUserByEmail_AnswersPointingAtConfigurationSayWhatToCheck(t *testing.T) {
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
		_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada@example.com")
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
	_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada@example.com")
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

func TestLookupUserByEmail_ClassifiesDNSErrors(t *testing.T) {
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
		_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada@example.com")
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
