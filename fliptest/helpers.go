package fliptest

import (
	"context"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// AddSlots adds kit slots to db's pool, failing the test on error. Each
// spec is a slot name or a range such as "Trust_001..Trust_050" (see
// store.SlotRange). It returns how many slots were new.
func AddSlots(t testing.TB, db flip.DBTX, specs ...string) int {
	t.Helper()
	var names []string
	for _, spec := range specs {
		expanded, err := store.SlotRange(spec)
		if err != nil {
			t.Fatalf("fliptest: %v", err)
		}
		names = append(names, expanded...)
	}
	n, err := store.AddSlots(context.Background(), db, names...)
	if err != nil {
		t.Fatalf("fliptest: add slots: %v", err)
	}
	return n
}

// RegisterTrust registers p on db in a transaction of its own with the
// PostgreSQL store and default keys, failing the test on error. Add slots
// first: a pool without a free slot fails it.
func RegisterTrust(t testing.TB, db flip.TxBeginner, p flip.TrustParams) flip.RegistrationResult {
	t.Helper()
	res, err := flip.NewRegistry(store.New()).RegisterTrustDB(context.Background(), db, p)
	if err != nil {
		t.Fatalf("fliptest: register trust %q: %v", p.Name, err)
	}
	return res
}
