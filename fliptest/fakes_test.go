package fliptest_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// setup returns a fake store with slots and a registry minting
// deterministic keys.
func setup(t *testing.T, slots ...string) (*fliptest.Store, *flip.Registry) {
	t.Helper()
	s := fliptest.NewStore()
	if _, err := s.AddSlots(slots...); err != nil {
		t.Fatal(err)
	}
	return s, flip.NewRegistry(s, flip.WithKeyMinter(fliptest.NewKeyMinter(t.Name())))
}

func register(t *testing.T, s *fliptest.Store, reg *flip.Registry, name string) (flip.RegistrationResult, error) {
	t.Helper()
	tx := s.Begin()
	res, err := reg.RegisterTrust(t.Context(), tx, flip.TrustParams{Name: name, Code: name})
	if err != nil {
		_ = tx.Rollback()
		return res, err
	}
	return res, tx.Commit()
}

func TestStore_FailNextFailsExactlyOneCall(t *testing.T) {
	t.Parallel()
	s, reg := setup(t, "Trust_001")
	boom := errors.New("boom")
	s.FailNext(fliptest.MethodInsertTrust, boom)
	if _, err := register(t, s, reg, "A"); !errors.Is(err, boom) || !errors.Is(err, flip.ErrTrustRegistration) {
		t.Fatalf("error = %v, want boom wrapped in ErrTrustRegistration", err)
	}
	if len(s.Trusts()) != 0 {
		t.Fatal("a failed registration left a trust behind")
	}
	if _, err := register(t, s, reg, "A"); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if n := s.Calls(fliptest.MethodInsertTrust); n != 2 {
		t.Errorf("InsertTrust called %d times, want 2", n)
	}
}

func TestStore_OnCallHookFailsChosenMethod(t *testing.T) {
	t.Parallel()
	s, reg := setup(t, "Trust_001")
	s.OnCall(func(_ context.Context, m fliptest.Method) error {
		if m == fliptest.MethodClaimSlot {
			return flip.ErrNoFreeKitSlot
		}
		return nil
	})
	if _, err := register(t, s, reg, "A"); !errors.Is(err, flip.ErrNoFreeKitSlot) {
		t.Fatalf("error = %v, want ErrNoFreeKitSlot", err)
	}
	s.OnCall(nil)
	if _, err := register(t, s, reg, "A"); err != nil {
		t.Fatalf("after removing the hook: %v", err)
	}
}

func TestStore_LockWaitHonoursContext(t *testing.T) {
	t.Parallel()
	s, reg := setup(t, "Trust_001..Trust_002")
	tx := s.Begin()
	defer tx.Rollback()
	if _, err := reg.RegisterTrust(t.Context(), tx, flip.TrustParams{Name: "A", Code: "A"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	tx2 := s.Begin()
	defer tx2.Rollback()
	if _, err := reg.RegisterTrust(ctx, tx2, flip.TrustParams{Name: "A", Code: "B"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want the wait for the name lock to time out", err)
	}
}

func TestStore_AddSlotsOnlyAdds(t *testing.T) {
	t.Parallel()
	s, reg := setup(t, "Trust_001..Trust_003", " Extra ")
	if _, err := register(t, s, reg, "A"); err != nil {
		t.Fatal(err)
	}
	n, err := s.AddSlots("Trust_001..Trust_004", "Extra")
	if err != nil || n != 1 {
		t.Fatalf("AddSlots = %d, %v; want 1 new slot", n, err)
	}
	slots := s.Slots()
	if len(slots) != 5 || slots[0].Name != "Trust_001" || slots[0].AssignedTo == [16]byte{} || slots[4].Name != "Extra" || slots[4].Number != store.UnnumberedSlot {
		t.Errorf("slots = %+v", slots)
	}
	if _, err := s.AddSlots(" "); !errors.Is(err, store.ErrInvalidSlotName) {
		t.Errorf("blank name: error = %v, want ErrInvalidSlotName", err)
	}
}

func TestTx_RunsNoSQLAndEndsOnce(t *testing.T) {
	t.Parallel()
	s, reg := setup(t, "Trust_001")
	tx := s.Begin()
	ctx := t.Context()
	if _, err := tx.ExecContext(ctx, "SELECT 1"); !errors.Is(err, fliptest.ErrFakeSQL) {
		t.Errorf("ExecContext error = %v", err)
	}
	if _, err := tx.QueryContext(ctx, "SELECT 1"); !errors.Is(err, fliptest.ErrFakeSQL) {
		t.Errorf("QueryContext error = %v", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT 1").Scan(&n); !errors.Is(err, fliptest.ErrFakeSQL) {
		t.Errorf("QueryRowContext error = %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("Rollback after Commit = %v, want sql.ErrTxDone", err)
	}
	if _, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: "A", Code: "A"}); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("RegisterTrust on a finished tx: error = %v, want sql.ErrTxDone", err)
	}
	if _, err := reg.RegisterTrust(ctx, fliptest.NewStore().Begin(), flip.TrustParams{Name: "A", Code: "A"}); err == nil {
		t.Error("RegisterTrust accepted a transaction of another Store")
	}
}

// foreignTx is a transaction handle that did not come from Store.Begin, as
// when the fake serves only as a SlotStore next to a real database.
type foreignTx struct{ flip.DBTX }

func TestStore_ForeignTransactionEndsWithItsSavepoint(t *testing.T) {
	t.Parallel()
	s, reg := setup(t, "Trust_001")
	ctx := t.Context()
	s.FailNext(fliptest.MethodInsertAudit, errors.New("boom"))
	if _, err := reg.RegisterTrust(ctx, &foreignTx{}, flip.TrustParams{Name: "A", Code: "A"}); err == nil {
		t.Fatal("want the injected failure")
	}
	if len(s.Trusts()) != 0 || s.Slots()[0].AssignedTo != [16]byte{} {
		t.Fatal("the failed registration was not undone")
	}
	res, err := reg.RegisterTrust(ctx, &foreignTx{}, flip.TrustParams{Name: "A", Code: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Trusts(); len(got) != 1 || got[0].ID != res.Trust.ID {
		t.Errorf("trusts = %+v, want the registration committed with its savepoint", got)
	}
}

func TestKeyMinter_IsDeterministicAndWellFormed(t *testing.T) {
	t.Parallel()
	a, b, other := fliptest.NewKeyMinter("seed"), fliptest.NewKeyMinter("seed"), fliptest.NewKeyMinter("other")
	ref := &fliptest.KeyMinter{Seed: "seed", Format: flip.ReferenceKeys}
	seen := map[string]bool{}
	for _, kind := range []flip.KeyKind{flip.TrustAPIKey, flip.InternalServiceKey, flip.TrustAPIKey} {
		ka, _ := a.MintKey(kind)
		kb, _ := b.MintKey(kind)
		ko, _ := other.MintKey(kind)
		kr, _ := ref.MintKey(kind)
		if ka != kb || ka == ko || seen[ka] {
			t.Errorf("%s: same seed gave %v, other seed %v, repeat %v", kind, ka == kb, ka == ko, seen[ka])
		}
		seen[ka] = true
		for _, k := range []string{ka, kr} {
			if err := flip.CheckKey(kind, k); err != nil {
				t.Errorf("%s %q: %v", kind, k, err)
			}
		}
		if len(kr) != flip.ReferenceKeyLength {
			t.Errorf("reference key %q has length %d", kr, len(kr))
		}
	}
}

func TestKeyMinter_FailNextUsesUpNoKey(t *testing.T) {
	t.Parallel()
	m, clean := fliptest.NewKeyMinter(""), fliptest.NewKeyMinter("")
	boom := errors.New("no entropy")
	m.FailNext(boom)
	if _, err := m.MintKey(flip.TrustAPIKey); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want boom", err)
	}
	got, _ := m.MintKey(flip.TrustAPIKey)
	want, _ := clean.MintKey(flip.TrustAPIKey)
	if got != want || m.Minted() != 1 {
		t.Errorf("after a fault: key %q (minted %d), want %q (1)", got, m.Minted(), want)
	}
}

func TestKeyMinter_FaultFailsRegistrationBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	s := fliptest.NewStore()
	m := fliptest.NewKeyMinter("")
	m.FailNext(errors.New("no entropy"))
	_, err := flip.NewRegistry(s, flip.WithKeyMinter(m)).RegisterTrust(t.Context(), s.Begin(), flip.TrustParams{Name: "A", Code: "A"})
	if !errors.Is(err, flip.ErrTrustRegistration) || s.Calls(fliptest.MethodSavepoint) != 0 {
		t.Errorf("error = %v, savepoints = %d; want a registration error before the store is touched", err, s.Calls(fliptest.MethodSavepoint))
	}
}
