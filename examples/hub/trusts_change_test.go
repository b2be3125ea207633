package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

// changeEndpoint is one of the trust-change routes.
type changeEndpoint struct{ method, suffix string }

var (
	rotateKey   = changeEndpoint{http.MethodPost, "/rotate-key"}
	revokeKey   = changeEndpoint{http.MethodPost, "/revoke"}
	deleteTrust = changeEndpoint{http.MethodDelete, ""}

	changeEndpoints = []changeEndpoint{rotateKey, revokeKey, deleteTrust}
)

func (e changeEndpoint) String() string { return e.method + " /admin/trusts/{id}" + e.suffix }

// send sends e for the trust id to the hub at baseURL, with header
// (asAdmin for the admin).
func (e changeEndpoint) send(t *testing.T, baseURL, id string, header map[string]string) response {
	t.Helper()
	return do(t, e.method, baseURL+"/admin/trusts/"+id+e.suffix, "", "", header)
}

// register registers a trust through the hub and returns the 201.
func register(t *testing.T, baseURL, name, code string) response {
	t.Helper()
	r := postTrust(t, baseURL, fmt.Sprintf(`{"name":%q,"code":%q,"region":"London"}`, name, code))
	wantStatus(t, r, http.StatusCreated)
	return r
}

// trustMe calls GET /trust/me with key.
func trustMe(t *testing.T, baseURL, key string) response {
	t.Helper()
	return do(t, http.MethodGet, baseURL+"/trust/me", "", "", map[string]string{APIKeyHeader: key})
}

// keyAudits returns the actions flip_trust_key_audit holds for id, each
// with the admin who made it, in order.
func keyAudits(t *testing.T, db flip.DBTX, id string) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT action || ' by ' || coalesce(modified_by_user_id::text, 'NULL')
		FROM flip_trust_key_audit WHERE trust_id = $1 ORDER BY audit_date, action`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRotateKey_NewKeysReplaceTheOld(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	reg := register(t, h.srv.URL, "Rotating Trust", "ROT")
	id, oldKey := reg.body["id"].(string), reg.body["trust_api_key"].(string)
	wantStatus(t, trustMe(t, h.srv.URL, oldKey), http.StatusOK) // the grant is cached now

	r := rotateKey.send(t, h.srv.URL, id, asAdmin)
	wantStatus(t, r, http.StatusOK)
	if got, want := slices.Sorted(maps.Keys(r.body)), slices.Sorted(maps.Keys(reg.body)); !slices.Equal(got, want) {
		t.Errorf("rotation body fields %v, want the registration's %v", got, want)
	}
	for _, field := range []string{"id", "name", "code", "region", "created_at", "fl_kit_slot", "fl_kit_slot_number"} {
		if r.body[field] != reg.body[field] {
			t.Errorf("%s = %v, registration said %v", field, r.body[field], reg.body[field])
		}
	}
	newKey, _ := r.body["trust_api_key"].(string)
	serviceKey, _ := r.body["trust_internal_service_key"].(string)
	if flip.CheckKey(flip.TrustAPIKey, newKey) != nil || flip.CheckKey(flip.InternalServiceKey, serviceKey) != nil {
		t.Errorf("keys are not well formed")
	}
	if newKey == oldKey || serviceKey == reg.body["trust_internal_service_key"] {
		t.Errorf("a key was not replaced")
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store: the body holds keys", got)
	}

	wantStatus(t, trustMe(t, h.srv.URL, oldKey), http.StatusUnauthorized)
	if me := trustMe(t, h.srv.URL, newKey); me.status != http.StatusOK || me.body["id"] != id {
		t.Errorf("GET /trust/me with the new key: %d %s", me.status, me.raw)
	}
	if got := keyAudits(t, h.db, id); !slices.Equal(got, []string{"ROTATED by " + testAdmin.String()}) {
		t.Errorf("flip_trust_key_audit = %v", got)
	}
}

func TestRevokeKey_KeyStopsTrustAndSlotStayRotateRestores(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	reg := register(t, h.srv.URL, "Revoked Trust", "REV")
	id, key := reg.body["id"].(string), reg.body["trust_api_key"].(string)
	wantStatus(t, trustMe(t, h.srv.URL, key), http.StatusOK)

	r := revokeKey.send(t, h.srv.URL, id, asAdmin)
	wantStatus(t, r, http.StatusOK)
	want := map[string]any{"id": id, "name": "Revoked Trust", "status": "revoked"}
	if !maps.Equal(r.body, want) {
		t.Errorf("body = %s, want %v", r.raw, want)
	}
	wantStatus(t, trustMe(t, h.srv.URL, key), http.StatusUnauthorized)
	if slot, err := store.KitSlotOf(t.Context(), h.db, uuid.MustParse(id)); err != nil || slot.Name != "Trust_001" {
		t.Errorf("slot after revocation = %+v, %v; want Trust_001 kept", slot, err)
	}
	if n := countRows(t, h.db, "trust"); n != 1 {
		t.Errorf("%d trusts after revocation, want the one kept", n)
	}
	wantStatus(t, revokeKey.send(t, h.srv.URL, id, asAdmin), http.StatusOK) // again: nothing to do, still fine

	rot := rotateKey.send(t, h.srv.URL, id, asAdmin)
	wantStatus(t, rot, http.StatusOK)
	if rot.body["fl_kit_slot"] != "Trust_001" {
		t.Errorf("fl_kit_slot after revocation = %v", rot.body["fl_kit_slot"])
	}
	wantStatus(t, trustMe(t, h.srv.URL, rot.body["trust_api_key"].(string)), http.StatusOK)
	wantStatus(t, trustMe(t, h.srv.URL, key), http.StatusUnauthorized)
	by := " by " + testAdmin.String()
	if got := keyAudits(t, h.db, id); !slices.Equal(got, []string{"REVOKED" + by, "REVOKED" + by, "ROTATED" + by}) {
		t.Errorf("flip_trust_key_audit = %v", got)
	}
}

func TestDeleteTrust_TrustGoesSlotIsFreed(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	reg := register(t, h.srv.URL, "Leaving Trust", "LEAVE")
	id, key := reg.body["id"].(string), reg.body["trust_api_key"].(string)
	wantStatus(t, trustMe(t, h.srv.URL, key), http.StatusOK)

	r := deleteTrust.send(t, h.srv.URL, id, asAdmin)
	wantStatus(t, r, http.StatusOK)
	for field, want := range map[string]any{
		"status": "deleted", "trust_id": id, "name": "Leaving Trust", "freed_fl_kit_slot": "Trust_001",
		"freed_fl_kit_slots":     []any{"Trust_001"},
		"dependent_rows_deleted": map[string]any{"user_role": float64(0)},
	} {
		if fmt.Sprint(r.body[field]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", field, r.body[field], want)
		}
	}
	if len(r.body) != 6 {
		t.Errorf("body = %s, want six fields", r.raw)
	}
	wantStatus(t, trustMe(t, h.srv.URL, key), http.StatusUnauthorized)
	if n := countRows(t, h.db, "trust"); n != 0 {
		t.Errorf("%d trusts after deletion", n)
	}
	var by uuid.UUID
	if err := h.db.QueryRowContext(t.Context(), `SELECT modified_by_user_id FROM trusts_audit WHERE trust_id = $1 AND action = 'DELETED'`, id).Scan(&by); err != nil || by != testAdmin {
		t.Errorf("DELETED audit row by %s (%v), want %s", by, err, testAdmin)
	}
	wantStatus(t, deleteTrust.send(t, h.srv.URL, id, asAdmin), http.StatusNotFound) // a retry finds it gone
	// The freed slot goes to the next registration.
	if again := register(t, h.srv.URL, "Next Trust", "NEXT"); again.body["fl_kit_slot"] != "Trust_001" {
		t.Errorf("next registration got slot %v, want the freed Trust_001", again.body["fl_kit_slot"])
	}
}

// A legacy hub trust with two kit slots and rows in every table that
// references trust: the first freed slot is named on its own, and every
// table's count is reported.
func TestDeleteTrust_LegacyHubTrust(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))
	url := serveHandler(t, NewHandler(Config{DB: db.DB, Authoriser: fakeAuth}))
	r := deleteTrust.send(t, url, "0b7d3f1e-2a44-4c1a-9a0e-1f0000000001", asAdmin)
	wantStatus(t, r, http.StatusOK)
	if r.body["freed_fl_kit_slot"] != "Legacy_001" || fmt.Sprint(r.body["freed_fl_kit_slots"]) != "[Legacy_001 Legacy_002]" {
		t.Errorf("freed %v and %v, want Legacy_001 and [Legacy_001 Legacy_002]", r.body["freed_fl_kit_slot"], r.body["freed_fl_kit_slots"])
	}
	counts, _ := r.body["dependent_rows_deleted"].(map[string]any)
	for _, table := range []string{"fl_job_trust", "fl_metrics", "fl_logs", "model_trust_intersect", "project_trust_intersect",
		"query_result", "trust_task", "xnat_project_status", "cohort_snapshot_status", "user_role"} {
		if n, _ := counts[table].(float64); n < 1 {
			t.Errorf("dependent_rows_deleted[%s] = %v, want the trust's rows counted", table, counts[table])
		}
	}
}

// A row of the trust's that another table's rows reference blocks the
// deletion with a 409 naming both tables, and nothing changes; once the
// reference is gone the deletion goes through.
func TestDeleteTrust_ReferencedRowIs409AndChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	if _, err := h.db.ExecContext(t.Context(), `
		CREATE TABLE site_report (id uuid PRIMARY KEY, trust_id uuid NOT NULL REFERENCES trust (id));
		CREATE TABLE report_link (id uuid PRIMARY KEY, report_id uuid REFERENCES site_report (id))`); err != nil {
		t.Fatal(err)
	}
	reg := register(t, h.srv.URL, "Reported Trust", "REP")
	id, key := reg.body["id"].(string), reg.body["trust_api_key"].(string)
	report := uuid.New()
	if _, err := h.db.ExecContext(t.Context(), `INSERT INTO site_report VALUES ($1, $2)`, report, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.ExecContext(t.Context(), `INSERT INTO report_link VALUES (gen_random_uuid(), $1)`, report); err != nil {
		t.Fatal(err)
	}
	before := fliptest.DumpTables(t, h.db)

	r := deleteTrust.send(t, h.srv.URL, id, asAdmin)
	wantStatus(t, r, http.StatusConflict)
	if msg := fmt.Sprint(r.body["error"]); !strings.Contains(msg, "site_report") || !strings.Contains(msg, "report_link") || strings.Contains(msg, "pq:") {
		t.Errorf("error = %q, want both tables named and no driver detail", msg)
	}
	if after := fliptest.DumpTables(t, h.db); after != before {
		t.Error("a blocked deletion changed the database")
	}
	wantStatus(t, trustMe(t, h.srv.URL, key), http.StatusOK)

	if _, err := h.db.ExecContext(t.Context(), `DELETE FROM report_link`); err != nil {
		t.Fatal(err)
	}
	r = deleteTrust.send(t, h.srv.URL, id, asAdmin)
	wantStatus(t, r, http.StatusOK)
	if counts := fmt.Sprint(r.body["dependent_rows_deleted"]); counts != "map[site_report:1 user_role:0]" {
		t.Errorf("dependent_rows_deleted = %s", counts)
	}
}

// wantTrustUnchanged fails unless the trust registered as reg still
// authenticates with its key and no change of it has been recorded.
func wantTrustUnchanged(t *testing.T, db flip.DBTX, reg response) {
	t.Helper()
	if _, err := flip.NewVerifier(db).Verify(t.Context(), reg.body["trust_api_key"].(string)); err != nil {
		t.Errorf("the trust's key no longer authenticates: %v", err)
	}
	if a, k := countRows(t, db, "trusts_audit"), countRows(t, db, "flip_trust_key_audit"); a != 1 || k != 0 {
		t.Errorf("%d trusts_audit rows and %d key audit rows, want the registration's only", a, k)
	}
	if slot, err := store.KitSlotOf(t.Context(), db, uuid.MustParse(reg.body["id"].(string))); err != nil || slot.Name == "" {
		t.Errorf("the trust lost its slot: %+v, %v", slot, err)
	}
}

func TestTrustChanges_UnknownIDIs404(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	reg := register(t, h.srv.URL, "Only Trust", "ONLY")
	for _, e := range changeEndpoints {
		r := e.send(t, h.srv.URL, uuid.NewString(), asAdmin)
		wantStatus(t, r, http.StatusNotFound)
		if r.body["error"] == "" {
			t.Errorf("%v: no error message", e)
		}
	}
	wantTrustUnchanged(t, h.db, reg)
}

// An id that is not a UUID is 400, after the credentials are checked.
func TestTrustChanges_MalformedIDIs400(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	reg := register(t, h.srv.URL, "Only Trust", "ONLY")
	for _, id := range []string{"not-a-uuid", "42", reg.body["id"].(string)[1:], reg.body["id"].(string) + "0", url.PathEscape("' OR 1=1 --"), "Only%20Trust"} {
		for _, e := range changeEndpoints {
			wantStatus(t, e.send(t, h.srv.URL, id, asAdmin), http.StatusBadRequest)
			wantStatus(t, e.send(t, h.srv.URL, id, nil), http.StatusUnauthorized)
		}
	}
	wantTrustUnchanged(t, h.db, reg)
}

func TestTrustChanges_CallerMustBeAdmin(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	reg := register(t, h.srv.URL, "Guarded Trust", "GUARD")
	id := reg.body["id"].(string)
	for _, e := range changeEndpoints {
		r := e.send(t, h.srv.URL, id, nil)
		wantStatus(t, r, http.StatusUnauthorized)
		if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
			t.Errorf("%v: WWW-Authenticate = %q", e, got)
		}
		wantStatus(t, e.send(t, h.srv.URL, id, map[string]string{"X-Test-Role": "viewer"}), http.StatusForbidden)
	}
	wantTrustUnchanged(t, h.db, reg)
}

// ServeMux answers another method with 405 and the route's own in Allow.
func TestTrustChanges_WrongMethodIs405(t *testing.T) {
	t.Parallel()
	h := newHub(t)
	id := uuid.NewString()
	for path, allow := range map[string]string{"/rotate-key": http.MethodPost, "/revoke": http.MethodPost, "": http.MethodDelete} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodPost, http.MethodDelete} {
			if m == allow {
				continue
			}
			r := do(t, m, h.srv.URL+"/admin/trusts/"+id+path, "", "", asAdmin)
			if r.status != http.StatusMethodNotAllowed || !strings.Contains(r.header.Get("Allow"), allow) {
				t.Errorf("%s /admin/trusts/{id}%s: %d, Allow %q; want 405 allowing %s", m, path, r.status, r.header.Get("Allow"), allow)
			}
		}
	}
}

// lockTrustRow locks the trust's row FOR UPDATE in a transaction of its
// own, as a concurrent change of the same trust would, until release (or
// the end of the test).
func lockTrustRow(t *testing.T, db *fliptest.DB, id string) (release func()) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), `SELECT 1 FROM trust WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(func() { _ = tx.Rollback() })
	t.Cleanup(release)
	return release
}

// A trust row held by another transaction ends each change after
// lock_timeout with a retryable 503, and nothing changes.
func TestTrustChanges_HeldTrustRowIsARetryable503(t *testing.T) {
	t.Parallel()
	h := newLiveHub(t, Config{LockTimeout: 50 * time.Millisecond}, "Trust_001")
	reg := register(t, h.url, "Busy Trust", "BUSY")
	id := reg.body["id"].(string)
	release := lockTrustRow(t, h.db, id)
	for _, e := range changeEndpoints {
		r := e.send(t, h.url, id, asAdmin)
		wantRetryLater(t, r)
		if !strings.Contains(fmt.Sprint(r.body["error"]), "not made") {
			t.Errorf("%v: error = %q, want it to say nothing was changed", e, r.body["error"])
		}
	}
	release()
	wantTrustUnchanged(t, h.db, reg)
	wantStatus(t, rotateKey.send(t, h.url, id, asAdmin), http.StatusOK)
}

// Registrations and changes share one bound on admin writes: with a bound
// of one, a change waiting on a lock makes a registration and another
// change 503 at once.
func TestTrustChanges_ShareTheRegistrationsInFlightBound(t *testing.T) {
	t.Parallel()
	h := newLiveHub(t, Config{LockTimeout: time.Minute, MaxRegistrations: 1}, "Trust_001..Trust_002")
	id := register(t, h.url, "Waiting Trust", "WAIT").body["id"].(string)
	release := lockTrustRow(t, h.db, id)
	done := make(chan result, 1)
	go func() {
		r, err := tryDo(t.Context(), http.MethodPost, h.url+"/admin/trusts/"+id+"/rotate-key", "", "", asAdmin)
		done <- result{r, err}
	}()
	if !eventually(func() bool { waiting, _ := countBackends(t, h.db); return waiting == 1 }) {
		t.Fatal("the rotation never waited on the lock")
	}
	for _, r := range []response{postTrust(t, h.url, `{"name":"Other","code":"OTHER"}`), revokeKey.send(t, h.url, id, asAdmin)} {
		wantRetryLater(t, r)
		if !strings.Contains(fmt.Sprint(r.body["error"]), "in progress") {
			t.Errorf("error = %q, want the bound's message", r.body["error"])
		}
	}
	release()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	wantStatus(t, res.r, http.StatusOK)
	wantStatus(t, postTrust(t, h.url, `{"name":"Other","code":"OTHER"}`), http.StatusCreated)
}

// failingChanger writes a trust row in the handler's transaction, as a
// change that fails half-way would, then fails with err.
type failingChanger struct {
	t   *testing.T
	err error
}

func (f failingChanger) fail(ctx context.Context, tx flip.DBTX) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES ($1, $2, now())`, uuid.New(), uuid.NewString()); err != nil {
		f.t.Error(err)
	}
	return f.err
}

func (f failingChanger) RotateKeys(ctx context.Context, tx flip.DBTX, _ flip.TrustChange) (flip.RegistrationResult, error) {
	return flip.RegistrationResult{}, f.fail(ctx, tx)
}

func (f failingChanger) RevokeKey(ctx context.Context, tx flip.DBTX, _ flip.TrustChange) (flip.Trust, error) {
	return flip.Trust{}, f.fail(ctx, tx)
}

func (f failingChanger) DeleteTrust(ctx context.Context, tx flip.DBTX, _ flip.TrustChange) (flip.DeletionResult, error) {
	return flip.DeletionResult{}, f.fail(ctx, tx)
}

// The handler rolls back whatever the change wrote whenever it returns an
// error, maps the error to its status and shows no internal detail.
func TestTrustChanges_RollBackOnEveryError(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		err    error
		status int
	}{
		{"driver error", errSecret, http.StatusInternalServerError},
		{"change error", fmt.Errorf("%w: store API-key hash: %w", flip.ErrTrustChange, errSecret), http.StatusInternalServerError},
		{"not found", fmt.Errorf("%w: no trust has id …", flip.ErrTrustNotFound), http.StatusNotFound},
		{"blocked", &flip.DeletionBlockedError{TrustID: uuid.New(), Table: "site_report", ReferencedFrom: "report_link"}, http.StatusConflict},
		{"blocked without tables", fmt.Errorf("%w: %w", flip.ErrTrustDeletionBlocked, errSecret), http.StatusConflict},
		{"retryable", fmt.Errorf("%w: lock trust: %w", flip.ErrTrustChange, fmt.Errorf("%w: %w", flip.ErrRetryable, errSecret)), http.StatusServiceUnavailable},
		{"deadline", fmt.Errorf("%w: delete trust: %w", flip.ErrTrustChange, fmt.Errorf("%w (%w)", errSecret, context.DeadlineExceeded)), http.StatusServiceUnavailable},
		{"canceled", fmt.Errorf("%w: %w", context.Canceled, errSecret), http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t)
			var afterCommit atomic.Int32
			url := serveHandler(t, serveChanges(&TrustChangeHandler{
				DB: db, Authoriser: fakeAuth, Changer: failingChanger{t, c.err},
				AfterCommit: func(uuid.UUID) { afterCommit.Add(1) },
			}))
			for _, e := range changeEndpoints {
				r := e.send(t, url, uuid.NewString(), asAdmin)
				wantStatus(t, r, c.status)
				if retry := r.header.Get("Retry-After") != ""; retry != (c.status == http.StatusServiceUnavailable) {
					t.Errorf("%v: Retry-After = %q on a %d", e, r.header.Get("Retry-After"), c.status)
				}
				if strings.Contains(r.raw, "password") || strings.Contains(r.raw, "10.0.0.5") || strings.Contains(r.raw, "pq:") {
					t.Errorf("%v: body leaks internal detail: %s", e, r.raw)
				}
			}
			wantNothingWritten(t, db)
			if afterCommit.Load() != 0 {
				t.Error("AfterCommit ran for a failed change")
			}
		})
	}
}

// serveChanges mounts h's endpoints on the patterns NewHandler uses.
func serveChanges(h *TrustChangeHandler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /admin/trusts/{id}/rotate-key", h.RotateKey())
	mux.Handle("POST /admin/trusts/{id}/revoke", h.Revoke())
	mux.Handle("DELETE /admin/trusts/{id}", h.Delete())
	return mux
}

// brokenCommit makes the real change, then a statement that fails, whose
// error it swallows: the transaction is aborted and its commit fails.
type brokenCommit struct{ *flip.Registry }

func abort(ctx context.Context, tx flip.DBTX) { _, _ = tx.ExecContext(ctx, `SELECT 1/0`) }

func (b brokenCommit) RotateKeys(ctx context.Context, tx flip.DBTX, c flip.TrustChange) (flip.RegistrationResult, error) {
	res, err := b.Registry.RotateKeys(ctx, tx, c)
	abort(ctx, tx)
	return res, err
}

func (b brokenCommit) RevokeKey(ctx context.Context, tx flip.DBTX, c flip.TrustChange) (flip.Trust, error) {
	res, err := b.Registry.RevokeKey(ctx, tx, c)
	abort(ctx, tx)
	return res, err
}

func (b brokenCommit) DeleteTrust(ctx context.Context, tx flip.DBTX, c flip.TrustChange) (flip.DeletionResult, error) {
	res, err := b.Registry.DeleteTrust(ctx, tx, c)
	abort(ctx, tx)
	return res, err
}

// A change the library made whose commit fails is 500, and the rollback
// leaves the trust as it was: its old key works, nothing is audited.
func TestTrustChanges_CommitFailureIs500AndCommitsNothing(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	var afterCommit atomic.Int32
	url := serveHandler(t, serveChanges(&TrustChangeHandler{
		DB: db, Authoriser: fakeAuth, Changer: brokenCommit{flip.NewRegistry(store.New())},
		AfterCommit: func(uuid.UUID) { afterCommit.Add(1) },
	}))
	res := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Steady Trust", Code: "STEADY"})
	for _, e := range changeEndpoints {
		r := e.send(t, url, res.Trust.ID.String(), asAdmin)
		wantStatus(t, r, http.StatusInternalServerError)
		if strings.TrimSpace(r.raw) != `{"error":"internal server error"}` {
			t.Errorf("%v: body = %s, want only the generic message", e, r.raw)
		}
	}
	wantTrustUnchanged(t, db, response{body: map[string]any{"id": res.Trust.ID.String(), "trust_api_key": res.APIKey.Reveal()}})
	if afterCommit.Load() != 0 {
		t.Error("AfterCommit ran although the commit failed")
	}
}

func TestRotateKey_LogsNoKeys(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The library's own log lines go to the same place.
	url := serveHandler(t, NewHandler(Config{DB: db.DB, Authoriser: fakeAuth, Logger: log,
		Registry: flip.NewRegistry(store.New(), flip.WithLogger(log))}))
	reg := register(t, url, "Logged Trust", "LOG")
	id := reg.body["id"].(string)
	var secrets []string
	for range 2 {
		r := rotateKey.send(t, url, id, asAdmin)
		wantStatus(t, r, http.StatusOK)
		apiKey, serviceKey := r.body["trust_api_key"].(string), r.body["trust_internal_service_key"].(string)
		secrets = append(secrets, apiKey, serviceKey, flip.HashAPIKey(apiKey))
	}
	wantStatus(t, rotateKey.send(t, url, uuid.NewString(), asAdmin), http.StatusNotFound)
	out := logs.String()
	if !strings.Contains(out, `"msg":"trust keys rotated"`) || !strings.Contains(out, "trust keys rotated: failed") {
		t.Fatalf("expected log lines missing:\n%s", out)
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains a rotated key or its hash:\n%s", out)
		}
	}
}
