package main

import (
	"errors"
	"net/http"

	"github.com/londonaicentre/flip"
)

// registrationStatus maps a RegisterTrust error to the HTTP status and the
// message shown to the caller, as DESIGN.md prescribes: bad input 400,
// duplicate trust or no free kit slot 409, anything else 500 with no
// detail. Messages are built from flip's typed errors, never from err's
// full text, which may carry a driver error.
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
	}
	return http.StatusInternalServerError, internalErrorMessage
}

// internalErrorMessage is the whole body of every 500.
const internalErrorMessage = "internal server error"
