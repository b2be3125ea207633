package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
)

var errLost = errors.New("injected: connection hiccup")

// A registration that fails and then cannot be rolled back to its
// savepoint must never leave anything a COMMIT could persist.
func TestRegisterTrust_FailedUndoNeverLeavesHalfARegistration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		failWrite  bool   // the registration statement fails in the client, the transaction stays healthy
		undo       string // then statements containing this fail...
		times      int    // ...this many times
		after      bool   // after running (their answer is lost), else before being sent
		wantUsable bool   // else the transaction must refuse to commit the work
	}{
		{"undo fails once, retried", true, "ROLLBACK TO", 1, false, true},
		{"undo never succeeds", true, "ROLLBACK TO", 2, false, false},
		{"answer to RELEASE lost", false, "RELEASE", 1, true, false},
	}
	for _, v := range variants {
		for _, tc := range cases {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, v)
				fliptest.AddSlots(t, b.db, "Trust_001")
				before := snapshot(t, b.ctx, b.db)
				tx, err := b.db.BeginTx(b.ctx, nil)
				must(t, err)
				defer tx.Rollback() //nolint:errcheck // no-op after Commit
				fault := faultdb.Fault{Err: errLost}
				if tc.after {
					fault = faultdb.Fault{ErrAfter: errLost}
				}
				claim := failRegister(faultdb.Fault{Err: errSlots})
				undo := faultdb.Matching(tc.undo, tc.times, fault)
				ftx := &faultdb.DB{Next: tx, Fault: func(ctx context.Context, s faultdb.Stmt) faultdb.Fault {
					if tc.failWrite && s.Query == pgsql.Register {
						return claim(ctx, s)
					}
					return undo(ctx, s)
				}}
				_, err = b.reg.RegisterTrust(b.ctx, ftx, flip.TrustParams{Name: "Half", Code: "H"})
				if !errors.Is(err, flip.ErrTrustRegistration) {
					t.Fatalf("RegisterTrust = %v", err)
				}
				if got := errors.Is(err, flip.ErrRollbackRequired); got == tc.wantUsable {
					t.Errorf("errors.Is(err, ErrRollbackRequired) = %v: %v", got, err)
				}
				_, useErr := tx.ExecContext(b.ctx, `SELECT 1`)
				if tc.wantUsable && useErr != nil {
					t.Errorf("transaction unusable: %v", useErr)
				}
				commitErr := tx.Commit()
				if !tc.wantUsable && commitErr == nil {
					t.Error("a transaction that could not be undone committed")
				}
				if after := snapshot(t, b.ctx, b.db); after != before {
					t.Errorf("committing after the failed call persisted %+v (before %+v)", after, before)
				}
			})
		}
	}
}
