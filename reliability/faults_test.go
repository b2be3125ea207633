package reliability

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/hubfixture"
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
	// A pgx.Tx outlives the context it was begun with: there the statement
	// is refused unsent, as in faultCancelCall, and the transaction lives.
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
// call, a second one hits the j-th statement of the rollback to the
// savepoint. Every operation retries a failed undo once, so a client-side
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
// point: usable (every operation promises it) or failed (the connection or
// the transaction is gone by construction); when neither, either is
// acceptable as long as nothing from the call is committed.
type expectation int

const (
	mayEither expectation = iota
	mustBeUsable
	mustHaveFailed
)

func (h *faultHarness) expect(p point) expectation {
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
	case faultCancelTx:
		if h.b.v.native {
			return mustBeUsable // see faultCancelTx
		}
		return mustHaveFailed
	case faultServerError:
		if p.at == 1 {
			// The SAVEPOINT itself failed on the server: there is nothing to
			// roll back to, and PostgreSQL has aborted the caller's
			// transaction. Outside any library's control.
			return mayEither
		}
		return mustBeUsable
	case faultErrorAfter:
		if p.at == len(h.stmts) {
			// The RELEASE ran but the client saw an error: the rollback to
			// the (released) savepoint fails and aborts the transaction.
			return mayEither
		}
		return mustBeUsable
	case faultKill:
		return mustHaveFailed
	default: // faultCancelDuring: drivers close the connection, or not
		return mayEither
	}
}

// racing reports whether the point's fault may miss: a cancel racing an
// instant statement can come too late to fail the call.
func (p point) racing(h *faultHarness) bool {
	q, _ := blockSQL(h.stmts, p.at, target{})
	return p.kind == faultCancelDuring && q == ""
}

// injector decides the fault of one statement, right before it is sent.
type injector func(ctx context.Context, s faultdb.Stmt) faultdb.Fault

// plan strikes statement n of those the call sends with at[n], and
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

// faultHarness runs fault points on one variant's database, one after
// another (a blocker or a kill must not hit a neighbour's statement), for
// one operation after another.
type faultHarness struct {
	b        *bundle
	v        *violations
	op       operation
	stmts    []string // the statements of a clean call
	undoN    int      // statements of the undo after a failure
	auditBy  uuid.UUID
	outcomes map[string]int
	lastErr  map[faultKind]string
	// listener listens on flip_trust_changes, for notices a failed call
	// must never have delivered.
	listener *pq.Listener
	// What the lifecycle operations act on: a trust for rotation and
	// revocation, one for deletion. On a legacy database both are the
	// legacy trust, and snap is the database as the fixture left it.
	keyTrust, delTrust uuid.UUID
	snap               *snapshot
	restores           int
	// growReg is b.reg with a slot-name source reading slotFile, which
	// the growth operations' targets write.
	growReg  *flip.Registry
	slotFile string
}

// legacyTrust is the hub fixture's trust with two kit slots, a
// trust-scoped grant and rows in every table that references trust(id).
var legacyTrust = uuid.MustParse("0b7d3f1e-2a44-4c1a-9a0e-1f0000000001")

// legacyReferrer adds a table of the hub's own that references one of the
// trust's dependent tables, so that DeleteTrust checks for blockers (one
// statement more to strike); its row points at another trust's result, so
// nothing blocks the legacy trust's deletion.
const legacyReferrer = `CREATE TABLE result_review (id uuid PRIMARY KEY, query_result_id uuid NOT NULL REFERENCES query_result (id));
INSERT INTO result_review VALUES ('3a6b9c0d-4e5f-4a1b-8c2d-5c00000000f1', '3a6b9c0d-4e5f-4a1b-8c2d-5c0000000012');`

// legacyVariants are the hub's database with its legacy rows: as the hub
// leaves it (flip never migrated it), and migrated, with a referrer of a
// dependent table, each also with pgx-native transactions. Only the fault
// harness runs on them.
var legacyVariants = []variant{
	{name: "hub_fixture/lib_pq", version: 0, driver: "postgres", format: flip.ReferenceKeys,
		fixture: []string{hubfixture.Schema, hubfixture.Legacy}},
	{name: "hub_fixture_migrated/pgx", version: store.LatestVersion(), driver: "pgx", format: flip.PrefixedKeys,
		fixture: []string{hubfixture.Schema, hubfixture.Legacy, legacyReferrer}},
	{name: "hub_fixture/pgx_native", version: 0, driver: "pgx", native: true, format: flip.PrefixedKeys,
		fixture: []string{hubfixture.Schema, hubfixture.Legacy}},
	{name: "hub_fixture_migrated/pgx_native", version: store.LatestVersion(), driver: "pgx", native: true, format: flip.ReferenceKeys,
		fixture: []string{hubfixture.Schema, hubfixture.Legacy, legacyReferrer}},
}

// TestFaultAtEveryStatement breaks registration (from a pool with free
// slots, growing an empty one, and refused when growing finds nothing to
// add), rotation, revocation and deletion at every statement they send,
// one harness for all of them.
func TestFaultAtEveryStatement(t *testing.T) {
	t.Parallel()
	for _, v := range slices.Concat(variants, legacyVariants) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			// The caller's connection and one being replaced; the listener
			// has one of its own.
			takeConns(t, 1)
			b := setup(t, v, 2+adminConns)
			h := newFaultHarness(t, b)
			for _, op := range operations {
				t.Run(op.name, func(t *testing.T) { h.runOperation(t, op) })
			}
		})
	}
}

func newFaultHarness(t *testing.T, b *bundle) *faultHarness {
	t.Helper()
	h := &faultHarness{b: b, v: &violations{t: t}, auditBy: uuid.New()}
	h.slotFile = filepath.Join(t.TempDir(), "slot-names.json")
	h.growReg = b.registry(flip.WithSlotNameSource(flip.SlotNamesFromFile(h.slotFile)))
	h.listener = pq.NewListener(b.db.URL, 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { h.listener.Close() })
	if err := h.listener.Listen(pgsql.ChangeChannel); err != nil {
		t.Fatalf("listen on %s: %v", pgsql.ChangeChannel, err)
	}
	// LISTEN is in effect once the harness's own notice has come back.
	if got := h.notices(t, "before any call"); len(got) != 0 {
		t.Fatalf("notices before any call: %q", got)
	}
	if !b.v.legacy() {
		h.keyTrust = h.registerTarget(t, "Key target")
		h.delTrust = h.registerTarget(t, "Deletion target")
		return h
	}
	h.keyTrust, h.delTrust = legacyTrust, legacyTrust
	var err error
	if h.snap, err = takeSnapshot(b.ctx, b.admin); err != nil {
		t.Fatalf("snapshot the legacy database: %v", err)
	}
	return h
}

// runOperation learns the statements of a clean call of op, then strikes
// each of them with each fault kind in turn.
func (h *faultHarness) runOperation(t *testing.T, op operation) {
	b := h.b
	h.op, h.v = op, &violations{t: t}
	h.outcomes, h.lastErr, h.restores = map[string]int{}, map[faultKind]string{}, 0
	h.stmts = h.cleanRun(t)
	h.undoN = h.countUndo(t)

	// A refusal ends with its own undo: a fault there is already one on
	// the undo path, and a second would be the undo that fails every time
	// (ErrRollbackRequired by design), so the undo faults come on top of
	// faults before it only.
	work := len(h.stmts)
	if op.refuses != nil {
		work -= h.undoN
		for _, q := range h.stmts[work:] {
			if !strings.HasPrefix(q, "ROLLBACK") && !strings.HasPrefix(q, "RELEASE") {
				t.Fatalf("the refused %s does not end with its undo: %q", op.name, label(q))
			}
		}
	}
	var points []point
	for range short(1, 10) {
		for _, kind := range primaryKinds {
			for at := 1; at <= len(h.stmts); at++ {
				points = append(points, point{kind: kind, at: at})
			}
		}
		for at := 2; at <= work; at++ {
			for _, uk := range undoKinds {
				for j := 1; j <= h.undoN; j++ {
					points = append(points, point{kind: faultError, at: at, undoKind: uk, undoAt: j})
				}
			}
		}
	}
	for _, p := range points {
		h.run(t, p)
	}
	h.commitClean(t)
	checkInvariants(b.ctx, h.v, b, "after all fault points")
	checkSecrets(b.ctx, h.v, b, "after all fault points")

	report(t, "faults", b.v, "op", op.name,
		"statements", len(h.stmts), "undo_statements", h.undoN,
		"points", len(points), "outcomes", counts(h.outcomes), "restores", h.restores, "violations", h.v.n)
	for _, k := range primaryKinds {
		if e := h.lastErr[k]; e != "" {
			t.Logf("%s, last error seen: %s", k, e)
		}
	}
}

// cleanRun calls the operation through faultdb with no faults and
// returns the statements it sent, in order. The caller's transaction is
// rolled back: the target stays for the fault points.
func (h *faultHarness) cleanRun(t *testing.T) []string {
	t.Helper()
	ctx := h.b.ctx
	tg := h.op.target(t, h, point{kind: "clean"})
	tx, err := h.b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the clean call is not kept
	f := tx.WithFaults(nil)
	if _, err := h.op.call(ctx, h, f, tg); !h.cleanError(err) {
		t.Fatalf("clean %s: %v (want %v)", h.op.name, err, h.op.refuses)
	}
	stmts := f.Queries()
	labels := make([]string, len(stmts))
	for i, q := range stmts {
		labels[i] = label(q)
	}
	t.Logf("a clean %s sends %d statements: %s", h.op.name, len(stmts), strings.Join(labels, ", "))
	for _, core := range h.op.core {
		if !slices.Contains(labels, core) {
			t.Errorf("%s is not among the statements %s sends; internal/pgsql has drifted", core, h.op.name)
		}
	}
	return stmts
}

// cleanError reports whether err is what a call without a fault returns:
// nil, or the operation's refusal.
func (h *faultHarness) cleanError(err error) bool {
	if h.op.refuses == nil {
		return err == nil
	}
	return errors.Is(err, h.op.refuses) && errors.Is(err, h.op.base)
}

// countUndo fails the call at its second statement and counts the
// statements that follow: the undo path.
func (h *faultHarness) countUndo(t *testing.T) int {
	t.Helper()
	ctx := h.b.ctx
	tg := h.op.target(t, h, point{kind: "undo"})
	tx, err := h.b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // test cleanup
	f := tx.WithFaults(faultdb.At(2, faultdb.Fault{Err: errInjected}))
	if _, err := h.op.call(ctx, h, f, tg); !errors.Is(err, errInjected) {
		t.Fatalf("%s failing at statement 2: %v, want the injected error", h.op.name, err)
	}
	undo := f.Queries()[2:]
	labels := make([]string, len(undo))
	for i, q := range undo {
		labels[i] = label(q)
	}
	t.Logf("after a failure %s sends %d statements: %s", h.op.name, len(undo), strings.Join(labels, ", "))
	return len(undo)
}

// run tries one fault point and checks everything that must hold after it.
func (h *faultHarness) run(t *testing.T, p point) {
	t.Helper()
	b, v, op := h.b, h.v, h.op
	base := b.ctx
	where := fmt.Sprintf("%s %s (%s)", op.name, p, label(h.stmts[p.at-1]))
	tg := op.target(t, h, p)
	before, err := dumpLines(base, b.admin)
	if err != nil {
		t.Fatalf("%s: dump before: %v", where, err)
	}

	// The caller: a transaction with some work of its own, then the call.
	txCtx, cancelTx := context.WithCancel(base)
	defer cancelTx()
	callCtx, cancelCall := context.WithCancel(base)
	defer cancelCall()
	if p.kind == faultCancelTx {
		callCtx, cancelCall = txCtx, cancelTx
	}
	tx, err := b.Begin(txCtx)
	if err != nil {
		t.Fatalf("%s: begin: %v", where, err)
	}
	pid, err := tx.PID(base)
	if err != nil {
		t.Fatalf("%s: backend pid: %v", where, err)
	}
	marker := uuid.New()
	if err := tx.Exec(base, `INSERT INTO roles (id, name, description, created_at, updated_at) VALUES ($1, $2, 'before', now(), now())`, marker, "Marker "+marker.String()); err != nil {
		t.Fatalf("%s: caller's own work: %v", where, err)
	}

	pl := &plan{at: map[int]injector{}}
	pl.at[p.at] = h.injector(p.kind, pid, tg, cancelCall, where)
	if p.undoKind != "" {
		pl.at[p.at+p.undoAt] = h.injector(p.undoKind, pid, tg, cancelCall, where)
	}
	f := tx.WithFaults(pl.fault)
	minted := b.minter.count()
	out, callErr := op.call(callCtx, h, f, tg)
	keys := b.minter.since(minted)

	// The caller carries on, then commits.
	errFollow := tx.Exec(base, `UPDATE roles SET description = 'after' WHERE id = $1`, marker)
	var errCommit error
	if errFollow == nil {
		errCommit = tx.Commit(base)
	} else {
		_ = tx.Rollback(base)
	}
	usable := errFollow == nil && errCommit == nil
	if err := settled(base, b.admin, pid); err != nil {
		v.add("%s: %v", where, err)
	}

	// Every planned fault must have struck.
	sent := f.Queries()
	for n := range pl.at {
		if !pl.fired[n] {
			v.add("%s: the fault planned for statement %d never fired (%s sent %d statements)", where, n, op.name, len(sent))
		}
	}
	if p.undoKind != "" && len(sent) >= p.at+p.undoAt {
		if q := sent[p.at+p.undoAt-1]; !strings.HasPrefix(q, "ROLLBACK") && !strings.HasPrefix(q, "RELEASE") {
			v.add("%s: the undo fault hit %q, not a statement of the undo", where, label(q))
		}
	}

	// What the call returned.
	switch {
	case callErr == nil && op.refuses != nil:
		v.add("%s: %s succeeded; it must be refused (%v) whatever happens", where, op.name, op.refuses)
	case callErr == nil && !p.racing(h):
		v.add("%s: %s succeeded although statement %d failed", where, op.name, p.at)
	case callErr == nil:
	case !errors.Is(callErr, op.base):
		v.add("%s: error does not match %v: %v", where, op.base, callErr)
	case errors.Is(callErr, op.other):
		v.add("%s: error matches %v, the other operations' base: %v", where, op.other, callErr)
	case errors.Is(callErr, flip.ErrTrustNotFound):
		// The trust exists: a 404 would tell the admin it is gone.
		v.add("%s: a fault reported as ErrTrustNotFound: %v", where, callErr)
	case p.undoKind == "":
		h.lastErr[p.kind] = callErr.Error()
	}
	// ErrRollbackRequired says a committable half-done change may remain;
	// it is false where the transaction was already over (cancelled,
	// killed), which only tells the operator to look for damage that
	// cannot exist.
	if errors.Is(callErr, flip.ErrRollbackRequired) && tx.Ended(errFollow) {
		v.add("%s: the error says the call could not be undone, but the transaction was already over: %v", where, callErr)
	}
	if callErr != nil {
		for _, k := range keys {
			if strings.Contains(callErr.Error(), k.key) {
				v.add("%s: the error message contains a plaintext %s", where, k.kind)
			}
		}
		if len(out.keys) > 0 {
			v.add("%s: a failed call returned keys", where)
		}
	}

	// What the database holds: the change when the call succeeded and the
	// caller committed; otherwise exactly what it held before the caller
	// began, and the caller's own work if it committed.
	committed := callErr == nil && usable
	dump, err := tableText(base, b.admin)
	if err != nil {
		t.Fatalf("%s: dump after: %v", where, err)
	}
	var after []string
	for _, l := range strings.Split(strings.TrimSuffix(dump, "\n"), "\n") {
		if !strings.Contains(l, marker.String()) {
			after = append(after, l)
		}
	}
	slices.Sort(after)
	if committed {
		if msg, err := op.committed(base, h, tg, out); err != nil {
			t.Fatalf("%s: read back: %v", where, err)
		} else if msg != "" {
			v.add("%s: %s", where, msg)
		}
	} else if gone, added := diffLines(before, after); len(gone)+len(added) > 0 {
		v.add("%s: the failed call changed the database (returned error: %v; caller's commit: %v, %v): rows lost %q, rows new %q",
			where, callErr, errFollow, errCommit, gone, added)
	}
	var desc sql.NullString
	if err := b.admin.QueryRowContext(base, `SELECT (SELECT description FROM roles WHERE id = $1)`, marker).Scan(&desc); err != nil {
		t.Fatalf("%s: read back: %v", where, err)
	}
	switch {
	case usable && desc.String != "after":
		v.add("%s: the caller's commit succeeded but its own work reads %q", where, desc.String)
	case !usable && desc.Valid:
		v.add("%s: the caller's transaction failed (%v, %v) yet its own work was committed (%q)", where, errFollow, errCommit, desc.String)
	}

	switch e := h.expect(p); {
	case e == mustBeUsable && !usable:
		v.add("%s: the caller's transaction is not usable after the failed call (%s: %v; caller's next statement: %v; commit: %v)",
			where, op.name, callErr, errFollow, errCommit)
	case e == mustHaveFailed && usable:
		v.add("%s: the caller's transaction survived a fault that must end it", where)
	}

	// What listeners heard: the trust's notice once after a committed
	// change, nothing from a failed call.
	want := 0
	if committed && op.notifies {
		want = 1
	}
	if heard := h.notices(t, where); want == 0 && len(heard) > 0 {
		v.add("%s: listeners heard %q after the caller's commit (%v), want nothing from a call that failed or was not committed (returned error: %v)",
			where, heard, errCommit, callErr)
	} else if want == 1 && (len(heard) != 1 || heard[0] != tg.trust.String()) {
		v.add("%s: listeners heard %q after the committed %s, want the id of trust %s once", where, heard, op.name, tg.trust)
	}

	class := "failed_cleanly"
	switch {
	case committed:
		class = "committed"
	case usable:
		class = "usable"
	}
	h.outcomes[class]++

	checkInvariants(base, v, b, where)
	// The call's own keys: an earlier call's keys are gone from memory by
	// now, so nothing can store or log them any more (and every key is
	// searched for once more after the last point).
	checkKeys(v, keys, dump, b.logs.String(), where)
}

// notices sends a notice of the harness's own on flip_trust_changes,
// after everything the test committed so far, and returns the payloads
// heard before it. PostgreSQL delivers notices in commit order, so
// anything a committed call announced has arrived by then; nothing has
// to be waited for by the clock.
func (h *faultHarness) notices(t *testing.T, where string) []string {
	t.Helper()
	sentinel := "reliability-" + uuid.NewString()
	if _, err := h.b.admin.ExecContext(h.b.ctx, `SELECT pg_notify($1, $2)`, pgsql.ChangeChannel, sentinel); err != nil {
		t.Fatalf("%s: notify: %v", where, err)
	}
	var heard []string
	for {
		select {
		case n := <-h.listener.Notify:
			switch {
			case n == nil: // lib/pq reconnected: notices may have been lost
				h.v.add("%s: the listener lost its connection; notices may have been missed", where)
			case n.Extra == sentinel:
				return heard
			default:
				heard = append(heard, n.Extra)
			}
		case <-h.b.ctx.Done():
			t.Fatalf("%s: the harness's own notice never came back: %v", where, h.b.ctx.Err())
		}
	}
}

// commitClean calls the operation once more without a fault and commits:
// the fault points almost never let a call commit, and this proves that
// the checks of a committed call, and the listener, see one. The legacy
// trust's deletion must also have freed both its slots and deleted rows
// from every dependent table; the legacy database is then restored, which
// proves the restore the racing points rely on.
func (h *faultHarness) commitClean(t *testing.T) {
	t.Helper()
	ctx := h.b.ctx
	tg := h.op.target(t, h, point{kind: "committed"})
	tx, err := h.b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	before, err := dumpLines(ctx, h.b.admin)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.op.call(ctx, h, tx, tg)
	if !h.cleanError(err) {
		t.Fatalf("clean %s: %v (want %v)", h.op.name, err, h.op.refuses)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if h.op.refuses != nil {
		// A refusal the caller commits anyway leaves nothing behind.
		after, err := dumpLines(ctx, h.b.admin)
		if err != nil {
			t.Fatal(err)
		}
		if gone, added := diffLines(before, after); len(gone)+len(added) > 0 {
			h.v.add("clean %s, committed: the refusal changed the database: rows lost %q, rows new %q", h.op.name, gone, added)
		}
		if heard := h.notices(t, "clean "+h.op.name); len(heard) != 0 {
			h.v.add("clean %s: listeners heard %q from a refusal", h.op.name, heard)
		}
		return
	}
	if msg, err := h.op.committed(ctx, h, tg, out); err != nil || msg != "" {
		h.v.add("clean %s: %s %v", h.op.name, msg, err)
	}
	heard := h.notices(t, "clean "+h.op.name)
	if want := h.op.notifies; (want && (len(heard) != 1 || heard[0] != tg.trust.String())) || (!want && len(heard) != 0) {
		h.v.add("clean %s: listeners heard %q (announces: %v)", h.op.name, heard, want)
	}
	if h.op.name != "delete" || !h.b.v.legacy() {
		return
	}
	res := out.deletion
	if len(res.FreedKitSlots) != 2 {
		h.v.add("deleting the legacy trust freed %v, want its two slots", res.FreedKitSlots)
	}
	for table, n := range res.DependentRowsDeleted {
		if n == 0 {
			h.v.add("deleting the legacy trust deleted no row of %s; the fixture gives it rows in every dependent table", table)
		}
	}
	t.Logf("the legacy trust's deletion: %d dependent tables %v", len(res.DependentRowsDeleted), res.DependentRowsDeleted)
	h.restore(t)
}

// injector builds the fault of kind at a statement of the transaction
// running on backend pid.
func (h *faultHarness) injector(kind faultKind, pid int, tg target, cancel context.CancelFunc, where string) injector {
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
			// Then wait for the backend to be gone. (pg_terminate_backend's
			// own timeout would wait too, but in steps of 100 ms.)
			err := h.b.admin.QueryRowContext(h.b.ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed)
			if err == nil && killed {
				err = backendGone(h.b.ctx, h.b.admin, pid)
			}
			if err != nil || !killed {
				h.v.add("%s: could not terminate backend %d: %v", where, pid, err)
			}
			return faultdb.Fault{}
		}
	case faultCancelDuring:
		return func(_ context.Context, s faultdb.Stmt) faultdb.Fault {
			return h.cancelDuring(s, pid, tg, cancel, where)
		}
	}
	panic("unknown fault kind " + kind)
}

// cancelDuring holds s on a lock from a second connection, cancels once
// the backend waits for it, and lets go once s is done. A statement that
// takes no lock gets the cancel racing it instead.
func (h *faultHarness) cancelDuring(s faultdb.Stmt, pid int, tg target, cancel context.CancelFunc, where string) faultdb.Fault {
	lock, args := blockSQL(h.stmts, s.N, tg)
	if lock == "" {
		go cancel()
		return faultdb.Fault{}
	}
	blocker, err := h.b.admin.BeginTx(h.b.ctx, nil)
	if err != nil {
		h.v.add("%s: begin blocker: %v", where, err)
		return faultdb.Fault{}
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
