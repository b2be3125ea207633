package flippgx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/store"
)

// registerTrustHandler is the hub's POST /admin/trusts on pgx: the
// request's own pgx.Tx from the hub's pool, the handler's work and flip's
// registration inside it, the commit last, and only then the keys, once.
// flip never commits or rolls back tx; on a refusal tx is as it was, and
// here it is rolled back. (examples/hub has the whole handler: admin
// authentication, body limits, lock timeout, in-flight bound, logging.)
func registerTrustHandler(pool *pgxpool.Pool, reg *flippgx.Registry, admin uuid.UUID) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Name, Code, Region string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
			http.Error(w, "the body must be a JSON object with name and code", http.StatusBadRequest)
			return
		}
		ctx := r.Context()
		tx, err := pool.Begin(ctx)
		if err != nil {
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		}
		defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
		res, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: body.Name, Code: body.Code, Region: body.Region, AuditUserID: admin})
		if err != nil {
			refuse(w, err)
			return
		}
		if err := tx.Commit(ctx); err != nil { // the outcome is unknown: no keys, no promise
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": res.Trust.ID, "name": res.Trust.Name, "code": res.Trust.Code,
			"trust_api_key": res.APIKey.Reveal(), "trust_internal_service_key": res.InternalServiceKey.Reveal(),
			"fl_kit_slot": res.KitSlot.Name, "fl_kit_slot_number": res.KitSlot.Number,
		})
	}
}

// refuse answers a registration that was not made, from flip's typed
// errors only: a driver's text never reaches the client.
func refuse(w http.ResponseWriter, err error) {
	var invalid *flip.InvalidTrustParamError
	var dup *flip.DuplicateTrustError
	switch {
	case errors.As(err, &invalid):
		http.Error(w, invalid.Error(), http.StatusBadRequest)
	case errors.As(err, &dup):
		http.Error(w, dup.Error(), http.StatusConflict)
	case errors.Is(err, flip.ErrNoFreeKitSlot):
		http.Error(w, flip.ErrNoFreeKitSlot.Error(), http.StatusConflict)
	case errors.Is(err, flip.ErrRetryable), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "nothing was registered; retry", http.StatusServiceUnavailable)
	default:
		http.Error(w, "internal server error", http.StatusInternalServerError)
	}
}

// The hub's registration endpoint on a pgx pool, called three times: a new
// trust, the same name again, and a blank name.
func Example_hubHandler() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := examplePool(ctx, "Trust_001")
	defer pool.Close()
	reg := flippgx.New(flip.NewRegistry(store.New()))
	srv := httptest.NewServer(registerTrustHandler(pool, reg, uuid.MustParse("7f4e1b2a-0c3d-4e5f-8a9b-1c2d3e4f5a6b")))
	defer srv.Close()

	for _, body := range []string{
		`{"name": "Guy's and St Thomas'", "code": "GSTT", "region": "London"}`,
		`{"name": "Guy's and St Thomas' ", "code": "GSTT2"}`,
		`{"name": " ", "code": "X"}`,
	} {
		resp, err := http.Post(srv.URL+"/admin/trusts", "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			fmt.Println(resp.StatusCode, strings.TrimSpace(string(out)))
			continue
		}
		var created struct {
			Name   string `json:"name"`
			Slot   string `json:"fl_kit_slot"`
			APIKey string `json:"trust_api_key"`
		}
		_ = json.Unmarshal(out, &created)
		fmt.Println(resp.StatusCode, created.Name, created.Slot, flip.CheckKey(flip.TrustAPIKey, created.APIKey) == nil)
	}
	// Output:
	// 201 Guy's and St Thomas' Trust_001 true
	// 409 a trust named "Guy's and St Thomas'" already exists
	// 400 trust name is required
}
