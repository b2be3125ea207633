package reliability

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
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
			b.db.SetMaxIdleConns(racePool)
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
					checkInvariants(b.ctx, viol, b.admin, where)
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
				if _, errs[i] = b.reg.RegisterTrustDB(b.ctx, b.db, p); !errors.Is(errs[i], flip.ErrRetryable) {
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
		conn, err := b.db.Conn(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if err := conn.QueryRowContext(b.ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := b.reg.RegisterTrustDB(b.ctx, conn, flip.TrustParams{Name: uuid.NewString(), Code: uuid.NewString()}); err != nil {
			t.Fatal(err)
		}
		times = append(times, time.Since(start))
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}
	slices.Sort(times)
	return times[len(times)/2]
}

func killRound(t *testing.T, b *bundle, viol *violations, i int, span time.Duration) string {
	t.Helper()
	conn, err := b.db.Conn(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Its backend is dead whatever happened: keep the pool from handing
		// the connection out again.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}()
	var pid int
	if err := conn.QueryRowContext(b.ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	delay := rand.N(span + span/2)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(delay)
		_, _ = b.admin.ExecContext(context.WithoutCancel(b.ctx), `SELECT pg_terminate_backend($1, 30000)`, pid)
	}()
	name := fmt.Sprintf("Killed %d %s", i, uuid.NewString()[:8])
	_, regErr := b.reg.RegisterTrustDB(b.ctx, conn, flip.TrustParams{Name: name, Code: uuid.NewString()})
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
	checkInvariants(b.ctx, viol, b.admin, fmt.Sprintf("kill %d", i))
	return outcome
}
