package cognito

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Test hooks: a clock that never waits, and the limiter's arithmetic at
// explicit times, so that no test depends on the wall clock.

// FakeClock is a clock whose SleepUntil returns at once, moving the time
// forward to the instant slept until, and records that instant.
type FakeClock struct {
	mu       sync.Mutex
	gathered sync.Cond // signalled at each grant, for GatherWaits
	now      time.Time
	grants   []time.Time
	block    bool
	gather   int
	waits    chan struct{}
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	c := &FakeClock{now: start, waits: make(chan struct{}, 100)}
	c.gathered.L = &c.mu
	return c
}

// GatherWaits makes SleepUntil hold its callers until n have been granted
// a turn, and only then move the time. n lookups started together then
// all read the time before any wait ends, as with a real clock; without
// it, one that starts late would read the instant an earlier one slept
// until, a future its bucket would count as time gone by.
func (c *FakeClock) GatherWaits(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gather = n
}

// Blocked receives once for each SleepUntil that BlockWaits holds.
func (c *FakeClock) Blocked() <-chan struct{} { return c.waits }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the time forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// BlockWaits makes SleepUntil wait for the context to end whenever t is
// after the current time, as a real wait that outlasts its deadline.
func (c *FakeClock) BlockWaits() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.block = true
}

func (c *FakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if c.block && t.After(c.now) {
		c.mu.Unlock()
		c.waits <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	c.grants = append(c.grants, t)
	c.gathered.Broadcast()
	for len(c.grants) < c.gather {
		c.gathered.Wait()
	}
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err()
}

// Grants returns the instants at which the limiter let requests go, in
// the order they were granted.
func (c *FakeClock) Grants() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.grants)
}

// WithFakeClock makes the Provider's limiter read and wait on c.
func WithFakeClock(c *FakeClock) Option { return func(p *Provider) { p.clock = c } }

// RateAt returns the Provider's request rate in force at now, 0 when the
// limit is off.
func (p *Provider) RateAt(now time.Time) float64 {
	if p.limiter == nil {
		return 0
	}
	return p.limiter.currentRate(now)
}

// Limiter is the Provider's token bucket, for tests at explicit times.
type Limiter = limiter

// NewLimiter returns a limiter of perSecond with burst.
func NewLimiter(perSecond float64, burst int) *Limiter {
	return newLimiter(realClock{}, perSecond, burst)
}

// Reserve takes a token at now and returns how long to wait for it.
func (l *limiter) Reserve(now time.Time) time.Duration { return l.reserve(now) }

// Throttled slows the limiter as a throttling answer at now does.
func (l *limiter) Throttled(now time.Time) { l.throttled(now) }

// Rate returns the rate in force at now.
func (l *limiter) Rate(now time.Time) float64 { return l.currentRate(now) }

// Cancel gives back a reserved token.
func (l *limiter) Cancel() { l.cancel() }

// Hold is how long the throttled rate lasts.
const Hold = throttleHold

// currentRate returns the rate in force at now.
func (l *limiter) currentRate(now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advance(now)
	return l.rate
}
