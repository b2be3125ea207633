package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// Authoriser decides whether a request comes from a FLIP admin. The hub
// injects its own (checking the Cognito access token and the caller's
// Admin role); tests inject a fake.
type Authoriser interface {
	// AuthoriseAdmin returns the identity-provider id (Cognito sub) of the
	// admin making r. It returns an error wrapping ErrUnauthenticated when
	// r carries no valid credentials (HTTP 401); any other error means the
	// caller is known but may not register trusts (HTTP 403).
	AuthoriseAdmin(r *http.Request) (adminID uuid.UUID, err error)
}

// AuthoriserFunc adapts a function to Authoriser.
type AuthoriserFunc func(r *http.Request) (uuid.UUID, error)

// AuthoriseAdmin calls f(r).
func (f AuthoriserFunc) AuthoriseAdmin(r *http.Request) (uuid.UUID, error) { return f(r) }

// ErrUnauthenticated is returned by an Authoriser for a request without
// valid credentials; the handler answers 401.
var ErrUnauthenticated = errors.New("authentication required")

// ErrForbidden is returned by an Authoriser for an authenticated caller
// who is not an admin; the handler answers 403.
var ErrForbidden = errors.New("admin permission required")

// StaticTokenAuthoriser accepts "Authorization: Bearer <token>" for a fixed
// set of tokens, each standing for one admin id. It is the example's
// stand-in for real token validation, enough to try the hub locally; a real
// hub verifies Cognito JWTs instead.
type StaticTokenAuthoriser struct {
	admins map[[sha256.Size]byte]uuid.UUID
}

// NewStaticTokenAuthoriser returns an authoriser for tokens (token → admin
// id). Empty tokens are ignored, so an unset variable grants nothing.
func NewStaticTokenAuthoriser(tokens map[string]uuid.UUID) *StaticTokenAuthoriser {
	a := &StaticTokenAuthoriser{admins: map[[sha256.Size]byte]uuid.UUID{}}
	for tok, id := range tokens {
		if tok != "" {
			a.admins[sha256.Sum256([]byte(tok))] = id
		}
	}
	return a
}

// AuthoriseAdmin implements Authoriser. Tokens are compared by their
// SHA-256 in constant time, so timing reveals neither a token nor its
// length.
func (a *StaticTokenAuthoriser) AuthoriseAdmin(r *http.Request) (uuid.UUID, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return uuid.Nil, ErrUnauthenticated
	}
	presented := sha256.Sum256([]byte(strings.TrimSpace(token)))
	var (
		found uuid.UUID
		match int
	)
	for sum, id := range a.admins {
		if subtle.ConstantTimeCompare(presented[:], sum[:]) == 1 {
			found, match = id, 1
		}
	}
	if match == 0 {
		return uuid.Nil, ErrUnauthenticated
	}
	return found, nil
}
