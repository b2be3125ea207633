package fliptest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// Make the next slot claim fail, to test how code above flip handles a
// database failure half-way through a registration; nothing is left
// behind.
func ExampleStore_FailNext() {
	ctx := context.Background()
	s := fliptest.NewStore()
	_, _ = s.AddSlots("Trust_001")
	reg := flip.NewRegistry(s)

	s.FailNext(fliptest.MethodClaimSlot, errors.New("connection reset"))
	tx := s.Begin()
	_, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: "A", Code: "A"})
	_ = tx.Commit() // even committing keeps nothing of the failed call
	fmt.Println(err)
	fmt.Println(errors.Is(err, flip.ErrTrustRegistration), len(s.Trusts()), len(s.Audits()))

	tx = s.Begin()
	res, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: "A", Code: "A"})
	_ = tx.Commit()
	fmt.Println(res.KitSlot.Name, err, len(s.Trusts()))
	// Output:
	// trust registration failed: claim kit slot: connection reset
	// true 0 0
	// Trust_001 <nil> 1
}

// KeyMinter mints the same well-formed keys in every run, for stable test
// output.
func ExampleKeyMinter() {
	m := fliptest.NewKeyMinter("docs")
	k1, _ := m.MintKey(flip.TrustAPIKey)
	k2, _ := fliptest.NewKeyMinter("docs").MintKey(flip.TrustAPIKey)
	fmt.Println(k1 == k2, len(k1), flip.CheckKey(flip.TrustAPIKey, k1))
	// Output:
	// true 57 <nil>
}
