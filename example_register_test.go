package flip_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Register a trust inside the caller's transaction: nothing is stored
// until the caller commits, and the two plaintext keys are returned here
// and nowhere else.
func ExampleRegistry_RegisterTrust() {
	ctx := context.Background()
	db := exampleDB()
	if _, err := store.AddSlots(ctx, db, "Trust_001", "Trust_002"); err != nil { // the kit slot pool, once
		fmt.Println("add slots:", err)
		return
	}
	reg := flip.NewRegistry(store.New()) // keys from crypto/rand

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		fmt.Println("begin:", err)
		return
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
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
	fmt.Println(res.APIKey.Reveal()[:8], flip.CheckKey(flip.TrustAPIKey, res.APIKey.Reveal()) == nil)
	fmt.Println(res.InternalServiceKey.Reveal()[:8], flip.CheckKey(flip.InternalServiceKey, res.InternalServiceKey.Reveal()) == nil)
	// Output:
	// Guy's and St Thomas' GSTT London
	// Trust_001 1
	// flip_ak_ true
	// flip_sk_ true
}

// Map registration errors to HTTP statuses with errors.Is, as the hub's
// POST /admin/trusts does. RegisterTrustDB owns its transaction; inside a
// transaction of yours, RegisterTrust returns the same errors.
func ExampleRegistry_RegisterTrust_errors() {
	ctx := context.Background()
	db := exampleDB()
	if _, err := store.AddSlots(ctx, db, "Trust_001"); err != nil {
		fmt.Println("add slots:", err)
		return
	}
	reg := flip.NewRegistry(store.New())

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
		_, err := reg.RegisterTrustDB(ctx, db, p)
		fmt.Println(status(err), err)
	}
	// Output:
	// 201 <nil>
	// 400 trust name is required
	// 409 a trust named "Guy's and St Thomas'" already exists
	// 409 a trust with code "gstt" already exists
	// 409 no FL kit slots available; pre-provision more FL kits
}
