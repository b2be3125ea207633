package fliptest

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Store is an in-memory flip.Store and flip.APIKeyLookup that behaves like
// store.Store on PostgreSQL as far as a registration can tell: exact-name
// and case-insensitive-code duplicates, the lowest-numbered free slot
// (ties by name), savepoints that undo a failed registration, and
// concurrent registrations serialised by name and code. TestStore checks
// that against the real store.
//
// Transactions come from Begin. Writes are visible at once to their own
// transaction and hidden from everyone else (snapshots, lookups) until
// Commit; Rollback undoes them. A transaction that did not come from Begin
// (a *sql.Tx, when Store is used only as a SlotStore) commits when its
// registration's savepoint is released, and writes made outside any
// savepoint are committed at once.
//
// The zero value is not ready; use NewStore. A Store is safe for
// concurrent use.
type Store struct {
	faults faults

	mu     sync.Mutex
	trusts []*fakeTrust
	audits []*fakeAudit
	slots  map[string]*fakeSlot
	locks  map[string]*fakeLock
	txs    map[flip.DBTX]*txState // transactions not from Begin, by handle
}

var (
	_ flip.Store        = (*Store)(nil)
	_ flip.APIKeyLookup = (*Store)(nil)
)

// pending is the transaction that wrote a row and has not committed; nil
// once committed.
type fakeTrust struct {
	trust   flip.Trust
	hash    string
	pending *txState
}

type fakeAudit struct {
	audit   flip.TrustAudit
	pending *txState
}

type fakeSlot struct {
	slot    flip.KitSlot
	pending *txState // the transaction whose claim is not yet committed
}

type fakeLock struct {
	owner    *txState
	released chan struct{}
}

// txState is one fake transaction: its undo log, its savepoint marks and
// the identity locks it holds until it ends.
type txState struct {
	own     bool // from Begin: ends at Commit or Rollback, not at its last savepoint
	handle  flip.DBTX
	changes []change
	marks   []int
	locks   []string
	done    bool
}

// change is one write: undo reverts it, commit makes it visible to all.
// Both run with Store.mu held.
type change struct{ undo, commit func() }

// NewStore returns an empty Store: no trusts, no slots.
func NewStore() *Store {
	return &Store{slots: map[string]*fakeSlot{}, locks: map[string]*fakeLock{}, txs: map[flip.DBTX]*txState{}}
}

// FailNext makes the next call of m return err before doing anything.
// Calls queue: FailNext twice fails the next two calls.
func (s *Store) FailNext(m Method, err error) { s.faults.failNext(m, err) }

// OnCall installs hook, consulted before every method call that has no
// FailNext error queued; a non-nil result is returned as the call's error.
// A hook may block (to line up concurrent calls) and must be safe for
// concurrent use. nil removes it.
func (s *Store) OnCall(hook func(ctx context.Context, method Method) error) { s.faults.onCall(hook) }

// Calls returns how many times m was called, failed calls included.
func (s *Store) Calls(m Method) int { return s.faults.count(m) }

// AddSlots adds kit slots to the pool, as store.AddSlots does: each spec is
// a name or a range such as "Trust_001..Trust_050"; names are trimmed;
// names already present are left as they are. It returns how many were new.
func (s *Store) AddSlots(specs ...string) (int, error) {
	var names []string
	for _, spec := range specs {
		expanded, err := store.SlotRange(spec)
		if err != nil {
			return 0, err
		}
		for _, raw := range expanded {
			name := strings.TrimSpace(raw)
			if name == "" || strings.IndexFunc(name, unicode.IsControl) >= 0 {
				return 0, fmt.Errorf("%w: %q", store.ErrInvalidSlotName, raw)
			}
			names = append(names, name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	for _, name := range names {
		if _, ok := s.slots[name]; !ok {
			s.slots[name] = &fakeSlot{slot: flip.KitSlot{Name: name, Number: store.SlotNumber(name)}}
			added++
		}
	}
	return added, nil
}

// Begin starts a fake transaction to pass to Registry.RegisterTrust.
func (s *Store) Begin() *Tx {
	st := &txState{own: true}
	tx := &Tx{s: s, st: st}
	st.handle = tx
	return tx
}

// Trusts returns the committed trusts in registration order.
func (s *Store) Trusts() []flip.Trust {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []flip.Trust
	for _, r := range s.trusts {
		if r.pending == nil {
			out = append(out, r.trust)
		}
	}
	return out
}

// APIKeyHash returns the committed API-key hash of trustID.
func (s *Store) APIKeyHash(trustID uuid.UUID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.trusts {
		if r.pending == nil && r.trust.ID == trustID {
			return r.hash, true
		}
	}
	return "", false
}

// Slots returns the pool in claim order (number, then name) as a committed
// reader sees it: a slot claimed by an open transaction shows as free.
func (s *Store) Slots() []flip.KitSlot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]flip.KitSlot, 0, len(s.slots))
	for _, r := range s.slots {
		sl := r.slot
		if r.pending != nil {
			sl.AssignedTo, sl.AssignedAt = uuid.Nil, time.Time{}
		}
		out = append(out, sl)
	}
	slices.SortFunc(out, compareSlots)
	return out
}

// Audits returns the committed trusts_audit rows in insertion order.
func (s *Store) Audits() []flip.TrustAudit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []flip.TrustAudit
	for _, r := range s.audits {
		if r.pending == nil {
			out = append(out, r.audit)
		}
	}
	return out
}

func compareSlots(a, b flip.KitSlot) int {
	return cmp.Or(cmp.Compare(a.Number, b.Number), strings.Compare(a.Name, b.Name))
}

// Savepoint implements flip.TrustStore.
func (s *Store) Savepoint(ctx context.Context, tx flip.DBTX) (flip.Savepoint, error) {
	if err := s.faults.enter(ctx, MethodSavepoint); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stateLocked(tx, true)
	if err != nil {
		return nil, err
	}
	st.marks = append(st.marks, len(st.changes))
	return &fakeSavepoint{s: s, st: st, depth: len(st.marks)}, nil
}

// LockTrustIdentity implements flip.TrustStore: it waits while another open
// transaction holds the name or the lower-cased code, and holds both until
// this one ends. Locks are re-entrant within a transaction. Outside any
// transaction it can hold nothing and returns at once.
func (s *Store) LockTrustIdentity(ctx context.Context, tx flip.DBTX, name, code string) error {
	if err := s.faults.enter(ctx, MethodLockTrustIdentity); err != nil {
		return err
	}
	for _, key := range []string{"name:" + name, "code:" + strings.ToLower(code)} {
		if err := s.acquire(ctx, tx, key); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) acquire(ctx context.Context, tx flip.DBTX, key string) error {
	for {
		s.mu.Lock()
		st, err := s.stateLocked(tx, false)
		if err != nil || st == nil {
			s.mu.Unlock()
			return err
		}
		l := s.locks[key]
		if l == nil {
			s.locks[key] = &fakeLock{owner: st, released: make(chan struct{})}
			st.locks = append(st.locks, key)
			s.mu.Unlock()
			return nil
		}
		if l.owner == st {
			s.mu.Unlock()
			return nil
		}
		released := l.released
		s.mu.Unlock()
		select {
		case <-released:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// FindDuplicate implements flip.TrustStore. It sees committed trusts and
// this transaction's own, preferring a name match to a code match.
func (s *Store) FindDuplicate(ctx context.Context, tx flip.DBTX, name, code string) (*flip.Trust, string, error) {
	if err := s.faults.enter(ctx, MethodFindDuplicate); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stateLocked(tx, false)
	if err != nil {
		return nil, "", err
	}
	var byCode *flip.Trust
	for _, r := range s.trusts {
		if r.pending != nil && r.pending != st {
			continue
		}
		t := r.trust
		if t.Name == name {
			return &t, "name", nil
		}
		if byCode == nil && strings.EqualFold(t.Code, code) {
			byCode = &t
		}
	}
	if byCode != nil {
		return byCode, "code", nil
	}
	return nil, "", nil
}

// InsertTrust implements flip.TrustStore. Like flip's unique indexes, it
// refuses a name, lower-cased code or API-key hash that any trust,
// committed or not, already has.
func (s *Store) InsertTrust(ctx context.Context, tx flip.DBTX, t flip.Trust, apiKeyHash string) error {
	if err := s.faults.enter(ctx, MethodInsertTrust); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stateLocked(tx, false)
	if err != nil {
		return err
	}
	for _, r := range s.trusts {
		switch {
		case r.trust.ID == t.ID:
			return fmt.Errorf("fliptest: trust id %s already exists", t.ID)
		case r.trust.Name == t.Name:
			return flip.NewDuplicateTrustError("name", t.Name, t.Code, nil)
		case strings.EqualFold(r.trust.Code, t.Code):
			return flip.NewDuplicateTrustError("code", t.Name, t.Code, nil)
		case apiKeyHash != "" && r.hash == apiKeyHash:
			return errors.New("fliptest: another trust already holds this API-key hash (two KeyMinters with one Seed?)")
		}
	}
	row := &fakeTrust{trust: t, hash: apiKeyHash, pending: st}
	s.trusts = append(s.trusts, row)
	s.recordLocked(st, change{
		undo:   func() { s.trusts = slices.DeleteFunc(s.trusts, func(r *fakeTrust) bool { return r == row }) },
		commit: func() { row.pending = nil },
	})
	return nil
}

// ClaimSlot implements flip.SlotStore: the lowest-numbered free slot, ties
// by name, skipping slots that open transactions have claimed; with none
// left, flip.ErrKitSlotsBusy while another open transaction holds a claim,
// else flip.ErrNoFreeKitSlot.
func (s *Store) ClaimSlot(ctx context.Context, tx flip.DBTX, trustID uuid.UUID, at time.Time) (flip.KitSlot, error) {
	if err := s.faults.enter(ctx, MethodClaimSlot); err != nil {
		return flip.KitSlot{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stateLocked(tx, false)
	if err != nil {
		return flip.KitSlot{}, err
	}
	var best *fakeSlot
	for _, r := range s.slots {
		if r.slot.AssignedTo == uuid.Nil && (best == nil || compareSlots(r.slot, best.slot) < 0) {
			best = r
		}
	}
	if best == nil {
		// A slot claimed by a transaction still open is free to everyone
		// else's reads, as in PostgreSQL: the pool is busy, not empty.
		for _, r := range s.slots {
			if r.pending != nil && r.pending != st {
				return flip.KitSlot{}, flip.ErrKitSlotsBusy
			}
		}
		return flip.KitSlot{}, flip.ErrNoFreeKitSlot
	}
	best.slot.AssignedTo, best.slot.AssignedAt, best.pending = trustID, at, st
	s.recordLocked(st, change{
		undo:   func() { best.slot.AssignedTo, best.slot.AssignedAt, best.pending = uuid.Nil, time.Time{}, nil },
		commit: func() { best.pending = nil },
	})
	return best.slot, nil
}

// InsertAudit implements flip.TrustStore.
func (s *Store) InsertAudit(ctx context.Context, tx flip.DBTX, a flip.TrustAudit) error {
	if err := s.faults.enter(ctx, MethodInsertAudit); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.stateLocked(tx, false)
	if err != nil {
		return err
	}
	row := &fakeAudit{audit: a, pending: st}
	s.audits = append(s.audits, row)
	s.recordLocked(st, change{
		undo:   func() { s.audits = slices.DeleteFunc(s.audits, func(r *fakeAudit) bool { return r == row }) },
		commit: func() { row.pending = nil },
	})
	return nil
}

// LookupAPIKeyHash implements flip.APIKeyLookup over committed trusts.
func (s *Store) LookupAPIKeyHash(ctx context.Context, hash string) (flip.APIKeyRecord, bool, error) {
	if err := s.faults.enter(ctx, MethodLookupAPIKeyHash); err != nil {
		return flip.APIKeyRecord{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.trusts {
		if r.pending == nil && r.hash == hash {
			return flip.APIKeyRecord{Trust: r.trust, APIKeyHash: r.hash}, true, nil
		}
	}
	return flip.APIKeyRecord{}, false, nil
}

// stateLocked returns the fake transaction behind tx: a *Tx's own, or for
// any other handle the one its open savepoint started (created when
// create is set), or nil when writes on tx commit at once.
func (s *Store) stateLocked(tx flip.DBTX, create bool) (*txState, error) {
	if tx == nil {
		return nil, fmt.Errorf("%w: tx is nil", flip.ErrNotInTransaction)
	}
	if t, ok := tx.(*Tx); ok {
		if t.s != s {
			return nil, errors.New("fliptest: transaction belongs to another Store")
		}
		if t.st.done {
			return nil, sql.ErrTxDone
		}
		return t.st, nil
	}
	if !reflect.TypeOf(tx).Comparable() {
		return nil, fmt.Errorf("fliptest: cannot track transactions of type %T; pass a pointer", tx)
	}
	st := s.txs[tx]
	if st == nil && create {
		st = &txState{handle: tx}
		s.txs[tx] = st
	}
	return st, nil
}

func (s *Store) recordLocked(st *txState, c change) {
	if st == nil {
		c.commit()
		return
	}
	st.changes = append(st.changes, c)
}

// undoLocked reverts st's changes after index from, newest first.
func (s *Store) undoLocked(st *txState, from int) {
	for i := len(st.changes) - 1; i >= from; i-- {
		st.changes[i].undo()
	}
	st.changes = st.changes[:from]
}

// endLocked finishes st: commits what is left of its changes (after a
// rollback, nothing) and releases its locks.
func (s *Store) endLocked(st *txState) {
	for _, c := range st.changes {
		c.commit()
	}
	st.changes = nil
	for _, key := range st.locks {
		if l := s.locks[key]; l != nil && l.owner == st {
			close(l.released)
			delete(s.locks, key)
		}
	}
	st.locks = nil
	st.done = true
	if !st.own {
		delete(s.txs, st.handle)
	}
}

type fakeSavepoint struct {
	s     *Store
	st    *txState
	depth int // len(st.marks) once this savepoint was pushed
}

// Release keeps the work since the savepoint; releasing the outermost
// savepoint of a transaction not from Begin commits it.
func (sp *fakeSavepoint) Release(context.Context) error { return sp.end(false) }

// Rollback undoes the work since the savepoint.
func (sp *fakeSavepoint) Rollback(context.Context) error { return sp.end(true) }

func (sp *fakeSavepoint) end(rollback bool) error {
	s, st := sp.s, sp.st
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.done {
		return sql.ErrTxDone
	}
	if len(st.marks) != sp.depth {
		return errors.New("fliptest: savepoints must end innermost first")
	}
	mark := st.marks[len(st.marks)-1]
	st.marks = st.marks[:len(st.marks)-1]
	if rollback {
		s.undoLocked(st, mark)
	}
	if !st.own && len(st.marks) == 0 {
		s.endLocked(st)
	}
	return nil
}

// Tx is a fake transaction from Store.Begin. It satisfies flip.DBTX so it
// can be passed to Registry.RegisterTrust, but runs no SQL: its
// ExecContext, QueryContext and QueryRowContext fail with ErrFakeSQL.
type Tx struct {
	s  *Store
	st *txState
}

var _ flip.DBTX = (*Tx)(nil)

// Commit makes the transaction's writes visible and releases its locks.
func (tx *Tx) Commit() error { return tx.finish(false) }

// Rollback undoes the transaction's writes and releases its locks.
func (tx *Tx) Rollback() error { return tx.finish(true) }

func (tx *Tx) finish(rollback bool) error {
	tx.s.mu.Lock()
	defer tx.s.mu.Unlock()
	if tx.st.done {
		return sql.ErrTxDone
	}
	if rollback {
		tx.s.undoLocked(tx.st, 0)
	}
	tx.s.endLocked(tx.st)
	return nil
}

// ExecContext fails with ErrFakeSQL.
func (*Tx) ExecContext(context.Context, string, ...any) (sql.Result, error) { return nil, ErrFakeSQL }

// QueryContext fails with ErrFakeSQL.
func (*Tx) QueryContext(context.Context, string, ...any) (*sql.Rows, error) { return nil, ErrFakeSQL }

// QueryRowContext returns a row whose Scan fails with ErrFakeSQL.
func (*Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return noSQL.QueryRowContext(ctx, query, args...)
}
