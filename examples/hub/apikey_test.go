package main

import (
	"context"
	"database/sql"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// countingLookup counts how often the database is asked, as a hub that
// wraps its pool for metrics would.
type countingLookup struct {
	flip.DBTX
	calls atomic.Int32
}

func (c *countingLookup) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	c.calls.Add(1)
	return c.DBTX.QueryContext(ctx, q, args...)
}

// keyedHub is a hub with one trust registered over HTTP, whose API key
// guards /trust/me.
type keyedHub struct {
	*hub
	key    string
	lookup *countingLookup
	url    string // /trust/me behind a verifier counting lookups
}

func newKeyedHub(t *testing.T) keyedHub {
	t.Helper()
	h := newHub(t, "Trust_001")
	r := postTrust(t, h.srv.URL, `{"name":"Alpha","code":"A"}`)
	wantStatus(t, r, http.StatusCreated)
	lookup := &countingLookup{DBTX: h.db}
	url := serveHandler(t, RequireTrustAPIKey(flip.NewVerifier(lookup), nil, http.HandlerFunc(whoAmI)))
	return keyedHub{hub: h, key: r.body["trust_api_key"].(string), lookup: lookup, url: url}
}

func wantUnauthorized(t *testing.T, r response) {
	t.Helper()
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); got != "ApiKey" {
		t.Errorf("WWW-Authenticate = %q, want ApiKey", got)
	}
}

func TestRequireTrustAPIKey_AcceptsKeyInEitherHeader(t *testing.T) {
	t.Parallel()
	h := newKeyedHub(t)
	for _, header := range []map[string]string{
		{"X-API-Key": h.key},
		{"Authorization": "ApiKey " + h.key},
		{"Authorization": "apikey  " + h.key + " "},
		{"X-API-Key": h.key, "Authorization": "ApiKey " + h.key},
	} {
		r := do(t, http.MethodGet, h.srv.URL+"/trust/me", "", "", header)
		wantStatus(t, r, http.StatusOK)
		if r.body["name"] != "Alpha" || r.body["code"] != "A" {
			t.Errorf("%v: body = %s", header, r.raw)
		}
	}
}

func TestRequireTrustAPIKey_RefusesMissingMalformedAndUnknownKeys(t *testing.T) {
	t.Parallel()
	h := newKeyedHub(t)
	typo := []byte(h.key)
	typo[12] ^= 1
	unknown, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	serviceKey, _ := flip.RandomKeyMinter{}.MintKey(flip.InternalServiceKey)

	wantUnauthorized(t, do(t, http.MethodGet, h.url, "", "", nil))
	wantUnauthorized(t, do(t, http.MethodGet, h.url, "", "", map[string]string{"Authorization": "Bearer " + h.key}))
	for _, key := range []string{string(typo), h.key[:20], serviceKey, "x"} {
		r := do(t, http.MethodGet, h.url, "", "", map[string]string{"X-API-Key": key})
		wantUnauthorized(t, r)
		if r.body["error"] != "malformed trust API key" {
			t.Errorf("error = %v", r.body["error"])
		}
	}
	if n := h.lookup.calls.Load(); n != 0 {
		t.Errorf("malformed or missing keys caused %d database lookups, want 0", n)
	}
	r := do(t, http.MethodGet, h.url, "", "", map[string]string{"X-API-Key": unknown})
	wantUnauthorized(t, r)
	if r.body["error"] != "unknown trust API key" {
		t.Errorf("error = %v", r.body["error"])
	}
	wantUnauthorized(t, do(t, http.MethodGet, h.url, "", "", map[string]string{"X-API-Key": h.key, "Authorization": "ApiKey " + unknown}))
	wantStatus(t, do(t, http.MethodGet, h.url, "", "", map[string]string{"X-API-Key": h.key}), http.StatusOK)
}

func TestRequireTrustAPIKey_DatabaseDownIs503(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	closed, err := sql.Open("postgres", db.URL)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	url := serveHandler(t, RequireTrustAPIKey(flip.NewVerifier(closed), nil, http.HandlerFunc(whoAmI)))
	key, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	r := do(t, http.MethodGet, url, "", "", map[string]string{"X-API-Key": key})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("WWW-Authenticate") != "" || r.header.Get("Retry-After") == "" {
		t.Errorf("headers = %v: want Retry-After and no WWW-Authenticate", r.header)
	}
}
