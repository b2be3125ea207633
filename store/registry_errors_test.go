package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// A registration that times out on a lock, or on statement_timeout, is a
// retryable error, and the caller's transaction survives it.
func TestRegisterTrust_LockAndStatementTimeoutsAreRetryable(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		for _, setting := range []string{"lock_timeout", "statement_timeout"} {
			t.Run(setting, func(t *testing.T) {
				b := setup(t, v)
				fliptest.AddSlots(t, b.db, "Trust_001")
				lockTrust(t, b.ctx, b.db, "EXCLUSIVE")
				before := snapshot(t, b.ctx, b.db)
				tx := b.begin(t)
				defer tx.Rollback(b.ctx) //nolint:errcheck // test cleanup
				must(t, tx.Exec(b.ctx, `SET LOCAL `+setting+` = '100ms'`))
				_, err := tx.RegisterTrust(b.ctx, b.reg, flip.TrustParams{Name: "Waits", Code: "W"})
				if e := isOnly(err, flip.ErrRetryable, flip.ErrTrustRegistration); e != nil {
					t.Fatal(e)
				}
				if errors.Is(err, flip.ErrRollbackRequired) || errors.Is(err, flip.ErrNoFreeKitSlot) {
					t.Errorf("a timeout is reported as %v", err)
				}
				if err := tx.Exec(b.ctx, `SELECT 1`); err != nil {
					t.Errorf("transaction unusable after a %s: %v", setting, err)
				}
				must(t, tx.Commit(b.ctx))
				if after := snapshot(t, b.ctx, b.db); after != before {
					t.Errorf("committing after the timeout persisted %+v (before %+v)", after, before)
				}
			})
		}
	})
}

// At REPEATABLE READ a slot taken by a transaction that committed after
// the snapshot is a serialization failure: retryable.
func TestRegisterTrust_SerializationFailureIsRetryable(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001")
		tx, err := b.BeginTx(b.ctx, sql.LevelRepeatableRead)
		must(t, err)
		defer tx.Rollback(b.ctx)                                    //nolint:errcheck // test cleanup
		must(t, tx.Exec(b.ctx, `SELECT count(*) FROM fl_kit_slot`)) // takes the snapshot
		b.mustRegister(t, flip.TrustParams{Name: "First", Code: "F"})
		_, err = tx.RegisterTrust(b.ctx, b.reg, flip.TrustParams{Name: "Second", Code: "S"})
		if e := isOnly(err, flip.ErrRetryable, flip.ErrTrustRegistration); e != nil {
			t.Fatal(e)
		}
		if err := tx.Exec(b.ctx, `SELECT 1`); err != nil {
			t.Errorf("transaction unusable after a serialization failure: %v", err)
		}
	})
}

// A deadlock between the caller's own work and another transaction is
// retryable, and the caller's transaction survives it.
func TestRegisterTrust_DeadlockIsRetryable(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001")
		b.db.SetMaxOpenConns(4)
		roleID := flip.RoleAdmin.ID
		_, err := b.db.ExecContext(b.ctx, `INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, 'Admin', 'x', now(), now()) ON CONFLICT DO NOTHING`, roleID)
		must(t, err)

		// other holds what a registration of the name "Contended" waits
		// for (the advisory lock where flip's unique indexes are missing,
		// an uncommitted row of that name where they exist), then wants the
		// row the caller locked: a cycle.
		other, err := b.db.BeginTx(b.ctx, nil)
		must(t, err)
		defer other.Rollback()                                                  //nolint:errcheck // test cleanup
		_, err = other.ExecContext(b.ctx, `SET LOCAL deadlock_timeout = '60s'`) // the caller detects it
		must(t, err)
		_, err = other.ExecContext(b.ctx, pgsql.LockTrustIdentity, pgsql.FoldName("Contended"), "OTHER")
		must(t, err)
		_, err = other.ExecContext(b.ctx, `INSERT INTO trust (id, name, code, created_at) VALUES (gen_random_uuid(), 'Contended', 'OTHER', now())`)
		must(t, err)
		var otherPID int
		must(t, other.QueryRowContext(b.ctx, `SELECT pg_backend_pid()`).Scan(&otherPID))

		tx := b.begin(t)
		defer tx.Rollback(b.ctx) //nolint:errcheck // test cleanup
		must(t, tx.Exec(b.ctx, `SET LOCAL deadlock_timeout = '500ms'`))
		must(t, tx.Exec(b.ctx, `SELECT 1 FROM roles WHERE id = $1 FOR UPDATE`, roleID))

		otherDone := make(chan error, 1)
		go func() {
			_, err := other.ExecContext(b.ctx, `SELECT 1 FROM roles WHERE id = $1 FOR UPDATE`, roleID)
			otherDone <- err
		}()
		// Only once other waits for the caller's row does the caller's wait
		// close the cycle, so that its own deadlock check finds it.
		for waiting := false; !waiting; {
			must(t, b.db.QueryRowContext(b.ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, otherPID).Scan(&waiting))
		}
		_, err = tx.RegisterTrust(b.ctx, b.reg, flip.TrustParams{Name: "Contended", Code: "CT"})
		if e := isOnly(err, flip.ErrRetryable, flip.ErrTrustRegistration); e != nil {
			t.Fatal(e)
		}
		if err := tx.Exec(b.ctx, `SELECT 1`); err != nil {
			t.Errorf("transaction unusable after a deadlock: %v", err)
		}
		must(t, tx.Rollback(b.ctx))
		if err := <-otherDone; err != nil {
			t.Errorf("the other transaction: %v", err)
		}
	})
}

// A context that ends while the registration waits is reported as the
// context's error, never as a half-registration that must be rolled back,
// and nothing is committed.
func TestRegisterTrust_ContextDeadlineMatchesAndNothingCommits(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001")
		holder := lockTrust(t, b.ctx, b.db, "EXCLUSIVE")
		before := snapshot(t, b.ctx, b.db)
		// The request's context begins the transaction, and its deadline
		// ends both the call and the transaction, as in the hub. The
		// deadline starts once the transaction is open: opening it (a new
		// connection, for pgx's pool) may take any time on a loaded
		// machine, and the deadline is for the wait on the lock.
		txCtx, endTx := context.WithCancel(b.ctx)
		defer endTx()
		tx, err := b.BeginTx(txCtx, sql.LevelDefault)
		must(t, err)
		defer tx.Rollback(b.ctx) //nolint:errcheck // test cleanup
		ctx, cancel := context.WithTimeout(txCtx, 200*time.Millisecond)
		defer cancel()
		context.AfterFunc(ctx, endTx)
		_, err = tx.RegisterTrust(ctx, b.reg, flip.TrustParams{Name: "Too slow", Code: "TS"})
		if e := isOnly(err, context.DeadlineExceeded, flip.ErrTrustRegistration); e != nil {
			t.Fatal(e)
		}
		if errors.Is(err, flip.ErrRollbackRequired) {
			t.Errorf("nothing could be committed, yet the error says so: %v", err)
		}
		_ = tx.Commit(b.ctx) // fails: the driver has rolled it back
		must(t, holder.Rollback())
		if after := snapshot(t, b.ctx, b.db); after != before {
			t.Errorf("a registration whose context ended persisted %+v (before %+v)", after, before)
		}
		// RegisterTrustDB says the same.
		lockTrust(t, b.ctx, b.db, "EXCLUSIVE")
		ctx2, cancel2 := context.WithTimeout(b.ctx, 200*time.Millisecond)
		defer cancel2()
		_, err = b.RegisterTrustDB(ctx2, b.reg, flip.TrustParams{Name: "Too slow", Code: "TS"})
		if e := isOnly(err, context.DeadlineExceeded, flip.ErrTrustRegistration); e != nil {
			t.Fatal(e)
		}
	})
}

// Free slots that other registrations hold locked make the pool busy, not
// empty: ErrKitSlotsBusy is retryable and is not ErrNoFreeKitSlot.
func TestRegisterTrust_BusyPoolIsNotAnEmptyPool(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
		var open []callertx.Tx
		for _, code := range []string{"A1", "A2"} {
			tx := b.begin(t)
			defer tx.Rollback(b.ctx) //nolint:errcheck // test cleanup
			if _, err := tx.RegisterTrust(b.ctx, b.reg, flip.TrustParams{Name: "In flight " + code, Code: code}); err != nil {
				t.Fatal(err)
			}
			open = append(open, tx)
		}
		_, err := b.register(t, flip.TrustParams{Name: "Third", Code: "T3"})
		if e := isOnly(err, flip.ErrKitSlotsBusy, flip.ErrRetryable, flip.ErrTrustRegistration); e != nil {
			t.Fatal(e)
		}
		if errors.Is(err, flip.ErrNoFreeKitSlot) {
			t.Errorf("a busy pool is reported as an empty one: %v", err)
		}
		for _, tx := range open {
			must(t, tx.Commit(b.ctx))
		}
		_, err = b.register(t, flip.TrustParams{Name: "Third", Code: "T3"})
		if e := isOnly(err, flip.ErrNoFreeKitSlot, flip.ErrTrustRegistration); e != nil || errors.Is(err, flip.ErrRetryable) {
			t.Fatalf("empty pool: %v (%v)", err, e)
		}
	})
}

// When the check that tells a busy pool from an empty one fails, the
// answer is neither (a plain registration error), and the caller's
// transaction is as before and usable. On pgx, where a SlotStore of the
// caller's own cannot claim at all (it takes a database/sql handle), the
// registration fails the same way, whether or not the check is reached.
func TestRegisterTrust_FailedBusyCheckIsNeitherBusyNorEmpty(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		before := snapshot(t, b.ctx, b.db)
		tx := b.begin(t)
		defer tx.Rollback(b.ctx) //nolint:errcheck // test cleanup
		// The busy-or-empty check that follows a missed claim of a
		// SlotStore of the caller's own (store.Store's ClaimSlot) fails on
		// the server.
		failingCheck := tx.WithFaults(faultdb.Matching(pgsql.AnyFreeSlot, 1, faultdb.Fault{Query: faultdb.ServerError}))
		reg := flip.NewRegistry(struct{ flip.SlotStore }{store.New()})
		_, err := failingCheck.RegisterTrust(b.ctx, reg, flip.TrustParams{Name: "Unlucky", Code: "UL"})
		if e := isOnly(err, flip.ErrTrustRegistration); e != nil {
			t.Fatal(e)
		}
		t.Logf("%s: %v", v.name, err)
		if errors.Is(err, flip.ErrNoFreeKitSlot) || errors.Is(err, flip.ErrKitSlotsBusy) || errors.Is(err, flip.ErrRollbackRequired) {
			t.Errorf("a failed check is reported as %v", err)
		}
		must(t, tx.Exec(b.ctx, `SELECT 1`))
		must(t, tx.Commit(b.ctx))
		if after := snapshot(t, b.ctx, b.db); after != before {
			t.Errorf("committing after the failed call persisted %+v (before %+v)", after, before)
		}
	})
}

// A registration waiting for another open registration of the same name
// gives up when its context ends, with the context's error.
func TestRegisterTrust_WaitForTheSameNameEndsWithTheContext(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001..Trust_002")
		first := b.begin(t)
		defer first.Rollback(b.ctx) //nolint:errcheck // test cleanup
		if _, err := first.RegisterTrust(b.ctx, b.reg, flip.TrustParams{Name: "A", Code: "A"}); err != nil {
			t.Fatal(err)
		}
		second := b.begin(t)
		defer second.Rollback(b.ctx) //nolint:errcheck // test cleanup
		ctx, cancel := context.WithTimeout(b.ctx, 100*time.Millisecond)
		defer cancel()
		_, err := second.RegisterTrust(ctx, b.reg, flip.TrustParams{Name: "A", Code: "B"})
		if e := isOnly(err, context.DeadlineExceeded, flip.ErrTrustRegistration); e != nil {
			t.Fatalf("the wait for the name lock: %v", e)
		}
	})
}
