package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/londonaicentre/flip"
)

// registrationStatus maps a RegisterTrust error to the HTTP status and the
// message shown to the caller, as DESIGN.md prescribes: bad input 400,
// duplicate trust or no free kit slot 409, anything else 500 with no
// detail; and, for a registration that was not made but may pass if sent
// again, 503 (the caller adds Retry-After): every free kit slot being
// claimed at this moment, a retryable database conflict (deadlock,
// serialization failure, lock or statement timeout), or the deadline. 503
// rather than 504 because nothing was committed: the hub is busy, the
// outcome is not in doubt. Messages are built from flip's typed errors,
// never from err's full text, which may carry a driver error.
func registrationStatus(err error) (int, string) {
	var (
		invalid *flip.InvalidTrustParamError
		dup     *flip.DuplicateTrustError
	)
	switch {
	case errors.As(err, &invalid):
		return http.StatusBadRequest, invalid.Error()
	case errors.Is(err, flip.ErrInvalidTrustParams):
		return http.StatusBadRequest, flip.ErrInvalidTrustParams.Error()
	case errors.As(err, &dup):
		return http.StatusConflict, dup.Error()
	case errors.Is(err, flip.ErrDuplicateTrust):
		return http.StatusConflict, flip.ErrDuplicateTrust.Error()
	case errors.Is(err, flip.ErrNoFreeKitSlot):
		return http.StatusConflict, flip.ErrNoFreeKitSlot.Error()
	case errors.Is(err, flip.ErrKitSlotsBusy):
		return http.StatusServiceUnavailable, flip.ErrKitSlotsBusy.Error()
	case errors.Is(err, flip.ErrRetryable):
		return http.StatusServiceUnavailable, "the registration met a concurrent change and was not made; retry"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "the registration did not finish in time and was not made; retry"
	}
	return http.StatusInternalServerError, internalErrorMessage
}

// changeStatus maps a RotateKeys, RevokeKey or DeleteTrust error to the
// HTTP status and the message shown to the caller, as registrationStatus
// does: no such trust 404; a deletion blocked by a reference from outside
// the trust's rows 409, naming both tables (the schema is no secret to an
// admin, and the names say what to clear first); a change not made that
// may pass if sent again (a retryable conflict, a lock timeout, the
// deadline) 503; anything else 500 with no detail.
func changeStatus(err error) (int, string) {
	var blocked *flip.DeletionBlockedError
	switch {
	case errors.Is(err, flip.ErrTrustNotFound):
		return http.StatusNotFound, "no trust has this id"
	case errors.As(err, &blocked):
		return http.StatusConflict, blocked.Error()
	case errors.Is(err, flip.ErrTrustDeletionBlocked):
		return http.StatusConflict, flip.ErrTrustDeletionBlocked.Error()
	case errors.Is(err, flip.ErrRetryable):
		return http.StatusServiceUnavailable, "the change met a concurrent change or a held lock and was not made; retry"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "the change did not finish in time and was not made; retry"
	}
	return http.StatusInternalServerError, internalErrorMessage
}

// internalErrorMessage is the whole body of every 500.
const internalErrorMessage = "internal server error"
