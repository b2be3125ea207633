package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/londonaicentre/flip"
)

// APIKeyHeader is the header a trust sends its API key in. The standard
// "Authorization: ApiKey <key>" is accepted too.
const APIKeyHeader = "X-API-Key"

// trustKey is the context key under which RequireTrustAPIKey stores the
// verified trust.
type trustKey struct{}

// TrustFromContext returns the trust RequireTrustAPIKey verified for this
// request.
func TrustFromContext(ctx context.Context) (flip.Trust, bool) {
	t, ok := ctx.Value(trustKey{}).(flip.Trust)
	return t, ok
}

// RequireTrustAPIKey lets a request through to next only with a valid trust
// API key, and puts the trust in its context (TrustFromContext). A missing,
// malformed or unknown key is answered 401 with "WWW-Authenticate: ApiKey";
// a malformed key never reaches the database. When the key cannot be
// checked (the database is down) the answer is 503, not 401, so a trust
// does not conclude its key was revoked. Nothing logged contains the key.
func RequireTrustAPIKey(v *flip.Verifier, log *slog.Logger, next http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, msg := presentedKey(r)
		if msg != "" {
			unauthorized(w, msg)
			return
		}
		trust, err := v.Verify(r.Context(), key)
		switch {
		case errors.Is(err, flip.ErrMalformedKey):
			unauthorized(w, "malformed trust API key")
			return
		case errors.Is(err, flip.ErrUnauthorized):
			unauthorized(w, "unknown trust API key")
			return
		case err != nil:
			log.ErrorContext(r.Context(), "trust API key could not be verified", slog.Any("error", err))
			w.Header().Set("Retry-After", retryAfter)
			writeError(w, http.StatusServiceUnavailable, "the key could not be checked; retry later")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), trustKey{}, trust)))
	})
}

// presentedKey returns the key from X-API-Key or "Authorization: ApiKey",
// or a message saying why there is none. Two different keys in one request
// are refused rather than guessing which one counts.
func presentedKey(r *http.Request) (key, msg string) {
	var keys []string
	for _, v := range r.Header.Values(APIKeyHeader) {
		keys = append(keys, strings.TrimSpace(v))
	}
	for _, v := range r.Header.Values("Authorization") {
		if scheme, k, ok := strings.Cut(strings.TrimSpace(v), " "); ok && strings.EqualFold(scheme, "ApiKey") {
			keys = append(keys, strings.TrimSpace(k))
		}
	}
	if len(keys) == 0 {
		return "", "a trust API key is required (X-API-Key header)"
	}
	for _, k := range keys[1:] {
		if k != keys[0] {
			return "", "more than one trust API key presented"
		}
	}
	return keys[0], ""
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", "ApiKey")
	writeError(w, http.StatusUnauthorized, msg)
}
