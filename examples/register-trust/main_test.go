package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb/cmddbtest"
	"github.com/londonaicentre/flip/store"
)

// result is what one invocation of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// noEnv is a getenv with nothing set, so tests never depend on the
// caller's DATABASE_URL.
func noEnv(string) string { return "" }

// runCmd calls run in-process with args.
func runCmd(t *testing.T, getenv func(string) string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, getenv)
	return result{code, stdout.String(), stderr.String()}
}

// register runs the command against db with args appended.
func register(t *testing.T, db *fliptest.DB, args ...string) result {
	t.Helper()
	return runCmd(t, noEnv, append([]string{"--database-url", db.URL}, args...)...)
}

// records decodes stdout as the JSON array of records, both typed and as
// raw objects (to check which fields are present).
func records(t *testing.T, r result) ([]record, []map[string]any) {
	t.Helper()
	var typed []record
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &typed); err != nil {
		t.Fatalf("stdout is not a JSON array of records: %v\nstdout: %q\nstderr: %s", err, r.stdout, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	return typed, raw
}

// wantOne checks exit status 0 and a single record, and returns it.
func wantOne(t *testing.T, r result) (record, map[string]any) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	typed, raw := records(t, r)
	if len(typed) != 1 {
		t.Fatalf("got %d records, want 1: %s", len(typed), r.stdout)
	}
	return typed[0], raw[0]
}

// wantFailure checks exit status 1 with [] on stdout and stderr containing want.
func wantFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != exitFail {
		t.Fatalf("exit %d, want 1\nstdout: %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("stdout = %q, want []", r.stdout)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr does not mention %q:\n%s", want, r.stderr)
	}
}

// noSecrets fails the test if any of secrets appears in text.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret %.12s…", what, s)
		}
	}
}

// apiKeyHash returns the api_key_hash stored for the trust with id.
func apiKeyHash(t *testing.T, db *fliptest.DB, id string) string {
	t.Helper()
	var h string
	if err := sqlx.NewDb(db.DB, "postgres").Get(&h, `SELECT api_key_hash FROM trust WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	return h
}

// countTrusts returns how many trusts db holds.
func countTrusts(t *testing.T, db *fliptest.DB) int {
	t.Helper()
	var n int
	if err := sqlx.NewDb(db.DB, "postgres").Get(&n, `SELECT count(*) FROM trust`); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRegisterThenRerun(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_003")

	r := register(t, db, "--name", "  Guy's & St Thomas'  ", "--code", "GSTT", "--region", "London")
	rec, raw := wantOne(t, r)
	if rec.Status != "registered" || rec.TrustName != "Guy's & St Thomas'" {
		t.Errorf("record = %+v", rec)
	}
	if code, region := codeAndRegion(t, db, rec.TrustID); code != "GSTT" || region != "London" {
		t.Errorf("stored code, region = %q, %q; want GSTT, London", code, region)
	}
	if rec.slot() != "Trust_001" || rec.FLKitSlotNumber == nil || *rec.FLKitSlotNumber != 1 {
		t.Errorf("kit slot = %q %v, want Trust_001 1", rec.slot(), rec.FLKitSlotNumber)
	}
	wantKeys(t, raw, newKeys...)
	if err := flip.CheckKey(flip.TrustAPIKey, rec.TrustAPIKey); err != nil {
		t.Errorf("trust_api_key: %v", err)
	}
	if err := flip.CheckKey(flip.InternalServiceKey, rec.TrustInternalServiceKey); err != nil {
		t.Errorf("trust_internal_service_key: %v", err)
	}
	hash := apiKeyHash(t, db, rec.TrustID)
	if hash != flip.HashAPIKey(rec.TrustAPIKey) {
		t.Errorf("api_key_hash in the database does not match the printed key")
	}
	dump := fliptest.DumpTables(t, db)
	if strings.Contains(dump, rec.TrustInternalServiceKey) {
		t.Error("the internal-service key is stored")
	}
	if strings.Contains(dump, rec.TrustAPIKey) {
		t.Error("the plaintext API key is stored")
	}
	keys := []string{rec.TrustAPIKey, rec.TrustInternalServiceKey}
	noSecrets(t, "stderr", r.stderr, keys...)

	// Same name again (different spacing): reported, never re-keyed.
	r = register(t, db, "--name", "Guy's & St Thomas'", "--code", "GSTT", "--region", "London")
	again, raw := wantOne(t, r)
	if again.Status != "existing" || again.TrustID != rec.TrustID || again.slot() != "Trust_001" || *again.FLKitSlotNumber != 1 {
		t.Errorf("re-run record = %+v", again)
	}
	wantKeys(t, raw, skipKeys...)
	if got := apiKeyHash(t, db, rec.TrustID); got != hash {
		t.Errorf("api_key_hash changed on re-run")
	}
	noSecrets(t, "stderr", r.stderr, keys...)

	r = register(t, db, "--name", "Guy's & St Thomas'", "--code", "GSTT", "--require-existing")
	if rec, _ := wantOne(t, r); rec.Status != "existing" || rec.TrustAPIKey != "" {
		t.Errorf("--require-existing record = %+v", rec)
	}
	if n := countTrusts(t, db); n != 1 {
		t.Errorf("%d trusts, want 1", n)
	}
}

func TestRequireExistingMissing(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	r := register(t, db, "--name", "Nowhere", "--code", "NW", "--require-existing")
	wantFailure(t, r, "require-existing")
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts registered, want 0", n)
	}
}

func TestExistingTrustWithoutSlot(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	// A trust the hub registered before slots existed, with a key.
	if _, err := db.Exec(`INSERT INTO trust (id, name, code, api_key_hash, created_at)
		VALUES (gen_random_uuid(), 'Old', 'OLD', encode(sha256('old key'), 'hex'), now())`); err != nil {
		t.Fatal(err)
	}
	r := register(t, db, "--name", "Old", "--code", "old")
	rec, raw := wantOne(t, r)
	if rec.Status != "existing" || rec.TrustName != "Old" {
		t.Errorf("record = %+v", rec)
	}
	// The key set is the same as ever; the trust has no slot to name.
	wantKeys(t, raw, skipKeys...)
	if raw["fl_kit_slot"] != nil || raw["fl_kit_slot_number"] != nil {
		t.Errorf("slot = %v %v, want null null", raw["fl_kit_slot"], raw["fl_kit_slot_number"])
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	// Nothing here may reach a database; this URL would fail if it did.
	const noDB = "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	for name, args := range map[string][]string{
		"unknown flag":        {"--name", "A", "--code", "A", "--frobnicate"},
		"missing code":        {"--name", "A"},
		"missing name":        {"--code", "A"},
		"empty name":          {"--name", "", "--code", "A"},
		"nothing to do":       {},
		"bad key format":      {"--name", "A", "--code", "A", "--key-format", "hex"},
		"positional arg":      {"--name", "A", "--code", "A", "extra"},
		"region alone":        {"--region", "London", "--migrate"},
		"bad slot range":      {"--add-slots", "Trust_009..Trust_001"},
		"empty slot list":     {"--add-slots", " , "},
		"zero timeout":        {"--name", "A", "--code", "A", "--timeout", "0s"},
		"print and register":  {"--print-migrations", "--name", "A", "--code", "A"},
		"rotate without name": {"--rotate", "--code", "A"},
		"rotate with region":  {"--name", "A", "--rotate", "--region", "London"},
		"print and rotate":    {"--print-migrations", "--rotate"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := runCmd(t, noEnv, append(args, "--database-url", noDB)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if !strings.Contains(r.stderr, "Usage") {
				t.Errorf("stderr has no usage:\n%s", r.stderr)
			}
		})
	}
}

func TestNoFreeSlot(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	wantFailure(t, register(t, db, "--name", "A", "--code", "A"), "no FL kit slots")
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts left behind, want 0", n)
	}
}

// signalWriter is a stderr that closes seen the first time a line
// containing want is written.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) && w.seen != nil {
		close(w.seen)
		w.seen = nil
	}
	return len(p), nil
}

// waitingRun starts the command with args on db (which must have one free
// kit slot) while another transaction holds that slot, and returns once
// the run has found the pool busy and waits to try again. release ends the
// other transaction, lets the run go on, and returns what it did.
func waitingRun(t *testing.T, db *fliptest.DB, args ...string) (release func() result) {
	t.Helper()
	holder, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Rollback() })
	if _, err := flip.NewRegistry(store.New()).RegisterTrust(context.Background(), holder, flip.TrustParams{Name: "Holder", Code: "HLD"}); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	stderr := &signalWriter{want: "retrying", seen: seen}
	var stdout bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), append([]string{"--database-url", db.URL}, args...), &stdout, stderr, noEnv)
	}()
	<-seen // the first attempt found the pool busy
	return func() result {
		t.Helper()
		if err := holder.Rollback(); err != nil {
			t.Fatal(err)
		}
		code := <-done
		return result{code, stdout.String(), stderr.buf.String()}
	}
}

// A pool whose only free slot another registration holds is busy, not
// empty: the command waits and tries again instead of failing the deploy.
func TestBusyPoolIsRetried(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	r := waitingRun(t, db, "--name", "Waiter", "--code", "WT")()
	if rec, _ := wantOne(t, r); rec.Status != "registered" || rec.slot() != "Trust_001" {
		t.Errorf("record = %+v", rec)
	}
}

func TestDuplicateCode(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_002")
	wantOne(t, register(t, db, "--name", "First", "--code", "ABC"))
	r := register(t, db, "--name", "Second", "--code", "abc")
	wantFailure(t, r, "already exists")
	if n := countTrusts(t, db); n != 1 {
		t.Errorf("%d trusts, want 1", n)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	wantFailure(t, register(t, db, "--name", "Bad\x00Name", "--code", "B"), "NUL")
	wantFailure(t, register(t, db, "--name", "   ", "--code", "B"), "name is required")
	wantFailure(t, register(t, db, "--name", "Fine", "--code", "B", "--region", "two\nlines"), "control character")
	// The code names the trust's kit files.
	wantFailure(t, register(t, db, "--name", "Fine", "--code", "../../etc/passwd"), "kit files")
	wantFailure(t, register(t, db, "--name", "Fine", "--code", "G S T T"), "kit files")
	wantFailure(t, register(t, db, "--name", "Fine\u200b", "--code", "B"), "U+200B")
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts, want 0", n)
	}
}

func TestAddSlotsOnly(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	summary := func(r result) poolSummary {
		t.Helper()
		if r.code != exitOK {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		var s poolSummary
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		return s
	}
	if s := summary(register(t, db, "--add-slots", "Trust_001..Trust_003, Spare")); s != (poolSummary{4, 4, 4}) {
		t.Errorf("summary = %+v, want 4 added, 4 total, 4 free", s)
	}
	wantOne(t, register(t, db, "--name", "A", "--code", "A"))
	// Additive only: the assigned slot stays assigned, new names are added.
	if s := summary(register(t, db, "--add-slots", "Trust_001..Trust_005")); s != (poolSummary{2, 6, 5}) {
		t.Errorf("summary = %+v, want 2 added, 6 total, 5 free", s)
	}
	if slot, err := store.KitSlotOf(context.Background(), db, mustTrust(t, db, "A")); err != nil || slot.Name != "Trust_001" {
		t.Errorf("trust A's slot = %q, %v; want Trust_001", slot.Name, err)
	}
}

// mustTrust returns the id of the trust named name.
func mustTrust(t *testing.T, db *fliptest.DB, name string) uuid.UUID {
	t.Helper()
	tr, err := store.TrustByName(context.Background(), db, name)
	if err != nil {
		t.Fatal(err)
	}
	return tr.ID
}

func TestMigrateFromVersionZero(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	ctx := context.Background()

	wantFailure(t, register(t, db, "--name", "A", "--code", "A"), "--migrate")

	r := register(t, db, "--migrate")
	if r.code != exitOK || strings.TrimSpace(r.stdout) != `{"slots_added":0,"slots_total":0,"slots_free":0}` {
		t.Fatalf("--migrate: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM flip_schema_migrations`).Scan(&v); err != nil || v != store.LatestVersion() {
		t.Errorf("applied version = %d, %v; want %d", v, err, store.LatestVersion())
	}
	// Idempotent, and combines with slots and registration.
	rec, _ := wantOne(t, register(t, db, "--migrate", "--add-slots", "Trust_001", "--name", "A", "--code", "A"))
	if rec.Status != "registered" || rec.slot() != "Trust_001" {
		t.Errorf("record = %+v", rec)
	}
}

func TestPrintMigrations(t *testing.T) {
	t.Parallel()
	// No database is needed, or touched.
	r := runCmd(t, noEnv, "--print-migrations", "--database-url", "postgres://postgres@127.0.0.1:1/none")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	files, err := fs.Glob(store.MigrationsFS(), "*.sql")
	if err != nil || len(files) != 2*store.LatestVersion() {
		t.Fatalf("migration files %q, %v", files, err)
	}
	for _, name := range files {
		body, err := fs.ReadFile(store.MigrationsFS(), name)
		if err != nil {
			t.Fatal(err)
		}
		isUp, printed := strings.HasSuffix(name, ".up.sql"), strings.Contains(r.stdout, strings.TrimSpace(string(body)))
		if isUp != printed {
			t.Errorf("%s: printed %v, want %v (up steps only)", name, printed, isUp)
		}
	}
}

func TestKeyFormatReference(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	r := register(t, db, "--name", "Ref", "--code", "REF", "--key-format", "reference")
	rec, _ := wantOne(t, r)
	if len(rec.TrustAPIKey) != flip.ReferenceKeyLength || strings.HasPrefix(rec.TrustAPIKey, "flip_") {
		t.Errorf("api key %.6s… is not a reference key", rec.TrustAPIKey)
	}
	if err := flip.CheckKey(flip.TrustAPIKey, rec.TrustAPIKey); err != nil {
		t.Error(err)
	}
	if apiKeyHash(t, db, rec.TrustID) != flip.HashAPIKey(rec.TrustAPIKey) {
		t.Error("stored hash does not match")
	}
	noSecrets(t, "stderr", r.stderr, rec.TrustAPIKey, rec.TrustInternalServiceKey)
}

func TestDatabaseURLFromEnv(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return db.URL
		}
		return ""
	}
	rec, _ := wantOne(t, runCmd(t, getenv, "--name", "Env", "--code", "ENV"))
	if rec.Status != "registered" {
		t.Errorf("record = %+v", rec)
	}
}

// A database that refuses the connection fails the run (exit 1) without
// printing its password, in whatever form the URL or connection string
// holds it, given by flag or environment, registering or planning.
func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	fliptest.NewDB(t) // fails under CI=true without PostgreSQL, like every test here
	for _, c := range cmddbtest.RefusedDSNs {
		fromEnv := func(k string) string { return map[string]string{"DATABASE_URL": c.DSN}[k] }
		for _, r := range []result{
			runCmd(t, noEnv, "--database-url", c.DSN, "--name", "A", "--code", "A"),
			runCmd(t, fromEnv, "--name", "A", "--code", "A"),
			runCmd(t, noEnv, "--database-url", c.DSN, "--plan", "--name", "A", "--code", "A"),
			runCmd(t, noEnv, "--database-url", c.DSN, "--migrate"),
		} {
			want := "cannot connect to the database at"
			if c.Unparsable {
				want = "the database connection string is not valid"
			}
			if r.code != exitFail || !strings.Contains(r.stderr, want) {
				t.Errorf("%s: exit %d, want 1 and %q\nstderr: %s", c.Name, r.code, want, r.stderr)
			}
			cmddbtest.NoPassword(t, c, "stdout", r.stdout)
			cmddbtest.NoPassword(t, c, "stderr", r.stderr)
		}
	}
	r := runCmd(t, noEnv, "--database-url", "postgres://flip:hunter2secret@127.0.0.1:1/none?sslmode=disable", "--name", "A", "--code", "A")
	wantFailure(t, r, "connection refused")
	if !strings.Contains(r.stderr, "flip:xxxxx@127.0.0.1:1") {
		t.Errorf("stderr does not show the redacted URL:\n%s", r.stderr)
	}
}

// Without --database-url and DATABASE_URL the command refuses to run
// (there is no default database) before it connects anywhere.
func TestNoDatabaseGiven(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--name", "Nowhere", "--code", "NOWHERE"},
		{"--name", "Nowhere", "--rotate"},
		{"--plan", "--name", "Nowhere", "--code", "NOWHERE"},
		{"--migrate", "--add-slots", "Trust_001"},
	} {
		r := runCmd(t, noEnv, args...)
		if r.code != exitUsage || r.stdout != "" || strings.Contains(r.stderr, "connecting") ||
			!strings.Contains(r.stderr, "--database-url") || !strings.Contains(r.stderr, "DATABASE_URL") {
			t.Errorf("%q: exit %d, stdout %q; want exit 2, nothing on stdout, no connection and an error naming both\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := runCmd(t, noEnv, "--print-migrations"); r.code != exitOK || r.stdout == "" {
		t.Errorf("--print-migrations, which needs no database: exit %d\nstderr: %s", r.code, r.stderr)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	wantFailure(t, register(t, db, "--name", "A", "--code", "A", "--timeout", "1ns"), "deadline exceeded")
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts, want 0", n)
	}
}

// TestConcurrentSameName runs several deploys of one trust at once: exactly
// one registers it and the rest report it as existing, including any that
// lose the race between their lookup and their registration.
func TestConcurrentSameName(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001..Trust_010")
	const n = 8
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = register(t, db, "--name", "Racy", "--code", "RACY") })
	}
	wg.Wait()
	registered := 0
	for _, r := range results {
		rec, _ := wantOne(t, r)
		if rec.Status == "registered" {
			registered++
		} else if rec.TrustAPIKey != "" || rec.slot() != "Trust_001" {
			t.Errorf("existing record = %+v", rec)
		}
	}
	if registered != 1 {
		t.Errorf("%d runs registered the trust, want 1", registered)
	}
	if c := countTrusts(t, db); c != 1 {
		t.Errorf("%d trusts, want 1", c)
	}
}

// binDir holds the command built for the end-to-end tests.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "register-trust-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds the command once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "register-trust")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// execBinary runs the built command with args and extra environment.
func execBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run %s: %v", cmd.Path, err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

func TestBinaryEndToEnd(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	url := []string{"--database-url", db.URL}

	r := execBinary(t, nil, append(url, "--add-slots", "Trust_001..Trust_002")...)
	if r.code != exitOK || !json.Valid([]byte(r.stdout)) {
		t.Fatalf("--add-slots: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	r = execBinary(t, nil, append(url, "--name", "Binary Trust", "--code", "BIN", "--region", "North")...)
	rec, _ := wantOne(t, r)
	if rec.Status != "registered" || rec.slot() != "Trust_001" {
		t.Errorf("record = %+v", rec)
	}
	if err := flip.CheckKey(flip.TrustAPIKey, rec.TrustAPIKey); err != nil {
		t.Error(err)
	}
	keys := []string{rec.TrustAPIKey, rec.TrustInternalServiceKey}
	noSecrets(t, "stderr", r.stderr, keys...)

	// Re-run, taking the URL from the environment this time.
	r = execBinary(t, []string{"DATABASE_URL=" + db.URL}, "--name", "Binary Trust", "--code", "BIN")
	again, raw := wantOne(t, r)
	if again.Status != "existing" || again.TrustID != rec.TrustID {
		t.Errorf("re-run record = %+v", again)
	}
	if _, ok := raw["trust_api_key"]; ok {
		t.Error("re-run printed a key")
	}
	if apiKeyHash(t, db, rec.TrustID) != flip.HashAPIKey(rec.TrustAPIKey) {
		t.Error("trust was re-keyed")
	}
	noSecrets(t, "stderr", r.stderr, keys...)

	r = execBinary(t, nil, append(url, "--name", "Binary Trust", "--code", "BIN", "--require-existing")...)
	if rec, _ := wantOne(t, r); rec.Status != "existing" {
		t.Errorf("--require-existing record = %+v", rec)
	}

	r = execBinary(t, nil, append(url, "--name", "Missing", "--code", "MISS", "--require-existing")...)
	wantFailure(t, r, "require-existing")
	if !json.Valid([]byte(r.stdout)) {
		t.Errorf("stdout %q is not JSON", r.stdout)
	}

	r = execBinary(t, nil, append(url, "--name", "No Code")...)
	if r.code != exitUsage || r.stdout != "" {
		t.Errorf("usage error: exit %d, stdout %q", r.code, r.stdout)
	}
}

// silentServer accepts TCP connections and never answers them: a database
// whose connection step never finishes. It returns a URL to it.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "postgres://postgres@" + ln.Addr().String() + "/none?sslmode=disable"
}

// Wherever --timeout expires (connecting, looking the trust up, migrating,
// registering, rotating, planning), the command says that it did, and
// after how long, instead of only the driver's "canceling statement due to
// user request". Another connection holds what the step needs, so the step
// waits until the timeout ends it.
func TestTimeoutSaysSo(t *testing.T) {
	t.Parallel()
	const want = "--timeout 200ms expired"
	for name, tc := range map[string]struct {
		hold string // run and held in another transaction; "" for none
		args []string
	}{
		"connect":  {args: []string{"--name", "A", "--code", "A"}},
		"lookup":   {hold: `LOCK TABLE trust IN ACCESS EXCLUSIVE MODE`, args: []string{"--name", "Waiting", "--code", "WAIT"}},
		"migrate":  {hold: fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, int64(0x666c69702e6d6967)), args: []string{"--migrate"}},
		"register": {hold: `LOCK TABLE fl_kit_slot IN ACCESS EXCLUSIVE MODE`, args: []string{"--name", "Waiting", "--code", "WAIT"}},
		"rotate":   {hold: `SELECT id FROM trust WHERE name = 'Standing' FOR UPDATE`, args: []string{"--name", "Standing", "--rotate"}},
		"plan":     {hold: `LOCK TABLE trust IN ACCESS EXCLUSIVE MODE`, args: []string{"--name", "Waiting", "--code", "WAIT", "--plan"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t)
			fliptest.AddSlots(t, db, "Trust_001..Trust_002")
			wantOne(t, register(t, db, "--name", "Standing", "--code", "STAND"))
			url := db.URL
			if tc.hold == "" {
				url = silentServer(t)
			} else {
				holder, err := db.BeginTx(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer holder.Rollback() //nolint:errcheck // test cleanup
				if _, err := holder.Exec(tc.hold); err != nil {
					t.Fatal(err)
				}
			}
			r := runCmd(t, noEnv, append(tc.args, "--database-url", url, "--timeout", "200ms")...)
			if r.code != exitFail || !strings.Contains(r.stdout+r.stderr, want) {
				t.Errorf("exit %d, want 1, and a message saying %q\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
			}
			if name == "plan" {
				if p := planOf(t, r); p.Action != "fail" || !strings.Contains(p.Error, want) {
					t.Errorf("plan = %+v, want a failure saying %q", p, want)
				}
			}
		})
	}
}
