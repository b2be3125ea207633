package flip

import (
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
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.parent }

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

// ErrNotInTransaction is returned when RegisterTrust is handed a connection
// pool (*sql.DB, *sqlx.DB) or an executor with no open transaction. Nothing
// is written. Pass a *sql.Tx, *sqlx.Tx or a *sql.Conn, or call
// Registry.RegisterTrustDB, which owns its transaction.
var ErrNotInTransaction error = &sentinel{msg: "RegisterTrust needs the caller's transaction, not a connection pool", parent: ErrTrustRegistration}

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
// error) so that it answers errors.Is for ErrTrustRegistration while keeping
// the cause reachable.
func registrationError(step string, cause error) error {
	if errors.Is(cause, ErrTrustRegistration) {
		return cause
	}
	return fmt.Errorf("%w: %s: %w", ErrTrustRegistration, step, cause)
}
