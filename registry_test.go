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

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// stepStore records the calls RegisterTrust makes and fails the one named
// in failAt. It is the smallest flip.Store that lets these tests see the
// orchestration; fliptest has a full in-memory one.
type stepStore struct {
	calls  []string
	failAt string
	dup    *flip.Trust
}

var errStep = errors.New("injected failure")

func (s *stepStore) step(name string) error {
	s.calls = append(s.calls, name)
	if s.failAt == name {
		return errStep
	}
	return nil
}

func (s *stepStore) Savepoint(context.Context, flip.DBTX) (flip.Savepoint, error) {
	return stepSavepoint{s}, s.step("savepoint")
}

func (s *stepStore) LockTrustIdentity(context.Context, flip.DBTX, string, string) error {
	return s.step("lock")
}

func (s *stepStore) FindDuplicate(context.Context, flip.DBTX, string, string) (*flip.Trust, string, error) {
	return s.dup, "name", s.step("find")
}

func (s *stepStore) InsertTrust(context.Context, flip.DBTX, flip.Trust, string) error {
	return s.step("insert")
}

func (s *stepStore) ClaimSlot(_ context.Context, _ flip.DBTX, id uuid.UUID, at time.Time) (flip.KitSlot, error) {
	return flip.KitSlot{Name: "Trust_001", Number: 1, AssignedTo: id, AssignedAt: at}, s.step("claim")
}

func (s *stepStore) InsertAudit(context.Context, flip.DBTX, flip.TrustAudit) error {
	return s.step("audit")
}

type stepSavepoint struct{ s *stepStore }

func (p stepSavepoint) Release(context.Context) error  { return p.s.step("release") }
func (p stepSavepoint) Rollback(context.Context) error { return p.s.step("rollback") }

// fakeTx stands in for a transaction; stepStore never uses it.
type fakeTx struct{ flip.DBTX }

func TestRegisterTrust_RunsStepsInOrderUnderASavepoint(t *testing.T) {
	t.Parallel()
	s := &stepStore{}
	res, err := flip.NewRegistry(s).RegisterTrust(context.Background(), fakeTx{}, flip.TrustParams{Name: "N", Code: "C"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.calls, ","); got != "savepoint,lock,find,insert,claim,audit,release" {
		t.Errorf("steps = %s", got)
	}
	if res.KitSlot.AssignedTo != res.Trust.ID || res.APIKey == "" || res.InternalServiceKey == "" {
		t.Errorf("result = %+v", res)
	}
}

func TestRegisterTrust_RollsBackToTheSavepointOnEveryFailure(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"lock", "find", "insert", "claim", "audit", "release"} {
		s := &stepStore{failAt: step}
		_, err := flip.NewRegistry(s).RegisterTrust(context.Background(), fakeTx{}, flip.TrustParams{Name: "N", Code: "C"})
		if !errors.Is(err, errStep) || !errors.Is(err, flip.ErrTrustRegistration) {
			t.Errorf("failure at %s: %v", step, err)
		}
		if last := s.calls[len(s.calls)-1]; last != "rollback" {
			t.Errorf("failure at %s: last step %s, want rollback", step, last)
		}
	}
	s := &stepStore{failAt: "savepoint"}
	if _, err := flip.NewRegistry(s).RegisterTrust(context.Background(), fakeTx{}, flip.TrustParams{Name: "N", Code: "C"}); !errors.Is(err, errStep) {
		t.Errorf("savepoint failure: %v", err)
	}
	if len(s.calls) != 1 {
		t.Errorf("after a failed savepoint: %v", s.calls)
	}
}

func TestRegisterTrust_ValidatesBeforeTouchingTheStore(t *testing.T) {
	t.Parallel()
	s := &stepStore{}
	for _, p := range []flip.TrustParams{{Name: "", Code: "C"}, {Name: "N", Code: " "}, {Name: "N\x00", Code: "C"}} {
		if _, err := flip.NewRegistry(s).RegisterTrust(context.Background(), fakeTx{}, p); !errors.Is(err, flip.ErrInvalidTrustParams) {
			t.Errorf("%+v: %v", p, err)
		}
	}
	if _, err := flip.NewRegistry(s).RegisterTrust(context.Background(), nil, flip.TrustParams{Name: "N", Code: "C"}); !errors.Is(err, flip.ErrNotInTransaction) {
		t.Errorf("nil tx: %v", err)
	}
	if len(s.calls) != 0 {
		t.Errorf("store called before validation passed: %v", s.calls)
	}
}

func TestRegisterTrust_DuplicateCarriesTheExistingTrust(t *testing.T) {
	t.Parallel()
	existing := &flip.Trust{ID: uuid.New(), Name: "N", Code: "C"}
	_, err := flip.NewRegistry(&stepStore{dup: existing}).RegisterTrust(context.Background(), fakeTx{}, flip.TrustParams{Name: "N", Code: "X"})
	var dup *flip.DuplicateTrustError
	if !errors.As(err, &dup) || dup.Existing != existing || dup.Field != "name" || err.Error() != `a trust named "N" already exists` {
		t.Errorf("duplicate: %v (%+v)", err, dup)
	}
}

func TestRegistrationResult_KeepsKeysOutOfLogsAndJSON(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res, err := flip.NewRegistry(&stepStore{}, flip.WithLogger(logger)).
		RegisterTrust(context.Background(), fakeTx{}, flip.TrustParams{Name: "N", Code: "C"})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("registered", "result", res)
	js, _ := json.Marshal(res)
	printed := fmt.Sprintf("%v %+v %#v %s", res, res, res, res) + string(js) + logs.String()
	for _, secret := range []string{res.APIKey, res.InternalServiceKey, flip.HashAPIKey(res.APIKey)} {
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
	res, err := flip.NewRegistry(&stepStore{}, flip.WithClock(func() time.Time { return at })).
		RegisterTrust(context.Background(), fakeTx{}, flip.TrustParams{Name: "N", Code: "C"})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 1, 2, 2, 4, 5, 123456000, time.UTC)
	if !res.Trust.CreatedAt.Equal(want) || res.Trust.CreatedAt.Location() != time.UTC || !res.KitSlot.AssignedAt.Equal(want) {
		t.Errorf("created_at %v, assigned_at %v; want %v", res.Trust.CreatedAt, res.KitSlot.AssignedAt, want)
	}
}
