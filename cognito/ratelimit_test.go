package cognito_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
)

// No test here reads the wall clock: the limiter runs on a FakeClock that
// never waits and records the instant each request was let go, and the
// assertions are on those instants and on request counts.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// ms is n milliseconds.
func ms(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

func TestLimiter_BurstThenRate(t *testing.T) {
	t.Parallel()
	l := cognito.NewLimiter(10, 3)
	var waits []time.Duration
	for range 6 {
		waits = append(waits, l.Reserve(t0))
	}
	want := []time.Duration{0, 0, 0, ms(100), ms(200), ms(300)}
	if !slices.Equal(waits, want) {
		t.Errorf("waits at one instant = %v, want %v", waits, want)
	}
	// A second later the debt of 3 is paid and 7 tokens accrued, but the
	// bucket holds only the burst.
	for i, want := range []time.Duration{0, 0, 0, ms(100)} {
		if got := l.Reserve(t0.Add(time.Second)); got != want {
			t.Errorf("reservation %d a second later waits %v, want %v", i, got, want)
		}
	}
}

func TestLimiter_CancelGivesTheTokenBack(t *testing.T) {
	t.Parallel()
	l := cognito.NewLimiter(10, 1)
	l.Reserve(t0)
	if got := l.Reserve(t0); got != ms(100) {
		t.Fatalf("second reservation waits %v, want 100ms", got)
	}
	l.Cancel() // that request's context ended
	if got := l.Reserve(t0); got != ms(100) {
		t.Errorf("after a cancel the next reservation waits %v, want 100ms", got)
	}
}

func TestLimiter_ThrottlingHalvesTheRateForAWhile(t *testing.T) {
	t.Parallel()
	l := cognito.NewLimiter(10, 5)
	l.Reserve(t0)
	l.Throttled(t0)
	if r := l.Rate(t0); r != 5 {
		t.Fatalf("rate after one throttling answer = %v, want 5", r)
	}
	// The saved-up burst is gone: the next request waits a full interval
	// of the halved rate.
	if got := l.Reserve(t0); got != ms(200) {
		t.Errorf("first reservation after throttling waits %v, want 200ms", got)
	}
	for range 10 {
		l.Throttled(t0)
	}
	if r := l.Rate(t0); r != 1 {
		t.Errorf("rate after many throttling answers = %v, want the floor of 1", r)
	}
	if r := l.Rate(t0.Add(cognito.Hold - time.Nanosecond)); r != 1 {
		t.Errorf("rate just before the hold ends = %v, want 1", r)
	}
	if r := l.Rate(t0.Add(cognito.Hold)); r != 10 {
		t.Errorf("rate once the hold ended = %v, want 10 again", r)
	}
	// A limiter configured below the floor is never sped up by it.
	slow := cognito.NewLimiter(0.5, 1)
	slow.Throttled(t0)
	if r := slow.Rate(t0); r != 0.5 {
		t.Errorf("rate of a 0.5/s limiter after throttling = %v, want 0.5", r)
	}
}

// stub is a Cognito stand-in answering ListUsers from a function of the
// request number (from 1) and the email looked up, and counting requests.
type stub struct {
	URL string

	mu       sync.Mutex
	requests int
	emails   []string
}

var stubFilter = regexp.MustCompile(`^email = "(.*)"$`)

func newStub(t *testing.T, answer func(n int, email string) (status int, body any)) *stub {
	t.Helper()
	s := &stub{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Filter string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		email := ""
		if m := stubFilter.FindStringSubmatch(in.Filter); m != nil {
			email = m[1]
		}
		s.mu.Lock()
		s.requests++
		n := s.requests
		s.emails = append(s.emails, email)
		s.mu.Unlock()
		status, body := answer(n, email)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if status != http.StatusOK {
			code := body.(string)
			w.Header().Set("X-Amzn-Errortype", code)
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": "from the stub"})
			return
		}
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *stub) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// found is a ListUsers answer holding one user with email.
func found(email string) map[string]any {
	return map[string]any{"Users": []map[string]any{{
		"Username": email, "Enabled": true,
		"Attributes": []map[string]string{{"Name": "sub", "Value": uuid.NewString()}, {"Name": "email", "Value": email}},
	}}}
}

func alwaysFound(_ int, email string) (int, any) { return http.StatusOK, found(email) }

func stubProvider(s *stub, opts ...cognito.Option) *cognito.Provider {
	cfg := aws.Config{Region: "eu-west-2", Credentials: staticCredentials(), BaseEndpoint: aws.String(s.URL)}
	return provider(cfg, opts...)
}

// checkSpacing fails unless, in grants (sorted), no more than burst
// requests went before the rate applied and each later one came at least
// an interval of perSecond after the one burst places before it.
func checkSpacing(t *testing.T, grants []time.Time, perSecond float64, burst int) {
	t.Helper()
	slices.SortFunc(grants, time.Time.Compare)
	interval := time.Duration(float64(time.Second) / perSecond)
	for i, g := range grants {
		earliest := t0.Add(time.Duration(max(0, i-burst+1)) * interval)
		if g.Before(earliest.Add(-time.Microsecond)) {
			t.Errorf("request %d went at +%v, before +%v", i, g.Sub(t0), earliest.Sub(t0))
		}
	}
}

func TestWithRateLimit_ConcurrentLookupsShareOneLimit(t *testing.T) {
	t.Parallel()
	s := newStub(t, alwaysFound)
	clock := cognito.NewFakeClock(t0)
	idp := stubProvider(s, cognito.WithFakeClock(clock))
	const n = 30
	clock.GatherWaits(n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if _, err := idp.LookupUsersByEmail(t.Context(), fmt.Sprintf("user%02d@example.com", i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	grants := clock.Grants()
	if len(grants) != n || s.Requests() != n {
		t.Fatalf("%d grants and %d requests for %d lookups", len(grants), s.Requests(), n)
	}
	// The default: a burst of 5, then 10 a second.
	checkSpacing(t, grants, cognito.DefaultRateLimit, cognito.DefaultRateBurst)
	last := slices.MaxFunc(grants, time.Time.Compare)
	if want := t0.Add(ms(2500)); !last.Equal(want) {
		t.Errorf("the last of %d requests went at +%v, want +%v", n, last.Sub(t0), want.Sub(t0))
	}
}

func TestWithRateLimit_RetriesTakeTheirTurn(t *testing.T) {
	t.Parallel()
	// Every attempt is a request against the quota, so each waits.
	s := newStub(t, func(int, string) (int, any) { return http.StatusServiceUnavailable, "ServiceUnavailableException" })
	clock := cognito.NewFakeClock(t0)
	idp := stubProvider(s, cognito.WithFakeClock(clock), cognito.WithRateLimit(4, 1))
	_, err := idp.LookupUsersByEmail(t.Context(), "busy@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) {
		t.Fatalf("err = %v, want transient", err)
	}
	grants := clock.Grants()
	if len(grants) != testAttempts || s.Requests() != testAttempts {
		t.Fatalf("%d grants and %d requests, want %d", len(grants), s.Requests(), testAttempts)
	}
	checkSpacing(t, grants, 4, 1)
}

func TestWithRateLimit_ThrottlingSlowsLaterLookups(t *testing.T) {
	t.Parallel()
	// The first request is throttled (400 TooManyRequestsException), the
	// retry and the rest succeed.
	s := newStub(t, func(n int, email string) (int, any) {
		if n == 1 {
			return http.StatusBadRequest, "TooManyRequestsException"
		}
		return http.StatusOK, found(email)
	})
	clock := cognito.NewFakeClock(t0)
	idp := stubProvider(s, cognito.WithFakeClock(clock), cognito.WithRateLimit(10, 1))
	for _, email := range []string{"a@example.com", "b@example.com"} {
		if _, err := idp.LookupUsersByEmail(t.Context(), email); err != nil {
			t.Fatal(err)
		}
	}
	if r := idp.RateAt(clock.Now()); r != 5 {
		t.Errorf("rate after a throttling answer = %v, want 5", r)
	}
	var gaps []time.Duration
	grants := clock.Grants()
	for i := 1; i < len(grants); i++ {
		gaps = append(gaps, grants[i].Sub(grants[i-1]))
	}
	// The retry and the next lookup each wait 200ms (5/s), not 100ms.
	if want := []time.Duration{ms(200), ms(200)}; !slices.Equal(gaps, want) {
		t.Errorf("gaps between requests = %v, want %v", gaps, want)
	}
	clock.Advance(cognito.Hold)
	if r := idp.RateAt(clock.Now()); r != 10 {
		t.Errorf("rate once the hold ended = %v, want 10", r)
	}
}

// cancelWhileWaiting looks email up on idp, cancels the lookup's context
// once it waits on clock for its turn, and returns the lookup's error.
func cancelWhileWaiting(t *testing.T, idp *cognito.Provider, clock *cognito.FakeClock, email string) error {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := idp.LookupUsersByEmail(ctx, email)
		done <- err
	}()
	<-clock.Blocked()
	cancel()
	return <-done
}

func TestWithRateLimit_WaitEndsWithTheContext(t *testing.T) {
	t.Parallel()
	s := newStub(t, alwaysFound)
	clock := cognito.NewFakeClock(t0)
	clock.BlockWaits()
	idp := stubProvider(s, cognito.WithFakeClock(clock), cognito.WithRateLimit(1, 1))
	if _, err := idp.LookupUsersByEmail(t.Context(), "first@example.com"); err != nil {
		t.Fatal(err)
	}
	// The second request's turn never comes on this clock: only the
	// context's end releases it, and nothing is sent.
	err := cancelWhileWaiting(t, idp, clock, "second@example.com")
	if !errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want transient wrapping context.Canceled", err)
	}
	if n := s.Requests(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestWithRateLimit_ZeroTurnsItOff(t *testing.T) {
	t.Parallel()
	s := newStub(t, alwaysFound)
	clock := cognito.NewFakeClock(t0)
	for _, perSecond := range []float64{0, -1} {
		idp := stubProvider(s, cognito.WithFakeClock(clock), cognito.WithRateLimit(perSecond, 0))
		for i := range 20 {
			if _, err := idp.LookupUsersByEmail(t.Context(), fmt.Sprintf("u%d@example.com", i)); err != nil {
				t.Fatal(err)
			}
		}
		if r := idp.RateAt(t0); r != 0 {
			t.Errorf("WithRateLimit(%v, 0): rate %v, want off", perSecond, r)
		}
	}
	if g := clock.Grants(); len(g) != 0 {
		t.Errorf("%d requests went through a limiter that is off", len(g))
	}
}

func TestWithRateLimit_TimeRunningOutBeforeARetryKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(int, string) (int, any) { return http.StatusServiceUnavailable, "ServiceUnavailableException" })
	clock := cognito.NewFakeClock(t0)
	clock.BlockWaits()
	idp := stubProvider(s, cognito.WithFakeClock(clock), cognito.WithRateLimit(1, 1))
	err := cancelWhileWaiting(t, idp, clock, "busy@example.com") // the retry waits for its turn
	var ipe *flip.IdentityProviderError
	if !errors.As(err, &ipe) || !ipe.Transient() || ipe.Status != http.StatusServiceUnavailable || ipe.Code != "ServiceUnavailableException" {
		t.Fatalf("err = %v, want transient with the 503 that caused the retry", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
	if n := s.Requests(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
