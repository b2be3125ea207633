package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// testAdmin is the admin the fake authoriser recognises.
var testAdmin = uuid.MustParse("6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")

// fakeAuth reads the caller's role from the X-Test-Role header: "admin"
// is testAdmin, "viewer" is authenticated but not an admin, anything else
// is unauthenticated.
var fakeAuth = AuthoriserFunc(func(r *http.Request) (uuid.UUID, error) {
	switch r.Header.Get("X-Test-Role") {
	case "admin":
		return testAdmin, nil
	case "viewer":
		return uuid.Nil, ErrForbidden
	}
	return uuid.Nil, ErrUnauthenticated
})

// hub is a running example hub on its own database.
type hub struct {
	db       *fliptest.DB
	srv      *httptest.Server
	verifier *flip.Verifier
}

// newHub starts the example hub's routes on a fresh database with the
// given kit slots.
func newHub(t *testing.T, slots ...string) *hub {
	t.Helper()
	db := fliptest.NewDB(t)
	if len(slots) > 0 {
		fliptest.AddSlots(t, db, slots...)
	}
	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 100))
	srv := httptest.NewServer(NewHandler(Config{DB: db.DB, Authoriser: fakeAuth, Verifier: v}))
	t.Cleanup(srv.Close)
	return &hub{db: db, srv: srv, verifier: v}
}

// serveHandler serves h alone on a test server.
func serveHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, url, contentType, body string, header map[string]string) response {
	t.Helper()
	r, err := tryDo(t.Context(), method, url, contentType, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryDo is do for goroutines: it returns the transport error (no reply, a
// connection closed) instead of failing the test. A request that has had
// no answer after a minute fails: a bound against a hung hub, not a
// measurement.
func tryDo(ctx context.Context, method, url, contentType, body string, header map[string]string) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r, nil
}

var asAdmin = map[string]string{"X-Test-Role": "admin"}

// postTrust posts body to /admin/trusts as the admin.
func postTrust(t *testing.T, baseURL, body string) response {
	t.Helper()
	return do(t, http.MethodPost, baseURL+"/admin/trusts", "application/json", body, asAdmin)
}

func countRows(t *testing.T, db flip.DBTX, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantNothingWritten fails if any trust, audit row or slot assignment exists.
func wantNothingWritten(t *testing.T, db flip.DBTX) {
	t.Helper()
	var assigned int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL`).Scan(&assigned); err != nil {
		t.Fatal(err)
	}
	if n, a := countRows(t, db, "trust"), countRows(t, db, "trusts_audit"); n+a+assigned != 0 {
		t.Errorf("%d trusts, %d audit rows, %d slots assigned; want nothing written", n, a, assigned)
	}
}

// wantRetryLater fails unless r is a 503 with Retry-After whose body
// shows no internal detail.
func wantRetryLater(t *testing.T, r response) {
	t.Helper()
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %v", r.header)
	}
	if msg, _ := r.body["error"].(string); msg == "" || strings.Contains(msg, "pq:") || strings.Contains(msg, "SQLSTATE") {
		t.Errorf("error message = %q", msg)
	}
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

var errSecret = errors.New("pq: password authentication failed for user hub at 10.0.0.5")
