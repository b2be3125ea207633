package store_test

import (
	"cmp"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/faultdb"
)

// The registration behaviour suite: what a registration stores, what it
// refuses, how a failure is undone inside the caller's transaction, and
// how concurrent registrations line up. It once kept an in-memory fake of
// the store honest; now it runs on the real thing only, on every variant
// of the registration tests and on flip's migration 1 alone (the hub's
// tables as flip first copied them, without flip's unique indexes), with
// database/sql transactions and with pgx's own (flippgx on a pgx.Tx): one
// suite, one core, two ways in.

// suiteVariants are the registration tests' variants and flip's
// migration 1 alone, on both ways in.
var suiteVariants = append(slices.Clone(variants),
	variant{"flip_migration_1/lib_pq", 1, "postgres", nil, false},
	variant{"flip_migration_1/pgx_native", 1, "postgres", nil, true})

func TestRegisterTrustSuite(t *testing.T) {
	t.Parallel()
	for _, c := range suiteCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range suiteVariants {
				t.Run(v.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, &suite{bundle: setup(t, v), t: t})
				})
			}
		})
	}
}

// suite is one case's database and registry, with helpers that fail the
// test on setup errors.
type suite struct {
	bundle
	t *testing.T
}

func (s *suite) addSlots(specs ...string) { fliptest.AddSlots(s.t, s.db, specs...) }

// begin opens a caller's transaction of the variant's kind.
func (s *suite) begin() callertx.Tx { return s.bundle.begin(s.t) }

// register runs one registration in a transaction of its own, committed on
// success and rolled back on error, as the hub does.
func (s *suite) register(reg *flip.Registry, p flip.TrustParams) (flip.RegistrationResult, error) {
	tx, err := s.BeginTx(s.ctx, sql.LevelDefault)
	if err != nil {
		return flip.RegistrationResult{}, err
	}
	res, err := tx.RegisterTrust(s.ctx, reg, p)
	if err != nil {
		_ = tx.Rollback(s.ctx)
		return res, err
	}
	return res, tx.Commit(s.ctx)
}

func (s *suite) mustRegister(p flip.TrustParams) flip.RegistrationResult {
	s.t.Helper()
	res, err := s.register(s.reg, p)
	if err != nil {
		s.t.Fatalf("register %q: %v", p.Name, err)
	}
	return res
}

// auditRow is a row of trusts_audit; ModifiedBy and Subject are uuid.Nil
// for NULL.
type auditRow struct {
	ID, TrustID, ModifiedBy, Subject uuid.UUID
	TrustName, Action                string
	AuditDate                        time.Time
}

// suiteState is the committed state of the registration tables, in a
// fixed order.
type suiteState struct {
	Trusts []flip.Trust         // by name
	Hashes map[uuid.UUID]string // trust id → api_key_hash
	Slots  []flip.KitSlot       // by number, then name
	Audits []auditRow           // by trust name, then audit date
}

func (s *suite) snapshot() suiteState {
	s.t.Helper()
	st := suiteState{Hashes: map[uuid.UUID]string{}}
	eachRow(s.t, s.ctx, s.db, `SELECT id, name, coalesce(code, ''), coalesce(region, ''), created_at, coalesce(api_key_hash, '') FROM trust ORDER BY name COLLATE "C"`,
		func(rows *sql.Rows) error {
			var (
				tr   flip.Trust
				hash string
			)
			err := rows.Scan(&tr.ID, &tr.Name, &tr.Code, &tr.Region, &tr.CreatedAt, &hash)
			tr.CreatedAt = tr.CreatedAt.UTC()
			st.Trusts = append(st.Trusts, tr)
			st.Hashes[tr.ID] = hash
			return err
		})
	eachRow(s.t, s.ctx, s.db, `SELECT slot_name, slot_number, assigned_to_trust_id, assigned_at FROM fl_kit_slot`,
		func(rows *sql.Rows) error {
			var (
				sl flip.KitSlot
				to uuid.NullUUID
				at sql.NullTime
			)
			err := rows.Scan(&sl.Name, &sl.Number, &to, &at)
			sl.AssignedTo, sl.AssignedAt = to.UUID, at.Time.UTC()
			if !at.Valid {
				sl.AssignedAt = time.Time{}
			}
			st.Slots = append(st.Slots, sl)
			return err
		})
	slices.SortFunc(st.Slots, func(a, b flip.KitSlot) int {
		return cmp.Or(cmp.Compare(a.Number, b.Number), strings.Compare(a.Name, b.Name))
	})
	eachRow(s.t, s.ctx, s.db, `SELECT id, trust_id, trust_name, action::text, modified_by_user_id, audit_date, subject_user_id FROM trusts_audit ORDER BY trust_name COLLATE "C", audit_date`,
		func(rows *sql.Rows) error {
			var (
				a       auditRow
				by, sub uuid.NullUUID
			)
			err := rows.Scan(&a.ID, &a.TrustID, &a.TrustName, &a.Action, &by, &a.AuditDate, &sub)
			a.ModifiedBy, a.Subject, a.AuditDate = by.UUID, sub.UUID, a.AuditDate.UTC()
			st.Audits = append(st.Audits, a)
			return err
		})
	return st
}

// wantNothingRegistered fails unless no trust, audit row or slot
// assignment is committed.
func (s *suite) wantNothingRegistered() {
	s.t.Helper()
	snap := s.snapshot()
	if len(snap.Trusts) != 0 || len(snap.Audits) != 0 {
		s.t.Errorf("want nothing registered, have %d trusts and %d audit rows", len(snap.Trusts), len(snap.Audits))
	}
	for _, sl := range snap.Slots {
		if sl.AssignedTo != uuid.Nil {
			s.t.Errorf("slot %s is assigned to %s, want free", sl.Name, sl.AssignedTo)
		}
	}
}

func wantErrIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one matching %v", err, target)
	}
}

var errInjected = errors.New("injected failure")

var suiteCases = []struct {
	name string
	run  func(t *testing.T, s *suite)
}{
	{"ClaimsLowestNumberThenName", func(t *testing.T, s *suite) {
		s.addSlots("Zed", "Trust_010", "Trust_002", "Alpha_002")
		var got []string
		for i := range 4 {
			res := s.mustRegister(flip.TrustParams{Name: fmt.Sprint("Trust ", i), Code: fmt.Sprint("T", i)})
			got = append(got, fmt.Sprintf("%s/%d", res.KitSlot.Name, res.KitSlot.Number))
		}
		want := []string{"Alpha_002/2", "Trust_002/2", "Trust_010/10", "Zed/10000"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("slots claimed = %v, want %v", got, want)
		}
		_, err := s.register(s.reg, flip.TrustParams{Name: "One too many", Code: "X"})
		wantErrIs(t, err, flip.ErrNoFreeKitSlot)
	}},
	{"StoresTrustHashSlotAndAudit", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001")
		admin := uuid.New()
		res := s.mustRegister(flip.TrustParams{Name: " Guy's and St Thomas' ", Code: "GSTT", Region: " London ", AuditUserID: admin})
		snap := s.snapshot()
		if len(snap.Trusts) != 1 {
			t.Fatalf("have %d trusts, want 1", len(snap.Trusts))
		}
		got := snap.Trusts[0]
		if got.ID != res.Trust.ID || got.Name != "Guy's and St Thomas'" || got.Code != "GSTT" || got.Region != "London" || !got.CreatedAt.Equal(res.Trust.CreatedAt) {
			t.Errorf("stored trust = %+v, returned %+v", got, res.Trust)
		}
		if h := snap.Hashes[got.ID]; h != flip.HashAPIKey(res.APIKey.Reveal()) || h == flip.HashAPIKey(res.InternalServiceKey.Reveal()) {
			t.Errorf("stored api_key_hash is not HashAPIKey of the API key")
		}
		if sl := snap.Slots[0]; sl.AssignedTo != got.ID || !sl.AssignedAt.Equal(got.CreatedAt) {
			t.Errorf("slot = %+v, want assigned to %s at %v", sl, got.ID, got.CreatedAt)
		}
		if len(snap.Audits) != 1 {
			t.Fatalf("have %d audit rows, want 1", len(snap.Audits))
		}
		a := snap.Audits[0]
		if a.TrustID != got.ID || a.TrustName != got.Name || a.Action != "REGISTERED" || a.ModifiedBy != admin || a.Subject != uuid.Nil || !a.AuditDate.Equal(got.CreatedAt) {
			t.Errorf("audit row = %+v", a)
		}
	}},
	{"BlankRegionAndNoAdminAreNull", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001")
		s.mustRegister(flip.TrustParams{Name: "Deploy", Code: "DEP", Region: "  "})
		snap := s.snapshot()
		if snap.Trusts[0].Region != "" || snap.Audits[0].ModifiedBy != uuid.Nil {
			t.Errorf("region = %q, modified_by = %s; want both empty", snap.Trusts[0].Region, snap.Audits[0].ModifiedBy)
		}
	}},
	{"DuplicateNameIgnoresCase", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001..Trust_003")
		s.mustRegister(flip.TrustParams{Name: "Alpha", Code: "A1"})
		for _, name := range []string{"Alpha", "alpha", "ALPHA"} {
			_, err := s.register(s.reg, flip.TrustParams{Name: name, Code: "A2"})
			var dup *flip.DuplicateTrustError
			if !errors.As(err, &dup) || dup.Field != "name" || !errors.Is(err, flip.ErrDuplicateTrust) {
				t.Fatalf("%q: error = %v, want a DuplicateTrustError on name", name, err)
			}
		}
		if n := len(s.snapshot().Trusts); n != 1 {
			t.Errorf("have %d trusts, want 1", n)
		}
	}},
	{"DuplicateCodeIgnoresCase", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001..Trust_002")
		s.mustRegister(flip.TrustParams{Name: "Alpha", Code: "gstt"})
		_, err := s.register(s.reg, flip.TrustParams{Name: "Beta", Code: "GSTT"})
		var dup *flip.DuplicateTrustError
		if !errors.As(err, &dup) || dup.Field != "code" {
			t.Fatalf("error = %v, want a DuplicateTrustError on code", err)
		}
	}},
	{"FailedRegistrationLeavesTxUsable", func(t *testing.T, s *suite) {
		tx := s.begin()
		defer tx.Rollback(s.ctx)
		_, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "No slot", Code: "NS"})
		wantErrIs(t, err, flip.ErrNoFreeKitSlot)
		s.addSlots("Trust_001")
		if _, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "Second try", Code: "ST"}); err != nil {
			t.Fatalf("register in the same transaction after a failure: %v", err)
		}
		if err := tx.Commit(s.ctx); err != nil {
			t.Fatal(err)
		}
		snap := s.snapshot()
		if len(snap.Trusts) != 1 || snap.Trusts[0].Name != "Second try" || len(snap.Audits) != 1 {
			t.Errorf("trusts = %+v, audits = %d; want only the second registration", snap.Trusts, len(snap.Audits))
		}
	}},
	{"FailureAfterInsertUndoesTrust", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001")
		tx := s.begin()
		failing := tx.WithFaults(failRegister(faultdb.Fault{Err: errInjected}))
		_, err := failing.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "A", Code: "A"})
		wantErrIs(t, err, errInjected)
		wantErrIs(t, err, flip.ErrTrustRegistration)
		if err := tx.Commit(s.ctx); err != nil { // committing anyway must persist nothing
			t.Fatal(err)
		}
		s.wantNothingRegistered()
	}},
	{"AnswerLostAfterTheWritesUndoesTrustSlotAndAudit", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001")
		tx := s.begin()
		failing := tx.WithFaults(failRegister(faultdb.Fault{ErrAfter: errInjected}))
		_, err := failing.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "A", Code: "A"})
		wantErrIs(t, err, errInjected)
		if err := tx.Commit(s.ctx); err != nil {
			t.Fatal(err)
		}
		s.wantNothingRegistered()
		s.mustRegister(flip.TrustParams{Name: "A", Code: "A"}) // the slot is free again
	}},
	{"CallerRollbackLeavesNothing", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001")
		tx := s.begin()
		if _, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "A", Code: "A"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(s.ctx); err != nil {
			t.Fatal(err)
		}
		s.wantNothingRegistered()
	}},
	{"EarlierWorkInTxSurvivesAFailure", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001..Trust_002")
		tx := s.begin()
		defer tx.Rollback(s.ctx)
		if _, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "A", Code: "A"}); err != nil {
			t.Fatal(err)
		}
		_, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "A", Code: "B"})
		wantErrIs(t, err, flip.ErrDuplicateTrust)
		if err := tx.Commit(s.ctx); err != nil {
			t.Fatal(err)
		}
		snap := s.snapshot()
		if len(snap.Trusts) != 1 || len(snap.Audits) != 1 || snap.Slots[1].AssignedTo != uuid.Nil {
			t.Errorf("want exactly the first registration, have %d trusts, %d audits, slots %+v", len(snap.Trusts), len(snap.Audits), snap.Slots)
		}
	}},
	{"SameNameWaitsForOpenTransaction", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001..Trust_002")
		for _, commitFirst := range []bool{false, true} {
			name := fmt.Sprint("Contested ", commitFirst)
			tx := s.begin()
			code := fmt.Sprint("Contested-", commitFirst)
			if _, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: name, Code: code}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := s.register(s.reg, flip.TrustParams{Name: name, Code: "other-" + code})
				done <- err
			}()
			// The server says when the second waits on the first, not a
			// clock: on a loaded machine it may not have started yet
			// after any fixed pause.
			for waiting := false; !waiting; time.Sleep(2 * time.Millisecond) {
				select {
				case err := <-done:
					t.Fatalf("second registration of %q finished while the first was open: %v", name, err)
				default:
				}
				if err := s.db.QueryRowContext(s.ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
					t.Fatal(err)
				}
			}
			end := tx.Rollback
			if commitFirst {
				end = tx.Commit
			}
			if err := end(s.ctx); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if commitFirst {
				wantErrIs(t, err, flip.ErrDuplicateTrust)
			} else if err != nil {
				t.Fatalf("second registration after the first rolled back: %v", err)
			}
		}
	}},
	{"ConcurrentRegistrationsTakeDistinctSlots", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001..Trust_010")
		errs := make([]error, 20)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = s.register(s.reg, flip.TrustParams{Name: fmt.Sprint("Trust ", i), Code: fmt.Sprint("C", i)})
			})
		}
		wg.Wait()
		ok, full := 0, 0
		for i, err := range errs {
			if errors.Is(err, flip.ErrKitSlotsBusy) { // a winner had not committed yet: retry
				_, err = s.register(s.reg, flip.TrustParams{Name: fmt.Sprint("Retry ", i), Code: fmt.Sprint("R", i)})
			}
			switch {
			case err == nil:
				ok++
			case errors.Is(err, flip.ErrNoFreeKitSlot):
				full++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 10 || full != 10 {
			t.Errorf("%d registered and %d refused for lack of a slot; want 10 and 10", ok, full)
		}
		holders := map[uuid.UUID]bool{}
		for _, sl := range s.snapshot().Slots {
			if sl.AssignedTo == uuid.Nil || holders[sl.AssignedTo] {
				t.Errorf("slot %s assigned to %s: want every slot held by a different trust", sl.Name, sl.AssignedTo)
			}
			holders[sl.AssignedTo] = true
		}
	}},
	{"ConcurrentSameNameOneWins", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001..Trust_008")
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = s.register(s.reg, flip.TrustParams{Name: "Same", Code: fmt.Sprint("C", i)})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, flip.ErrDuplicateTrust) {
				t.Errorf("unexpected error: %v", err)
			}
		}
		if n := len(s.snapshot().Trusts); ok != 1 || n != 1 {
			t.Errorf("%d registrations succeeded, %d trusts stored; want 1 and 1", ok, n)
		}
	}},
	{"LookupFindsCommittedKeysOnly", func(t *testing.T, s *suite) {
		s.addSlots("Trust_001")
		tx := s.begin()
		defer tx.Rollback(s.ctx)
		res, err := tx.RegisterTrust(s.ctx, s.reg, flip.TrustParams{Name: "A", Code: "A"})
		if err != nil {
			t.Fatal(err)
		}
		v := s.Verifier()
		if _, err := v.Verify(s.ctx, res.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
			t.Errorf("verify before commit: error = %v, want ErrUnknownAPIKey", err)
		}
		if err := tx.Commit(s.ctx); err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(s.ctx, res.APIKey.Reveal())
		if err != nil || got.ID != res.Trust.ID || got.Name != "A" || !got.CreatedAt.Equal(res.Trust.CreatedAt) {
			t.Errorf("verify after commit = %+v, %v; want trust %s", got, err, res.Trust.ID)
		}
		if _, err := v.Verify(s.ctx, res.InternalServiceKey.Reveal()); !errors.Is(err, flip.ErrMalformedKey) {
			t.Errorf("verify the internal-service key: error = %v, want ErrMalformedKey", err)
		}
		other, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
		if _, err := v.Verify(s.ctx, other); !errors.Is(err, flip.ErrUnknownAPIKey) {
			t.Errorf("verify an unknown key: error = %v, want ErrUnknownAPIKey", err)
		}
	}},
}
