package cognito

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Defaults of the Provider's rate limit (WithRateLimit).
const (
	// DefaultRateLimit is how many ListUsers requests per second a
	// Provider sends at most, retries included, unless WithRateLimit says
	// otherwise: a third of Cognito's ListUsers quota (30 requests per
	// second per account and region, not adjustable), which the hub's own
	// user listing shares. Each Provider has its own limit, so two hub
	// replicas booting together send up to twice as many.
	DefaultRateLimit = 10.0
	// DefaultRateBurst is how many requests may go at once before the rate
	// applies: a hub with this many main users or fewer is not slowed.
	DefaultRateBurst = 5
)

// The slow-down after a throttling answer (see WithRateLimit): down to
// minThrottledRate at most, for throttleHold after the last one.
const (
	throttleHold     = 10 * time.Second
	minThrottledRate = 1.0
)

// clock is the limiter's source of time; tests substitute one that does
// not wait. SleepUntil waits until t (at once if t has passed), or until
// ctx ends, returning ctx.Err() then.
type clock interface {
	Now() time.Time
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limiter is a token bucket shared by every request of one Provider: it
// holds up to burst tokens, gains rate tokens a second, and each request
// takes one, waiting for it if there is none. Tokens can go negative: a
// request then waits until its token would have arrived, so waiting
// requests are served in the order they asked.
type limiter struct {
	clock clock
	base  float64 // the configured rate, requests per second
	burst float64

	mu        sync.Mutex
	rate      float64   // the current rate: base, or less after throttling
	tokens    float64   // at last; negative when requests wait
	last      time.Time // when tokens was computed
	slowUntil time.Time // when the throttled rate ends
}

func newLimiter(c clock, perSecond float64, burst int) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{clock: c, base: perSecond, burst: float64(burst), rate: perSecond, tokens: float64(burst)}
}

// advance brings the bucket to now: the throttled rate ends when its time
// is up, and tokens accrue at the current rate up to burst. l.mu is held.
func (l *limiter) advance(now time.Time) {
	if l.last.IsZero() {
		l.last = now
	}
	if !l.slowUntil.IsZero() && !now.Before(l.slowUntil) {
		// Accrue at the throttled rate until it ended, then at the base.
		l.accrue(l.slowUntil)
		l.rate, l.slowUntil = l.base, time.Time{}
	}
	l.accrue(now)
}

func (l *limiter) accrue(now time.Time) {
	if d := now.Sub(l.last); d > 0 {
		l.tokens = math.Min(l.burst, l.tokens+d.Seconds()*l.rate)
		l.last = now
	}
}

// reserve takes a token at now and returns how long to wait to use it.
func (l *limiter) reserve(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(now)
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-l.tokens / l.rate * float64(time.Second)))
}

// cancel gives back a token taken by reserve but not used.
func (l *limiter) cancel() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = math.Min(l.burst, l.tokens+1)
}

// throttled slows the limiter down after a throttling answer at now.
func (l *limiter) throttled(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(now)
	l.rate = math.Max(l.rate/2, math.Min(minThrottledRate, l.base))
	l.tokens = math.Min(l.tokens, 0)
	l.slowUntil = now.Add(throttleHold)
}

// wait blocks until the caller may send one request, or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := l.clock.Now()
	if err := l.clock.SleepUntil(ctx, now.Add(l.reserve(now))); err != nil {
		l.cancel()
		return err
	}
	return nil
}

// attemptRetryer is how the limiter acts on the SDK (callOptions): it
// wraps the client's retryer, whose GetAttemptToken the SDK's retry
// middleware asks before each attempt (the first and every retry), so the
// limiter counts requests sent, not lookups, and the release function sees
// each attempt's error, throttling included.
//
// One attemptRetryer serves one call, whose attempts are sequential.
type attemptRetryer struct {
	aws.RetryerV2
	limiter *limiter // nil: no rate limit
	last    error    // the previous attempt's error
}

// IsErrorRetryable refuses to retry a configuration fault: a TLS failure
// or a failing credential chain would fail the same way on every attempt
// (the SDK itself already stops on a host that does not resolve).
func (r *attemptRetryer) IsErrorRetryable(err error) bool {
	return configProblem(err) == nil && r.RetryerV2.IsErrorRetryable(err)
}

// GetAttemptToken waits for the rate limiter, then for the wrapped
// retryer's own token.
func (r *attemptRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if r.limiter != nil {
		if err := r.limiter.wait(ctx); err != nil {
			if r.last != nil {
				// The lookup's time ran out waiting to retry: keep the
				// answer that made it retry (its status and code).
				err = &retryWaitError{wait: err, last: r.last}
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
		if status, code := answerOf(attemptErr); status != 0 && throttled(status, code) {
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

// retryerV2 adapts a retryer without GetAttemptToken, as the SDK does.
type retryerV2 struct{ aws.Retryer }

func (r retryerV2) GetAttemptToken(context.Context) (func(error) error, error) {
	return r.GetInitialToken(), nil
}

var _ aws.RetryerV2 = (*attemptRetryer)(nil)
