package cognito_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/smithy-go"
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

func TestLookupUserByEmail_SendsExactFilterWithLimitOne(t *testing.T) {
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
	if aws.ToString(in.Filter) != `email = "ada.admin@example.com"` || aws.ToInt32(in.Limit) != 1 || aws.ToString(in.UserPoolId) != "eu-west-2_pool" {
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
