package store_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// flakyTx fails chosen statements in the client: "before" ones are never
// sent, "after" ones run on the server but their answer is lost. Each map
// counts how many statements starting with a prefix still fail.
type flakyTx struct {
	flip.DBTX
	before, after map[string]int
}

var errLost = errors.New("injected: connection hiccup")

func (f *flakyTx) fault(q string, m map[string]int) bool {
	for prefix, n := range m {
		if n > 0 && strings.HasPrefix(strings.TrimSpace(q), prefix) {
			m[prefix] = n - 1
			return true
		}
	}
	return false
}

func (f *flakyTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if f.fault(q, f.before) {
		return nil, errLost
	}
	res, err := f.DBTX.ExecContext(ctx, q, args...)
	if err == nil && f.fault(q, f.after) {
		return nil, errLost
	}
	return res, err
}

// A registration that fails and then cannot be rolled back to its
// savepoint must never leave anything a COMMIT could persist.
func TestRegisterTrust_FailedUndoNeverLeavesHalfARegistration(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		failClaim     bool // the slot claim fails in the client, the transaction stays healthy
		before, after map[string]int
		wantUsable    bool // else the transaction must refuse to commit the work
	}{
		{"undo fails once, retried", true, map[string]int{"ROLLBACK TO": 1}, nil, true},
		{"undo never succeeds", true, map[string]int{"ROLLBACK TO": 2}, nil, false},
		{"answer to RELEASE lost", false, nil, map[string]int{"RELEASE": 1}, false},
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
				ftx := &flakyTx{DBTX: tx, before: copyMap(tc.before), after: copyMap(tc.after)}
				reg := b.reg
				if tc.failClaim {
					reg = flip.NewRegistry(store.New(), flip.WithSlotStore(failingSlots{}))
				}
				_, err = reg.RegisterTrust(b.ctx, ftx, flip.TrustParams{Name: "Half", Code: "H"})
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

func copyMap(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
