package flip

// Every sentinel and typed error of the package, in one place: first those
// of registration, then of keys, verification, identity-provider lookups,
// the main-user configuration and seeding. Each says when it is returned
// and the HTTP status the hub maps it to.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// sentinel is the type of flip's error values. A sentinel other than the
// base unwraps to its parent, so errors.Is(ErrDuplicateTrust,
// ErrTrustRegistration) holds without the base's text leaking into every
// message.
type sentinel struct {
	msg    string
	parent error
	also   error // a second class the error belongs to, e.g. ErrRetryable
}

func (e *sentinel) Error() string { return e.msg }

func (e *sentinel) Unwrap() []error {
	switch {
	case e.parent == nil:
		return nil
	case e.also == nil:
		return []error{e.parent}
	}
	return []error{e.parent, e.also}
}

// ErrTrustRegistration is the base of every error RegisterTrust returns:
// errors.Is(err, ErrTrustRegistration) holds for all of them, including
// wrapped database errors. A hub maps whatever is not one of the more
// specific errors below to HTTP 500 and shows no detail.
var ErrTrustRegistration error = &sentinel{msg: "trust registration failed"}

// ErrInvalidTrustParams is returned when TrustParams cannot be registered as
// given: a blank name or code, or a value with a NUL byte, invalid UTF-8, a
// control character or more characters than its documented limit (see
// MaxNameLength). Nothing is sent to the database. The hub maps it to HTTP
// 400. A *InvalidTrustParamError says which field and why.
var ErrInvalidTrustParams error = &sentinel{msg: "invalid trust parameters", parent: ErrTrustRegistration}

// ErrEmptyTrustName is returned when the trust name is empty or only
// whitespace. It is also an ErrInvalidTrustParams; the hub maps it to 400.
var ErrEmptyTrustName error = &sentinel{msg: "trust name is required", parent: ErrInvalidTrustParams}

// ErrEmptyTrustCode is returned when the trust code is empty or only
// whitespace. It is also an ErrInvalidTrustParams; the hub maps it to 400.
var ErrEmptyTrustCode error = &sentinel{msg: "trust code is required", parent: ErrInvalidTrustParams}

// ErrDuplicateTrust is returned when a trust with the same name or the same
// code, each compared case-insensitively in its canonical form (see
// TrustParams.Normalize), already exists (or is being
// registered by a concurrent transaction that committed first). The hub
// maps it to HTTP 409. A *DuplicateTrustError says which field collided.
var ErrDuplicateTrust error = &sentinel{msg: "trust already exists", parent: ErrTrustRegistration}

// ErrNoFreeKitSlot is returned when every FL kit slot in the pool is
// assigned. The fix is operational: add slots to the pool. The hub maps it
// to HTTP 409.
var ErrNoFreeKitSlot error = &sentinel{msg: "no FL kit slots available; pre-provision more FL kits", parent: ErrTrustRegistration}

// ErrKitSlotsBusy is returned when the pool has free FL kit slots but
// every one of them is row-locked by a concurrent registration whose
// transaction has not ended yet: the pool is busy, not empty. It is also
// an ErrRetryable (roll back, wait briefly, try again) and never an
// ErrNoFreeKitSlot. The hub maps it to HTTP 503 with Retry-After.
var ErrKitSlotsBusy error = &sentinel{msg: "every free FL kit slot is being claimed by another registration; retry", parent: ErrTrustRegistration, also: ErrRetryable}

// ErrRetryable matches a failure that says nothing about the request and
// is likely to pass if the whole transaction is rolled back and run again:
// a serialization failure (SQLSTATE 40001), a deadlock (40P01), a lock
// that could not be had within lock_timeout (55P03), a statement cancelled
// by statement_timeout (57014) while the caller's context was still live,
// and ErrKitSlotsBusy. It is matched whatever the driver (any error with a
// SQLState() method). It is not a child of ErrTrustRegistration: a
// registration error that is retryable matches both. The hub maps it to
// HTTP 503 with Retry-After.
var ErrRetryable error = &sentinel{msg: "transient database conflict; roll back and retry the transaction"}

// ErrNotInTransaction is returned when RegisterTrust, RotateKeys, RevokeKey
// or DeleteTrust is handed a connection pool (*sql.DB, *sqlx.DB) or an
// executor with no open transaction, such as a *sql.Conn in autocommit
// mode. Nothing is written: flip never begins or commits a transaction
// behind the caller. Pass a *sql.Tx, a *sqlx.Tx or a *sql.Conn on which you
// began a transaction (or, to register, call Registry.RegisterTrustDB,
// which owns its transaction). Like ErrRetryable it is a class, not a
// child of a base: the error returned also matches the operation's base,
// ErrTrustRegistration or ErrTrustChange.
var ErrNotInTransaction error = &sentinel{msg: "the caller's open transaction is needed"}

// ErrRollbackRequired is returned, joined to the error that made a
// registration (or a rotation, revocation or deletion) fail, when the
// failed work could not be undone inside the caller's transaction (the
// rollback to the savepoint failed twice, or the savepoint was already
// gone). flip then aborts the transaction on purpose so that a COMMIT
// cannot persist half of it; the caller must roll it back. Hubs that roll
// back on every error, as they should, never need to test for it. The
// error also matches the operation's base.
var ErrRollbackRequired error = &sentinel{msg: "the failed operation could not be undone; roll the transaction back"}

// InvalidTrustParamError tells which field of TrustParams was refused and
// why. It matches ErrInvalidTrustParams and ErrTrustRegistration with
// errors.Is, and ErrEmptyTrustName or ErrEmptyTrustCode when the field was
// blank.
type InvalidTrustParamError struct {
	Field  string // "name", "code" or "region"
	Reason string // e.g. "contains a NUL byte"
	err    error  // the sentinel this error answers to
}

func (e *InvalidTrustParamError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("invalid trust %s: %s", e.Field, e.Reason)
}

// Unwrap returns the most specific sentinel (ErrEmptyTrustName,
// ErrEmptyTrustCode or ErrInvalidTrustParams).
func (e *InvalidTrustParamError) Unwrap() error {
	if e.err == nil {
		return ErrInvalidTrustParams
	}
	return e.err
}

// DuplicateTrustError describes the registration a new trust collided with.
// It matches ErrDuplicateTrust and ErrTrustRegistration with errors.Is.
type DuplicateTrustError struct {
	Field string // "name" or "code": what collided
	Name  string // the name that was asked for
	Code  string // the code that was asked for
	// Existing is the trust already registered, when it could be read. It is
	// nil when the collision was reported by a unique index.
	Existing *Trust
	cause    error
}

func (e *DuplicateTrustError) Error() string {
	if e.Field == "code" {
		return fmt.Sprintf("a trust with code %q already exists", e.Code)
	}
	return fmt.Sprintf("a trust named %q already exists", e.Name)
}

// Unwrap returns ErrDuplicateTrust and, when the collision came from the
// database (a unique violation), that driver error too.
func (e *DuplicateTrustError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrDuplicateTrust}
	}
	return []error{ErrDuplicateTrust, e.cause}
}

// registrationError wraps an unexpected failure of a registration (a
// database or minting error); see opError.
func registrationError(ctx context.Context, step string, cause error) error {
	return opError(ctx, ErrTrustRegistration, step, cause)
}

// opError wraps an unexpected failure (a database or minting error) so
// that it answers errors.Is for base (ErrTrustRegistration or
// ErrTrustChange) while keeping the cause reachable. When ctx has ended it
// also matches ctx's error, whatever the driver reported (lib/pq, for one,
// answers a cancelled statement with SQLSTATE 57014): the caller gave up,
// and that is what the error says. Otherwise, when the database says the
// transaction lost a race, it also matches ErrRetryable.
func opError(ctx context.Context, base error, step string, cause error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(cause, ctxErr) {
		return fmt.Errorf("%w: %s: %w", base, step, withContextError(ctx, cause))
	}
	if errors.Is(cause, base) {
		return cause
	}
	if retryableSQLState(cause) {
		return fmt.Errorf("%w: %s: %w: %w", base, step, ErrRetryable, cause)
	}
	return fmt.Errorf("%w: %s: %w", base, step, cause)
}

// withContextError adds ctx's error to err when ctx has ended and err does
// not say so already: a driver whose statement was cancelled for the
// context (lib/pq: "canceling statement due to user request") does not
// wrap the context's error, and a caller must still be able to tell a
// deadline with errors.Is(err, context.DeadlineExceeded).
func withContextError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%w)", err, ctxErr)
	}
	return err
}

// retryableSQLState reports whether err carries one of the SQLSTATEs that
// ErrRetryable stands for.
func retryableSQLState(err error) bool {
	switch pgsql.SQLState(err) {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available (lock_timeout, NOWAIT)
		"57014": // query_canceled: statement_timeout, or a cancel request
		return true
	}
	return false
}

// Errors: A trust's later life (RotateKeys, RevokeKey, DeleteTrust).

// ErrTrustChange is the base of every error RotateKeys, RevokeKey and
// DeleteTrust return, as ErrTrustRegistration is of RegisterTrust's. A hub
// maps whatever is not one of the more specific errors below (or
// ErrRetryable, 503) to HTTP 500 and shows no detail.
var ErrTrustChange error = &sentinel{msg: "trust change failed"}

// ErrTrustNotFound is returned when no trust has the id asked for (it may
// have been deleted by a transaction that committed first). Nothing was
// changed. The hub maps it to HTTP 404; the deploy tooling reports
// "not_found". store's trust lookups return it too.
var ErrTrustNotFound error = &sentinel{msg: "trust not found", parent: ErrTrustChange}

// ErrTrustDeletionBlocked is returned by DeleteTrust when a row it would
// have to delete is referenced in turn by a row that is not the trust's
// (a foreign key from a table that does not itself reference the trust):
// deleting it would break that reference, or cascade into data flip does
// not know. Nothing is deleted. The hub maps it to HTTP 409. A
// *DeletionBlockedError names the tables when they are known.
var ErrTrustDeletionBlocked error = &sentinel{msg: "the trust has rows that other rows depend on; nothing was deleted", parent: ErrTrustChange}

// DeletionBlockedError says which of the trust's rows could not be
// deleted: rows of Table that rows of ReferencedFrom point at. It matches
// ErrTrustDeletionBlocked and ErrTrustChange with errors.Is. Both names
// are "" when the database reported the reference without saying where
// (a row inserted while the deletion ran).
type DeletionBlockedError struct {
	TrustID        uuid.UUID
	Table          string // the trust's dependent table, e.g. "query_result"
	ReferencedFrom string // the table whose rows reference Table's
	cause          error
}

func (e *DeletionBlockedError) Error() string {
	if e.Table == "" {
		return fmt.Sprintf("trust %s cannot be deleted: a row that belongs to it is referenced by another row; nothing was deleted", e.TrustID)
	}
	return fmt.Sprintf("trust %s cannot be deleted: rows of %s that belong to it are referenced from %s; nothing was deleted", e.TrustID, e.Table, e.ReferencedFrom)
}

// Unwrap returns ErrTrustDeletionBlocked and the database's error, if any.
func (e *DeletionBlockedError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrTrustDeletionBlocked}
	}
	return []error{ErrTrustDeletionBlocked, e.cause}
}

// changeError wraps an unexpected failure of a rotation, revocation or
// deletion; see opError.
func changeError(ctx context.Context, step string, cause error) error {
	return opError(ctx, ErrTrustChange, step, cause)
}

// Errors: Keys.

// ErrMalformedKey is returned by CheckKey for a string that cannot be a key
// flip minted: wrong length, alphabet, prefix or checksum. A hub answers it
// with 401 without looking anything up.
var ErrMalformedKey = errors.New("malformed key")

// Errors: API-key verification.

// ErrUnauthorized is the base of every error Verifier.Verify returns for a
// key that does not identify a trust: malformed, unknown, or matching no
// stored hash. The hub answers it with HTTP 401 and a
// "WWW-Authenticate: ApiKey" header. Errors that are not ErrUnauthorized
// (the database is unreachable) are the hub's problem, not the caller's:
// answer 503 or 500, never 401, so a trust does not conclude that its key
// was revoked.
var ErrUnauthorized error = &sentinel{msg: "unauthorized"}

// ErrUnknownAPIKey is returned by Verifier.Verify for a well-formed key that
// no trust holds. It is also an ErrUnauthorized (HTTP 401).
var ErrUnknownAPIKey error = &sentinel{msg: "no trust holds this API key", parent: ErrUnauthorized}

// ErrAmbiguousAPIKeyHash is returned by Verifier.Verify when two trusts
// hold the same API-key hash. With 256-bit keys that only happens if rows
// were copied by hand; the key is refused rather than granted to either
// trust, and the hub should answer 500, not 401.
var ErrAmbiguousAPIKeyHash = errors.New("more than one trust holds this API-key hash")

// Errors: Identity provider lookups.

// ErrIdentityProvider is the base of every error an IdentityProvider
// returns, whether the user is missing, the address invalid or the
// provider down: errors.Is(err, ErrIdentityProvider) holds for all of them.
// A hub that looks users up on a request maps the definitive ones (those
// that are not ErrUserNotFound or ErrIdentityProviderUnavailable) to 500.
var ErrIdentityProvider error = &sentinel{msg: "identity provider lookup failed"}

// ErrUserNotFound is returned when no user of the identity provider has the
// address looked up. Seeding skips such a user with a warning (the account
// may not be created yet); a hub answering a request maps it to 404.
var ErrUserNotFound error = &sentinel{msg: "user not found in identity provider", parent: ErrIdentityProvider}

// ErrUserNotVerified is the cause of a main user skipped because every
// account holding the address fails to prove it (see User.ProvesAddress):
// a self sign-up nobody confirmed, an address nobody verified, a disabled
// account. Seeding skips such a user with a warning and carries on
// (SeedSkippedUnverified): the next boot tries again, once the real
// account is verified, and nobody can stop the boot by signing up with an
// admin's address.
var ErrUserNotVerified error = &sentinel{msg: "no account in the identity provider proves the address", parent: ErrIdentityProvider}

// ErrInvalidIdentifier is returned, before anything is sent, for an email
// address that cannot be used as a lookup key: empty, with whitespace or
// control characters, without exactly one "@" between non-empty parts, or
// with a double quote or backslash, which would change the meaning of a
// Cognito ListUsers filter. Seeding stops on it (the configuration is
// wrong); a hub maps it to 400.
var ErrInvalidIdentifier error = &sentinel{msg: "invalid user identifier", parent: ErrIdentityProvider}

// ErrIdentityProviderUnavailable is returned when the identity provider
// could not answer but might if asked again later: HTTP 5xx, throttling
// that outlasted the bounded retries, a timeout, a refused, reset or
// dropped connection to a host that resolves. A configuration fault (a
// host that does not resolve, a TLS failure, missing or refused
// credentials, an unknown user pool) is not unavailability: it is a
// definitive ErrIdentityProvider, so that a misconfigured hub fails at
// boot instead of skipping every user. Seeding logs a warning, skips the
// user and carries on; a hub answering a request maps it to 503.
var ErrIdentityProviderUnavailable error = &sentinel{msg: "identity provider unavailable", parent: ErrIdentityProvider}

// IdentityProviderError describes a failed lookup: the HTTP status and
// error code the provider answered with, if any. errors.Is matches its
// Kind (ErrUserNotFound, ErrIdentityProviderUnavailable or
// ErrIdentityProvider, and through them ErrIdentityProvider) and its cause;
// errors.As reaches it through any wrapping:
//
//	var ipe *flip.IdentityProviderError
//	if errors.As(err, &ipe) && ipe.Status == http.StatusForbidden { … }
type IdentityProviderError struct {
	// Op is the provider operation that failed, e.g. "ListUsers".
	Op string
	// Status is the HTTP status of the provider's answer, or 0 when there
	// was none (connection refused or dropped, timeout, and the
	// configuration faults without an answer: a host that does not
	// resolve, a TLS failure, a failing credential chain), and when
	// seeding found the fault in a successful answer (an ambiguous or
	// unverified address).
	Status int
	// Code is the provider's error code (e.g. "TooManyRequestsException",
	// "NotAuthorizedException"), or one flip names for a fault found in
	// a successful answer (CodeAmbiguousEmail), or "" when there was none.
	Code string
	// Kind is the sentinel the error answers to: ErrUserNotFound,
	// ErrUserNotVerified (seeding's verdict on the accounts found),
	// ErrIdentityProviderUnavailable (transient) or ErrIdentityProvider
	// (definitive). Nil means ErrIdentityProvider.
	Kind error
	// Err is the underlying error, e.g. the SDK's.
	Err error
}

// CodeAmbiguousEmail is the IdentityProviderError.Code of a lookup whose
// address two or more accounts that prove it hold (Status 0: seeding found
// it, see User.ProvesAddress), or whose answer does not list every account
// holding the address (Status 200: the adapter found it, e.g. Cognito said
// more pages follow). It is definitive: the address does not say which
// account is meant, so seeding stops instead of granting a role to either.
const CodeAmbiguousEmail = "AmbiguousEmail"

func (e *IdentityProviderError) Error() string {
	var b strings.Builder
	b.WriteString(e.kind().Error())
	if e.Op != "" {
		b.WriteString(": ")
		b.WriteString(e.Op)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Kind and the cause, so that errors.Is matches both.
func (e *IdentityProviderError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.kind()}
	}
	return []error{e.kind(), e.Err}
}

// Transient reports whether the failure may pass on a later attempt (Kind
// is ErrIdentityProviderUnavailable).
func (e *IdentityProviderError) Transient() bool {
	return errors.Is(e.kind(), ErrIdentityProviderUnavailable)
}

func (e *IdentityProviderError) kind() error {
	if e.Kind == nil {
		return ErrIdentityProvider
	}
	return e.Kind
}

// Errors: Main-user configuration.

// ErrInvalidMainUsers is returned when the main-user configuration cannot
// be used: unreadable JSON, an unknown field, a blank or invalid email, an
// unknown role, a blank or overlong name, or the same email twice. Seeding
// checks the whole configuration before it looks anybody up, so nothing is
// sent or written. An *InvalidMainUserError says which entry and why.
var ErrInvalidMainUsers error = &sentinel{msg: "invalid main-user configuration"}

// InvalidMainUserError says which configured main user was refused and
// why. It matches ErrInvalidMainUsers with errors.Is, and also
// ErrInvalidIdentifier when the email was the problem.
type InvalidMainUserError struct {
	Index  int    // position in the configuration, from 0
	Email  string // the entry's email as configured
	Field  string // "email", "role", "name" or "organisation"
	Reason string
	cause  error
}

func (e *InvalidMainUserError) Error() string {
	return fmt.Sprintf("main user #%d (%q): %s %s", e.Index+1, e.Email, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidMainUsers and, for an email problem, the
// ErrInvalidIdentifier error that describes it.
func (e *InvalidMainUserError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidMainUsers}
	}
	return []error{ErrInvalidMainUsers, e.cause}
}

// Errors: Seeding.

// ErrSeedMainUsers is the base of every error SeedMainUsers returns: an
// invalid configuration (also ErrInvalidMainUsers), a definitive identity
// provider failure, a database error, or the context ending. A hub that
// seeds at boot logs it and either refuses to start or starts without the
// remaining users, as it prefers.
var ErrSeedMainUsers error = &sentinel{msg: "seeding main users failed"}

// SeedUserError says which main user seeding stopped at and why. It
// matches ErrSeedMainUsers and its cause with errors.Is (for example
// ErrIdentityProvider, ErrInvalidIdentifier, context.DeadlineExceeded),
// and reaches a *IdentityProviderError with errors.As.
type SeedUserError struct {
	Index int    // position of the user in the configuration, from 0
	Email string // the user's email
	// Step is "lookup" (the identity provider failed definitively) or
	// "write" (the database failed).
	Step string
	// Status and Code are the identity provider's HTTP status and error
	// code, when it answered.
	Status int
	Code   string
	Err    error
}

func (e *SeedUserError) Error() string {
	msg := fmt.Sprintf("seed main user #%d %q: %s", e.Index+1, e.Email, e.Step)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != "" {
			msg += " " + e.Code
		}
		msg += ")"
	}
	return msg + ": " + e.Err.Error()
}

// Unwrap returns ErrSeedMainUsers and the cause.
func (e *SeedUserError) Unwrap() []error { return []error{ErrSeedMainUsers, e.Err} }
