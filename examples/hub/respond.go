package main

import (
	"encoding/json"
	"net/http"
)

// retryAfter is the Retry-After header (seconds) of every 503: the hub
// is busy or a dependency is, and the same request may pass soon.
const retryAfter = "5"

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON writes v as the JSON body with status. Responses are never
// cached: some carry keys.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client has gone if this fails
}

// writeError writes {"error": msg} with status. msg must be safe to show
// to the caller: no driver error, no key, no internal detail.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}
