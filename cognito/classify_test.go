package cognito_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
)

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

// wantKind is the class the design gives a lookup that fails with this
// HTTP status and error code (status 0: no answer at all):
// UserNotFoundException is not-found; a throttling code (the SDK's whole
// list), whatever the status, is transient, as are 429, any 5xx, a 2xx
// (an answer that broke off) and no answer; anything else (400, 403, …)
// is definitive.
func wantKind(status int, code string) string {
	_, throttling := retry.DefaultThrottleErrorCodes[code]
	switch {
	case code == "UserNotFoundException":
		return "not-found"
	case throttling, status == 0, status == http.StatusTooManyRequests, status >= 500, status >= 200 && status < 300:
		return "transient"
	}
	return "definitive"
}

// Check the adapter's classification over every status and code that
// matters, the SDK's whole list of throttling codes included.
func TestProvider_ClassifiesEveryStatusAndCode(t *testing.T) {
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
		_, err := cognito.New(api, "p").LookupUsersByEmail(context.Background(), "ada@example.com")
		var got *flip.IdentityProviderError
		if !errors.As(err, &got) {
			t.Fatalf("%d %q: err = %v, want a *flip.IdentityProviderError", p.status, p.code, err)
		}
		want := wantKind(p.status, p.code)
		if kindOf(got) != want || got.Status != p.status || got.Code != p.code || got.Transient() != (want == "transient") || got.Op != "ListUsers" {
			t.Errorf("%d %q: adapter says %s %s %d %q, want %s ListUsers %d %q",
				p.status, p.code, kindOf(got), got.Op, got.Status, got.Code, want, p.status, p.code)
		}
	}
}
