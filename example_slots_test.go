package flip_test

import (
	"context"
	"fmt"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// configuredSlots stands for the hub's own list of kit slot names (the
// reference hub keeps it in an SSM parameter).
type configuredSlots []string

func (c configuredSlots) SlotNames(context.Context) ([]string, error) { return c, nil }

// Grow an empty pool from the hub's list of slot names on the first
// registration that finds no free slot.
func ExampleWithSlotNameSource() {
	ctx := context.Background()
	db := exampleDB() // an empty pool
	reg := flip.NewRegistry(store.New(), flip.WithSlotNameSource(configuredSlots{"Trust_002", "Trust_001"}))

	res, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println(res.KitSlot.Name, res.AddedKitSlots)
	res, err = reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: "King's College", Code: "KCH"})
	fmt.Println(res.KitSlot.Name, res.AddedKitSlots, err)
	_, err = reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: "Barts Health", Code: "BH"})
	fmt.Println(err)
	// Output:
	// Trust_001 [Trust_001 Trust_002]
	// Trust_002 [] <nil>
	// no FL kit slots available; pre-provision more FL kits (the slot-name source, flip_test.configuredSlots, was consulted: it held 2 names, 0 added)
}
