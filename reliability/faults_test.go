package reliability

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// faultKind is what goes wrong at one statement.
type faultKind string

const (
	// faultError: the statement fails in the client and never reaches the
	// server (a driver or network error on send).
	faultError faultKind = "error"
	// faultServerError: the server rejects the statement, which aborts the
	// transaction up to the last savepoint.
	faultServerError faultKind = "server-error"
	// faultErrorAfter: the statement runs, then the client reports an error
	// (a lost or unreadable reply).
	faultErrorAfter faultKind = "error-after"
	// faultCancelCall: the context of the call is cancelled right before the
	// statement; the transaction was begun with another context.
	faultCancelCall faultKind = "cancel-before"
	// faultCancelTx: the caller began the transaction with the same context
	// it calls with (the usual request handler), and it is cancelled right
	// before the statement; database/sql then rolls the transaction back.
	faultCancelTx faultKind = "cancel-tx"
	// faultCancelDuring: the context is cancelled while the statement runs,
	// held on a lock that a second connection takes just before it. SAVEPOINT
	// and RELEASE cannot be held on a lock, so there the cancel races the
	// statement instead.
	faultCancelDuring faultKind = "cancel-during"
	// faultKill: the backend is terminated with pg_terminate_backend from a
	// second connection right before the statement.
	faultKill faultKind = "kill"
)

var primaryKinds = []faultKind{faultError, faultServerError, faultErrorAfter, faultCancelCall, faultCancelTx, faultCancelDuring, faultKill}

// undoKinds strike the undo path: a first fault (faultError) fails the
// registration, a second one hits the j-th statement of the rollback to the
// savepoint. RegisterTrust retries a failed undo once, so a client-side
// error or a server error there still leaves the caller's transaction
// usable; only a killed backend ends it. (An undo that fails every time is
// covered in store's TestRegisterTrust_FailedUndoNeverLeavesHalfARegistration:
// the transaction is then aborted on purpose, ErrRollbackRequired.)
var undoKinds = []faultKind{faultError, faultServerError, faultKill}

// errInjected is the error a fault returns in the client.
var errInjected = errors.New("reliability: injected fault")

// point is one fault point: a fault at statement at, and optionally a
// second one at undoAt (a statement of the undo path).
type point struct {
	kind     faultKind
	at       int
	undoKind faultKind
	undoAt   int
}

func (p point) String() string {
	s := fmt.Sprintf("%s@%d", p.kind, p.at)
	if p.undoKind != "" {
		s += fmt.Sprintf("+%s@%d", p.undoKind, p.undoAt)
	}
	return s
}

// expectation says what the caller's transaction must look like after the
// point: usable (RegisterTrust promises it) or failed (the connection or
// the transaction is gone by construction); when neither, either is
// acceptable as long as nothing from the call is committed.
type expectation int

const (
	mayEither expectation = iota
	mustBeUsable
	mustHaveFailed
)

func expect(p point, stmts []string) expectation {
	if p.undoKind == faultKill {
		return mustHaveFailed
	}
	if p.undoKind != "" {
		// One failed undo statement: the retry undoes the work.
		return mustBeUsable
	}
	switch p.kind {
	case faultError, faultCancelCall:
		return mustBeUsable
	case faultServerError:
		if p.at == 1 {
			// The SAVEPOINT itself failed on the server: there is nothing to
			// roll back to, and PostgreSQL has aborted the caller's
			// transaction. Outside any library's control.
			return mayEither
		}
		return mustBeUsable
	case faultErrorAfter:
		if p.at == len(stmts) {
			// The RELEASE ran but the client saw an error: the rollback to
			// the (released) savepoint fails and aborts the transaction.
			return mayEither
		}
		return mustBeUsable
	case faultCancelTx, faultKill:
		return mustHaveFailed
	default: // faultCancelDuring: drivers close the connection, or not
		return mayEither
	}
}

// racing reports whether the point's fault may miss: a cancel racing an
// instant statement can come too late to fail the registration.
func (p point) racing(h *faultHarness) bool {
	return p.kind == faultCancelDuring && blockSQL(h.stmts, p.at) == ""
}

// injector decides the fault of one statement, right before it is sent.
type injector func(ctx context.Context, s faultdb.Stmt) faultdb.Fault

// plan strikes statement n of those RegisterTrust sends with at[n], and
// records which of them fired.
type plan struct {
	at    map[int]injector
	fired map[int]bool
}

func (p *plan) fault(ctx context.Context, s faultdb.Stmt) faultdb.Fault {
	inj := p.at[s.N]
	if inj == nil {
		return faultdb.Fault{}
	}
	if p.fired == nil {
		p.fired = map[int]bool{}
	}
	p.fired[s.N] = true
	return inj(ctx, s)
}

// clientError fails the statement without sending it.
func clientError(context.Context, faultdb.Stmt) faultdb.Fault {
	return faultdb.Fault{Err: errInjected}
}

// serverError sends a statement the server rejects instead.
func serverError(context.Context, faultdb.Stmt) faultdb.Fault {
	return faultdb.Fault{Query: faultdb.ServerError}
}

// errorAfter runs the statement, then reports an error in the client.
func errorAfter(context.Context, faultdb.Stmt) faultdb.Fault {
	return faultdb.Fault{ErrAfter: errInjected}
}

// blockSQL returns what a second connection runs, in a transaction, to hold
// statement q on a lock, or "" when q takes no lock that can be held (the
// savepoint statements). Every lock is one RegisterTrust's transaction
// does not hold yet when q starts.
//
// Statement at (1-based) of stmts is q; a Register sent again after the
// identity lock (the hub's bare schema) finds the transaction holding
// every table lock already, so nothing can hold it then.
func blockSQL(stmts []string, at int) string {
	q := stmts[at-1]
	if q == pgsql.Register && slices.Contains(stmts[:at-1], q) {
		return ""
	}
	switch q {
	case pgsql.LockTrustIdentity:
		return q // the same advisory locks, with the same name and code
	case pgsql.Register:
		// Its first lock is ACCESS SHARE on trust, for the duplicate check.
		return `LOCK TABLE trust IN ACCESS EXCLUSIVE MODE`
	}
	return ""
}

// faultHarness runs fault points on one variant's database, one after
// another (a blocker or a kill must not hit a neighbour's statement).
type faultHarness struct {
	b        *bundle
	v        *violations
	stmts    []string // the statements of a clean registration
	undoN    int      // statements of the undo after a failure
	auditBy  uuid.UUID
	outcomes map[string]int
	lastErr  map[faultKind]string
}

func TestRegisterTrust_FaultAtEveryStatement(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v, 2+adminConns) // the caller's connection, and one being replaced
			h := &faultHarness{b: b, v: &violations{t: t}, auditBy: uuid.New(), outcomes: map[string]int{}, lastErr: map[faultKind]string{}}
			h.addSlots(t, 10)
			h.stmts = h.cleanRun(t)
			h.undoN = h.countUndo(t)

			var points []point
			for range short(1, 10) {
				for _, kind := range primaryKinds {
					for at := 1; at <= len(h.stmts); at++ {
						points = append(points, point{kind: kind, at: at})
					}
				}
				for at := 2; at <= len(h.stmts); at++ {
					for _, uk := range undoKinds {
						for j := 1; j <= h.undoN; j++ {
							points = append(points, point{kind: faultError, at: at, undoKind: uk, undoAt: j})
						}
					}
				}
			}
			for i, p := range points {
				if i%5 == 0 {
					h.addSlots(t, 5) // successes use slots up; keep some free
				}
				h.run(t, p)
			}
			checkInvariants(b.ctx, h.v, b.admin, "after all fault points")
			checkSecrets(b.ctx, h.v, b, "after all fault points")

			report(t, "faults", v,
				"statements", len(h.stmts), "undo_statements", h.undoN,
				"points", len(points), "outcomes", counts(h.outcomes), "violations", h.v.n)
			for _, k := range primaryKinds {
				if e := h.lastErr[k]; e != "" {
					t.Logf("%s, last error seen: %s", k, e)
				}
			}
		})
	}
}

func (h *faultHarness) addSlots(t *testing.T, n int) {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = "Fault_" + uuid.NewString()
	}
	if _, err := store.AddSlots(h.b.ctx, h.b.admin, names...); err != nil {
		t.Fatalf("add slots: %v", err)
	}
}

// cleanRun registers one trust through a faultdb.DB with no faults and
// returns the statements RegisterTrust sent, in order.
func (h *faultHarness) cleanRun(t *testing.T) []string {
	t.Helper()
	ctx := h.b.ctx
	tx, err := h.b.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	f := &faultdb.DB{Next: tx}
	if _, err := h.b.reg.RegisterTrust(ctx, f, flip.TrustParams{Name: "Clean " + uuid.NewString(), Code: "C" + uuid.NewString()[:8]}); err != nil {
		t.Fatalf("clean registration: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	stmts := f.Queries()
	if len(stmts) == 0 {
		t.Fatal("RegisterTrust sent no statement")
	}
	labels := make([]string, len(stmts))
	for i, q := range stmts {
		labels[i] = label(q)
	}
	t.Logf("a clean RegisterTrust sends %d statements: %s", len(stmts), strings.Join(labels, ", "))
	if !contains(stmts, pgsql.Register) {
		t.Errorf("pgsql.Register is not among the statements RegisterTrust sends; internal/pgsql has drifted")
	}
	return stmts
}

// countUndo fails the registration at its second statement and counts the
// statements that follow: the undo path.
func (h *faultHarness) countUndo(t *testing.T) int {
	t.Helper()
	ctx := h.b.ctx
	tx, err := h.b.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // test cleanup
	f := &faultdb.DB{Next: tx, Fault: faultdb.At(2, faultdb.Fault{Err: errInjected})}
	if _, err := h.b.reg.RegisterTrust(ctx, f, flip.TrustParams{Name: "Undo " + uuid.NewString(), Code: "U" + uuid.NewString()[:8]}); !errors.Is(err, errInjected) {
		t.Fatalf("registration failing at statement 2: %v, want the injected error", err)
	}
	undo := f.Queries()[2:]
	labels := make([]string, len(undo))
	for i, q := range undo {
		labels[i] = label(q)
	}
	t.Logf("after a failure RegisterTrust sends %d statements: %s", len(undo), strings.Join(labels, ", "))
	return len(undo)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// label names a statement briefly for messages.
func label(q string) string {
	switch q {
	case pgsql.LockTrustIdentity:
		return "LockTrustIdentity"
	case pgsql.Register:
		return "Register"
	}
	if f := strings.Fields(q); len(f) > 3 {
		return strings.Join(f[:3], " ")
	}
	return q
}

// run tries one fault point and checks everything that must hold after it.
func (h *faultHarness) run(t *testing.T, p point) {
	t.Helper()
	b, v := h.b, h.v
	base := b.ctx
	where := fmt.Sprintf("%s (%s)", p, label(h.stmts[p.at-1]))
	name := "Fault " + p.String() + " " + uuid.NewString()[:8]
	code := "F" + uuid.NewString()[:12]

	// The caller: a transaction with some work of its own, then the call.
	txCtx, cancelTx := context.WithCancel(base)
	defer cancelTx()
	callCtx, cancelCall := context.WithCancel(base)
	defer cancelCall()
	if p.kind == faultCancelTx {
		callCtx, cancelCall = txCtx, cancelTx
	}
	tx, err := b.db.BeginTx(txCtx, nil)
	if err != nil {
		t.Fatalf("%s: begin: %v", where, err)
	}
	var pid int
	if err := tx.QueryRowContext(base, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatalf("%s: backend pid: %v", where, err)
	}
	marker := uuid.New()
	if _, err := tx.ExecContext(base, `INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, $2, 'before', now(), now())`, marker, "Marker "+marker.String()); err != nil {
		t.Fatalf("%s: caller's own work: %v", where, err)
	}

	pl := &plan{at: map[int]injector{}}
	pl.at[p.at] = h.injector(p.kind, pid, name, code, cancelCall, where)
	if p.undoKind != "" {
		pl.at[p.at+p.undoAt] = h.injector(p.undoKind, pid, name, code, cancelCall, where)
	}
	f := &faultdb.DB{Next: tx, Fault: pl.fault}
	minted := b.minter.count()
	res, regErr := b.reg.RegisterTrust(callCtx, f, flip.TrustParams{Name: name, Code: code, AuditUserID: h.auditBy})
	keys := b.minter.since(minted)

	// The caller carries on, then commits.
	_, errFollow := tx.ExecContext(base, `UPDATE roles SET description = 'after' WHERE id = $1`, marker)
	var errCommit error
	if errFollow == nil {
		errCommit = tx.Commit()
	} else {
		_ = tx.Rollback()
	}
	usable := errFollow == nil && errCommit == nil
	if err := settled(base, b.admin, pid); err != nil {
		v.add("%s: %v", where, err)
	}

	// Every planned fault must have struck.
	sent := f.Queries()
	for n := range pl.at {
		if !pl.fired[n] {
			v.add("%s: the fault planned for statement %d never fired (RegisterTrust sent %d statements)", where, n, len(sent))
		}
	}
	if p.undoKind != "" && len(sent) >= p.at+p.undoAt {
		if q := sent[p.at+p.undoAt-1]; !strings.HasPrefix(q, "ROLLBACK") && !strings.HasPrefix(q, "RELEASE") {
			v.add("%s: the undo fault hit %q, not a statement of the undo", where, label(q))
		}
	}

	// What the call returned.
	switch {
	case regErr == nil && !p.racing(h):
		v.add("%s: RegisterTrust succeeded although statement %d failed", where, p.at)
	case regErr != nil && !errors.Is(regErr, flip.ErrTrustRegistration):
		v.add("%s: error does not match ErrTrustRegistration: %v", where, regErr)
	case regErr != nil && p.undoKind == "":
		h.lastErr[p.kind] = regErr.Error()
	}
	// ErrRollbackRequired says a committable half-registration may remain;
	// it is false where the transaction was already over (cancelled,
	// killed), which only tells the operator to look for damage that
	// cannot exist.
	if errors.Is(regErr, flip.ErrRollbackRequired) && (errors.Is(errFollow, sql.ErrTxDone) || errors.Is(errFollow, driver.ErrBadConn)) {
		v.add("%s: the error says the registration could not be undone, but the transaction was already over: %v", where, regErr)
	}
	if regErr != nil {
		for _, k := range keys {
			if strings.Contains(regErr.Error(), k.key) {
				v.add("%s: the error message contains a plaintext %s", where, k.kind)
			}
		}
		if res.APIKey != "" || res.InternalServiceKey != "" {
			v.add("%s: a failed call returned keys", where)
		}
	}

	// What the database holds.
	var apiHash string
	for _, k := range keys {
		if k.kind == flip.TrustAPIKey {
			apiHash = flip.HashAPIKey(k.key)
		}
	}
	var trusts, audits, hashes int
	var desc sql.NullString
	err = b.admin.QueryRowContext(base, `SELECT
		(SELECT count(*) FROM trust WHERE name = $1),
		(SELECT count(*) FROM trusts_audit WHERE trust_name = $1),
		(SELECT count(*) FROM trust WHERE api_key_hash = $2),
		(SELECT description FROM roles WHERE id = $3)`, name, apiHash, marker).Scan(&trusts, &audits, &hashes, &desc)
	if err != nil {
		t.Fatalf("%s: read back: %v", where, err)
	}
	registered := regErr == nil && usable
	want := 0
	if registered {
		want = 1
	}
	if trusts != want || audits != want || hashes != want {
		v.add("%s: the database holds %d trusts, %d audit rows and %d API key hashes from the call, want %d each (returned error: %v; caller's commit: %v, %v)",
			where, trusts, audits, hashes, want, regErr, errFollow, errCommit)
	}
	switch {
	case usable && desc.String != "after":
		v.add("%s: the caller's commit succeeded but its own work reads %q", where, desc.String)
	case !usable && desc.Valid:
		v.add("%s: the caller's transaction failed (%v, %v) yet its own work was committed (%q)", where, errFollow, errCommit, desc.String)
	}

	switch e := expect(p, h.stmts); {
	case e == mustBeUsable && !usable:
		v.add("%s: the caller's transaction is not usable after the failed call (RegisterTrust: %v; caller's next statement: %v; commit: %v)",
			where, regErr, errFollow, errCommit)
	case e == mustHaveFailed && usable:
		v.add("%s: the caller's transaction survived a fault that must end it", where)
	}

	class := "failed_cleanly"
	switch {
	case registered:
		class = "registered"
	case usable:
		class = "usable"
	}
	h.outcomes[class]++

	checkInvariants(base, v, b.admin, where)
	checkSecrets(base, v, b, where)
}

// injector builds the fault of kind at a statement of the transaction
// running on backend pid.
func (h *faultHarness) injector(kind faultKind, pid int, name, code string, cancel context.CancelFunc, where string) injector {
	switch kind {
	case faultError:
		return clientError
	case faultServerError:
		return serverError
	case faultErrorAfter:
		return errorAfter
	case faultCancelCall, faultCancelTx:
		return func(context.Context, faultdb.Stmt) faultdb.Fault {
			cancel()
			return faultdb.Fault{}
		}
	case faultKill:
		return func(context.Context, faultdb.Stmt) faultdb.Fault {
			var killed bool
			// The timeout makes pg_terminate_backend wait for the backend
			// to be gone.
			if err := h.b.admin.QueryRowContext(h.b.ctx, `SELECT pg_terminate_backend($1, 30000)`, pid).Scan(&killed); err != nil || !killed {
				h.v.add("%s: could not terminate backend %d: %v", where, pid, err)
			}
			return faultdb.Fault{}
		}
	case faultCancelDuring:
		return func(_ context.Context, s faultdb.Stmt) faultdb.Fault {
			return h.cancelDuring(s, pid, name, code, cancel, where)
		}
	}
	panic("unknown fault kind " + kind)
}

// cancelDuring holds s on a lock from a second connection, cancels once
// the backend waits for it, and lets go once s is done. A statement that
// takes no lock gets the cancel racing it instead.
func (h *faultHarness) cancelDuring(s faultdb.Stmt, pid int, name, code string, cancel context.CancelFunc, where string) faultdb.Fault {
	lock := blockSQL(h.stmts, s.N)
	if lock == "" {
		go cancel()
		return faultdb.Fault{}
	}
	blocker, err := h.b.admin.BeginTx(h.b.ctx, nil)
	if err != nil {
		h.v.add("%s: begin blocker: %v", where, err)
		return faultdb.Fault{}
	}
	var args []any
	if lock == pgsql.LockTrustIdentity {
		args = []any{name, code}
	}
	if _, err := blocker.ExecContext(h.b.ctx, lock, args...); err != nil {
		h.v.add("%s: take blocking lock: %v", where, err)
		_ = blocker.Rollback()
		return faultdb.Fault{}
	}
	done := make(chan struct{})
	waited := make(chan bool, 1)
	go func() {
		seen := waitForLock(h.b.ctx, h.b.admin, pid, done)
		cancel()
		waited <- seen
	}()
	return faultdb.Fault{Then: func() {
		close(done)
		if !<-waited {
			h.v.add("%s: the statement never waited on the blocking lock", where)
		}
		_ = blocker.Rollback() // releases the lock
	}}
}

// waitForLock polls until backend pid waits on a lock, or done closes.
func waitForLock(ctx context.Context, admin *sql.DB, pid int, done <-chan struct{}) bool {
	for {
		var waiting bool
		err := admin.QueryRowContext(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting)
		if err == nil && waiting {
			return true
		}
		select {
		case <-done:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

// settled waits until backend pid has exited or sits idle outside any
// transaction: a backend orphaned by a closed connection may still be
// finishing its statement, and it holds locks until it is gone.
func settled(ctx context.Context, admin *sql.DB, pid int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var busy int
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state <> 'idle'`, pid).Scan(&busy); err != nil {
			return err
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backend %d still busy a minute after the call", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
