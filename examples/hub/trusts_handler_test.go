package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

func TestRegisterTrust_Created(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_002", "Trust_001")
	before := time.Now().UTC().Add(-time.Second)
	r := postTrust(t, h.srv.URL, `{"name":" Guy's and St Thomas' ","code":"GSTT","region":"London"}`)
	wantStatus(t, r, http.StatusCreated)

	id, err := uuid.Parse(fmt.Sprint(r.body["id"]))
	if err != nil {
		t.Fatalf("id: %v", err)
	}
	created, err := time.Parse(time.RFC3339Nano, fmt.Sprint(r.body["created_at"]))
	if err != nil || created.Before(before) {
		t.Errorf("created_at = %v (%v)", r.body["created_at"], err)
	}
	for field, want := range map[string]any{
		"name": "Guy's and St Thomas'", "code": "GSTT", "region": "London",
		"fl_kit_slot": "Trust_001", "fl_kit_slot_number": float64(1),
	} {
		if r.body[field] != want {
			t.Errorf("%s = %v, want %v", field, r.body[field], want)
		}
	}
	apiKey, _ := r.body["trust_api_key"].(string)
	serviceKey, _ := r.body["trust_internal_service_key"].(string)
	if flip.CheckKey(flip.TrustAPIKey, apiKey) != nil || flip.CheckKey(flip.InternalServiceKey, serviceKey) != nil {
		t.Errorf("keys are not well formed")
	}
	if got := r.header.Get("Location"); got != "/admin/trusts/"+id.String() {
		t.Errorf("Location = %q", got)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store: the body holds keys", got)
	}

	// Committed: another connection sees the trust, its hash, its slot and
	// the audit row naming the admin.
	if trust, err := flip.NewVerifier(h.db).Verify(t.Context(), apiKey); err != nil || trust.ID != id {
		t.Fatalf("trust not found by its key: %v", err)
	}
	var by uuid.UUID
	if err := h.db.QueryRowContext(t.Context(), `SELECT modified_by_user_id FROM trusts_audit WHERE trust_id = $1 AND action = 'REGISTERED'`, id).Scan(&by); err != nil || by != testAdmin {
		t.Errorf("audit modified_by = %s (%v), want %s", by, err, testAdmin)
	}
	if slot, err := store.KitSlotOf(t.Context(), h.db, id); err != nil || slot.Name != "Trust_001" {
		t.Errorf("slot = %+v, %v", slot, err)
	}
}

func TestRegisterTrust_BlankRegionIsNull(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	r := postTrust(t, h.srv.URL, `{"name":"North","code":"N"}`)
	wantStatus(t, r, http.StatusCreated)
	if v, ok := r.body["region"]; !ok || v != nil {
		t.Errorf("region = %v (present %v), want null", v, ok)
	}
}

func TestRegisterTrust_BadInputIs400AndWritesNothing(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	t.Run("cases", func(t *testing.T) {
		for name, body := range map[string]string{
			"blank name":        `{"name":"   ","code":"A"}`,
			"missing name":      `{"code":"A"}`,
			"null name":         `{"name":null,"code":"A"}`,
			"blank code":        `{"name":"A","code":"\t"}`,
			"NUL in name":       `{"name":"A\u0000B","code":"A"}`,
			"control character": `{"name":"A\u0007B","code":"A"}`,
			"name too long":     `{"name":"` + strings.Repeat("x", flip.MaxNameLength+1) + `","code":"A"}`,
			"malformed JSON":    `{"name":"A","code":`,
			"not JSON":          `name=A&code=A`,
			"empty body":        ``,
			"array":             `[{"name":"A","code":"A"}]`,
			"number name":       `{"name":7,"code":"A"}`,
			"unknown field":     `{"name":"A","code":"A","api_key":"x"}`,
			"two objects":       `{"name":"A","code":"A"}{"name":"B","code":"B"}`,
			"trailing garbage":  `{"name":"A","code":"A"} x`,
			"invalid UTF-8":     "{\"name\":\"A\xff\",\"code\":\"A\"}",
			// Spellings a person cannot tell from another trust's, and
			// codes that are not safe file names.
			"zero-width space in name": `{"name":"GS\u200bTT","code":"A"}`,
			"zero-width space in code": `{"name":"A","code":"GS\u200bTT"}`,
			"override in name":         `{"name":"Evil \u202eTSGG","code":"A"}`,
			"lone surrogate in name":   `{"name":"\ud800","code":"A"}`,
			"path as code":             `{"name":"A","code":"../../etc/passwd"}`,
			"spaces in code":           `{"name":"A","code":"G S T T"}`,
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := postTrust(t, h.srv.URL, body)
				wantStatus(t, r, http.StatusBadRequest)
				if msg, _ := r.body["error"].(string); msg == "" || strings.Contains(msg, "pq:") {
					t.Errorf("error message = %q", msg)
				}
			})
		}
	})
	wantNothingWritten(t, h.db)
}

// One registration more than its Bound allows is answered 503 while the others
// still run, without waiting for them; the token comes back afterwards.
func TestRegisterTrust_BeyondTheInFlightBoundIs503AtOnce(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	entered, proceed := make(chan struct{}, 2), make(chan struct{})
	url := serveHandler(t, &TrustsHandler{
		DB: db, Authoriser: fakeAuth, InFlight: NewBound(1),
		Registrar: registrarFunc(func(ctx context.Context, tx flip.DBTX, p flip.TrustParams) (flip.RegistrationResult, error) {
			entered <- struct{}{}
			<-proceed
			return flip.RegistrationResult{Trust: flip.Trust{ID: uuid.New(), Name: p.Name, Code: p.Code}}, nil
		}),
	})
	first := make(chan response, 1)
	go func() {
		r, err := tryDo(t.Context(), http.MethodPost, url, "application/json", `{"name":"A","code":"A"}`, asAdmin)
		if err != nil {
			t.Error(err)
		}
		first <- r
	}()
	<-entered // the first registration holds the only token
	wantRetryLater(t, postTrust(t, url, `{"name":"B","code":"B"}`))
	close(proceed)
	wantStatus(t, <-first, http.StatusCreated)
	wantStatus(t, postTrust(t, url, `{"name":"C","code":"C"}`), http.StatusCreated)
}

func TestRegisterTrust_BlankNameMessage(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	r := postTrust(t, h.srv.URL, `{"name":"","code":"A"}`)
	wantStatus(t, r, http.StatusBadRequest)
	if r.body["error"] != flip.ErrEmptyTrustName.Error() {
		t.Errorf("error = %v, want %q", r.body["error"], flip.ErrEmptyTrustName)
	}
}

func TestRegisterTrust_OversizedBodyIs413(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	body := `{"name":"A","code":"A","region":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	r := postTrust(t, h.srv.URL, body)
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	// Padding after a valid object counts too.
	r = postTrust(t, h.srv.URL, `{"name":"A","code":"A"}`+strings.Repeat(" ", DefaultMaxBodyBytes))
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	wantNothingWritten(t, h.db)
}

func TestRegisterTrust_CallerMustBeAdmin(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	valid := `{"name":"A","code":"A"}`
	url := h.srv.URL + "/admin/trusts"

	r := do(t, http.MethodPost, url, "application/json", valid, nil)
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	r = do(t, http.MethodPost, url, "application/json", valid, map[string]string{"X-Test-Role": "viewer"})
	wantStatus(t, r, http.StatusForbidden)
	// Credentials are checked before the body: a stranger learns nothing
	// about what the endpoint accepts.
	r = do(t, http.MethodPost, url, "text/plain", "garbage", nil)
	wantStatus(t, r, http.StatusUnauthorized)
	wantNothingWritten(t, h.db)
}

func TestRegisterTrust_AuthoriserWithoutAdminIDIs500(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	url := serveHandler(t, &TrustsHandler{DB: db, Registrar: flip.NewRegistry(store.New()),
		Authoriser: AuthoriserFunc(func(*http.Request) (uuid.UUID, error) { return uuid.Nil, nil })})
	wantStatus(t, postTrust(t, url, `{"name":"A","code":"A"}`), http.StatusInternalServerError)
}

func TestRegisterTrust_WrongMethodIs405(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := do(t, m, h.srv.URL+"/admin/trusts", "application/json", `{}`, asAdmin)
		wantStatus(t, r, http.StatusMethodNotAllowed)
		if got := r.header.Get("Allow"); got != http.MethodPost {
			t.Errorf("%s: Allow = %q, want POST", m, got)
		}
	}
}

func TestRegisterTrust_ContentTypeMustBeJSON(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	body := `{"name":"A","code":"A"}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonp", "application/json;;"} {
		r := do(t, http.MethodPost, h.srv.URL+"/admin/trusts", ct, body, asAdmin)
		if r.status != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: status %d, want 415", ct, r.status)
		}
	}
	wantNothingWritten(t, h.db)
	r := do(t, http.MethodPost, h.srv.URL+"/admin/trusts", "Application/JSON; charset=UTF-8", body, asAdmin)
	wantStatus(t, r, http.StatusCreated)
}

func TestRegisterTrust_ConflictsAre409(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001..Trust_002")
	wantStatus(t, postTrust(t, h.srv.URL, `{"name":"Alpha","code":"gstt"}`), http.StatusCreated)

	r := postTrust(t, h.srv.URL, `{"name":"Alpha","code":"OTHER"}`)
	wantStatus(t, r, http.StatusConflict)
	if r.body["error"] != `a trust named "Alpha" already exists` {
		t.Errorf("duplicate name: error = %v", r.body["error"])
	}
	r = postTrust(t, h.srv.URL, `{"name":"Beta","code":"GSTT"}`)
	wantStatus(t, r, http.StatusConflict)
	if r.body["error"] != `a trust with code "GSTT" already exists` {
		t.Errorf("duplicate code: error = %v", r.body["error"])
	}
	wantStatus(t, postTrust(t, h.srv.URL, `{"name":"Beta","code":"B"}`), http.StatusCreated)
	r = postTrust(t, h.srv.URL, `{"name":"Gamma","code":"G"}`)
	wantStatus(t, r, http.StatusConflict)
	if r.body["error"] != flip.ErrNoFreeKitSlot.Error() {
		t.Errorf("no slot: error = %v", r.body["error"])
	}
	if n := countRows(t, h.db, "trust"); n != 2 {
		t.Errorf("%d trusts, want 2", n)
	}
}

func TestRegisterTrust_DatabaseDownIs500WithoutDetail(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	closed, err := sql.Open("postgres", db.URL)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	url := serveHandler(t, NewHandler(Config{DB: closed, Authoriser: fakeAuth}))
	r := postTrust(t, url, `{"name":"A","code":"A"}`)
	wantStatus(t, r, http.StatusInternalServerError)
	if strings.TrimSpace(r.raw) != `{"error":"internal server error"}` {
		t.Errorf("body = %s, want only the generic message", r.raw)
	}
}

// registrarFunc lets a test decide what "registration" does in the
// handler's transaction.
type registrarFunc func(ctx context.Context, tx flip.DBTX, p flip.TrustParams) (flip.RegistrationResult, error)

func (f registrarFunc) RegisterTrust(ctx context.Context, tx flip.DBTX, p flip.TrustParams) (flip.RegistrationResult, error) {
	return f(ctx, tx, p)
}

// The handler rolls back whatever the registrar wrote whenever it returns
// an error, whatever the status, and shows no internal detail.
func TestRegisterTrust_RollsBackOnEveryError(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		err    error
		status int
	}{
		{"driver error", errSecret, http.StatusInternalServerError},
		{"registration error", fmt.Errorf("%w: insert: %w", flip.ErrTrustRegistration, errSecret), http.StatusInternalServerError},
		{"duplicate", flip.ErrDuplicateTrust, http.StatusConflict},
		{"no slot", errors.Join(flip.ErrNoFreeKitSlot, errSecret), http.StatusConflict},
		{"invalid", errors.Join(flip.ErrEmptyTrustCode, errSecret), http.StatusBadRequest},
		{"retryable", fmt.Errorf("%w: claim kit slot: %w", flip.ErrTrustRegistration, errors.Join(flip.ErrRetryable, errSecret)), http.StatusServiceUnavailable},
		{"kit slots busy", fmt.Errorf("claim kit slot: %w", errors.Join(flip.ErrKitSlotsBusy, errSecret)), http.StatusServiceUnavailable},
		{"deadline", fmt.Errorf("%w: insert: %w", flip.ErrTrustRegistration, errors.Join(context.DeadlineExceeded, errSecret)), http.StatusServiceUnavailable},
		{"canceled", errors.Join(context.Canceled, errSecret), http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t)
			var afterCommit atomic.Int32
			url := serveHandler(t, &TrustsHandler{
				DB: db, Authoriser: fakeAuth,
				Registrar: registrarFunc(func(ctx context.Context, tx flip.DBTX, p flip.TrustParams) (flip.RegistrationResult, error) {
					if _, err := tx.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES ($1, $2, now())`, uuid.New(), p.Name); err != nil {
						t.Error(err)
					}
					return flip.RegistrationResult{}, c.err
				}),
				AfterCommit: func(flip.RegistrationResult) { afterCommit.Add(1) },
			})
			r := postTrust(t, url, `{"name":"A","code":"A"}`)
			wantStatus(t, r, c.status)
			if retry := r.header.Get("Retry-After") != ""; retry != (c.status == http.StatusServiceUnavailable) {
				t.Errorf("Retry-After = %q on a %d", r.header.Get("Retry-After"), c.status)
			}
			if strings.Contains(r.raw, "password") || strings.Contains(r.raw, "10.0.0.5") || strings.Contains(r.raw, "pq:") {
				t.Errorf("body leaks internal detail: %s", r.raw)
			}
			wantNothingWritten(t, db)
			if afterCommit.Load() != 0 {
				t.Error("AfterCommit ran for a failed registration")
			}
		})
	}
}

// A registrar that swallows a failed statement leaves the transaction
// aborted; the commit then fails and the handler must answer 500, not 201.
func TestRegisterTrust_CommitFailureIs500(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	var afterCommit atomic.Int32
	url := serveHandler(t, &TrustsHandler{
		DB: db, Authoriser: fakeAuth,
		Registrar: registrarFunc(func(ctx context.Context, tx flip.DBTX, p flip.TrustParams) (flip.RegistrationResult, error) {
			_, _ = tx.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES ($1, $2, now())`, uuid.New(), p.Name)
			_, _ = tx.ExecContext(ctx, `SELECT 1/0`)
			return flip.RegistrationResult{Trust: flip.Trust{ID: uuid.New()}}, nil
		}),
		AfterCommit: func(flip.RegistrationResult) { afterCommit.Add(1) },
	})
	wantStatus(t, postTrust(t, url, `{"name":"A","code":"A"}`), http.StatusInternalServerError)
	wantNothingWritten(t, db)
	if afterCommit.Load() != 0 {
		t.Error("AfterCommit ran although the commit failed")
	}
}

// postConcurrently sends n registrations at once and counts the final
// statuses. Each client does what a 503 asks: it sends the same request
// again (after a short pause) until it gets another answer.
func postConcurrently(t *testing.T, url string, n int, body func(i int) string) map[int]int {
	t.Helper()
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			for t.Context().Err() == nil {
				r, err := tryDo(t.Context(), http.MethodPost, url+"/admin/trusts", "application/json", body(i), asAdmin)
				if err != nil {
					t.Error(err)
					return
				}
				if statuses[i] = r.status; r.status != http.StatusServiceUnavailable {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	return counts
}

func TestRegisterTrust_ConcurrentRequestsShareTenSlots(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001..Trust_010")
	counts := postConcurrently(t, h.srv.URL, 20, func(i int) string {
		return fmt.Sprintf(`{"name":"Trust %d","code":"T%d"}`, i, i)
	})
	if counts[http.StatusCreated] != 10 || counts[http.StatusConflict] != 10 || len(counts) != 2 {
		t.Errorf("statuses = %v, want 10×201 and 10×409", counts)
	}
	var trusts, holders int
	if err := h.db.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM trust), count(DISTINCT assigned_to_trust_id) FROM fl_kit_slot`).Scan(&trusts, &holders); err != nil {
		t.Fatal(err)
	}
	if trusts != 10 || holders != 10 {
		t.Errorf("%d trusts holding %d distinct slots, want 10 and 10", trusts, holders)
	}
}

func TestRegisterTrust_ConcurrentSameNameOneWins(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001..Trust_010")
	counts := postConcurrently(t, h.srv.URL, 10, func(i int) string {
		return fmt.Sprintf(`{"name":"Contested","code":"C%d"}`, i)
	})
	if counts[http.StatusCreated] != 1 || counts[http.StatusConflict] != 9 {
		t.Errorf("statuses = %v, want 1×201 and 9×409", counts)
	}
	if n := countRows(t, h.db, "trust"); n != 1 {
		t.Errorf("%d trusts, want 1", n)
	}
}

func TestRegisterTrust_PurgesVerifierCacheAfterCommit(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001..Trust_002")
	first := postTrust(t, h.srv.URL, `{"name":"A","code":"A"}`)
	wantStatus(t, first, http.StatusCreated)
	if _, err := h.verifier.Verify(t.Context(), first.body["trust_api_key"].(string)); err != nil {
		t.Fatal(err)
	}
	if h.verifier.CachedGrants() != 1 {
		t.Fatal("the grant was not cached")
	}
	wantStatus(t, postTrust(t, h.srv.URL, `{"name":"B","code":"B"}`), http.StatusCreated)
	if n := h.verifier.CachedGrants(); n != 0 {
		t.Errorf("cache holds %d grants after a registration, want 0", n)
	}
}

func TestRegisterTrust_LogsNoKeys(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	var logs syncBuffer
	url := serveHandler(t, NewHandler(Config{DB: db.DB, Authoriser: fakeAuth, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	r := postTrust(t, url, `{"name":"A","code":"A"}`)
	wantStatus(t, r, http.StatusCreated)
	wantStatus(t, postTrust(t, url, `{"name":"A","code":"B"}`), http.StatusConflict)
	apiKey, serviceKey := r.body["trust_api_key"].(string), r.body["trust_internal_service_key"].(string)
	out := logs.String()
	if !strings.Contains(out, "trust registered") || !strings.Contains(out, "trust registration failed") {
		t.Fatalf("expected log lines missing:\n%s", out)
	}
	for _, secret := range []string{apiKey, serviceKey, flip.HashAPIKey(apiKey)} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains a key or its hash:\n%s", out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
