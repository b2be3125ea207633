package flip_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// The orchestration of RegisterTrust on the real database: which
// statements it sends, in which order, and how it undoes a failure. The
// statements are named after the store's; internal/faultdb records them
// and fails the one a test picks.

var errStep = errors.New("injected failure")

// stepOf names a statement RegisterTrust sends after the step of the
// registration it belongs to.
func stepOf(q string) string {
	switch {
	case strings.HasPrefix(q, "SAVEPOINT"):
		return "savepoint"
	case strings.HasPrefix(q, "RELEASE SAVEPOINT"):
		return "release"
	case strings.HasPrefix(q, "ROLLBACK TO SAVEPOINT"):
		return "rollback"
	}
	return map[string]string{
		pgsql.LockTrustIdentity: "lock", pgsql.Register: "register", pgsql.RegisterWithoutSlot: "register-without-slot",
		pgsql.ClaimSlot: "claim", pgsql.AnyFreeSlot: "any-free",
	}[q]
}

func stepsOf(db *faultdb.DB) string {
	var steps []string
	for _, q := range db.Queries() {
		steps = append(steps, stepOf(q))
	}
	return strings.Join(steps, ",")
}

// registryDB returns a database of the test's own with n free kit slots.
func registryDB(t *testing.T, n int, opts ...fliptest.Option) *fliptest.DB {
	t.Helper()
	db := fliptest.NewDB(t, opts...)
	if n > 0 {
		fliptest.AddSlots(t, db, fmt.Sprintf("Trust_001..Trust_%03d", n))
	}
	return db
}

// registerThrough runs RegisterTrust in a transaction of its own on db,
// through a faultdb.DB asking fault about each statement, and commits
// when it succeeds.
func registerThrough(t *testing.T, reg *flip.Registry, db *fliptest.DB, fault func(context.Context, faultdb.Stmt) faultdb.Fault, p flip.TrustParams) (*faultdb.DB, flip.RegistrationResult, error) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	fdb := &faultdb.DB{Next: tx, Fault: fault}
	res, err := reg.RegisterTrust(t.Context(), fdb, p)
	if err == nil {
		err = tx.Commit()
	}
	return fdb, res, err
}

// The statements of a clean registration on flip's schema, whose unique
// indexes stop a concurrent duplicate, and on the hub's bare schema
// (migration 1 alone), where the identity lock must be taken and the
// registration statement sent again.
var registrationSteps = []struct {
	schema string
	opts   []fliptest.Option
	steps  []string
}{
	{"flip_schema", nil, []string{"savepoint", "register", "release"}},
	{"hub_schema", []fliptest.Option{fliptest.AtVersion(1)}, []string{"savepoint", "register", "lock", "register", "release"}},
}

func TestRegisterTrust_RunsStepsInOrderUnderASavepoint(t *testing.T) {
	t.Parallel()
	for _, c := range registrationSteps {
		db := registryDB(t, 1, c.opts...)
		fdb, res, err := registerThrough(t, flip.NewRegistry(store.New()), db, nil, flip.TrustParams{Name: "N", Code: "C"})
		if err != nil {
			t.Fatal(err)
		}
		if got := stepsOf(fdb); got != strings.Join(c.steps, ",") {
			t.Errorf("%s: steps = %s", c.schema, got)
		}
		if res.KitSlot.AssignedTo != res.Trust.ID || res.APIKey.Reveal() == "" || res.InternalServiceKey.Reveal() == "" {
			t.Errorf("%s: result = %+v", c.schema, res)
		}
	}
}

// ownSlots hides store.Store's mark: a SlotStore of the caller's own,
// which the Registry calls after writing the trust.
type ownSlots struct{ flip.SlotStore }

func TestRegisterTrust_OwnSlotStoreClaimsAfterTheTrustIsWritten(t *testing.T) {
	t.Parallel()
	db := registryDB(t, 1)
	reg := flip.NewRegistry(ownSlots{store.New()})
	fdb, res, err := registerThrough(t, reg, db, nil, flip.TrustParams{Name: "N", Code: "C"})
	if err != nil {
		t.Fatal(err)
	}
	if got := stepsOf(fdb); got != "savepoint,register-without-slot,claim,release" {
		t.Errorf("steps = %s", got)
	}
	if res.KitSlot.Name != "Trust_001" || res.KitSlot.AssignedTo != res.Trust.ID {
		t.Errorf("result = %+v", res)
	}
	_, err = reg.RegisterTrustDB(t.Context(), db, flip.TrustParams{Name: "M", Code: "M"})
	if !errors.Is(err, flip.ErrNoFreeKitSlot) {
		t.Fatalf("empty pool: %v", err)
	}
	var trusts int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM trust`).Scan(&trusts); err != nil || trusts != 1 {
		t.Errorf("trust rows after the refused registration: %d (%v), want 1", trusts, err)
	}
}

func TestRegisterTrust_RollsBackToTheSavepointOnEveryFailure(t *testing.T) {
	t.Parallel()
	reg := flip.NewRegistry(store.New())
	for _, c := range registrationSteps {
		db := registryDB(t, 1, c.opts...)
		for n := 2; n <= len(c.steps); n++ { // each statement after the savepoint
			p := flip.TrustParams{Name: fmt.Sprint("N", n), Code: fmt.Sprint("C", n)}
			fdb, _, err := registerThrough(t, reg, db, faultdb.At(n, faultdb.Fault{Err: errStep}), p)
			if !errors.Is(err, errStep) || !errors.Is(err, flip.ErrTrustRegistration) {
				t.Errorf("%s: failure at statement %d (%s): %v", c.schema, n, c.steps[n-1], err)
			}
			want := strings.Join(append(c.steps[:n:n], "rollback", "release"), ",")
			if steps := stepsOf(fdb); steps != want {
				t.Errorf("%s: failure at statement %d: steps %s, want %s", c.schema, n, steps, want)
			}
		}
		fdb, _, err := registerThrough(t, reg, db, faultdb.At(1, faultdb.Fault{Err: errStep}), flip.TrustParams{Name: "N", Code: "C"})
		if !errors.Is(err, errStep) {
			t.Errorf("%s: savepoint failure: %v", c.schema, err)
		}
		if steps := stepsOf(fdb); steps != "savepoint" {
			t.Errorf("%s: after a failed savepoint: %v", c.schema, steps)
		}
	}
}

func TestRegisterTrust_ValidatesBeforeTouchingTheStore(t *testing.T) {
	t.Parallel()
	// No statement may reach the database, so there need not be one.
	fdb := &faultdb.DB{Fault: func(context.Context, faultdb.Stmt) faultdb.Fault { return faultdb.Fault{Err: errStep} }}
	reg := flip.NewRegistry(store.New())
	for _, p := range []flip.TrustParams{{Name: "", Code: "C"}, {Name: "N", Code: " "}, {Name: "N\x00", Code: "C"}} {
		if _, err := reg.RegisterTrust(context.Background(), fdb, p); !errors.Is(err, flip.ErrInvalidTrustParams) {
			t.Errorf("%+v: %v", p, err)
		}
	}
	if _, err := reg.RegisterTrust(context.Background(), nil, flip.TrustParams{Name: "N", Code: "C"}); !errors.Is(err, flip.ErrNotInTransaction) {
		t.Errorf("nil tx: %v", err)
	}
	if n := len(fdb.Stmts()); n != 0 {
		t.Errorf("%d statements sent before validation passed: %v", n, fdb.Queries())
	}
}

// A minter that fails costs no round trip: the keys come before any
// statement.
func TestRegisterTrust_MinterFailureSendsNoStatement(t *testing.T) {
	t.Parallel()
	fdb := &faultdb.DB{Fault: func(context.Context, faultdb.Stmt) faultdb.Fault { return faultdb.Fault{Err: errStep} }}
	minter := &fliptest.KeyMinter{MintKeyFn: func(flip.KeyKind) (string, error) { return "", errors.New("no entropy") }}
	_, err := flip.NewRegistry(store.New(), flip.WithKeyMinter(minter)).RegisterTrust(context.Background(), fdb, flip.TrustParams{Name: "A", Code: "A"})
	if !errors.Is(err, flip.ErrTrustRegistration) || len(fdb.Stmts()) != 0 {
		t.Errorf("error = %v, statements = %d; want a registration error before the database is touched", err, len(fdb.Stmts()))
	}
}

func TestRegisterTrust_DuplicateCarriesTheExistingTrust(t *testing.T) {
	t.Parallel()
	db := registryDB(t, 2)
	existing := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "N", Code: "C"})
	_, err := flip.NewRegistry(store.New()).RegisterTrustDB(context.Background(), db, flip.TrustParams{Name: "N", Code: "X"})
	var dup *flip.DuplicateTrustError
	if !errors.As(err, &dup) || dup.Existing == nil || dup.Existing.ID != existing.Trust.ID || dup.Existing.Name != "N" ||
		dup.Field != "name" || err.Error() != `a trust named "N" already exists` {
		t.Errorf("duplicate: %v (%+v)", err, dup)
	}
}

func TestRegistrationResult_KeepsKeysOutOfLogsAndJSON(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res, err := flip.NewRegistry(store.New(), flip.WithLogger(logger)).
		RegisterTrustDB(context.Background(), registryDB(t, 1), flip.TrustParams{Name: "N", Code: "C"})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("registered", "result", res)
	js, _ := json.Marshal(res)
	printed := fmt.Sprintf("%v %+v %#v %s", res, res, res, res) + string(js) + logs.String()
	for _, secret := range []string{res.APIKey.Reveal(), res.InternalServiceKey.Reveal(), flip.HashAPIKey(res.APIKey.Reveal())} {
		if strings.Contains(printed, secret) {
			t.Fatalf("a key reached fmt, JSON or the log:\n%s", printed)
		}
	}
	if !strings.Contains(logs.String(), "trust registered") || !strings.Contains(printed, "[REDACTED]") {
		t.Errorf("expected a registration log line and redaction marks:\n%s", printed)
	}
}

func TestRegisterTrust_UsesTheClockInUTCMicroseconds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	res, err := flip.NewRegistry(store.New(), flip.WithClock(func() time.Time { return at })).
		RegisterTrustDB(context.Background(), registryDB(t, 1), flip.TrustParams{Name: "N", Code: "C"})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 2, 2, 4, 5, 123456000, time.UTC)
	if !res.Trust.CreatedAt.Equal(want) || res.Trust.CreatedAt.Location() != time.UTC || !res.KitSlot.AssignedAt.Equal(want) {
		t.Errorf("created_at %v, assigned_at %v; want %v", res.Trust.CreatedAt, res.KitSlot.AssignedAt, want)
	}
}
