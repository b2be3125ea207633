package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
	"github.com/londonaicentre/flip/store"
)

func TestPrepare_MigratesBeforeSeeding(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(1))
	seeded := false
	err := Prepare(t.Context(), db.DB, func(ctx context.Context) error {
		var v int
		err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM flip_schema_migrations`).Scan(&v)
		if err != nil || v != store.LatestVersion() {
			t.Errorf("seeding ran at schema version %d (%v), want %d", v, err, store.LatestVersion())
		}
		seeded = true
		return nil
	})
	if err != nil || !seeded {
		t.Fatalf("Prepare = %v, seeded %v", err, seeded)
	}
	if err := Prepare(t.Context(), db.DB, nil); err != nil {
		t.Errorf("second boot: %v", err)
	}
}

func TestBoot_StopsBeforeServingWhenAStepFails(t *testing.T) {
	t.Parallel()
	seedErr := errors.New("identity provider refused: 403")
	t.Run("seed", func(t *testing.T) {
		t.Parallel()
		db := fliptest.NewDB(t)
		ln := listen(t)
		err := Boot(t.Context(), db.DB, func(context.Context) error { return seedErr }, &http.Server{Handler: http.NotFoundHandler()}, ln)
		if !errors.Is(err, seedErr) {
			t.Fatalf("Boot = %v, want the seeding error", err)
		}
	})
	t.Run("migrate", func(t *testing.T) {
		t.Parallel()
		db := fliptest.NewDB(t)
		db.Close()
		seeded := false
		err := Boot(t.Context(), db.DB, func(context.Context) error { seeded = true; return nil }, &http.Server{}, listen(t))
		if err == nil || seeded {
			t.Fatalf("Boot = %v, seeded %v; want a migration error before seeding", err, seeded)
		}
	})
}

func TestBoot_ServesUntilContextEnds(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	ln := listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Boot(ctx, db.DB, nil, &http.Server{Handler: NewHandler(Config{DB: db.DB, Authoriser: fakeAuth})}, ln)
	}()
	url := "http://" + ln.Addr().String() + "/healthz"
	// Until Boot serves, or gives up: how long it takes is not the
	// question, and a hang is go test's -timeout's to fail.
	for r := do(t, http.MethodGet, url, "", "", nil); r.status != http.StatusOK; r = do(t, http.MethodGet, url, "", "", nil) {
		select {
		case err := <-done:
			t.Fatalf("Boot returned %v before /healthz answered 200 (last %d)", err, r.status)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Boot after cancel = %v, want nil", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// seedEnv is an environment for SeedFromEnv.
type seedEnv map[string]string

func (e seedEnv) get(name string) string { return e[name] }

// mainUsersJSON is a FLIP_MAIN_USERS value: Ada (Admin) and Rita
// (Researcher).
const mainUsersJSON = `{"main_users": [
	{"email": "ada.admin@example.com", "role": "Admin", "name": "Ada Admin", "organisation": "Example Trust"},
	{"email": "rita.research@example.com", "role": "Researcher", "name": "Rita Research", "organisation": "Example University"}
]}`

// seededUsers returns the main-user rows as sorted lines: "<user> <name>
// <organisation> <role>" per grant, with updated_at so that a rewrite
// shows.
func seededUsers(t *testing.T, db *fliptest.DB) []string {
	t.Helper()
	var rows []string
	err := sqlx.NewDb(db.DB, "postgres").SelectContext(t.Context(), &rows, `
		SELECT p.user_id::text || ' ' || p.name || ' ' || p.organisation || ' ' || coalesce(r.name, '-') || ' ' || p.updated_at::text
		FROM user_profile p LEFT JOIN user_role ur ON ur.user_id = p.user_id LEFT JOIN roles r ON r.id = ur.role_id
		ORDER BY 1`)
	if err != nil {
		t.Fatalf("read seeded users: %v", err)
	}
	return rows
}

// The real boot path: the main users from the environment, looked up in
// the cognito-local emulator by the Cognito adapter, written by the real
// Seeder into a database on the hub's own schema, which Prepare migrates
// first. A second boot writes nothing.
func TestPrepare_SeedsMainUsersFromEnvThroughCognito(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	ada := cognitolocal.CreateUser(t, emu.Client(), pool, "ada.admin@example.com") // Rita has no account yet
	db := fliptest.NewDB(t, fliptest.AtVersion(1))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	env := seedEnv{flip.EnvMainUsers: mainUsersJSON, EnvUserPoolID: pool, EnvCognitoEndpoint: emu.URL}

	seed, err := SeedFromEnv(t.Context(), env.get, db.DB, log)
	if err != nil {
		t.Fatalf("SeedFromEnv: %v", err)
	}
	if err := Prepare(t.Context(), db.DB, seed); err != nil {
		t.Fatalf("Prepare: %v\n%s", err, logs)
	}
	first := seededUsers(t, db)
	if len(first) != 1 || !strings.HasPrefix(first[0], ada.String()+" Ada Admin Example Trust Admin ") {
		t.Fatalf("seeded = %q, want Ada as Admin only", first)
	}
	for _, want := range []string{"rita.research@example.com", "skipped-not-found", "1 created"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}

	if err := Prepare(t.Context(), db.DB, seed); err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	if again := seededUsers(t, db); !slices.Equal(again, first) {
		t.Errorf("second boot changed the rows:\n%q\nwant %q", again, first)
	}
}

// A definitive answer from Cognito (403 here, through the fault proxy)
// stops the boot before anything is served, naming the user and status.
func TestBoot_CognitoRefusalStopsTheBoot(t *testing.T) {
	t.Parallel()
	emu := cognitolocal.Shared(t)
	pool := cognitolocal.NewUserPool(t, emu.Client())
	cognitolocal.CreateUser(t, emu.Client(), pool, "ada.admin@example.com")
	proxy := cognitolocal.NewProxy(t, emu.URL)
	proxy.Fail("ada.admin@example.com", cognitolocal.Fault403)
	db := fliptest.NewDB(t)
	env := seedEnv{flip.EnvMainUsers: mainUsersJSON, EnvUserPoolID: pool, EnvCognitoEndpoint: proxy.URL}

	seed, err := SeedFromEnv(t.Context(), env.get, db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Boot returns (rather than serving until its context ends) only when
	// a step before Serve failed.
	err = Boot(t.Context(), db.DB, seed, &http.Server{Handler: http.NotFoundHandler()}, listen(t))
	var ipe *flip.IdentityProviderError
	if !errors.Is(err, flip.ErrSeedMainUsers) || !errors.As(err, &ipe) || ipe.Status != http.StatusForbidden ||
		!strings.Contains(err.Error(), "ada.admin@example.com") {
		t.Fatalf("Boot = %v, want a seeding error naming Ada and the 403", err)
	}
	if rows := seededUsers(t, db); len(rows) != 0 {
		t.Errorf("rows %q; want nothing", rows)
	}
	if n := proxy.Lookups("ada.admin@example.com"); n != 1 {
		t.Errorf("%d lookups of Ada, want 1 (a 403 is not retried)", n)
	}
}

// The same boot step with fliptest's fake of the identity provider on the
// real database: a transient failure skips its user and the hub still
// starts; the next boot seeds that user.
func TestPrepare_TransientLookupFailureSkipsTheUserOnly(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	idp := fliptest.NewIdentityProvider()
	ada := idp.AddUser("ada.admin@example.com")
	rita := idp.AddUser("rita.research@example.com")
	idp.FailEmail(rita.Email, &flip.IdentityProviderError{Op: "ListUsers", Status: http.StatusServiceUnavailable,
		Code: "ServiceUnavailableException", Kind: flip.ErrIdentityProviderUnavailable})
	seeder, logs := loggingSeeder(t)
	seed := NewSeedFunc(db.DB, seeder, idp)

	if err := Prepare(t.Context(), db.DB, seed); err != nil {
		t.Fatalf("Prepare with Rita's lookup failing transiently: %v", err)
	}
	if got := seededUsers(t, db); len(got) != 1 || !strings.HasPrefix(got[0], ada.ID.String()) {
		t.Fatalf("seeded = %q, want Ada only", got)
	}
	if !strings.Contains(logs.String(), "skipped-transient") || !strings.Contains(logs.String(), "503") {
		t.Errorf("logs do not report Rita's skip with its status:\n%s", logs)
	}

	idp.FailEmail(rita.Email, nil)
	if err := Prepare(t.Context(), db.DB, seed); err != nil {
		t.Fatal(err)
	}
	if got := seededUsers(t, db); len(got) != 2 {
		t.Errorf("after the next boot: %q, want Ada and Rita", got)
	}
}

// An unconfirmed sign-up carrying a main user's address, beside the real
// account or alone, neither gets the role nor stops the boot.
func TestPrepare_ImpostorsNeitherGetTheRoleNorStopTheBoot(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	idp := fliptest.NewIdentityProvider()
	ada := idp.AddUser("ada.admin@example.com")
	for _, email := range []string{"ada.admin@example.com", "rita.research@example.com"} {
		idp.AddAccount(flip.User{Username: "mallory", Email: email, Enabled: true, Status: flip.UserUnconfirmed})
	}
	seeder, logs := loggingSeeder(t)
	if err := Prepare(t.Context(), db.DB, NewSeedFunc(db.DB, seeder, idp)); err != nil {
		t.Fatalf("Prepare with impostors: %v", err)
	}
	if got := seededUsers(t, db); len(got) != 1 || !strings.HasPrefix(got[0], ada.ID.String()) {
		t.Fatalf("seeded = %q, want Ada only", got)
	}
	if !strings.Contains(logs.String(), "skipped-unverified") || strings.Count(logs.String(), "status=UNCONFIRMED") != 2 {
		t.Errorf("logs do not report both impostors and Rita's skip:\n%s", logs)
	}
}

func TestSeedFromEnv_NoMainUsersSkipsSeedingWithALogLine(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	logs := &syncBuffer{}
	seed, err := SeedFromEnv(t.Context(), seedEnv{}.get, db.DB, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("SeedFromEnv without main users: %v", err)
	}
	if err := Prepare(t.Context(), db.DB, seed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "no main users configured; seeding skipped") {
		t.Errorf("logs = %q, want the skip announced", logs)
	}
	if n := countRows(t, db, "user_profile"); n != 0 {
		t.Errorf("%d profiles written", n)
	}
}

func TestSeedFromEnv_RefusesAConfigurationThatCannotWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name string
		env  seedEnv
		want string
	}{
		{"NoUserPool", seedEnv{flip.EnvMainUsers: mainUsersJSON}, EnvUserPoolID},
		{"UnreadableUsers", seedEnv{flip.EnvMainUsers: `{"main_users": [{"email": "ada@example.com", "organization": "typo"}]}`, EnvUserPoolID: "p"}, "invalid main-user configuration"},
		{"InvalidEmail", seedEnv{flip.EnvMainUsers: `[{"email": "a\"b@example.com", "role": "Admin", "name": "A"}]`, EnvUserPoolID: "p"}, "main user #1"},
		{"BothSources", seedEnv{flip.EnvMainUsers: mainUsersJSON, flip.EnvMainUsersFile: dir + "/users.json", EnvUserPoolID: "p"}, "not both"},
		{"MissingFile", seedEnv{flip.EnvMainUsersFile: dir + "/missing.json", EnvUserPoolID: "p"}, "missing.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			seed, err := SeedFromEnv(t.Context(), c.env.get, nil, nil)
			if err == nil || seed != nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("SeedFromEnv = %v, %v; want an error mentioning %q", seed != nil, err, c.want)
			}
		})
	}
}

// Two replicas on one database: a key rotated, then revoked, through one
// stops authenticating at the other, whose Verifier had cached it, once
// the change feed has told it; without the feed the other would honour the
// cached grant for a minute.
func TestListenForTrustChanges_OtherReplicasHearOfChanges(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	first := serveHandler(t, NewHandler(Config{DB: db.DB, Authoriser: fakeAuth}))
	v := newVerifier(db.DB)
	stopped := make(chan struct{})
	go func() { ListenForTrustChanges(t.Context(), v, db.URL, nil); close(stopped) }()
	t.Cleanup(func() { <-stopped })
	second := serveHandler(t, NewHandler(Config{DB: db.DB, Authoriser: fakeAuth, Verifier: v}))

	reg := register(t, first, "Replicated Trust", "REPL")
	id, key := reg.body["id"].(string), reg.body["trust_api_key"].(string)
	// The second replica caches grants once its feed is listening.
	if !eventually(func() bool { return trustMe(t, second, key).status == http.StatusOK && v.CachedGrants() == 1 }) {
		t.Fatal("the second replica never cached the grant: its feed did not start listening")
	}
	rot := rotateKey.send(t, first, id, asAdmin)
	wantStatus(t, rot, http.StatusOK)
	if !eventually(func() bool { return trustMe(t, second, key).status == http.StatusUnauthorized }) {
		t.Error("the second replica still honours the key rotated away")
	}
	newKey := rot.body["trust_api_key"].(string)
	if !eventually(func() bool { return trustMe(t, second, newKey).status == http.StatusOK && v.CachedGrants() == 1 }) {
		t.Fatal("the second replica never cached the new key's grant")
	}
	wantStatus(t, revokeKey.send(t, first, id, asAdmin), http.StatusOK)
	if !eventually(func() bool { return trustMe(t, second, newKey).status == http.StatusUnauthorized }) {
		t.Error("the second replica still honours the revoked key")
	}
}

// loggingSeeder is a Seeder of the example's main users whose log the test
// reads.
func loggingSeeder(t *testing.T) (*flip.Seeder, *syncBuffer) {
	t.Helper()
	users, err := flip.ParseMainUsers([]byte(mainUsersJSON))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	seeder := flip.NewSeeder(users)
	seeder.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return seeder, logs
}
