package flip_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// SeedMainUsers against the real parts: the cognito-local emulator behind
// a fault-injecting proxy, and a PostgreSQL database of the test's own.

// seedBundle is what an end-to-end seeding test needs.
type seedBundle struct {
	// ctx is the test's own context (t.Context()), without a deadline of
	// its own: parallel subtests may share a bundle and wait for a
	// parallel slot after it was made, and a deadline would run during
	// that wait. A hang is go test's -timeout's to fail.
	ctx   context.Context
	db    *fliptest.DB
	admin *cognitoidentityprovider.Client // talks to the emulator directly
	pool  string
	proxy *cognitolocal.Proxy
	idp   *cognito.Provider // goes through the proxy
	logs  *syncBuffer
	subs  map[string]uuid.UUID // email → sub of the users created
}

func seedSetup(t *testing.T) *seedBundle {
	t.Helper()
	return seedSetupOn(t, cognitolocal.Shared(t))
}

// seedSetupOn is seedSetup on emu, e.g. cognitolocal.SharedPlainUsernames,
// whose pools let several accounts hold one email.
func seedSetupOn(t *testing.T, emu *cognitolocal.Emulator) *seedBundle {
	t.Helper()
	db := fliptest.NewDB(t)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(t, admin)
	proxy := cognitolocal.NewProxy(t, emu.URL)
	return &seedBundle{
		ctx: t.Context(), db: db, admin: admin, pool: pool, proxy: proxy,
		// A rate limit that never binds: these tests inject throttling
		// for single emails, which would slow every lookup of the
		// Provider, and some bound lookups to 500ms (the limiter has its
		// own tests in cognito/).
		idp: cognito.New(cognitolocal.NewClient(proxy.URL), pool,
			cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5*time.Millisecond), cognito.WithRateLimit(1000, 100)),
		logs: &syncBuffer{},
		subs: map[string]uuid.UUID{},
	}
}

// createUsers adds users to the emulator's pool.
func (b *seedBundle) createUsers(t *testing.T, users ...flip.MainUser) {
	t.Helper()
	for _, u := range users {
		b.subs[u.Email] = cognitolocal.CreateUser(t, b.admin, b.pool, u.Email)
	}
}

// seeder returns a Seeder logging into b.logs.
func (b *seedBundle) seeder(users []flip.MainUser) *flip.Seeder {
	s := flip.NewSeeder(users)
	s.Logger = slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return s
}

// results returns the report's results in order.
func results(r flip.SeedReport) []flip.SeedResult {
	out := make([]flip.SeedResult, len(r.Users))
	for i, o := range r.Users {
		out[i] = o.Result
	}
	return out
}

// dbState returns every seeded row as text. With versions it includes
// each row's xmin, updated_at and the grant ids, so equal states mean
// nothing was rewritten; without, it compares content only (two runs pick
// different grant ids and timestamps).
func dbState(t *testing.T, ctx context.Context, sqldb *sql.DB, versions bool) string {
	db := sqlx.NewDb(sqldb, "postgres")
	t.Helper()
	extra := map[bool][3]string{
		true:  {"' ' || xmin::text", "' ' || updated_at::text || ' ' || xmin::text", "' ' || id::text || ' ' || xmin::text"},
		false: {"''", "''", "''"},
	}[versions]
	var rows []string
	err := sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &rows, `
		SELECT 'role ' || id::text || ' ' || name || `+extra[0]+` FROM roles
		UNION ALL
		SELECT 'profile ' || user_id::text || ' ' || name || ' ' || organisation || `+extra[1]+` FROM user_profile
		UNION ALL
		SELECT 'grant ' || user_id::text || ' ' || role_id::text || ' ' || coalesce(trust_id::text, 'global') || `+extra[2]+` FROM user_role
		ORDER BY 1`)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	return strings.Join(rows, "\n")
}

var (
	ada  = flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"}
	rita = flip.MainUser{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research", Organisation: "Example University"}
	tom  = flip.MainUser{Email: "tom.trust@example.com", Role: "Viewer", Name: "Tom Trust", Organisation: "Example Trust"}
)

func TestSeedMainUsers_SeedsAllUsersOnAFreshDatabase(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	users := []flip.MainUser{ada, rita, tom}
	b.createUsers(t, users...)

	report, err := b.seeder(users).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range report.Users {
		if o.Result != flip.SeedCreated || !o.ProfileCreated || !o.RoleGranted || o.UserID != b.subs[users[i].Email] {
			t.Errorf("user %d: %+v", i, o)
		}
	}
	for _, u := range users {
		role, _ := flip.RoleByName(u.Role)
		var name, org string
		var roleID uuid.UUID
		var trust *uuid.UUID
		err := b.db.QueryRowContext(b.ctx, `SELECT p.name, p.organisation, r.role_id, r.trust_id
			FROM user_profile p JOIN user_role r USING (user_id) WHERE p.user_id = $1`, b.subs[u.Email]).Scan(&name, &org, &roleID, &trust)
		if err != nil || name != u.Name || org != u.Organisation || roleID != role.ID || trust != nil {
			t.Errorf("%s: %q %q %s %v, %v", u.Email, name, org, roleID, trust, err)
		}
	}
	var roles int
	if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &roles, `SELECT count(*) FROM roles`); err != nil || roles != 4 {
		t.Errorf("%d roles, %v", roles, err)
	}
}

func TestSeedMainUsers_SecondRunWritesNothing(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	users := []flip.MainUser{ada, rita, tom}
	b.createUsers(t, users...)
	if _, err := b.seeder(users).SeedMainUsers(b.ctx, b.db, b.idp); err != nil {
		t.Fatal(err)
	}
	before := dbState(t, b.ctx, b.db.DB, true)

	report, err := b.seeder(users).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	if report.Changed() || report.Count(flip.SeedUnchanged) != 3 {
		t.Errorf("second run: %s", report)
	}
	if after := dbState(t, b.ctx, b.db.DB, true); after != before {
		t.Errorf("second run rewrote rows:\n%s\n---\n%s", before, after)
	}
}

func TestSeedMainUsers_UpdatesProfileDrift(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	b.createUsers(t, ada, rita)
	if _, err := b.seeder([]flip.MainUser{ada, rita}).SeedMainUsers(b.ctx, b.db, b.idp); err != nil {
		t.Fatal(err)
	}
	var createdBefore, updatedBefore time.Time
	if err := b.db.QueryRowContext(b.ctx, `SELECT created_at, updated_at FROM user_profile WHERE user_id = $1`, b.subs[ada.Email]).
		Scan(&createdBefore, &updatedBefore); err != nil {
		t.Fatal(err)
	}

	renamed := ada
	renamed.Name, renamed.Organisation = "Ada Lovelace-Admin", "Example Health Board"
	report, err := b.seeder([]flip.MainUser{renamed, rita}).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(results(report)); got != "[updated unchanged]" {
		t.Errorf("results = %s", got)
	}
	if report.Users[0].RoleGranted {
		t.Error("an update re-granted the role")
	}
	var name, org string
	var created, updated time.Time
	if err := b.db.QueryRowContext(b.ctx, `SELECT name, organisation, created_at, updated_at FROM user_profile WHERE user_id = $1`, b.subs[ada.Email]).
		Scan(&name, &org, &created, &updated); err != nil {
		t.Fatal(err)
	}
	if name != renamed.Name || org != renamed.Organisation || !created.Equal(createdBefore) || !updated.After(updatedBefore) {
		t.Errorf("profile = %q %q created %v updated %v (before %v)", name, org, created, updated, updatedBefore)
	}
}

func TestSeedMainUsers_UserWithAnotherRoleKeepsIt(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	b.createUsers(t, ada)
	// An administrator made Ada a Viewer in the admin UI.
	if err := flip.EnsureRoles(b.ctx, b.db, flip.WellKnownRoles(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.ExecContext(b.ctx, `INSERT INTO user_role (id, user_id, role_id, trust_id) VALUES ($1, $2, $3, NULL)`,
		uuid.New(), b.subs[ada.Email], flip.RoleViewer.ID); err != nil {
		t.Fatal(err)
	}

	report, err := b.seeder([]flip.MainUser{ada}).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	if o := report.Users[0]; o.Result != flip.SeedCreated || o.RoleGranted {
		t.Errorf("outcome = %+v, want profile created without a grant", o)
	}
	var roles []uuid.UUID
	if err := sqlx.NewDb(b.db.DB, "postgres").SelectContext(b.ctx, &roles, `SELECT role_id FROM user_role WHERE user_id = $1`, b.subs[ada.Email]); err != nil {
		t.Fatal(err)
	}
	if len(roles) != 1 || roles[0] != flip.RoleViewer.ID {
		t.Errorf("roles = %v, want only Viewer", roles)
	}
}

func TestSeedMainUsers_SkipsAUserNotInTheProvider(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	b.createUsers(t, ada, tom) // rita has no account yet

	report, err := b.seeder([]flip.MainUser{ada, rita, tom}).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(results(report)); got != "[created skipped-not-found created]" {
		t.Errorf("results = %s", got)
	}
	if logs := b.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, rita.Email) {
		t.Errorf("no warning naming %s:\n%s", rita.Email, logs)
	}
	var n int
	if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &n, `SELECT count(*) FROM user_profile`); err != nil || n != 2 {
		t.Errorf("%d profiles, %v", n, err)
	}
}

func TestSeedMainUsers_SkipsEachTransientFailureAndSeedsTheRest(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	faults := []struct {
		fault  cognitolocal.Fault
		status int
	}{
		{cognitolocal.Fault500, 500},
		{cognitolocal.Fault503, 503},
		{cognitolocal.Fault429, 429},
		{cognitolocal.FaultThrottle400, 400},
		{cognitolocal.Fault502HTML, 502},
		{cognitolocal.FaultDrop, 0},
		{cognitolocal.FaultSlow, 0},
	}
	var users []flip.MainUser
	for i, f := range faults {
		u := flip.MainUser{Email: fmt.Sprintf("flaky%d@example.com", i), Role: "Viewer", Name: fmt.Sprintf("Flaky %d", i)}
		users = append(users, u)
		b.proxy.Fail(u.Email, f.fault)
	}
	users = append(users, ada, rita)
	b.createUsers(t, users...)

	// Only the lookup timeout ends the slow answer, so it gets a run of
	// its own with a short one: the proxy holds the request until the
	// client gives up, so it times out however slow the machine is. The
	// others keep the default timeout, which a loaded machine does not
	// reach.
	slow := len(faults) - 1
	slowSeeder := b.seeder(users[slow : slow+1])
	slowSeeder.LookupTimeout = 500 * time.Millisecond
	slowReport, err := slowSeeder.SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatalf("a transient failure must not stop the run: %v", err)
	}
	report, err := b.seeder(slices.Delete(slices.Clone(users), slow, slow+1)).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatalf("transient failures must not stop the run: %v", err)
	}
	outcomes := slices.Insert(slices.Clone(report.Users), slow, slowReport.Users...)
	for i, f := range faults {
		o := outcomes[i]
		if o.Result != flip.SeedSkippedTransient || o.Status != f.status || !errors.Is(o.Cause, flip.ErrIdentityProviderUnavailable) {
			t.Errorf("%s: outcome %+v, want skipped-transient with status %d", f.fault, o, f.status)
		}
		if !strings.Contains(b.logs.String(), "email="+o.Email+" status="+fmt.Sprint(f.status)) {
			t.Errorf("%s: no warning with email and status", f.fault)
		}
	}
	if got := fmt.Sprint(results(report)[slow:]); got != "[created created]" {
		t.Errorf("healthy users: %s", got)
	}
	if logs := b.logs.String(); strings.Contains(logs, cognitolocal.SecretAccessKey) {
		t.Error("the logs contain the AWS secret key")
	}

	// Once the provider recovers, the next boot seeds the skipped users.
	for _, u := range users {
		b.proxy.Fail(u.Email, cognitolocal.Forward)
	}
	report, err = b.seeder(users).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	if report.Count(flip.SeedCreated) != len(faults) || report.Count(flip.SeedUnchanged) != 2 {
		t.Errorf("after recovery: %s", report)
	}
}

func TestSeedMainUsers_RefusedConnectionSkipsEveryone(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	idp := cognito.New(cognitolocal.NewClient("http://"+addr), "local_pool", cognito.WithMaxAttempts(2), cognito.WithMaxBackoff(5*time.Millisecond))

	report, err := flip.NewSeeder([]flip.MainUser{ada, rita}).SeedMainUsers(context.Background(), db, idp)
	if err != nil {
		t.Fatal(err)
	}
	if report.Count(flip.SeedSkippedTransient) != 2 {
		t.Errorf("report = %s", report)
	}
}

func TestSeedMainUsers_DefinitiveFailureStopsAndNamesTheUser(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fault  cognitolocal.Fault
		status int
		code   string
	}{
		{cognitolocal.Fault400, 400, "InvalidParameterException"},
		{cognitolocal.Fault403, 403, "NotAuthorizedException"},
	} {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			t.Parallel()
			b := seedSetup(t)
			b.createUsers(t, ada, rita, tom)
			b.proxy.Fail(rita.Email, c.fault)

			report, err := b.seeder([]flip.MainUser{ada, rita, tom}).SeedMainUsers(b.ctx, b.db, b.idp)
			var sue *flip.SeedUserError
			if !errors.As(err, &sue) || sue.Email != rita.Email || sue.Status != c.status || sue.Code != c.code {
				t.Fatalf("err = %v, want a SeedUserError for %s with HTTP %d", err, rita.Email, c.status)
			}
			if msg := err.Error(); !strings.Contains(msg, rita.Email) || !strings.Contains(msg, fmt.Sprint(c.status)) {
				t.Errorf("message %q must name the user and the status", msg)
			}
			if errors.Is(err, flip.ErrIdentityProviderUnavailable) || !errors.Is(err, flip.ErrIdentityProvider) {
				t.Errorf("err = %v must be a definitive identity-provider error", err)
			}
			if got := fmt.Sprint(results(report)); got != "[created]" {
				t.Errorf("report = %s, want only the user before the failure", got)
			}
			var n int
			if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &n, `SELECT count(*) FROM user_profile WHERE user_id = $1`, b.subs[tom.Email]); err != nil || n != 0 {
				t.Errorf("the user after the failure was written (%d, %v)", n, err)
			}
		})
	}
}

func TestSeedMainUsers_InvalidEmailNeverReachesTheProvider(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	b.createUsers(t, ada)
	for _, bad := range []string{`mallory" or email = "ada.admin@example.com`, `back\slash@example.com`} {
		users := []flip.MainUser{ada, {Email: bad, Role: "Admin", Name: "Mallory"}}
		_, err := b.seeder(users).SeedMainUsers(b.ctx, b.db, b.idp)
		var mue *flip.InvalidMainUserError
		if !errors.Is(err, flip.ErrInvalidIdentifier) || !errors.As(err, &mue) || mue.Index != 1 || !strings.Contains(err.Error(), "#2") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	if n := b.proxy.TotalLookups(); n != 0 {
		t.Errorf("the proxy saw %d lookups, want none", n)
	}
	if state := dbState(t, b.ctx, b.db.DB, false); state != "" {
		t.Errorf("rows written:\n%s", state)
	}
}

func TestSeedMainUsers_TwoConcurrentSeedersEndClean(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	users := mainUsers(12)
	b.createUsers(t, users...)

	// The reference: one seeder alone, on a database of its own.
	ref := fliptest.NewDB(t)
	if _, err := b.seeder(users).SeedMainUsers(b.ctx, ref, b.idp); err != nil {
		t.Fatal(err)
	}
	want := dbState(t, b.ctx, ref.DB, false)

	for _, mode := range []string{"pool", "caller-transaction"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t)
			second, err := sql.Open("postgres", db.URL) // a second replica's own pool
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { second.Close() })

			var wg sync.WaitGroup
			reports := make([]flip.SeedReport, 2)
			start := make(chan struct{})
			for i, conn := range []*sql.DB{db.DB, second} {
				wg.Go(func() {
					<-start
					seeder := b.seeder(users)
					seeder.Concurrency = 1 + i*3
					var err error
					if mode == "pool" {
						reports[i], err = seeder.SeedMainUsers(b.ctx, conn, b.idp)
					} else {
						reports[i], err = seedInTx(b.ctx, conn, seeder, b.idp)
					}
					if err != nil {
						t.Errorf("seeder %d: %v", i, err)
					}
				})
			}
			close(start)
			wg.Wait()

			if got := dbState(t, b.ctx, db.DB, false); got != want {
				t.Errorf("state after two seeders differs from one seeder's:\n%s\n---\n%s", got, want)
			}
			for u := range users {
				created := btoi(reports[0].Users[u].ProfileCreated) + btoi(reports[1].Users[u].ProfileCreated)
				granted := btoi(reports[0].Users[u].RoleGranted) + btoi(reports[1].Users[u].RoleGranted)
				if created != 1 || granted != 1 {
					t.Errorf("user %d created %d times, granted %d times", u, created, granted)
				}
			}
		})
	}
}

// seedInTx runs the seeder inside a transaction it commits, as a hub that
// seeds within its boot transaction does.
func seedInTx(ctx context.Context, sqldb *sql.DB, s *flip.Seeder, idp flip.IdentityProvider) (flip.SeedReport, error) {
	tx, err := sqlx.NewDb(sqldb, "postgres").BeginTxx(ctx, nil)
	if err != nil {
		return flip.SeedReport{}, err
	}
	report, err := s.SeedMainUsers(ctx, tx, idp)
	if err != nil {
		_ = tx.Rollback()
		return report, err
	}
	return report, tx.Commit()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSeedMainUsers_InACallersTransactionNeverCommits(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	b.createUsers(t, ada)
	tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	report, err := b.seeder([]flip.MainUser{ada}).SeedMainUsers(b.ctx, tx, b.idp)
	if err != nil || report.Users[0].Result != flip.SeedCreated {
		t.Fatalf("seed: %s, %v", report, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("rollback: %v (did SeedMainUsers end the caller's transaction?)", err)
	}
	if state := dbState(t, b.ctx, b.db.DB, false); state != "" {
		t.Errorf("rows survived the caller's rollback:\n%s", state)
	}
}

func TestSeedMainUsers_DeadlineBoundsAHangingProvider(t *testing.T) {
	t.Parallel()
	b := seedSetup(t)
	b.createUsers(t, ada, rita)
	b.proxy.FailAll(cognitolocal.FaultSlow)
	seeder := b.seeder([]flip.MainUser{ada, rita})
	seeder.LookupTimeout = time.Hour // only the run's deadline can end it

	ctx, idp := deadlineFromFirstLookup(b.idp, 500*time.Millisecond)
	// The proxy holds the lookup until the client gives up, and the lookup
	// timeout is an hour: returning at all proves the run's deadline ended
	// it (a hang would trip go test's own timeout). No wall-clock bound is
	// asserted; the machine may be slow.
	report, err := seeder.SeedMainUsers(ctx, b.db, idp)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, flip.ErrSeedMainUsers) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if len(report.Users) != 0 {
		t.Errorf("report = %s", report)
	}
	var n int
	if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &n, `SELECT count(*) FROM user_profile`); err != nil || n != 0 {
		t.Errorf("%d profiles, %v", n, err)
	}
}

// profileCount returns how many user_profile rows hold id.
func profileCount(t *testing.T, b *seedBundle, id uuid.UUID) int {
	t.Helper()
	var n int
	if err := b.db.QueryRowContext(b.ctx, `SELECT count(*) FROM user_profile WHERE user_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// warned reports whether the logs hold a warning line with every one of
// parts.
func warned(logs string, parts ...string) bool {
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, "level=WARN") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

func TestSeedMainUsers_AnUnconfirmedSignUpWithTheAdminsEmailIsNotSeeded(t *testing.T) {
	t.Parallel()
	// Anyone can sign up in a pool that allows self sign-up, with any
	// address; the emulator even keeps the email_verified "true" the
	// impostor sends. Without a confirmed account the admin is skipped,
	// loudly, and the boot goes on.
	b := seedSetupOn(t, cognitolocal.SharedPlainUsernames(t))
	impostor := cognitolocal.SignUp(t, b.admin, b.pool, "mallory", cognitolocal.EmailAttributes(ada.Email, true)...)
	b.subs[rita.Email] = cognitolocal.CreateUserNamed(t, b.admin, b.pool, "rita", rita.Email)

	report, err := b.seeder([]flip.MainUser{ada, rita}).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatalf("an impostor must not stop the boot: %v", err)
	}
	if got := fmt.Sprint(results(report)); got != "[skipped-unverified created]" {
		t.Errorf("results = %s", got)
	}
	if n := profileCount(t, b, impostor); n != 0 {
		t.Errorf("the impostor's account got %d profiles", n)
	}
	if logs := b.logs.String(); !warned(logs, ada.Email, "UNCONFIRMED") {
		t.Errorf("no warning naming %s and the status UNCONFIRMED:\n%s", ada.Email, logs)
	}
}

func TestSeedMainUsers_TheAdminIsSeededDespiteAnImpostor(t *testing.T) {
	t.Parallel()
	// The real admin, created by the pool's administrator, and an
	// unconfirmed sign-up with her address: the sign-up is warned about
	// and ignored, not counted as a second holder of the address (which
	// would let anyone stop the boot by signing up).
	b := seedSetupOn(t, cognitolocal.SharedPlainUsernames(t))
	adaID := cognitolocal.CreateUserNamed(t, b.admin, b.pool, "ada", ada.Email)
	impostor := cognitolocal.SignUp(t, b.admin, b.pool, "mallory", cognitolocal.EmailAttributes(ada.Email, false)...)
	unverified := cognitolocal.CreateUserWith(t, b.admin, b.pool, "ada-unverified", cognitolocal.EmailAttributes(ada.Email, false)...)

	report, err := b.seeder([]flip.MainUser{ada}).SeedMainUsers(b.ctx, b.db, b.idp)
	if err != nil {
		t.Fatal(err)
	}
	if o := report.Users[0]; o.Result != flip.SeedCreated || o.UserID != adaID || !o.RoleGranted || o.IgnoredAccounts != 2 {
		t.Errorf("outcome = %+v, want created for the real account %s, 2 accounts ignored", o, adaID)
	}
	for _, id := range []uuid.UUID{impostor, unverified} {
		if n := profileCount(t, b, id); n != 0 {
			t.Errorf("account %s got %d profiles", id, n)
		}
	}
	logs := b.logs.String()
	if !warned(logs, ada.Email, "UNCONFIRMED", "mallory") || !warned(logs, ada.Email, "FORCE_CHANGE_PASSWORD", "ada-unverified", "email_verified=false") {
		t.Errorf("want a warning for each ignored account, naming the email, status and username:\n%s", logs)
	}
}

// syncBuffer is a bytes.Buffer safe for the seeder's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
