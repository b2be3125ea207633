package cognito

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/londonaicentre/flip"
)

// codeUserNotFound is how Cognito (and cognito-local) say the user does
// not exist; the real service usually answers an empty list instead.
const codeUserNotFound = "UserNotFoundException"

// classify turns an SDK error (after the SDK's own retries) into a
// *flip.IdentityProviderError of the right kind. The HTTP status decides,
// not smithy's ErrorFault: Cognito's InternalErrorException claims a
// server fault even when it comes with 400 or 403.
func classify(op string, err error) error {
	e := &flip.IdentityProviderError{Op: op, Err: err, Kind: flip.ErrIdentityProvider}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
	}
	switch {
	case e.Code == codeUserNotFound:
		e.Kind = flip.ErrUserNotFound
	case transient(err, e.Status, e.Code):
		e.Kind = flip.ErrIdentityProviderUnavailable
	}
	return e
}

// transient reports whether a failure may pass if the lookup is tried
// again later.
func transient(err error, status int, code string) bool {
	if _, throttled := retry.DefaultThrottleErrorCodes[code]; throttled {
		return true // Cognito throttles with 400 TooManyRequestsException
	}
	switch {
	case status == http.StatusTooManyRequests, status >= 500:
		return true
	case status >= 200 && status < 300:
		// An answer that broke off or could not be decoded.
		return true
	case status != 0:
		return false // any other 4xx (and 3xx) will not change by itself
	}
	// No answer at all: a timeout, a refused, reset or dropped connection
	// is transient; anything else (no region, no credentials, a bad
	// endpoint) is a configuration problem that retrying will not fix.
	var (
		netErr  net.Error
		sendErr *smithyhttp.RequestSendError
	)
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &netErr) ||
		errors.As(err, &sendErr)
}
