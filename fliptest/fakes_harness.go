package fliptest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// StoreTx is a transaction TestStore registers in: *sql.Tx, *sqlx.Tx and
// *fliptest.Tx all fit.
type StoreTx interface {
	flip.DBTX
	Commit() error
	Rollback() error
}

// Harness adapts one flip.Store implementation, and the storage behind it,
// to TestStore. FakeHarness and PostgresHarness build the two this module
// ships; write one for your own implementation.
type Harness struct {
	// Store is the implementation under test.
	Store flip.Store
	// Lookup finds committed trusts by API-key hash; nil skips the
	// verification cases.
	Lookup flip.APIKeyLookup
	// Begin opens a transaction on the storage.
	Begin func(ctx context.Context) (StoreTx, error)
	// AddSlots adds kit slots (names or ranges, see store.SlotRange),
	// committed at once.
	AddSlots func(ctx context.Context, specs ...string) error
	// Snapshot reads the committed state.
	Snapshot func(ctx context.Context) (Snapshot, error)
}

// Snapshot is the committed state of a store, in a fixed order so that two
// implementations can be compared.
type Snapshot struct {
	Trusts []flip.Trust         // by name
	Hashes map[uuid.UUID]string // trust id → api_key_hash
	Slots  []flip.KitSlot       // by number, then name
	Audits []flip.TrustAudit    // by trust name, then audit date
}

// FakeHarness returns a Harness over a new in-memory Store.
func FakeHarness(t testing.TB) Harness {
	t.Helper()
	s := NewStore()
	return Harness{
		Store:  s,
		Lookup: s,
		Begin:  func(context.Context) (StoreTx, error) { return s.Begin(), nil },
		AddSlots: func(_ context.Context, specs ...string) error {
			_, err := s.AddSlots(specs...)
			return err
		},
		Snapshot: func(context.Context) (Snapshot, error) {
			snap := Snapshot{Trusts: s.Trusts(), Hashes: map[uuid.UUID]string{}, Slots: s.Slots(), Audits: s.Audits()}
			for _, tr := range snap.Trusts {
				snap.Hashes[tr.ID], _ = s.APIKeyHash(tr.ID)
			}
			sortSnapshot(&snap)
			return snap, nil
		},
	}
}

// PostgresHarness returns a Harness over store.Store on a database of the
// test's own (NewDB with opts, e.g. AtVersion(1) for the hub's schema or
// WithDriver("pgx")). Transactions are *sql.Tx.
func PostgresHarness(t testing.TB, opts ...Option) Harness {
	t.Helper()
	db := NewDB(t, opts...)
	return Harness{
		Store:  store.New(),
		Lookup: store.NewAPIKeyLookup(db),
		Begin:  func(ctx context.Context) (StoreTx, error) { return db.BeginTx(ctx, nil) },
		AddSlots: func(ctx context.Context, specs ...string) error {
			var names []string
			for _, spec := range specs {
				expanded, err := store.SlotRange(spec)
				if err != nil {
					return err
				}
				names = append(names, expanded...)
			}
			_, err := store.AddSlots(ctx, db, names...)
			return err
		},
		Snapshot: func(ctx context.Context) (Snapshot, error) { return postgresSnapshot(ctx, db.DB.DB) },
	}
}

func postgresSnapshot(ctx context.Context, db *sql.DB) (Snapshot, error) {
	snap := Snapshot{Hashes: map[uuid.UUID]string{}}
	err := queryEach(ctx, db, `SELECT id, name, coalesce(code, ''), coalesce(region, ''), created_at, coalesce(api_key_hash, '') FROM trust`,
		func(rows *sql.Rows) error {
			var (
				tr   flip.Trust
				hash string
			)
			if err := rows.Scan(&tr.ID, &tr.Name, &tr.Code, &tr.Region, &tr.CreatedAt, &hash); err != nil {
				return err
			}
			tr.CreatedAt = tr.CreatedAt.UTC()
			snap.Trusts = append(snap.Trusts, tr)
			snap.Hashes[tr.ID] = hash
			return nil
		})
	if err != nil {
		return Snapshot{}, err
	}
	err = queryEach(ctx, db, `SELECT slot_name, slot_number, assigned_to_trust_id, assigned_at FROM fl_kit_slot`,
		func(rows *sql.Rows) error {
			var (
				sl flip.KitSlot
				to uuid.NullUUID
				at sql.NullTime
			)
			if err := rows.Scan(&sl.Name, &sl.Number, &to, &at); err != nil {
				return err
			}
			sl.AssignedTo = to.UUID
			if at.Valid {
				sl.AssignedAt = at.Time.UTC()
			}
			snap.Slots = append(snap.Slots, sl)
			return nil
		})
	if err != nil {
		return Snapshot{}, err
	}
	err = queryEach(ctx, db, `SELECT id, trust_id, trust_name, action::text, modified_by_user_id, audit_date, subject_user_id FROM trusts_audit`,
		func(rows *sql.Rows) error {
			var (
				a       flip.TrustAudit
				action  string
				by, sub uuid.NullUUID
			)
			if err := rows.Scan(&a.ID, &a.TrustID, &a.TrustName, &action, &by, &a.AuditDate, &sub); err != nil {
				return err
			}
			a.Action, a.ModifiedBy, a.Subject, a.AuditDate = flip.AuditAction(action), by.UUID, sub.UUID, a.AuditDate.UTC()
			snap.Audits = append(snap.Audits, a)
			return nil
		})
	if err != nil {
		return Snapshot{}, err
	}
	sortSnapshot(&snap)
	return snap, nil
}

func queryEach(ctx context.Context, db *sql.DB, q string, scan func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	return rows.Err()
}

func sortSnapshot(s *Snapshot) {
	slices.SortFunc(s.Trusts, func(a, b flip.Trust) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Slots, compareSlots)
	slices.SortFunc(s.Audits, func(a, b flip.TrustAudit) int {
		if c := strings.Compare(a.TrustName, b.TrustName); c != 0 {
			return c
		}
		return a.AuditDate.Compare(b.AuditDate)
	})
}
