package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

func flipRegistry() *flip.Registry { return flip.NewRegistry(store.New()) }

func flipParams(name, code string) flip.TrustParams { return flip.TrustParams{Name: name, Code: code} }

func TestSlotNumber(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]int{
		"Trust_007": 7, "Trust_1": 1, "FL_Kit_42": 42, "Trust": store.UnnumberedSlot, "Trust_": store.UnnumberedSlot,
		"Trust-3": store.UnnumberedSlot, "Trust_3a": store.UnnumberedSlot, "Trust_99999999999": store.UnnumberedSlot, "_0": 0,
	} {
		if got := store.SlotNumber(name); got != want {
			t.Errorf("SlotNumber(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestSlotRange(t *testing.T) {
	t.Parallel()
	got, err := store.SlotRange("Trust_008..Trust_011")
	if err != nil || strings.Join(got, ",") != "Trust_008,Trust_009,Trust_010,Trust_011" {
		t.Errorf("SlotRange = %v, %v", got, err)
	}
	if got, _ := store.SlotRange("Single"); len(got) != 1 || got[0] != "Single" {
		t.Errorf("plain name = %v", got)
	}
	for _, bad := range []string{"A_1..B_2", "Trust_5..Trust_1", "Trust..Trust", "Trust_1..Trust_9999999"} {
		if _, err := store.SlotRange(bad); err == nil {
			t.Errorf("SlotRange(%q) accepted", bad)
		}
	}
}

func TestAddSlots_OnlyEverAdds(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(1))
	ctx := context.Background()
	if n := fliptest.AddSlots(t, db, "Trust_001..Trust_003", " Trust_003 ", "Spare"); n != 4 {
		t.Errorf("added %d, want 4", n)
	}
	res := fliptest.RegisterTrust(t, db, flipParams("Holder", "H"))
	// Seeding the same list again neither duplicates nor frees the slot.
	if n := fliptest.AddSlots(t, db, "Trust_001..Trust_004", "Spare"); n != 1 {
		t.Errorf("re-adding added %d, want 1 (Trust_004)", n)
	}
	slot, err := store.KitSlotOf(ctx, db, res.Trust.ID)
	if err != nil || slot.Name != "Trust_001" {
		t.Errorf("holder's slot = %+v, %v", slot, err)
	}
	stats, err := store.CountSlots(ctx, db)
	if err != nil || stats != (store.PoolStats{Total: 5, Free: 4, Assigned: 1}) {
		t.Errorf("CountSlots = %+v, %v", stats, err)
	}
	free, err := store.FreeSlots(ctx, db, 2)
	if err != nil || len(free) != 2 || free[0].Name != "Trust_002" || free[1].Name != "Trust_003" || free[0].Number != 2 {
		t.Errorf("FreeSlots = %+v, %v", free, err)
	}
	all, _ := store.FreeSlots(ctx, db, 0)
	if len(all) != 4 || all[3].Name != "Spare" || all[3].Number != store.UnnumberedSlot {
		t.Errorf("FreeSlots(all) = %+v", all)
	}
}

// store.AddSlots reads a range the way --add-slots and fliptest.AddSlots
// do: "Trust_001..Trust_003" is three slots, never one slot of that name.
func TestAddSlots_ExpandsRangesLikeEveryOtherEntryPoint(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	n, err := store.AddSlots(context.Background(), db, "Trust_001..Trust_003", "Spare")
	if err != nil || n != 4 {
		t.Fatalf("AddSlots = %d, %v; want 4", n, err)
	}
	free, err := store.FreeSlots(context.Background(), db, 0)
	if err != nil || len(free) != 4 || free[0].Name != "Trust_001" || free[2].Name != "Trust_003" || free[2].Number != 3 {
		t.Errorf("FreeSlots = %+v, %v", free, err)
	}
}

func TestAddSlots_RefusesBadNamesAtomically(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	for _, bad := range []string{"", "  ", "a\x00b", "tab\tinside", "bad\xff", strings.Repeat("s", store.MaxSlotNameLength+1),
		"Trust_005..Trust_001", "Trust_001..Other_002", "a..b"} {
		_, err := store.AddSlots(context.Background(), db, "Good_1", bad)
		if !errors.Is(err, store.ErrInvalidSlotName) {
			t.Errorf("AddSlots(%q) = %v", bad, err)
		}
	}
	if stats, _ := store.CountSlots(context.Background(), db); stats.Total != 0 {
		t.Errorf("a refused call added %d slots", stats.Total)
	}
}
