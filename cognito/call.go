package cognito

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// What Provider adds to each SDK call (callOptions): its retry bounds, a
// retryer that waits for the rate limiter before every attempt and never
// retries a configuration fault, and a credentials provider that marks its
// own failures.

// attemptRetryer wraps the client's retryer. The SDK's retry middleware
// asks GetAttemptToken before each attempt (the first and every retry),
// so the limiter counts requests sent, not lookups, and the release
// function sees each attempt's error, throttling included.
//
// One attemptRetryer serves one call, whose attempts are sequential.
type attemptRetryer struct {
	aws.RetryerV2
	limiter *limiter // nil: no rate limit
	last    error    // the previous attempt's error
}

func newAttemptRetryer(r aws.Retryer, l *limiter) *attemptRetryer {
	v, ok := r.(aws.RetryerV2)
	if !ok {
		v = retryerV2{r}
	}
	return &attemptRetryer{RetryerV2: v, limiter: l}
}

// IsErrorRetryable refuses to retry a configuration fault: a TLS failure
// or a failing credential chain would fail the same way on every attempt
// (the SDK itself already stops on a host that does not resolve).
func (r *attemptRetryer) IsErrorRetryable(err error) bool {
	if configProblem(err) != nil {
		return false
	}
	return r.RetryerV2.IsErrorRetryable(err)
}

// GetAttemptToken waits for the rate limiter, then for the wrapped
// retryer's own token.
func (r *attemptRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if r.limiter != nil {
		if err := r.limiter.wait(ctx); err != nil {
			if r.last != nil {
				// The lookup's time ran out waiting to retry: keep the
				// answer that made it retry (its status and code), as
				// the outcome of the lookup.
				return nil, &retryWaitError{wait: err, last: r.last}
			}
			return nil, err
		}
	}
	release, err := r.RetryerV2.GetAttemptToken(ctx)
	if err != nil || r.limiter == nil {
		return release, err
	}
	return func(attemptErr error) error {
		r.last = attemptErr
		if attemptErr != nil && throttledAttempt(attemptErr) {
			r.limiter.throttled(r.limiter.clock.Now())
		}
		return release(attemptErr)
	}, nil
}

// retryWaitError is a retry that could not wait for its turn (the lookup's
// context ended), after an attempt that failed with last.
type retryWaitError struct{ wait, last error }

func (e *retryWaitError) Error() string {
	return e.wait.Error() + " waiting for a turn to retry after: " + e.last.Error()
}

// Unwrap returns the context's error and the previous attempt's.
func (e *retryWaitError) Unwrap() []error { return []error{e.wait, e.last} }

// throttledAttempt reports whether an attempt was answered with
// throttling.
func throttledAttempt(err error) bool {
	var (
		re     *awshttp.ResponseError
		apiErr smithy.APIError
		status int
		code   string
	)
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	return status != 0 && throttled(status, code)
}

// retryerV2 adapts a retryer without GetAttemptToken, as the SDK does.
type retryerV2 struct{ aws.Retryer }

func (r retryerV2) GetAttemptToken(context.Context) (func(error) error, error) {
	return r.GetInitialToken(), nil
}

// markedCredentials wraps the client's credentials provider so that its
// failures are recognisable (credentialsError) whatever their cause.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return creds, &credentialsError{err: err}
	}
	return creds, nil
}

// IsCredentialsProvider lets aws.IsCredentialsProvider see through the
// wrapper (the SDK uses it to recognise anonymous credentials).
func (m markedCredentials) IsCredentialsProvider(target aws.CredentialsProvider) bool {
	return aws.IsCredentialsProvider(m.CredentialsProvider, target)
}

// ProviderSources keeps the credential source the SDK reports in its
// user agent.
func (m markedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := m.CredentialsProvider.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}

var (
	_ aws.RetryerV2                = (*attemptRetryer)(nil)
	_ aws.CredentialsProvider      = markedCredentials{}
	_ aws.CredentialProviderSource = markedCredentials{}
)
