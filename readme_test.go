package flip_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // store registers no driver: import the one you use
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/pqfeed"
	"github.com/londonaicentre/flip/store"
)

// The Go snippets of README.md, compiled: TestReadme_GoSnippetsAreHere
// checks that every line of every ```go block of the README stands here,
// in order, so the README cannot show code that does not build.

// README: "Using it from the hub".

var registry = flip.NewRegistry(store.New()) // once, at start-up

func createTrust(ctx context.Context, db *sqlx.DB, admin uuid.UUID, name, code, region string) (flip.RegistrationResult, int, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return flip.RegistrationResult{}, http.StatusInternalServerError, err
	}
	defer tx.Rollback() // no-op after Commit

	res, err := registry.RegisterTrust(ctx, tx, flip.TrustParams{
		Name: name, Code: code, Region: region, AuditUserID: admin,
	})
	switch {
	case errors.Is(err, flip.ErrInvalidTrustParams): // blank name/code, NUL, look-alike spelling, too long…
		return res, http.StatusBadRequest, err
	case errors.Is(err, flip.ErrDuplicateTrust), errors.Is(err, flip.ErrNoFreeKitSlot):
		return res, http.StatusConflict, err
	case errors.Is(err, flip.ErrRetryable), errors.Is(err, context.DeadlineExceeded):
		return res, http.StatusServiceUnavailable, err // nothing was written: retry later
	case err != nil:
		return res, http.StatusInternalServerError, err // show no detail
	}
	if err := tx.Commit(); err != nil {
		return flip.RegistrationResult{}, http.StatusInternalServerError, err
	}
	// The keys exist only here: send res.APIKey.Reveal() and
	// res.InternalServiceKey.Reveal() to the trust and drop them. Each is a
	// flip.Secret, which fmt, slog and JSON print as [REDACTED].
	return res, http.StatusCreated, nil
}

func TestReadme_CreateTrust(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	ctx := context.Background()
	for _, c := range []struct {
		name, code string
		status     int
	}{
		{"Guy's and St Thomas'", "GSTT", http.StatusCreated},
		{"Guy's and St\u200b Thomas'", "GSTT2", http.StatusBadRequest},
		{"Guy's and St Thomas'", "GSTT3", http.StatusConflict},
		{"Another", "AN", http.StatusConflict}, // the pool's only slot is taken
	} {
		res, status, err := createTrust(ctx, sqlx.NewDb(db.DB, "postgres"), uuid.New(), c.name, c.code, "London")
		if status != c.status {
			t.Errorf("createTrust(%+q, %q) = %d, %v; want %d", c.name, c.code, status, err, c.status)
		}
		if status == http.StatusCreated && (res.APIKey.Reveal() == "" || res.KitSlot.Name != "Trust_001") {
			t.Errorf("result = %v", res)
		}
	}
}

// README: "On pgx".

var pgxRegistry = flippgx.New(registry) // beside the Registry, at start-up

func createTrustOnPgx(ctx context.Context, pool *pgxpool.Pool, p flip.TrustParams) (flip.RegistrationResult, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return flip.RegistrationResult{}, err
	}
	defer tx.Rollback(ctx) // no-op after Commit

	res, err := pgxRegistry.RegisterTrust(ctx, tx, p) // the errors of createTrust above
	if err != nil {
		return flip.RegistrationResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return flip.RegistrationResult{}, err
	}
	return res, nil
}

func TestReadme_CreateTrustOnPgx(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	res, err := createTrustOnPgx(ctx, pool, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	if err != nil || res.KitSlot.Name != "Trust_001" {
		t.Fatalf("createTrustOnPgx = %v, %v", res, err)
	}
	if _, err := createTrustOnPgx(ctx, pool, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT2"}); !errors.Is(err, flip.ErrDuplicateTrust) {
		t.Errorf("the same name again: %v, want ErrDuplicateTrust", err)
	}
	if got, err := flip.NewVerifier(db).Verify(ctx, res.APIKey.Reveal()); err != nil || got.ID != res.Trust.ID {
		t.Errorf("the committed key: %v, %v", got, err)
	}
}

// README: "Verifying trust API keys".

func whoIsCalling(ctx context.Context, db *sqlx.DB, r *http.Request) int {
	verifier := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
	trust, err := verifier.Verify(ctx, r.Header.Get("X-API-Key"))
	switch {
	case errors.Is(err, flip.ErrUnauthorized): // 401, with "WWW-Authenticate: ApiKey"
		return http.StatusUnauthorized
	case err != nil: // the database is down: 503, never 401
		return http.StatusServiceUnavailable
	}
	_ = trust // the calling trust
	return http.StatusOK
}

func TestReadme_Verify(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	res := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Caller", Code: "CL"})
	for key, want := range map[string]int{res.APIKey.Reveal(): http.StatusOK, "": http.StatusUnauthorized, res.InternalServiceKey.Reveal(): http.StatusUnauthorized} {
		r := httptest.NewRequest(http.MethodGet, "/trust/me", nil)
		r.Header.Set("X-API-Key", key)
		if got := whoIsCalling(context.Background(), sqlx.NewDb(db.DB, "postgres"), r); got != want {
			t.Errorf("key %.12q…: %d, want %d", key, got, want)
		}
	}
}

// README: "A trust's later life: rotate, revoke, delete".

func deleteTrust(ctx context.Context, db *sqlx.DB, admin, id uuid.UUID) (flip.DeletionResult, int, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return flip.DeletionResult{}, http.StatusInternalServerError, err
	}
	defer tx.Rollback() // no-op after Commit

	res, err := registry.DeleteTrust(ctx, tx, flip.TrustChange{TrustID: id, AuditUserID: admin})
	switch {
	case errors.Is(err, flip.ErrTrustNotFound):
		return res, http.StatusNotFound, err
	case errors.Is(err, flip.ErrTrustDeletionBlocked): // a row of the trust's that other rows reference
		return res, http.StatusConflict, err
	case errors.Is(err, flip.ErrRetryable), errors.Is(err, context.DeadlineExceeded):
		return res, http.StatusServiceUnavailable, err
	case err != nil:
		return res, http.StatusInternalServerError, err
	}
	if err := tx.Commit(); err != nil {
		return flip.DeletionResult{}, http.StatusInternalServerError, err
	}
	return res, http.StatusOK, nil // res: the trust, its freed slots, rows deleted per table
}

// At start-up: one Verifier per replica, listening for every replica's changes.
func startVerifier(ctx context.Context, db *sqlx.DB, databaseURL string) *flip.Verifier {
	verifier := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
	go verifier.Listen(ctx, pqfeed.New(databaseURL, nil)) // returns when ctx ends
	return verifier
}

func TestReadme_DeleteTrust(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := sqlx.NewDb(db.DB, "postgres")
	verifier := startVerifier(ctx, x, db.URL)
	reg := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Leaving", Code: "LV"})
	res, status, err := deleteTrust(ctx, x, uuid.New(), reg.Trust.ID)
	if status != http.StatusOK || res.Trust.ID != reg.Trust.ID || len(res.FreedKitSlots) != 1 {
		t.Fatalf("deleteTrust = %+v, %d, %v", res, status, err)
	}
	if _, status, _ := deleteTrust(ctx, x, uuid.New(), reg.Trust.ID); status != http.StatusNotFound {
		t.Errorf("second deleteTrust = %d, want 404", status)
	}
	if _, err := verifier.Verify(ctx, reg.APIKey.Reveal()); !errors.Is(err, flip.ErrUnknownAPIKey) {
		t.Errorf("deleted trust's key: %v", err)
	}
}

// README: "The examples: the three users of flip" (fliptest).

func TestMyService(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t) // migrated, isolated, dropped at cleanup
	fliptest.AddSlots(t, db, "Trust_001..Trust_010")
	res := fliptest.RegisterTrust(t, db, flip.TrustParams{Name: "Test Trust", Code: "TT"})
	// … exercise your code with res.Trust.ID and res.APIKey.Reveal()
	if res.Trust.ID == uuid.Nil || res.APIKey.Reveal() == "" {
		t.Errorf("RegisterTrust = %v", res)
	}
}

// README: "Seeding the main users". Compiled, not run here: the seeding
// tests run the same calls against the Cognito emulator.
func seedFromCognito(ctx context.Context, cfg aws.Config, db *sqlx.DB, userPoolID string, users []flip.MainUser) (flip.SeedReport, error) {
	client := cognitoidentityprovider.NewFromConfig(cfg)
	idp := cognito.New(client, userPoolID, cognito.WithMaxAttempts(3))
	report, err := flip.NewSeeder(users).SeedMainUsers(ctx, db, idp)
	return report, err
}

var _ = seedFromCognito

func TestReadme_GoSnippetsAreHere(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var here []string
	for _, l := range strings.Split(string(self), "\n") {
		here = append(here, strings.TrimSpace(l))
	}
	blocks := 0
	sc := bufio.NewScanner(strings.NewReader(string(readme)))
	var block []string
	inGo := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !inGo && strings.TrimSpace(line) == "```go":
			inGo, block = true, nil
		case inGo && strings.TrimSpace(line) == "```":
			inGo = false
			blocks++
			if missing := notInOrder(block, here); missing != "" {
				t.Errorf("README go block %d: line %q is not in readme_test.go (in this order); keep the two the same", blocks, missing)
			}
		case inGo && strings.TrimSpace(line) != "":
			block = append(block, strings.TrimSpace(line))
		}
	}
	if blocks < 4 {
		t.Errorf("found %d go blocks in README.md, want at least 4", blocks)
	}
}

// notInOrder returns the first line of want that does not appear in have
// after the previous one, or "".
func notInOrder(want, have []string) string {
	i := 0
	for _, w := range want {
		for i < len(have) && have[i] != w {
			i++
		}
		if i == len(have) {
			return w
		}
		i++
	}
	return ""
}
