package cognito_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// suiteMaxAttempts bounds each lookup of the suite's Provider.
const suiteMaxAttempts = 2

// proxyFaults are the proxy's ways of producing each fault the shared
// suite injects.
var proxyFaults = map[fliptest.IdentityFault]cognitolocal.Fault{
	{}:                               cognitolocal.Forward,
	fliptest.FaultInternalError:      cognitolocal.Fault500,
	fliptest.FaultServiceUnavailable: cognitolocal.Fault503,
	fliptest.FaultTooManyRequests:    cognitolocal.Fault429,
	fliptest.FaultThrottled:          cognitolocal.FaultThrottle400,
	fliptest.FaultBadGatewayHTML:     cognitolocal.Fault502HTML,
	fliptest.FaultInvalidParameter:   cognitolocal.Fault400,
	fliptest.FaultNotAuthorized:      cognitolocal.Fault403,
	fliptest.FaultConnectionDropped:  cognitolocal.FaultDrop,
	fliptest.FaultHang:               cognitolocal.FaultSlow,
}

// emulatorHarness is the Cognito adapter on its own user pool of the
// cognito-local emulator, reached through a fault-injecting proxy.
func emulatorHarness(t *testing.T) fliptest.IdentityHarness {
	t.Helper()
	emu := cognitolocal.Shared(t)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(t, admin)
	proxy := cognitolocal.NewProxy(t, emu.URL)
	return fliptest.IdentityHarness{
		Provider: cognito.New(cognitolocal.NewClient(proxy.URL), pool,
			cognito.WithMaxAttempts(suiteMaxAttempts), cognito.WithMaxBackoff(5*time.Millisecond)),
		AddUser: func(_ context.Context, email string) (uuid.UUID, error) {
			return cognitolocal.CreateUser(t, admin, pool, email), nil
		},
		DisableUser: func(_ context.Context, email string) error {
			cognitolocal.DisableUser(t, admin, pool, email)
			return nil
		},
		Fail: func(email string, f fliptest.IdentityFault) error {
			pf, ok := proxyFaults[f]
			if !ok {
				return fmt.Errorf("the proxy cannot produce %+v", f)
			}
			proxy.Fail(email, pf)
			return nil
		},
		Lookups:      proxy.Lookups,
		TotalLookups: proxy.TotalLookups,
		MaxAttempts:  suiteMaxAttempts,
	}
}

// The behaviour suite fliptest.IdentityProvider also passes: the fake and
// the adapter answer alike.
func TestProvider_IdentityProviderSuiteOnEmulator(t *testing.T) {
	t.Parallel()
	fliptest.TestIdentityProvider(t, emulatorHarness)
}

// sdkError builds the error the SDK returns (after its retries) for an
// answer with this HTTP status and error code, or for a refused connection
// when status is 0.
func sdkError(status int, code string) error {
	if status == 0 {
		return &smithy.OperationError{ServiceID: "Cognito Identity Provider", OperationName: "ListUsers",
			Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}}
	}
	var cause error = &smithy.GenericAPIError{Code: code, Message: "from the test"}
	if code == "" {
		cause = errors.New("failed to decode the error answer")
	}
	return &smithy.OperationError{ServiceID: "Cognito Identity Provider", OperationName: "ListUsers",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      cause,
			},
			RequestID: "test",
		}}
}

// kindOf names the class of a lookup error.
func kindOf(err error) string {
	switch {
	case errors.Is(err, flip.ErrUserNotFound):
		return "not-found"
	case errors.Is(err, flip.ErrIdentityProviderUnavailable):
		return "transient"
	case errors.Is(err, flip.ErrIdentityProvider):
		return "definitive"
	}
	return "unclassified"
}

// fliptest.IdentityError promises the adapter's classification without
// importing the SDK; check it over every status and code that matters,
// the SDK's whole list of throttling codes included, so that a change on
// either side fails here.
func TestProvider_ClassifiesAsFliptestIdentityError(t *testing.T) {
	t.Parallel()
	codes := []string{"", "InvalidParameterException", "NotAuthorizedException", "InternalErrorException",
		"ServiceUnavailableException", "ResourceNotFoundException", "UserNotFoundException", "UnknownError"}
	for code := range retry.DefaultThrottleErrorCodes {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	statuses := []int{200, 204, 301, 304, 400, 401, 403, 404, 408, 409, 413, 429, 500, 501, 502, 503, 504, 599}
	type pair struct {
		status int
		code   string
	}
	pairs := []pair{{0, ""}}
	for _, s := range statuses {
		for _, c := range codes {
			pairs = append(pairs, pair{s, c})
		}
	}
	for _, p := range pairs {
		api := &fakeAPI{ListUsersFn: func(*cip.ListUsersInput) (*cip.ListUsersOutput, error) { return nil, sdkError(p.status, p.code) }}
		_, err := cognito.New(api, "p").LookupUserByEmail(context.Background(), "ada@example.com")
		want := fliptest.IdentityError(p.status, p.code)
		var got *flip.IdentityProviderError
		if !errors.As(err, &got) {
			t.Fatalf("%d %q: err = %v, want a *flip.IdentityProviderError", p.status, p.code, err)
		}
		if kindOf(got) != kindOf(want) || got.Status != want.Status || got.Code != want.Code || got.Transient() != want.Transient() || got.Op != want.Op {
			t.Errorf("%d %q: adapter says %s %s %d %q, fliptest.IdentityError says %s %s %d %q",
				p.status, p.code, kindOf(got), got.Op, got.Status, got.Code, kindOf(want), want.Op, want.Status, want.Code)
		}
	}
}
