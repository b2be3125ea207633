package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/store"
)

const (
	raceGoroutines = 48 // callers per round
	racePool       = 12 // connections they share: a quarter of the callers
	raceFreeSlots  = 20 // free slots in a pool-exhaustion round
)

// race is one kind of round: the params of caller i, how many free slots
// the round starts with, and what must come out.
type race struct {
	name   string
	slots  int
	params func(round, i int) flip.TrustParams
	// check returns a description of what is wrong with the outcome, or "".
	check func(ok int, failures map[string]int) string
}

var races = []race{
	{
		name:  "same_name",
		slots: 1,
		params: func(round, i int) flip.TrustParams {
			return flip.TrustParams{Name: fmt.Sprintf("Contested name %d", round), Code: uuid.NewString()}
		},
		check: func(ok int, failures map[string]int) string {
			return exactly(ok, 1, failures, "duplicate name", raceGoroutines-1)
		},
	},
	{
		name:  "same_code",
		slots: 1,
		params: func(round, i int) flip.TrustParams {
			// One code in three spellings: codes compare case-insensitively.
			code := []string{"cc%d", "CC%d", "Cc%d"}[i%3]
			return flip.TrustParams{Name: uuid.NewString(), Code: fmt.Sprintf(code, round)}
		},
		check: func(ok int, failures map[string]int) string {
			return exactly(ok, 1, failures, "duplicate code", raceGoroutines-1)
		},
	},
	{
		name:  "pool_exhaustion",
		slots: raceFreeSlots,
		params: func(round, i int) flip.TrustParams {
			return flip.TrustParams{Name: uuid.NewString(), Code: uuid.NewString()}
		},
		check: func(ok int, failures map[string]int) string {
			return exactly(ok, raceFreeSlots, failures, "no free slot", raceGoroutines-raceFreeSlots)
		},
	},
	{
		// Everything at once: a few names and codes shared by many callers,
		// fewer slots than distinct names. The winners can be any set, so
		// only the invariants and the bounds are checked.
		name:  "mixed",
		slots: 6,
		params: func(round, i int) flip.TrustParams {
			code := fmt.Sprintf("mx%d-%d", round, i%5)
			if rand.IntN(2) == 0 {
				code = strings.ToUpper(code)
			}
			return flip.TrustParams{Name: fmt.Sprintf("Mixed %d-%d", round, i%8), Code: code}
		},
		check: func(ok int, failures map[string]int) string {
			if ok < 1 || ok > 5 {
				return fmt.Sprintf("%d winners, want between 1 and 5 (five distinct codes, six slots)", ok)
			}
			if ok+failures["duplicate name"]+failures["duplicate code"] != raceGoroutines {
				return fmt.Sprintf("%d winners and failures %v: only duplicates may lose", ok, failures)
			}
			return ""
		},
	},
}

// exactly checks for want winners and losers failures all of one kind.
func exactly(ok, want int, failures map[string]int, loser string, losers int) string {
	if ok != want || failures[loser] != losers || ok+failures[loser] != raceGoroutines {
		return fmt.Sprintf("%d winners and failures %v, want exactly %d winners and %d × %q", ok, failures, want, losers, loser)
	}
	return ""
}

func TestRegisterTrust_RacesRoundAfterRound(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v, racePool+adminConns)
			viol := &violations{t: t}
			rounds := short(3, 100)
			run := 0
			for round := range rounds {
				for _, r := range races {
					run++
					where := fmt.Sprintf("round %d %s", round, r.name)
					ok, failures := raceRound(t, b, r, round)
					if msg := r.check(ok, failures); msg != "" {
						viol.add("%s: %s", where, msg)
					}
					var free int
					if err := b.admin.QueryRowContext(b.ctx, `SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL`).Scan(&free); err != nil {
						t.Fatal(err)
					}
					if r.name == "pool_exhaustion" && free != 0 {
						viol.add("%s: %d slots still free after more callers than slots", where, free)
					}
					checkInvariants(b.ctx, viol, b, where)
				}
			}
			checkSecrets(b.ctx, viol, b, "after all rounds")
			report(t, "races", v, "rounds", run, "callers", raceGoroutines, "connections", racePool, "exhaustion_slots", raceFreeSlots, "violations", viol.n)
		})
	}
}

// raceRound frees exactly r.slots slots, releases raceGoroutines callers at
// once on the shared pool, and sorts their results.
func raceRound(t *testing.T, b *bundle, r race, round int) (ok int, failures map[string]int) {
	t.Helper()
	// Every round ends with no slot free except in "mixed", which may leave
	// some; take those before adding the round's own.
	if _, err := b.admin.ExecContext(b.ctx, `DELETE FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL`); err != nil {
		t.Fatal(err)
	}
	names := make([]string, r.slots)
	for i := range names {
		names[i] = fmt.Sprintf("Race_%s_%d", uuid.NewString()[:8], i)
	}
	if _, err := store.AddSlots(b.ctx, b.admin, names...); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, raceGoroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range raceGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := r.params(round, i)
			<-start
			// A caller retries what flip calls retryable (a pool busy with
			// claims not yet committed), as the hub's handler asks its
			// client to; bounded, so a livelock shows as a failure.
			for range 50 {
				if _, errs[i] = b.RegisterTrustDB(b.ctx, b.reg, p); !errors.Is(errs[i], flip.ErrRetryable) {
					break
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	failures = map[string]int{}
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, flip.ErrNoFreeKitSlot):
			failures["no free slot"]++
		case errors.Is(err, flip.ErrDuplicateTrust):
			var dup *flip.DuplicateTrustError
			if errors.As(err, &dup) {
				failures["duplicate "+dup.Field]++
			} else {
				failures["duplicate (untyped)"]++
			}
		default:
			failures["other"]++
			t.Logf("unexpected error: %v", err)
		}
	}
	return ok, failures
}

// TestRegisterTrustDB_BackendKilledAtRandomMoments kills the backend of a
// registration at a random moment, over and over: whatever the moment, the
// invariants hold, and a registration reported as done is in the database.
func TestRegisterTrustDB_BackendKilledAtRandomMoments(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v, 2+adminConns) // the registering connection, and one being replaced
			viol := &violations{t: t}
			tries := short(20, 1000)
			outcomes := map[string]int{}
			span := registrationTime(t, b)
			for i := range tries {
				if i%40 == 0 { // at most one slot a try is used up
					names := make([]string, 40)
					for j := range names {
						names[j] = fmt.Sprintf("Kill_%05d", i+j)
					}
					if _, err := store.AddSlots(b.ctx, b.admin, names...); err != nil {
						t.Fatal(err)
					}
				}
				outcomes[killRound(t, b, viol, i, span)]++
			}
			checkSecrets(b.ctx, viol, b, "after all kills")
			report(t, "kills", v, "tries", tries, "outcomes", counts(outcomes), "violations", viol.n)
		})
	}
}

// registrationTime is how long a registration takes here and now (the
// median of a few, after a warm-up): the kills are spread over that much
// from its start, and the kill itself takes a while to land, so some land
// before, some inside and some after the commit.
func registrationTime(t *testing.T, b *bundle) time.Duration {
	t.Helper()
	const probes = 6
	names := make([]string, probes)
	for i := range names {
		names[i] = fmt.Sprintf("Kill_probe_%d", i)
	}
	if _, err := store.AddSlots(b.ctx, b.admin, names...); err != nil {
		t.Fatal(err)
	}
	times := make([]time.Duration, 0, probes)
	for range probes {
		// The same steps as a kill round, on a fresh connection each time.
		conn, err := b.conn(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := conn.RegisterTrustDB(b.ctx, b.reg, flip.TrustParams{Name: uuid.NewString(), Code: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
		times = append(times, time.Since(start))
		conn.Discard()
	}
	slices.Sort(times)
	return times[len(times)/2]
}

func killRound(t *testing.T, b *bundle, viol *violations, i int, span time.Duration) string {
	t.Helper()
	conn, err := b.conn(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Its backend is dead whatever happened: keep the pool from handing
	// the connection out again.
	defer conn.Discard()
	pid := conn.PID()
	delay := rand.N(span + span/2)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(delay)
		_, _ = b.admin.ExecContext(context.WithoutCancel(b.ctx), `SELECT pg_terminate_backend($1, 30000)`, pid)
	}()
	name := fmt.Sprintf("Killed %d %s", i, uuid.NewString()[:8])
	_, regErr := conn.RegisterTrustDB(b.ctx, b.reg, flip.TrustParams{Name: name, Code: uuid.NewString()})
	<-killed
	if err := backendGone(b.ctx, b.admin, pid); err != nil {
		viol.add("kill %d: %v", i, err)
	}
	var n int
	if err := b.admin.QueryRowContext(b.ctx, `SELECT count(*) FROM trust WHERE name = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	outcome := ""
	switch {
	case regErr == nil && n == 1:
		outcome = "registered"
	case regErr == nil:
		viol.add("kill %d: RegisterTrustDB reported success but the trust is not in the database", i)
		outcome = "lost"
	case !errors.Is(regErr, flip.ErrTrustRegistration):
		viol.add("kill %d: error does not match ErrTrustRegistration: %v", i, regErr)
		outcome = "bad_error"
	case n == 0:
		outcome = "failed_cleanly"
	default:
		// The commit reached the server but its answer did not come back:
		// the outcome of a commit is unknowable on a dropped connection.
		outcome = "committed_but_reported_failed"
	}
	checkInvariants(b.ctx, viol, b, fmt.Sprintf("kill %d", i))
	return outcome
}

// A trust's later life, raced. Each round sets up a few trusts and
// releases callers at them at once on the shared pool; the rounds repeat
// like the registration races.
const lifecyclePairs = 6 // trusts contested at once in a round

// lifecycleRace is one kind of round: run plays it and sorts what came
// out into outcomes, adding a violation for anything that must not be.
type lifecycleRace struct {
	name string
	run  func(t *testing.T, b *bundle, viol *violations, outcomes map[string]int)
}

var lifecycleRaces = []lifecycleRace{
	{"rotate_vs_verify", rotateVsVerify},
	{"delete_vs_register", deleteVsRegister},
	{"delete_vs_delete", deleteVsDelete},
	{"rotate_vs_delete", rotateVsDelete},
}

func TestLifecycle_RacesRoundAfterRound(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v, racePool+adminConns)
			rounds := short(4, 100)
			for _, r := range lifecycleRaces {
				viol := &violations{t: t}
				outcomes := map[string]int{}
				for round := range rounds {
					r.run(t, b, viol, outcomes)
					checkInvariants(b.ctx, viol, b, fmt.Sprintf("round %d %s", round, r.name))
				}
				checkSecrets(b.ctx, viol, b, "after all rounds of "+r.name)
				report(t, "races_"+r.name, v, "rounds", rounds, "outcomes", counts(outcomes), "connections", racePool, "violations", viol.n)
			}
		})
	}
}

// registerTrusts adds n slots and registers n trusts on them.
func registerTrusts(t *testing.T, b *bundle, n int) []flip.RegistrationResult {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = "Life_" + uuid.NewString()
	}
	if _, err := store.AddSlots(b.ctx, b.admin, names...); err != nil {
		t.Fatal(err)
	}
	out := make([]flip.RegistrationResult, n)
	for i := range out {
		var err error
		out[i], err = b.RegisterTrustDB(b.ctx, b.reg, flip.TrustParams{Name: "Life " + uuid.NewString(), Code: uuid.NewString()})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func (b *bundle) rotate(id uuid.UUID) (res flip.RegistrationResult, err error) {
	err = b.Run(b.ctx, func(tx callertx.Tx) (err error) {
		res, err = tx.RotateKeys(b.ctx, b.reg, flip.TrustChange{TrustID: id})
		return err
	})
	return res, err
}

func (b *bundle) delete(id uuid.UUID) error {
	return b.Run(b.ctx, func(tx callertx.Tx) error {
		_, err := tx.DeleteTrust(b.ctx, b.reg, flip.TrustChange{TrustID: id})
		return err
	})
}

// rotateVsVerify: verifiers present a trust's old and new API keys to an
// uncached Verifier, over and over, while the trust's keys are rotated
// and committed. A verification that began after Commit returned must
// refuse the old key and accept the new one; one that ended before Commit
// was called must accept the old key and refuse the new one; one that
// overlapped the commit may see either. The phases are atomic flags set
// around Commit and read around each verification, never clock readings.
func rotateVsVerify(t *testing.T, b *bundle, viol *violations, outcomes map[string]int) {
	t.Helper()
	const verifiers, afterCommit = 8, 4
	tr := registerTrusts(t, b, 1)[0]
	verifier := b.Verifier()
	var (
		newKey                  atomic.Pointer[string]
		commitCalled, committed atomic.Bool
		warm, wg                sync.WaitGroup
		mu                      sync.Mutex
		rotateErr               error
	)
	note := func(outcome string, bad string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[outcome]++
		if bad != "" {
			viol.add("rotate_vs_verify: "+bad, args...)
		}
	}
	start := make(chan struct{})
	for range verifiers {
		wg.Add(1)
		warm.Add(1)
		go func() {
			defer wg.Done()
			<-start
			warmed, after := false, 0
			for after < afterCommit {
				// Whether Commit had returned is read before a verification
				// begins, whether it had been called once it has ended.
				done, nk := committed.Load(), newKey.Load()
				_, errOld := verifier.Verify(b.ctx, tr.APIKey.Reveal())
				called := commitCalled.Load()
				switch {
				case errOld != nil && !errors.Is(errOld, flip.ErrUnknownAPIKey):
					note("verify_error", "verifying the old key failed: %v", errOld)
				case done && errOld == nil:
					note("old_after_commit", "the old key was accepted by a verification begun after Commit returned")
				case done:
					note("old_after_commit", "")
				case !called && errOld != nil:
					note("old_before_commit", "the old key was refused by a verification that ended before Commit was called")
				case !called:
					note("old_before_commit", "")
				default:
					note("old_during_commit", "")
				}
				if nk != nil {
					got, errNew := verifier.Verify(b.ctx, *nk)
					called := commitCalled.Load()
					switch {
					case errNew != nil && !errors.Is(errNew, flip.ErrUnknownAPIKey):
						note("verify_error", "verifying the new key failed: %v", errNew)
					case errNew == nil && got.ID != tr.Trust.ID:
						note("wrong_trust", "the new key identified trust %s, want %s", got.ID, tr.Trust.ID)
					case done && errNew != nil:
						note("new_after_commit", "the new key was refused by a verification begun after Commit returned")
					case done:
						note("new_after_commit", "")
					case !called && errNew == nil:
						note("new_before_commit", "the new key was accepted by a verification that ended before Commit was called")
					case !called:
						note("new_before_commit", "")
					default:
						note("new_during_commit", "")
					}
				}
				if !warmed {
					warmed = true
					warm.Done()
				}
				if done {
					after++
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		warm.Wait() // every verifier has seen the old key at work
		tx, err := b.Begin(b.ctx)
		if err != nil {
			rotateErr = err
			committed.Store(true)
			return
		}
		defer tx.Rollback(b.ctx) //nolint:errcheck // no-op after Commit
		res, err := tx.RotateKeys(b.ctx, b.reg, flip.TrustChange{TrustID: tr.Trust.ID})
		if err == nil {
			key := res.APIKey.Reveal()
			newKey.Store(&key)
			commitCalled.Store(true)
			err = tx.Commit(b.ctx)
		}
		rotateErr = err
		committed.Store(true) // also on failure: the verifiers must stop
	}()
	close(start)
	wg.Wait()
	if rotateErr != nil {
		viol.add("rotate_vs_verify: the rotation failed: %v", rotateErr)
	}
}

// deleteVsRegister: each of a few trusts is deleted while a trust of the
// same name is registered. Either the registration met the old trust and
// was refused as a duplicate, or the deletion came first and the
// registration succeeded; the deletion always succeeds, and one name is
// never held by two trusts. Every other pair also reuses the code.
func deleteVsRegister(t *testing.T, b *bundle, viol *violations, outcomes map[string]int) {
	t.Helper()
	trusts := registerTrusts(t, b, lifecyclePairs)
	spare := make([]string, lifecyclePairs) // slots for the registrations
	for i := range spare {
		spare[i] = "Life_" + uuid.NewString()
	}
	if _, err := store.AddSlots(b.ctx, b.admin, spare...); err != nil {
		t.Fatal(err)
	}
	freeBefore := freeSlots(t, b)
	errDel := make([]error, len(trusts))
	errReg := make([]error, len(trusts))
	reg := make([]flip.RegistrationResult, len(trusts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tr := range trusts {
		p := flip.TrustParams{Name: tr.Trust.Name, Code: uuid.NewString()}
		if i%2 == 0 {
			p.Code = tr.Trust.Code
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			errDel[i] = b.delete(tr.Trust.ID)
		}()
		go func() {
			defer wg.Done()
			<-start
			for range 50 {
				if reg[i], errReg[i] = b.RegisterTrustDB(b.ctx, b.reg, p); !errors.Is(errReg[i], flip.ErrRetryable) {
					break
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	registered := 0
	for i, tr := range trusts {
		var ids []uuid.UUID
		if err := sqlx.NewDb(b.admin, "postgres").SelectContext(b.ctx, &ids, `SELECT id FROM trust WHERE name = $1`, tr.Trust.Name); err != nil {
			t.Fatal(err)
		}
		switch {
		case errDel[i] != nil:
			viol.add("delete_vs_register: the deletion failed: %v", errDel[i])
			outcomes["bad"]++
		case errors.Is(errReg[i], flip.ErrDuplicateTrust) && len(ids) == 0:
			outcomes["registration_refused_then_deleted"]++
		case errReg[i] == nil && len(ids) == 1 && ids[0] == reg[i].Trust.ID && ids[0] != tr.Trust.ID:
			outcomes["deleted_then_registered"]++
			registered++
		default:
			viol.add("delete_vs_register: deletion %v, registration %v (trust %s), and the name is held by %v", errDel[i], errReg[i], reg[i].Trust.ID, ids)
			outcomes["bad"]++
		}
	}
	if free, want := freeSlots(t, b), freeBefore+lifecyclePairs-registered; free != want {
		viol.add("delete_vs_register: %d slots free after %d deletions and %d registrations from %d, want %d", free, lifecyclePairs, registered, freeBefore, want)
	}
}

// deleteVsDelete: each of a few trusts is deleted by two callers at once;
// exactly one deletes it, the other finds nothing to delete, and the
// trust's slot is free once, its DELETED audit row written once.
func deleteVsDelete(t *testing.T, b *bundle, viol *violations, outcomes map[string]int) {
	t.Helper()
	trusts := registerTrusts(t, b, lifecyclePairs)
	errs := make([][2]error, len(trusts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tr := range trusts {
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i][j] = b.delete(tr.Trust.ID)
			}()
		}
	}
	close(start)
	wg.Wait()
	for i, tr := range trusts {
		ok, notFound := 0, 0
		for _, err := range errs[i] {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, flip.ErrTrustNotFound):
				notFound++
			}
		}
		var left, audits, slotFree int
		if err := b.admin.QueryRowContext(b.ctx, `SELECT
			(SELECT count(*) FROM trust WHERE id = $1),
			(SELECT count(*) FROM trusts_audit WHERE trust_id = $1 AND action = 'DELETED'),
			(SELECT count(*) FROM fl_kit_slot WHERE slot_name = $2 AND assigned_to_trust_id IS NULL)`,
			tr.Trust.ID, tr.KitSlot.Name).Scan(&left, &audits, &slotFree); err != nil {
			t.Fatal(err)
		}
		if ok != 1 || notFound != 1 || left != 0 || audits != 1 || slotFree != 1 {
			viol.add("delete_vs_delete: the deletions returned %v; %d trusts left, %d DELETED audit rows, slot free %d; want one deleted, one ErrTrustNotFound, 0, 1, 1",
				errs[i], left, audits, slotFree)
			outcomes["bad"]++
			continue
		}
		outcomes["one_deleted_one_not_found"]++
	}
}

// rotateVsDelete: each of a few trusts is rotated while it is deleted.
// Either the rotation came first and both succeeded, or the deletion came
// first and the rotation found no trust; the deletion always succeeds,
// and no trust holds the rotated key afterwards.
func rotateVsDelete(t *testing.T, b *bundle, viol *violations, outcomes map[string]int) {
	t.Helper()
	trusts := registerTrusts(t, b, lifecyclePairs)
	errDel := make([]error, len(trusts))
	errRot := make([]error, len(trusts))
	rot := make([]flip.RegistrationResult, len(trusts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, tr := range trusts {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			errDel[i] = b.delete(tr.Trust.ID)
		}()
		go func() {
			defer wg.Done()
			<-start
			rot[i], errRot[i] = b.rotate(tr.Trust.ID)
		}()
	}
	close(start)
	wg.Wait()
	verifier := b.Verifier()
	for i, tr := range trusts {
		var left int
		if err := b.admin.QueryRowContext(b.ctx, `SELECT count(*) FROM trust WHERE id = $1 OR api_key_hash = $2 OR api_key_hash = $3`,
			tr.Trust.ID, flip.HashAPIKey(tr.APIKey.Reveal()), flip.HashAPIKey(rot[i].APIKey.Reveal())).Scan(&left); err != nil {
			t.Fatal(err)
		}
		switch {
		case errDel[i] != nil:
			viol.add("rotate_vs_delete: the deletion failed: %v (rotation: %v)", errDel[i], errRot[i])
			outcomes["bad"]++
			continue
		case left != 0:
			viol.add("rotate_vs_delete: after the deletion (rotation: %v) %d trusts have its id or one of its keys", errRot[i], left)
			outcomes["bad"]++
			continue
		case errRot[i] == nil:
			outcomes["rotated_then_deleted"]++
		case errors.Is(errRot[i], flip.ErrTrustNotFound):
			outcomes["deleted_then_rotation_not_found"]++
		default:
			viol.add("rotate_vs_delete: the rotation failed with neither success nor ErrTrustNotFound: %v", errRot[i])
			outcomes["bad"]++
			continue
		}
		for _, key := range []string{tr.APIKey.Reveal(), rot[i].APIKey.Reveal()} {
			if key == "" {
				continue
			}
			if _, err := verifier.Verify(b.ctx, key); !errors.Is(err, flip.ErrUnknownAPIKey) {
				viol.add("rotate_vs_delete: a key of the deleted trust verifies: %v", err)
			}
		}
	}
}

func freeSlots(t *testing.T, b *bundle) int {
	t.Helper()
	var free int
	if err := b.admin.QueryRowContext(b.ctx, `SELECT count(*) FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL`).Scan(&free); err != nil {
		t.Fatal(err)
	}
	return free
}

// Registrations growing the pool at once: each round starts with no free
// slot, and growCallers callers, on a pool of growPool connections, register
// at once with one slot-name source (a file) listing growNames new names,
// half through RegisterTrustDB, half through RegisterTrust in a transaction
// of their own. Every one must succeed at the first try: growing the pool
// is no reason to fail, not even with an error worth retrying.
const (
	growCallers = 10
	growPool    = 5
	growNames   = 12
)

func TestSlotGrowth_RacesRoundAfterRound(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v, growPool+adminConns)
			file := filepath.Join(t.TempDir(), "slot-names.json")
			src := &countingSource{inner: flip.SlotNamesFromFile(file)}
			reg := b.registry(flip.WithSlotNameSource(src))
			viol := &violations{t: t}
			outcomes := map[string]int{}
			rounds, contested := short(10, 300), 0
			for round := range rounds {
				before := src.calls.Load()
				growRound(t, b, reg, file, viol, outcomes, fmt.Sprintf("round %d", round))
				if src.calls.Load()-before > 1 {
					contested++ // more than one caller found the pool empty and grew it
				}
				checkInvariants(b.ctx, viol, b, fmt.Sprintf("round %d", round))
			}
			checkSecrets(b.ctx, viol, b, "after all rounds")
			if contested == 0 {
				viol.add("no round had two callers growing the pool at once: the race was not run")
			}
			report(t, "races_slot_growth", v, "rounds", rounds, "contested_rounds", contested, "source_reads", src.calls.Load(),
				"callers", growCallers, "connections", growPool, "names", growNames, "outcomes", counts(outcomes), "violations", viol.n)
		})
	}
}

// countingSource counts how often the registrations ask it for names:
// once per registration that found no free slot.
type countingSource struct {
	inner flip.SlotNameSource
	calls atomic.Int64
}

func (c *countingSource) SlotNames(ctx context.Context) ([]string, error) {
	c.calls.Add(1)
	return c.inner.SlotNames(ctx)
}

// growRound plays one round of TestSlotGrowth_RacesRoundAfterRound.
func growRound(t *testing.T, b *bundle, reg *flip.Registry, file string, viol *violations, outcomes map[string]int, where string) {
	t.Helper()
	// What the last round left free goes: the round starts with none.
	if _, err := b.admin.ExecContext(b.ctx, `DELETE FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL`); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()[:8]
	names := make([]string, growNames)
	for i := range names {
		names[i] = fmt.Sprintf("Grown_%s_%d", id, i+1)
	}
	list, _ := json.Marshal(names)
	if err := os.WriteFile(file, list, 0o600); err != nil {
		t.Fatal(err)
	}
	results := make([]flip.RegistrationResult, growCallers)
	errs := make([]error, growCallers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range growCallers {
		wg.Go(func() {
			p := flip.TrustParams{Name: fmt.Sprintf("Grown %s %d", id, i), Code: fmt.Sprintf("G%s%d", id, i)}
			<-start
			if i%2 == 0 {
				results[i], errs[i] = b.RegisterTrustDB(b.ctx, reg, p)
				return
			}
			errs[i] = b.Run(b.ctx, func(tx callertx.Tx) (err error) {
				results[i], err = tx.RegisterTrust(b.ctx, reg, p)
				return err
			})
		})
	}
	close(start)
	wg.Wait()

	added := map[string]int{}
	claimed := map[string]uuid.UUID{}
	for i, err := range errs {
		res := results[i]
		switch {
		case errors.Is(err, flip.ErrRetryable):
			outcomes["retryable"]++
			viol.add("%s: caller %d got a retryable error growing the pool: %v", where, i, err)
			continue
		case err != nil:
			outcomes["error"]++
			viol.add("%s: caller %d failed: %v", where, i, err)
			continue
		case len(res.AddedKitSlots) > 0:
			outcomes["grew"]++
		default:
			outcomes["claimed"]++
		}
		for _, n := range res.AddedKitSlots {
			added[n]++
		}
		if other, taken := claimed[res.KitSlot.Name]; taken || !slices.Contains(names, res.KitSlot.Name) {
			viol.add("%s: caller %d got slot %q (also given to %v: %v), want one of this round's names, its own", where, i, res.KitSlot.Name, other, taken)
		}
		claimed[res.KitSlot.Name] = res.Trust.ID
	}
	// Each name added once, by one caller, and nothing else.
	for _, n := range names {
		if added[n] != 1 {
			viol.add("%s: %q reported added %d times, want once", where, n, added[n])
		}
	}
	if len(added) != len(names) {
		viol.add("%s: %d names reported added, want the source's %d: %v", where, len(added), len(names), added)
	}
	// The pool holds each name once, assigned to the trust that was told
	// it has it, and the rest free.
	rows, err := b.admin.QueryContext(b.ctx, `SELECT slot_name, assigned_to_trust_id FROM fl_kit_slot WHERE slot_name LIKE $1`, "Grown_"+id+"_%")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	inPool := map[string]uuid.NullUUID{}
	for rows.Next() {
		var n string
		var holder uuid.NullUUID
		if err := rows.Scan(&n, &holder); err != nil {
			t.Fatal(err)
		}
		inPool[n] = holder
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(inPool) != len(names) {
		viol.add("%s: the pool holds %d of the source's %d names", where, len(inPool), len(names))
	}
	for n, holder := range inPool {
		if want, ok := claimed[n]; (ok && holder.UUID != want) || (!ok && holder.Valid) {
			viol.add("%s: slot %q is assigned to %v, want %v (given out: %v)", where, n, holder, want, ok)
		}
	}
}
