package flip_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/faultdb"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// Seeder behaviour with a scripted identity provider, on PostgreSQL;
// database failures are injected at the executor (internal/faultdb). The
// same behaviour against the Cognito emulator is in seed_emulator_test.go.

// seedOn runs seeder on db (nil: a database of the test's own), inside one
// transaction sent through a faultdb.DB asking fault (nil: none) about
// each statement, and commits when seeding succeeds. The faultdb.DB tells
// what was sent.
func seedOn(t *testing.T, ctx context.Context, db *fliptest.DB, seeder *flip.Seeder, idp flip.IdentityProvider,
	fault func(context.Context, faultdb.Stmt) faultdb.Fault) (flip.SeedReport, *faultdb.DB, error) {
	t.Helper()
	if db == nil {
		db = fliptest.NewDB(t)
	}
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	fdb := &faultdb.DB{Next: tx, Fault: fault}
	report, err := seeder.SeedMainUsers(ctx, fdb, idp)
	if err == nil {
		err = tx.Commit()
	}
	return report, fdb, err
}

// profilesWritten lists the users whose user_profile fdb saw inserted, in
// order.
func profilesWritten(fdb *faultdb.DB) []uuid.UUID {
	var ids []uuid.UUID
	for _, st := range fdb.Stmts() {
		if st.Query == pgsql.InsertProfile {
			ids = append(ids, st.Args[0].(uuid.UUID))
		}
	}
	return ids
}

// scriptedIdP answers each email with a fixed user or error, after an
// optional per-email delay, and measures how many lookups overlap.
type scriptedIdP struct {
	users    map[string]flip.User
	errs     map[string]error
	delay    func(email string) time.Duration
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	calls    atomic.Int32
}

func newScriptedIdP(emails ...string) *scriptedIdP {
	p := &scriptedIdP{users: map[string]flip.User{}, errs: map[string]error{}}
	for _, e := range emails {
		p.users[e] = provenUser(e)
	}
	return p
}

// provenUser is an account that proves its address, with a new id.
func provenUser(email string) flip.User {
	return flip.User{ID: uuid.New(), Email: email, Enabled: true, EmailVerified: true, Status: flip.UserConfirmed}
}

func (p *scriptedIdP) LookupUsersByEmail(ctx context.Context, email string) ([]flip.User, error) {
	p.calls.Add(1)
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxSeen.Load()
		if n <= m || p.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	// Only a lookup that waits looks at its context: one without a delay
	// answers whenever it runs, so that a loaded machine running it late
	// cannot turn a healthy answer into the lookup's timeout.
	if d := p.delay; d != nil && d(email) > 0 {
		select {
		case <-time.After(d(email)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := p.errs[email]; err != nil {
		return nil, err
	}
	if u, ok := p.users[email]; ok {
		return []flip.User{u}, nil
	}
	return nil, flip.ErrUserNotFound
}

func mainUsers(n int) []flip.MainUser {
	users := make([]flip.MainUser, n)
	for i := range users {
		users[i] = flip.MainUser{Email: fmt.Sprintf("user%03d@example.com", i), Role: "Researcher", Name: fmt.Sprintf("User %d", i), Organisation: "Example Org"}
	}
	return users
}

func emailsOf(users []flip.MainUser) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Email
	}
	return out
}

func TestSeeder_AppliesWritesInConfigurationOrder(t *testing.T) {
	t.Parallel()
	users := mainUsers(20)
	idp := newScriptedIdP(emailsOf(users)...)
	// Later users answer first, so lookups finish in reverse order.
	idp.delay = func(email string) time.Duration {
		var i int
		fmt.Sscanf(email, "user%03d@", &i)
		return time.Duration(20-i) * time.Millisecond
	}
	seeder := flip.NewSeeder(users)
	seeder.Concurrency = 20
	report, fdb, err := seedOn(t, t.Context(), nil, seeder, idp, nil)
	if err != nil {
		t.Fatal(err)
	}
	applied := profilesWritten(fdb)
	for i, u := range users {
		if applied[i] != idp.users[u.Email].ID || report.Users[i].Email != u.Email || report.Users[i].Result != flip.SeedCreated {
			t.Fatalf("write %d is %s (%+v), want %s", i, applied[i], report.Users[i], u.Email)
		}
	}
	if idp.maxSeen.Load() < 2 {
		t.Errorf("lookups never overlapped")
	}
}

func TestSeeder_BoundsConcurrentLookups(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ set, want int }{{0, flip.DefaultSeedConcurrency}, {1, 1}, {3, 3}} {
		users := mainUsers(24)
		idp := newScriptedIdP(emailsOf(users)...)
		idp.delay = func(string) time.Duration { return 5 * time.Millisecond }
		seeder := flip.NewSeeder(users)
		seeder.Concurrency = c.set
		if _, _, err := seedOn(t, t.Context(), nil, seeder, idp, nil); err != nil {
			t.Fatal(err)
		}
		// Exactly c.want in practice; at least 2 keeps a loaded machine from
		// failing the test while still proving that lookups overlap.
		if got := int(idp.maxSeen.Load()); got > c.want || (c.want > 1 && got < 2) {
			t.Errorf("Concurrency %d: %d lookups in flight at most, want %d", c.set, got, c.want)
		}
	}
}

func TestSeeder_SkipsNotFoundAndTransientStopsOnDefinitive(t *testing.T) {
	t.Parallel()
	users := mainUsers(6)
	idp := newScriptedIdP(emailsOf(users)...)
	delete(idp.users, users[1].Email)
	idp.errs[users[2].Email] = &flip.IdentityProviderError{Op: "ListUsers", Status: 503, Code: "ServiceUnavailableException", Kind: flip.ErrIdentityProviderUnavailable}
	idp.errs[users[4].Email] = &flip.IdentityProviderError{Op: "ListUsers", Status: 403, Code: "NotAuthorizedException"}
	report, fdb, err := seedOn(t, t.Context(), nil, flip.NewSeeder(users), idp, nil)

	var sue *flip.SeedUserError
	if !errors.As(err, &sue) || sue.Email != users[4].Email || sue.Status != 403 || sue.Index != 4 ||
		!errors.Is(err, flip.ErrSeedMainUsers) || !errors.Is(err, flip.ErrIdentityProvider) {
		t.Fatalf("err = %v, want a SeedUserError for user 4 with status 403", err)
	}
	if msg := err.Error(); !strings.Contains(msg, users[4].Email) || !strings.Contains(msg, "403") {
		t.Errorf("message %q does not name the user and status", msg)
	}
	want := []flip.SeedResult{flip.SeedCreated, flip.SeedSkippedNotFound, flip.SeedSkippedTransient, flip.SeedCreated}
	if len(report.Users) != len(want) {
		t.Fatalf("report = %+v", report)
	}
	for i, w := range want {
		if report.Users[i].Result != w {
			t.Errorf("user %d: %s, want %s", i, report.Users[i].Result, w)
		}
	}
	if o := report.Users[2]; o.Status != 503 || o.Code != "ServiceUnavailableException" || o.Cause == nil || o.Reason == "" {
		t.Errorf("transient outcome = %+v", o)
	}
	if n := len(profilesWritten(fdb)); n != 2 {
		t.Errorf("%d users written, want 2 (user 5 comes after the stop)", n)
	}
}

func TestSeeder_InvalidConfigurationStopsBeforeAnyLookup(t *testing.T) {
	t.Parallel()
	users := append(mainUsers(2), flip.MainUser{Email: `evil"@example.com`, Role: "Admin", Name: "E"})
	idp := newScriptedIdP(emailsOf(users)...)
	_, fdb, err := seedOn(t, t.Context(), nil, flip.NewSeeder(users), idp, nil)
	if !errors.Is(err, flip.ErrInvalidMainUsers) || !errors.Is(err, flip.ErrInvalidIdentifier) || !errors.Is(err, flip.ErrSeedMainUsers) {
		t.Fatalf("err = %v", err)
	}
	if sent := fdb.Queries(); idp.calls.Load() != 0 || len(sent) != 0 {
		t.Errorf("%d lookups and statements %q before refusing the configuration", idp.calls.Load(), sent)
	}
}

func TestSeeder_LookupTimeoutSkipsOnlyTheSlowUser(t *testing.T) {
	t.Parallel()
	users := mainUsers(3)
	idp := newScriptedIdP(emailsOf(users)...)
	idp.delay = func(email string) time.Duration {
		if email == users[1].Email {
			return time.Minute
		}
		return 0
	}
	seeder := flip.NewSeeder(users)
	seeder.LookupTimeout = 50 * time.Millisecond
	report, _, err := seedOn(t, t.Context(), nil, seeder, idp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := report.String(); got != "3 users: 2 created, 1 skipped-transient" {
		t.Errorf("report = %s", got)
	}
	if !errors.Is(report.Users[1].Cause, context.DeadlineExceeded) {
		t.Errorf("cause = %v", report.Users[1].Cause)
	}
}

// hangingIdP never answers and ignores its context, the worst case.
type hangingIdP struct{ release chan struct{} }

func (h hangingIdP) LookupUsersByEmail(context.Context, string) ([]flip.User, error) {
	<-h.release
	return nil, errors.New("released")
}

func TestSeeder_DeadlineBoundsAProviderThatIgnoresIt(t *testing.T) {
	t.Parallel()
	hanging := hangingIdP{release: make(chan struct{})}
	t.Cleanup(func() { close(hanging.release) })
	ctx, idp := deadlineFromFirstLookup(hanging, 100*time.Millisecond)
	_, _, err := seedOn(t, ctx, nil, flip.NewSeeder(mainUsers(3)), idp, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, flip.ErrSeedMainUsers) {
		t.Fatalf("err = %v", err)
	}
}

// deadlineFromFirstLookup returns a context for a run of SeedMainUsers
// whose deadline passes d after the first lookup of the returned provider
// (idp, which it calls), not d after it was made. The tests of the run's
// deadline are about a provider that hangs: a deadline that started
// earlier could pass while a loaded machine still sends the statements
// that come before any lookup (the roles), and end the run there instead.
func deadlineFromFirstLookup(idp flip.IdentityProvider, d time.Duration) (context.Context, flip.IdentityProvider) {
	c := &lateDeadline{done: make(chan struct{})}
	return c, lookupStarts{idp, func() { c.start(d) }}
}

// lookupStarts is an IdentityProvider that calls start before each lookup.
type lookupStarts struct {
	flip.IdentityProvider
	start func()
}

func (l lookupStarts) LookupUsersByEmail(ctx context.Context, email string) ([]flip.User, error) {
	l.start()
	return l.IdentityProvider.LookupUsersByEmail(ctx, email)
}

// lateDeadline is a context without values or deadline until start is
// first called, whose deadline then passes after the duration given.
type lateDeadline struct {
	once     sync.Once
	mu       sync.Mutex // guards deadline and err, and closing done
	deadline time.Time
	err      error
	done     chan struct{}
}

func (c *lateDeadline) start(d time.Duration) {
	c.once.Do(func() {
		c.mu.Lock()
		c.deadline = time.Now().Add(d)
		c.mu.Unlock()
		time.AfterFunc(d, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.err = context.DeadlineExceeded
			close(c.done)
		})
	})
}

func (c *lateDeadline) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, !c.deadline.IsZero()
}

func (c *lateDeadline) Done() <-chan struct{} { return c.done }

func (c *lateDeadline) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *lateDeadline) Value(any) any { return nil }

type panickingIdP struct{}

func (panickingIdP) LookupUsersByEmail(context.Context, string) ([]flip.User, error) { panic("boom") }

func TestSeeder_ProviderPanicIsADefinitiveError(t *testing.T) {
	t.Parallel()
	_, _, err := seedOn(t, t.Context(), nil, flip.NewSeeder(mainUsers(1)), panickingIdP{}, nil)
	if !errors.Is(err, flip.ErrIdentityProvider) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
}

func TestSeeder_UserWithoutIDAndStoreFailureStopTheRun(t *testing.T) {
	t.Parallel()
	users := mainUsers(2)
	idp := newScriptedIdP(emailsOf(users)...)
	nilID := provenUser(users[0].Email)
	nilID.ID = uuid.Nil
	idp.users[users[0].Email] = nilID
	_, _, err := seedOn(t, t.Context(), nil, flip.NewSeeder(users), idp, nil)
	var sue *flip.SeedUserError
	if !errors.As(err, &sue) || sue.Index != 0 || sue.Step != "lookup" {
		t.Errorf("nil id: err = %v", err)
	}

	idp = newScriptedIdP(emailsOf(users)...)
	failOn := idp.users[users[0].Email].ID
	diskFull := func(_ context.Context, st faultdb.Stmt) faultdb.Fault {
		if st.Query == pgsql.InsertProfile && st.Args[0] == failOn {
			return faultdb.Fault{Err: errors.New("disk full")}
		}
		return faultdb.Fault{}
	}
	_, _, err = seedOn(t, t.Context(), nil, flip.NewSeeder(users), idp, diskFull)
	if !errors.As(err, &sue) || sue.Step != "write" || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("store failure: err = %v", err)
	}
}

func TestSeeder_LogsSkipsWithEmailAndStatusButNoSecrets(t *testing.T) {
	t.Parallel()
	users := mainUsers(2)
	idp := newScriptedIdP(emailsOf(users)...)
	idp.errs[users[0].Email] = &flip.IdentityProviderError{Op: "ListUsers", Status: 429, Code: "TooManyRequestsException",
		Kind: flip.ErrIdentityProviderUnavailable, Err: errors.New("rate exceeded")}
	var buf bytes.Buffer
	seeder := flip.NewSeeder(users)
	seeder.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	if _, _, err := seedOn(t, t.Context(), nil, seeder, idp, nil); err != nil {
		t.Fatal(err)
	}
	var warn map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["level"] == "WARN" {
			warn = rec
		}
	}
	if warn == nil || warn["email"] != users[0].Email || warn["status"] != float64(429) || warn["code"] != "TooManyRequestsException" {
		t.Errorf("warning = %v\nlog:\n%s", warn, buf.String())
	}
}

func TestSeedReport_JSONAndSummary(t *testing.T) {
	t.Parallel()
	r := flip.SeedReport{Users: []flip.UserOutcome{
		{Email: "a@example.com", Role: "Admin", Result: flip.SeedCreated, UserID: uuid.MustParse("0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10"), ProfileCreated: true, RoleGranted: true},
		{Email: "b@example.com", Role: "Viewer", Result: flip.SeedSkippedTransient, Status: 503, Reason: "identity provider unavailable"},
	}}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"users":[{"email":"a@example.com","role":"Admin","result":"created","user_id":"0b5b1d1e-8c1c-4a55-9a3c-6f1d2b7e9a10","profile_created":true,"role_granted":true},` +
		`{"email":"b@example.com","role":"Viewer","result":"skipped-transient","status":503,"reason":"identity provider unavailable"}]}`
	if string(got) != want {
		t.Errorf("JSON:\n%s\nwant\n%s", got, want)
	}
	if s := r.String(); s != "2 users: 1 created, 1 skipped-transient" || !r.Changed() || r.Count(flip.SeedCreated) != 1 || !r.Users[1].Skipped() {
		t.Errorf("String() = %q", s)
	}
}

// A database failure while the roles are ensured stops seeding before any
// user is looked up or written; the next run seeds everyone. The failure
// is injected at the executor, on PostgreSQL.
func TestSeedMainUsers_FailedRoleSetupStopsBeforeAnyUser(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada@example.com")
	seeder := flip.NewSeeder([]flip.MainUser{{Email: "ada@example.com", Role: "Admin", Name: "Ada"}})
	boom := errors.New("connection reset")
	report, fdb, err := seedOn(t, t.Context(), db, seeder, idp, faultdb.Matching("INSERT INTO roles", 1, faultdb.Fault{Err: boom}))
	if !errors.Is(err, boom) || !errors.Is(err, flip.ErrSeedMainUsers) || len(report.Users) != 0 {
		t.Fatalf("report %v, err = %v; want the injected EnsureRoles failure and no user", report, err)
	}
	for _, q := range fdb.Queries() {
		if strings.Contains(q, "user_profile") || strings.Contains(q, "user_role") {
			t.Errorf("a user was written after the roles failed: %s", q)
		}
	}
	report, _, err = seedOn(t, t.Context(), db, seeder, idp, nil)
	if err != nil || report.Count(flip.SeedCreated) != 1 {
		t.Fatalf("next run: report %v, %v; want Ada created", report, err)
	}
}

// A deadline that passes while a statement waits (here for a lock on
// roles) makes lib/pq cancel the statement and report its own error; the
// seeding error must still say that the deadline passed.
func TestSeedMainUsers_DeadlineDuringAStatementMatchesDeadlineExceeded(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	holder, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Rollback() })
	if _, err := holder.ExecContext(t.Context(), `LOCK TABLE roles IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	idp := fliptest.NewIdentityProvider()
	idp.AddUser("user000@example.com")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = flip.NewSeeder(mainUsers(1)).SeedMainUsers(ctx, db.DB, idp)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, flip.ErrSeedMainUsers) {
		t.Fatalf("err = %v, want the deadline and ErrSeedMainUsers", err)
	}
}
