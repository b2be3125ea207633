package fliptest

// In-memory fakes
//
// Store and KeyMinter stand in for store.Store and flip.RandomKeyMinter in
// tests that need flip's behaviour but no PostgreSQL:
//
//	s := fliptest.NewStore()
//	s.AddSlots("Trust_001..Trust_010")
//	reg := flip.NewRegistry(s, flip.WithKeyMinter(fliptest.NewKeyMinter()))
//	tx := s.Begin()
//	res, err := reg.RegisterTrust(ctx, tx, flip.TrustParams{Name: "A", Code: "A"})
//	// … tx.Commit() or tx.Rollback()
//
// Each fake can be told to fail: FailNext(method, err) makes the next call of
// one method return err, and OnCall installs a hook consulted before every
// call. TestStore runs one behaviour suite against both Store and the
// PostgreSQL store, so the fake cannot drift from the real thing.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
)

// Method names a method of a fake, for FailNext, OnCall and Calls.
type Method string

// The methods of Store and KeyMinter that faults can be injected into.
const (
	MethodSavepoint         Method = "Savepoint"
	MethodLockTrustIdentity Method = "LockTrustIdentity"
	MethodFindDuplicate     Method = "FindDuplicate"
	MethodInsertTrust       Method = "InsertTrust"
	MethodClaimSlot         Method = "ClaimSlot"
	MethodInsertAudit       Method = "InsertAudit"
	MethodLookupAPIKeyHash  Method = "LookupAPIKeyHash"
	MethodMintKey           Method = "MintKey"
)

// faults holds a fake's injected failures and call counts. Its zero value
// is ready; it is safe for concurrent use.
type faults struct {
	mu    sync.Mutex
	next  map[Method][]error
	hook  func(ctx context.Context, m Method) error
	calls map[Method]int
}

// failNext queues err as the result of the next call of m.
func (f *faults) failNext(m Method, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next == nil {
		f.next = map[Method][]error{}
	}
	f.next[m] = append(f.next[m], err)
}

func (f *faults) onCall(hook func(ctx context.Context, m Method) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// enter counts a call of m and returns the failure injected for it, if
// any: a queued FailNext error first, else the hook's answer.
func (f *faults) enter(ctx context.Context, m Method) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[Method]int{}
	}
	f.calls[m]++
	if q := f.next[m]; len(q) > 0 {
		err := q[0]
		f.next[m] = q[1:]
		f.mu.Unlock()
		return err
	}
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, m)
	}
	return nil
}

func (f *faults) count(m Method) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

// ErrFakeSQL is returned by the SQL methods of a fake transaction: the
// fakes keep their data in memory, so code that sends SQL through a Tx
// from Store.Begin has reached for a real database by mistake.
var ErrFakeSQL = errors.New("fliptest: a fake transaction runs no SQL; use fliptest.NewDB for code that does")

// noSQL is a *sql.DB whose every connection attempt fails with ErrFakeSQL;
// it exists to hand out a *sql.Row carrying that error from
// Tx.QueryRowContext, which database/sql offers no other way to build.
var noSQL = sql.OpenDB(noSQLConnector{})

type noSQLConnector struct{}

func (noSQLConnector) Connect(context.Context) (driver.Conn, error) { return nil, ErrFakeSQL }
func (noSQLConnector) Driver() driver.Driver                        { return noSQLDriver{} }

type noSQLDriver struct{}

func (noSQLDriver) Open(string) (driver.Conn, error) { return nil, ErrFakeSQL }
