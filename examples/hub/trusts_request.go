package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
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

// registerFields are registerRequest's JSON names, the only keys its body
// may hold (see checkKeys).
var registerFields = []string{"name", "code", "region"}

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
// and store a name nobody typed; so are repeated and case-variant keys
// (checkKeys).
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
	return req, checkKeys(body, registerFields)
}

// checkKeys refuses body, which holds one valid JSON value, if an object
// in it, at any depth, repeats a key, or if its top-level object holds a
// key that is not exactly one of fields. encoding/json would take the
// last of repeated keys ({"name":"A","name":"B"} registers B) and match a
// key to a field ignoring case, Unicode folding included ("NAME", or a
// Kelvin sign K for k): a body that a person, a proxy's filter or another
// JSON parser reads one way would then register another. Keys are
// compared after JSON unescaping, so "n\u0061me" is name. The messages
// quote a key in ASCII (%+q), so that a look-alike shows as what it is.
func checkKeys(body []byte, fields []string) error {
	err := walkKeys(json.NewDecoder(bytes.NewReader(body)), fields)
	var re *requestError
	if err != nil && !errors.As(err, &re) { // the body was decoded already: only a bug gets here
		return &requestError{http.StatusBadRequest, "the body could not be read as JSON"}
	}
	return err
}

// walkKeys reads one JSON value from dec, checking the keys of its
// objects: against fields when fields is not nil (the top level), and
// for repeats at every level.
func walkKeys(dec *json.Decoder, fields []string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		for dec.More() {
			if err := walkKeys(dec, nil); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			switch {
			case seen[key]:
				return &requestError{http.StatusBadRequest, fmt.Sprintf("key %+q appears more than once in one object; send each key once", key)}
			case fields != nil && !slices.Contains(fields, key):
				return &requestError{http.StatusBadRequest, fmt.Sprintf("unknown field %+q; expected %s, spelled exactly so (keys are case-sensitive)", key, strings.Join(fields, ", "))}
			}
			seen[key] = true
			if err := walkKeys(dec, nil); err != nil {
				return err
			}
		}
	default:
		return nil // a string, number, true, false or null
	}
	_, err = dec.Token() // the closing ] or }
	return err
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
