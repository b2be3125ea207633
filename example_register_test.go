package flip_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// Register a trust inside the caller's transaction. The example runs on
// fliptest's in-memory store; in the hub the store is store.New() and the
// transaction comes from db.BeginTx, with exactly the same calls.
func ExampleRegistry_RegisterTrust() {
	ctx := context.Background()
	s := fliptest.NewStore() // in production: store.New()
	_, _ = s.AddSlots("Trust_001..Trust_050")
	reg := flip.NewRegistry(s, flip.WithKeyMinter(fliptest.NewKeyMinter("example"))) // in production: no minter option

	tx := s.Begin() // in production: tx, err := db.BeginTx(ctx, nil)
	defer tx.Rollback()
	res, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{
		Name: "Guy's and St Thomas'", Code: "GSTT", Region: "London",
		// AuditUserID: the admin's Cognito sub, recorded in trusts_audit.
	})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	if err := tx.Commit(); err != nil {
		fmt.Println("commit:", err)
		return
	}
	fmt.Println(res.Trust.Name, res.Trust.Code, res.Trust.Region)
	fmt.Println(res.KitSlot.Name, res.KitSlot.Number)
	fmt.Println(res.APIKey[:8], flip.CheckKey(flip.TrustAPIKey, res.APIKey) == nil)
	fmt.Println(res.InternalServiceKey[:8], flip.CheckKey(flip.InternalServiceKey, res.InternalServiceKey) == nil)
	// Output:
	// Guy's and St Thomas' GSTT London
	// Trust_001 1
	// flip_ak_ true
	// flip_sk_ true
}

// Map registration errors to HTTP statuses with errors.Is, as the hub's
// POST /admin/trusts does.
func ExampleRegistry_RegisterTrust_errors() {
	ctx := context.Background()
	s := fliptest.NewStore()
	_, _ = s.AddSlots("Trust_001")
	reg := flip.NewRegistry(s, flip.WithClock(func() time.Time { return time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC) }))

	status := func(err error) int {
		switch {
		case err == nil:
			return http.StatusCreated
		case errors.Is(err, flip.ErrInvalidTrustParams): // blank name or code, bad characters
			return http.StatusBadRequest
		case errors.Is(err, flip.ErrDuplicateTrust), errors.Is(err, flip.ErrNoFreeKitSlot):
			return http.StatusConflict
		default: // show no detail
			return http.StatusInternalServerError
		}
	}
	for _, p := range []flip.TrustParams{
		{Name: "Guy's and St Thomas'", Code: "GSTT"},
		{Name: "   ", Code: "X"},
		{Name: "Guy's and St Thomas'", Code: "GSTT2"},
		{Name: "King's College", Code: "gstt"},
		{Name: "King's College", Code: "KCH"},
	} {
		tx := s.Begin()
		_, err := reg.RegisterTrust(ctx, tx, p)
		if err == nil {
			_ = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
		fmt.Println(status(err), err)
	}
	// Output:
	// 201 <nil>
	// 400 trust name is required
	// 409 a trust named "Guy's and St Thomas'" already exists
	// 409 a trust with code "gstt" already exists
	// 409 no FL kit slots available; pre-provision more FL kits
}
