package flip

import (
	"context"
	"errors"
	"fmt"
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

// ErrDuplicateTrust is returned when a trust with the same name, or with the
// same code compared case-insensitively, already exists (or is being
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

// ErrNotInTransaction is returned when RegisterTrust is handed a connection
// pool (*sql.DB, *sqlx.DB) or an executor with no open transaction, such as
// a *sql.Conn in autocommit mode. Nothing is written: flip never begins or
// commits a transaction behind the caller. Pass a *sql.Tx, a *sqlx.Tx or a
// *sql.Conn on which you began a transaction, or call
// Registry.RegisterTrustDB, which owns its transaction.
var ErrNotInTransaction error = &sentinel{msg: "RegisterTrust needs the caller's open transaction", parent: ErrTrustRegistration}

// ErrRollbackRequired is returned, joined to the error that made a
// registration fail, when the failed work could not be undone inside the
// caller's transaction (the rollback to the savepoint failed twice, or the
// savepoint was already gone). flip then aborts the transaction on purpose
// so that a COMMIT cannot persist half a registration; the caller must roll
// it back. Hubs that roll back on every error, as they should, never need
// to test for it.
var ErrRollbackRequired error = &sentinel{msg: "the failed registration could not be undone; roll the transaction back", parent: ErrTrustRegistration}

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

// NewDuplicateTrustError builds the error a TrustStore returns when its
// insert hits a unique constraint on name or code; cause is the driver error.
// Store implementations use it; callers only inspect it.
func NewDuplicateTrustError(field, name, code string, cause error) *DuplicateTrustError {
	return &DuplicateTrustError{Field: field, Name: name, Code: code, cause: cause}
}

// registrationError wraps an unexpected failure (a database or minting
// error) so that it answers errors.Is for ErrTrustRegistration while
// keeping the cause reachable. When ctx has ended it also matches ctx's
// error, whatever the driver reported (lib/pq, for one, answers a
// cancelled statement with SQLSTATE 57014): the caller gave up, and that
// is what the error says. Otherwise, when the database says the
// transaction lost a race, it also matches ErrRetryable.
func registrationError(ctx context.Context, step string, cause error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(cause, ctxErr) {
		return fmt.Errorf("%w: %s: %w (%w)", ErrTrustRegistration, step, cause, ctxErr)
	}
	if errors.Is(cause, ErrTrustRegistration) {
		return cause
	}
	if retryableSQLState(cause) {
		return fmt.Errorf("%w: %s: %w: %w", ErrTrustRegistration, step, ErrRetryable, cause)
	}
	return fmt.Errorf("%w: %s: %w", ErrTrustRegistration, step, cause)
}

// retryableSQLState reports whether err carries one of the SQLSTATEs that
// ErrRetryable stands for. Drivers expose the code through a SQLState()
// method (lib/pq's *pq.Error and pgx's *pgconn.PgError both do), which
// keeps this package free of any driver import.
func retryableSQLState(err error) bool {
	var coded interface{ SQLState() string }
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.SQLState() {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available (lock_timeout, NOWAIT)
		"57014": // query_canceled: statement_timeout, or a cancel request
		return true
	}
	return false
}
