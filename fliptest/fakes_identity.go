package fliptest

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// lookupOp is the operation name the fake's errors carry: the one the
// Cognito adapter reports, so that a test's logs read like production's.
const lookupOp = "ListUsers"

// IdentityProvider is an in-memory flip.IdentityProvider: a directory of
// users by email that answers lookups the way the Cognito adapter
// (cognito.Provider) does, without the AWS SDK:
//
//   - an address refused by flip.ValidateEmail (a double quote, a
//     backslash, whitespace, no "@") returns that ErrInvalidIdentifier
//     error and is never "sent": it is not counted and uses up no fault;
//   - a context that has ended, or ends while a hook blocks, fails the
//     lookup as a transient *flip.IdentityProviderError wrapping ctx.Err(),
//     as a timeout does in the adapter;
//   - an unknown address is flip.ErrUserNotFound (HTTP 200 with no user);
//   - addresses match exactly, as in Cognito's email filter.
//
// Faults: FailNext queues an error for the next lookup, FailNextStatus
// queues a provider answer with an HTTP status (classified by
// IdentityError exactly as the adapter classifies the SDK's errors),
// FailEmail and InjectFault make every lookup of one address fail, and
// OnCall installs a hook consulted before every lookup. Calls and Lookups
// count the lookups that reached the provider.
//
// TestIdentityProvider runs one behaviour suite against this fake and
// against the Cognito adapter on the cognito-local emulator, so the two
// cannot drift. The zero value is not ready; use NewIdentityProvider. An
// IdentityProvider is safe for concurrent use.
//
//	idp := fliptest.NewIdentityProvider()
//	ada := idp.AddUser("ada.admin@example.com")
//	idp.FailNextStatus(503, "ServiceUnavailableException") // the next lookup is transient
//	report, err := seeder.SeedMainUsers(ctx, db, idp)
type IdentityProvider struct {
	mu      sync.Mutex
	users   map[string]flip.User
	next    []error
	byEmail map[string]IdentityFault
	errs    map[string]error
	hook    func(ctx context.Context, email string) error
	calls   map[string]int
	total   int
}

var _ flip.IdentityProvider = (*IdentityProvider)(nil)

// NewIdentityProvider returns an IdentityProvider with no users and no
// faults.
func NewIdentityProvider() *IdentityProvider {
	return &IdentityProvider{
		users:   map[string]flip.User{},
		byEmail: map[string]IdentityFault{},
		errs:    map[string]error{},
		calls:   map[string]int{},
	}
}

// AddUser adds an enabled user with this email and a new random id, and
// returns it. A user already holding the email is replaced. The email is
// stored as given, even one ValidateEmail refuses (no lookup can reach
// it, as with Cognito).
func (p *IdentityProvider) AddUser(email string) flip.User {
	return p.AddUserWithID(email, uuid.New())
}

// AddUserWithID adds an enabled user with this email and id, for tests and
// examples that need stable ids, and returns it. A user already holding
// the email is replaced.
func (p *IdentityProvider) AddUserWithID(email string, id uuid.UUID) flip.User {
	u := flip.User{ID: id, Email: email, Enabled: true}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[email] = u
	return u
}

// Disable marks the user with this email disabled, as an administrator
// does in Cognito: lookups still find it, with Enabled false. It reports
// whether there was such a user.
func (p *IdentityProvider) Disable(email string) bool { return p.setEnabled(email, false) }

// Enable reverses Disable.
func (p *IdentityProvider) Enable(email string) bool { return p.setEnabled(email, true) }

func (p *IdentityProvider) setEnabled(email string, enabled bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[email]
	if ok {
		u.Enabled = enabled
		p.users[email] = u
	}
	return ok
}

// RemoveUser deletes the user with this email; later lookups are
// ErrUserNotFound. It reports whether there was such a user.
func (p *IdentityProvider) RemoveUser(email string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.users[email]
	delete(p.users, email)
	return ok
}

// FailNext makes the next lookup that reaches the provider return err as
// it is, whatever its email. Calls queue: FailNext twice fails the next
// two lookups. Use IdentityError (or FailNextStatus) for a failure the
// seeder should classify by HTTP status.
func (p *IdentityProvider) FailNext(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = append(p.next, err)
}

// FailNextStatus makes the next lookup that reaches the provider fail as
// if the provider answered with this HTTP status and error code:
// FailNext(IdentityError(status, code)).
//
//	idp.FailNextStatus(http.StatusTooManyRequests, "") // transient
//	idp.FailNextStatus(http.StatusForbidden, "NotAuthorizedException") // definitive
func (p *IdentityProvider) FailNextStatus(status int, code string) {
	p.FailNext(IdentityError(status, code))
}

// FailEmail makes every lookup of email return err, until FailEmail(email,
// nil). It takes precedence over InjectFault for the same email.
func (p *IdentityProvider) FailEmail(email string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.errs, email)
		return
	}
	p.errs[email] = err
}

// InjectFault makes every lookup of email fail as f describes: an answer
// with an HTTP status and error code (see IdentityError), no answer at
// all, or a hang until the caller's context ends. The zero IdentityFault
// clears the fault.
func (p *IdentityProvider) InjectFault(email string, f IdentityFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f == (IdentityFault{}) {
		delete(p.byEmail, email)
		return
	}
	p.byEmail[email] = f
}

// OnCall installs hook, consulted before every lookup that has no
// FailNext error queued and no fault for its email; a non-nil result is
// returned as the lookup's error. A hook may block (to line lookups up, or
// to hang until ctx ends) and must be safe for concurrent use; when ctx
// ends meanwhile, the lookup fails as a timeout whatever the hook returns.
// nil removes it.
func (p *IdentityProvider) OnCall(hook func(ctx context.Context, email string) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = hook
}

// Calls returns how many lookups reached the provider, failed ones
// included. Lookups of an invalid email, and lookups whose context had
// already ended, are not counted: the adapter sends nothing for them.
func (p *IdentityProvider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// Lookups returns how many lookups of email reached the provider.
func (p *IdentityProvider) Lookups(email string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[email]
}

// LookupUserByEmail implements flip.IdentityProvider.
func (p *IdentityProvider) LookupUserByEmail(ctx context.Context, email string) (flip.User, error) {
	if err := flip.ValidateEmail(email); err != nil {
		return flip.User{}, err
	}
	if err := ctx.Err(); err != nil {
		return flip.User{}, timeoutError(err)
	}

	p.mu.Lock()
	p.total++
	p.calls[email]++
	var (
		err   error
		fault IdentityFault
		hook  = p.hook
	)
	if len(p.next) > 0 {
		err, p.next = p.next[0], p.next[1:]
	} else if e, ok := p.errs[email]; ok {
		err = e
	} else {
		fault = p.byEmail[email]
	}
	p.mu.Unlock()

	switch {
	case err != nil:
		return flip.User{}, copyIdentityError(err)
	case fault.Hang:
		<-ctx.Done()
		return flip.User{}, timeoutError(ctx.Err())
	case fault != IdentityFault{}:
		return flip.User{}, fault.Err()
	case hook != nil:
		err = hook(ctx, email)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return flip.User{}, timeoutError(ctxErr)
		}
		if err != nil {
			return flip.User{}, err
		}
	}

	p.mu.Lock()
	u, ok := p.users[email]
	p.mu.Unlock()
	if !ok {
		return flip.User{}, &flip.IdentityProviderError{Op: lookupOp, Status: http.StatusOK, Kind: flip.ErrUserNotFound}
	}
	return u, nil
}

// copyIdentityError returns a copy of a queued *flip.IdentityProviderError,
// so that a caller changing the error it got (through errors.As) cannot
// change what a later lookup returns.
func copyIdentityError(err error) error {
	if ipe, ok := err.(*flip.IdentityProviderError); ok {
		c := *ipe
		return &c
	}
	return err
}

// timeoutError is the adapter's answer when the caller's context ends
// before the provider answers: transient, no status, wrapping ctx.Err().
func timeoutError(ctxErr error) error {
	return &flip.IdentityProviderError{Op: lookupOp, Kind: flip.ErrIdentityProviderUnavailable, Err: ctxErr}
}

// IdentityFault describes how an identity provider fails, in terms of what
// comes back over the wire, so that each implementation can be made to
// fail the same way: InjectFault for the fake, a fault-injecting proxy for
// the Cognito adapter (see IdentityHarness). The zero value is no fault.
type IdentityFault struct {
	// Status is the HTTP status of the provider's error answer.
	Status int
	// Code is the error code in the answer (Cognito's __type, e.g.
	// "TooManyRequestsException"); "" for an answer without one, such as
	// a load balancer's HTML page.
	Code string
	// NoAnswer: the connection closes without an answer (Status and Code
	// are ignored).
	NoAnswer bool
	// Hang: no answer until the caller's context ends.
	Hang bool
}

// The faults TestIdentityProvider injects, shaped like the answers of
// Cognito and of the proxies in front of it.
var (
	FaultInternalError      = IdentityFault{Status: 500, Code: "InternalErrorException"}
	FaultServiceUnavailable = IdentityFault{Status: 503, Code: "ServiceUnavailableException"}
	FaultTooManyRequests    = IdentityFault{Status: 429, Code: "TooManyRequestsException"}
	// FaultThrottled is how Cognito itself throttles: 400 with a
	// throttling code, transient despite the 4xx status.
	FaultThrottled         = IdentityFault{Status: 400, Code: "TooManyRequestsException"}
	FaultBadGatewayHTML    = IdentityFault{Status: 502}
	FaultInvalidParameter  = IdentityFault{Status: 400, Code: "InvalidParameterException"}
	FaultNotAuthorized     = IdentityFault{Status: 403, Code: "NotAuthorizedException"}
	FaultConnectionDropped = IdentityFault{NoAnswer: true}
	FaultHang              = IdentityFault{Hang: true}
)

// Transient reports whether a lookup failing with f is a transient
// failure (ErrIdentityProviderUnavailable): everything but a definitive
// 4xx answer, by the rules of IdentityError.
func (f IdentityFault) Transient() bool {
	if f.NoAnswer || f.Hang {
		return true
	}
	return f.Err().Transient()
}

// Err returns the error a lookup failing with f returns, when f is an
// answer or no answer; a hang's error depends on the caller's context.
func (f IdentityFault) Err() *flip.IdentityProviderError {
	if f.NoAnswer || f.Hang {
		return IdentityError(0, "")
	}
	return IdentityError(f.Status, f.Code)
}

// The causes IdentityError gives its errors: the status and code are in
// the error already.
var (
	errNoAnswer = errors.New("connection closed without an answer (injected by fliptest)")
	errAnswer   = errors.New("injected by fliptest")
)

// IdentityError returns the *flip.IdentityProviderError the Cognito adapter
// returns (after its retries) when the provider answers with this HTTP
// status and error code, classified by the same rules:
//
//   - code "UserNotFoundException": flip.ErrUserNotFound;
//   - a throttling code ("TooManyRequestsException", "ThrottlingException"
//     and the rest of the AWS SDK's list), whatever the status: transient
//     (flip.ErrIdentityProviderUnavailable);
//   - 429, any 5xx, a 2xx (an answer that broke off), or status 0 (no
//     answer: a dropped or refused connection): transient;
//   - any other status (400, 403, …): definitive (flip.ErrIdentityProvider).
//
// The cognito package's tests check these rules against the adapter's
// for every status and code that matters, so the two cannot drift.
func IdentityError(status int, code string) *flip.IdentityProviderError {
	e := &flip.IdentityProviderError{Op: lookupOp, Status: status, Code: code, Kind: flip.ErrIdentityProvider, Err: errAnswer}
	if status == 0 {
		e.Err = errNoAnswer
	}
	switch {
	case code == "UserNotFoundException":
		e.Kind = flip.ErrUserNotFound
	case throttleCodes[code],
		status == 0,
		status == http.StatusTooManyRequests,
		status >= 500,
		status >= 200 && status < 300:
		e.Kind = flip.ErrIdentityProviderUnavailable
	}
	return e
}

// throttleCodes are the error codes the AWS SDK treats as throttling
// (retry.DefaultThrottleErrorCodes in aws-sdk-go-v2 v1.48.0), copied so
// that this package does not import the SDK. The cognito package's tests
// fail if the SDK's list changes.
var throttleCodes = map[string]bool{
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"TransactionInProgressException":         true,
	"RequestLimitExceeded":                   true,
	"BandwidthLimitExceeded":                 true,
	"LimitExceededException":                 true,
	"RequestThrottled":                       true,
	"SlowDown":                               true,
	"PriorRequestNotComplete":                true,
	"EC2ThrottledException":                  true,
}
