package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DefaultMaxBodyBytes bounds the body of POST /admin/trusts. A trust's
// name, code and region fit in well under 2 KiB; 64 KiB leaves room for
// whitespace and escapes while stopping a client from making the hub
// buffer megabytes.
const DefaultMaxBodyBytes = 64 << 10

// registerRequest is the JSON body of POST /admin/trusts. A missing or null
// field is the empty string, which flip refuses for name and code.
type registerRequest struct {
	Name   string `json:"name"`
	Code   string `json:"code"`
	Region string `json:"region"`
}

// requestError is a refused request body: its status and a message that is
// safe to show the caller.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// checkContentType accepts application/json, with charset utf-8 if any
// charset is given.
func checkContentType(r *http.Request) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &requestError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &requestError{http.StatusUnsupportedMediaType, "the body must be UTF-8"}
	}
	return nil
}

// decodeRegisterRequest reads exactly one JSON object of known fields from
// r's body, reading at most limit bytes. Invalid UTF-8 is refused rather
// than left to encoding/json, which would silently replace it with U+FFFD
// and store a name nobody typed.
func decodeRegisterRequest(w http.ResponseWriter, r *http.Request, limit int64) (registerRequest, error) {
	var req registerRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return req, bodyError(err, limit)
	}
	if !utf8.Valid(body) {
		return req, &requestError{http.StatusBadRequest, "the body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, bodyError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return req, bodyError(err, limit)
		}
		return req, &requestError{http.StatusBadRequest, "the body must hold exactly one JSON object"}
	}
	return req, nil
}

// bodyError turns a decoding failure into a status and a message naming
// what was wrong with the body, without echoing it.
func bodyError(err error, limit int64) error {
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return &requestError{http.StatusBadRequest, "the body is empty; send a JSON object with name, code and region"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return &requestError{http.StatusBadRequest, "the body is not valid JSON"}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &requestError{http.StatusBadRequest, "the body must be a JSON object"}
		}
		return &requestError{http.StatusBadRequest, fmt.Sprintf("field %q must be a string", typeErr.Field)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &requestError{http.StatusBadRequest, "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "; expected name, code and region"}
	}
	return &requestError{http.StatusBadRequest, "the body could not be read as JSON"}
}
