package reliability

import (
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/store"
)

// TestSecrets_FullCycleLeavesNoPlaintextKey runs what a hub does with keys
// from start to end, with every component that takes a logger logging at
// debug level into one buffer: trusts registered (some refused, one rolled
// back by its caller), main users seeded twice (with a user the identity
// provider does not know and one it cannot answer for), then trust API keys
// verified through the Verifier with its cache on: hits, cached hits, keys
// no trust holds, internal-service keys presented as API keys, and
// malformed keys derived from real ones, every outcome logged as a hub
// would log it. Then every row of every table is dumped as text, and the
// dump and the log are searched for every key minted or presented: neither
// may hold a key, nor any 16-character piece of one; the log may not hold a
// key's hash either (the registry and the Verifier promise as much), and
// the database may not hold an internal-service key's hash. As a check that
// the search sees what it should, every registered trust's API-key hash
// must be in the dump, in its own row.
func TestSecrets_FullCycleLeavesNoPlaintextKey(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v, adminConns+2)
			viol := &violations{t: t}
			ctx := b.ctx
			// Every component logs into the same buffer as the registry.
			logger := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			hubLog := logger.With(slog.String("component", "hub"))
			fliptest.AddSlots(t, b.admin, "Secret_001..Secret_020")

			// presented are strings offered to the Verifier that are not
			// minted by the registry: keys of no trust.
			var presented []string

			// 1. Register.
			var registered []flip.RegistrationResult
			for i := range 5 {
				res, err := b.RegisterTrustDB(ctx, b.reg, flip.TrustParams{
					Name: fmt.Sprintf("Secret trust %d", i), Code: fmt.Sprintf("ST%d", i), Region: "London",
				})
				if err != nil {
					t.Fatalf("register %d: %v", i, err)
				}
				// A hub that logs the result, the careless ways included:
				// the keys must come out redacted.
				hubLog.LogAttrs(ctx, slog.LevelDebug, "registered", slog.Any("result", res))
				hubLog.Debug(fmt.Sprintf("registered %v / %+v / %#v", res, res, res))
				registered = append(registered, res)
			}
			// Refused: a duplicate name, a duplicate code in other case, invalid params.
			for _, p := range []flip.TrustParams{
				{Name: "Secret trust 0", Code: "OTHER"},
				{Name: "Another trust", Code: "st1"},
				{Name: "   ", Code: "X"},
			} {
				_, err := b.RegisterTrustDB(ctx, b.reg, p)
				if err == nil {
					viol.add("registration of %+v succeeded; want it refused", p)
				}
				hubLog.LogAttrs(ctx, slog.LevelDebug, "registration refused", slog.Any("error", err))
			}
			// Registered inside a caller's transaction that then rolls back:
			// its keys were returned, but the trust never existed.
			var rolledBack flip.RegistrationResult
			{
				tx, err := b.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				rolledBack, err = tx.RegisterTrust(ctx, b.reg, flip.TrustParams{Name: "Rolled back", Code: "RB"})
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// On flip's schema a minter that repeats an API key makes the
			// unique index on the hash refuse the trust; the error the
			// registry logs must not carry the hash the server reports.
			if v.version >= 2 {
				repeat := &repeatMinter{api: registered[0].APIKey.Reveal(), inner: b.minter}
				reg := flip.NewRegistry(store.New(), flip.WithKeyMinter(repeat), flip.WithLogger(logger))
				_, err := b.RegisterTrustDB(ctx, reg, flip.TrustParams{Name: "Colliding key", Code: "CK"})
				if err == nil {
					viol.add("a trust with an API key another trust holds was registered")
				}
				hubLog.LogAttrs(ctx, slog.LevelDebug, "registration refused", slog.Any("error", err))
			}

			// 1b. A trust's later life: rotations (one of them rolled back
			// by its caller, its keys returned but never stored), a
			// revocation, a deletion, and a rotation of a trust that does not
			// exist; every result and error logged as a careless hub would.
			// registered keeps each trust's current keys; retired the keys
			// rotated away.
			var retired []string
			change := func(what string, op func(tx callertx.Tx) (any, error), commit bool) {
				t.Helper()
				tx, err := b.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
				res, err := op(tx)
				hubLog.LogAttrs(ctx, slog.LevelDebug, what, slog.Any("result", res), slog.Any("error", err))
				hubLog.Debug(fmt.Sprintf("%s %v / %+v / %#v", what, res, res, res))
				if err != nil {
					viol.add("%s: %v", what, err)
					return
				}
				if commit {
					if err := tx.Commit(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			rotate := func(i int, commit bool) flip.RegistrationResult {
				t.Helper()
				var rot flip.RegistrationResult
				change(fmt.Sprintf("rotated %d", i), func(tx callertx.Tx) (res any, err error) {
					rot, err = tx.RotateKeys(ctx, b.reg, flip.TrustChange{TrustID: registered[i].Trust.ID})
					return rot, err
				}, commit)
				if commit {
					retired = append(retired, registered[i].APIKey.Reveal())
					registered[i] = rot
				}
				return rot
			}
			rotate(0, true)
			rotate(0, true)
			rotate(1, true)
			rolledBackRotation := rotate(1, false)
			change("revoked 2", func(tx callertx.Tx) (any, error) {
				return tx.RevokeKey(ctx, b.reg, flip.TrustChange{TrustID: registered[2].Trust.ID})
			}, true)
			change("deleted 3", func(tx callertx.Tx) (any, error) {
				return tx.DeleteTrust(ctx, b.reg, flip.TrustChange{TrustID: registered[3].Trust.ID, AuditUserID: uuid.New()})
			}, true)
			revoked, deleted := registered[2], registered[3]
			live := []flip.RegistrationResult{registered[0], registered[1], registered[4]}
			{
				tx, err := b.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				_, err = tx.RotateKeys(ctx, b.reg, flip.TrustChange{TrustID: uuid.New()})
				if !errors.Is(err, flip.ErrTrustNotFound) {
					viol.add("rotating a trust that does not exist: %v, want ErrTrustNotFound", err)
				}
				hubLog.LogAttrs(ctx, slog.LevelDebug, "rotation refused", slog.Any("error", err))
				_ = tx.Rollback(ctx)
			}

			// 2. Seed main users, twice: the second run writes nothing and
			// logs at debug level.
			idp := fliptest.NewIdentityProvider()
			users := []flip.MainUser{
				{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
				{Email: "rita.research@example.com", Role: "Researcher", Name: "Rita Research", Organisation: "Example University"},
				{Email: "nobody@example.com", Role: "Viewer", Name: "Not In Cognito"},
				{Email: "flaky@example.com", Role: "Viewer", Name: "Flaky"},
			}
			idp.AddUser(users[0].Email)
			idp.AddUser(users[1].Email)
			idp.AddUser(users[3].Email)
			idp.FailEmail(users[3].Email, &flip.IdentityProviderError{Op: "ListUsers", Status: 503,
				Code: "ServiceUnavailableException", Kind: flip.ErrIdentityProviderUnavailable})
			seeder := flip.NewSeeder(users)
			seeder.Logger = logger
			for run := range 2 {
				var report flip.SeedReport
				var err error
				if b.Pgx != nil {
					report, err = flippgx.SeedMainUsers(ctx, seeder, b.Pgx, idp)
				} else {
					report, err = seeder.SeedMainUsers(ctx, b.db, idp)
				}
				if err != nil {
					t.Fatalf("seed run %d: %v", run+1, err)
				}
				hubLog.LogAttrs(ctx, slog.LevelDebug, "seeded", slog.Any("report", report), slog.String("summary", report.String()))
			}

			// 3. Verify, with the cache on.
			verifier := b.Verifier(flip.WithVerifierCache(time.Minute, 100))
			counts := map[string]int{}
			verify := func(what, key string, wantTrust *flip.Trust) {
				t.Helper()
				trust, err := verifier.Verify(ctx, key)
				counts[what]++
				hubLog.LogAttrs(ctx, slog.LevelDebug, "verify", slog.String("what", what),
					slog.String("trust_id", trust.ID.String()), slog.Any("error", err))
				switch {
				case wantTrust != nil && (err != nil || trust.ID != wantTrust.ID):
					viol.add("verify %s: trust %s, %v; want %s", what, trust.ID, err, wantTrust.ID)
				case wantTrust == nil && !errors.Is(err, flip.ErrUnauthorized):
					viol.add("verify %s: trust %s, %v; want ErrUnauthorized", what, trust.ID, err)
				}
			}
			stranger := flip.RandomKeyMinter{Format: v.format}
			for _, res := range live {
				verify("hit", res.APIKey.Reveal(), &res.Trust)
				verify("cached hit", res.APIKey.Reveal(), &res.Trust)
				verify("internal-service key as API key", res.InternalServiceKey.Reveal(), nil)
				k := res.APIKey.Reveal()
				for _, bad := range []string{
					k[:len(k)-1], k + "A", " " + k, k + "\n", strings.ToUpper(k), strings.ToLower(k),
					k[:len(k)-2] + string(k[len(k)-1]) + string(k[len(k)-2]), // two characters swapped
					k[:10], strings.Repeat(k, 2),
				} {
					if bad != k {
						verify("derived from a real key", bad, nil)
					}
				}
				unknown, err := stranger.MintKey(flip.TrustAPIKey)
				if err != nil {
					t.Fatal(err)
				}
				presented = append(presented, unknown)
				verify("unknown key", unknown, nil)
			}
			verify("rolled-back trust's key", rolledBack.APIKey.Reveal(), nil)
			verify("key from a rolled-back rotation", rolledBackRotation.APIKey.Reveal(), nil)
			for _, k := range retired {
				verify("key rotated away", k, nil)
			}
			verify("revoked key", revoked.APIKey.Reveal(), nil)
			verify("deleted trust's key", deleted.APIKey.Reveal(), nil)
			verify("empty", "", nil)
			verify("garbage", "flip_ak_not-a-key", nil)
			if n := verifier.CachedGrants(); n != len(live) {
				viol.add("the cache holds %d grants, want %d (only hits are cached)", n, len(live))
			}
			verifier.Invalidate(live[0].Trust.ID)
			verify("hit after Invalidate", live[0].APIKey.Reveal(), &live[0].Trust)
			verifier.Purge()
			verify("hit after Purge", live[1].APIKey.Reveal(), &live[1].Trust)

			// 4. Search.
			dump, err := tableText(ctx, b.admin)
			if err != nil {
				t.Fatal(err)
			}
			logs := b.logs.String()
			for _, want := range []string{`"msg":"trust registered"`, `"msg":"trust registration refused"`, `"msg":"main user seeded"`,
				`"level":"DEBUG","msg":"main user seeded"`, `"msg":"main user skipped: not found in the identity provider"`,
				`"msg":"main user skipped: identity provider unavailable"`, `"msg":"verify"`,
				`"msg":"trust keys rotated"`, `"msg":"trust key revoked"`, `"msg":"trust deleted"`, `"msg":"trust keys rotated: refused"`} {
				if !strings.Contains(logs, want) {
					viol.add("the captured log lacks %s: the search would miss what that component logs", want)
				}
			}
			type secret struct{ what, key string }
			var secrets []secret
			for _, k := range b.minter.since(0) {
				secrets = append(secrets, secret{k.kind.String(), k.key})
			}
			for _, k := range presented {
				secrets = append(secrets, secret{"key of no trust, presented", k})
			}
			checkSecrets(ctx, viol, b, "after the full cycle")
			pieces := 0
			for _, s := range secrets {
				body := strings.TrimPrefix(strings.TrimPrefix(s.key, flip.TrustAPIKey.Prefix()), flip.InternalServiceKey.Prefix())
				for i := 0; i+16 <= len(body); i++ {
					piece := body[i : i+16]
					pieces++
					if strings.Contains(dump, piece) {
						viol.add("a piece of one %s (%q…) is stored in the database", s.what, piece[:4])
						break
					}
					if strings.Contains(logs, piece) {
						viol.add("a piece of one %s (%q…) is in the log", s.what, piece[:4])
						break
					}
				}
				if h := flip.HashAPIKey(s.key); strings.Contains(logs, h) {
					viol.add("the hash of one %s is in the log", s.what)
				}
			}
			// Sanity: the search does see the stored hashes, each in its own row.
			for _, res := range live {
				h := flip.HashAPIKey(res.APIKey.Reveal())
				if !strings.Contains(dump, h) {
					viol.add("trust %s: its API-key hash is not in the dump; the search is blind", res.Trust.Name)
				}
				var stored string
				if err := b.admin.QueryRowContext(ctx, `SELECT api_key_hash FROM trust WHERE id = $1`, res.Trust.ID).Scan(&stored); err != nil || stored != h {
					viol.add("trust %s: stored hash %q, %v; want HashAPIKey of its key", res.Trust.Name, stored, err)
				}
			}
			if strings.Contains(dump, flip.HashAPIKey(rolledBack.APIKey.Reveal())) {
				viol.add("the rolled-back trust's hash is stored")
			}
			// What a later life took away is gone: the keys rotated away, the
			// rolled-back rotation's, the revoked and the deleted trust's.
			for _, k := range append(retired, rolledBackRotation.APIKey.Reveal(), revoked.APIKey.Reveal(), deleted.APIKey.Reveal()) {
				if strings.Contains(dump, flip.HashAPIKey(k)) {
					viol.add("the hash of a key that no longer authenticates is still stored")
				}
			}
			var deletedRows int
			var revokedHash sql.NullString
			if err := b.admin.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM trust WHERE id = $1), (SELECT api_key_hash FROM trust WHERE id = $2)`,
				deleted.Trust.ID, revoked.Trust.ID).Scan(&deletedRows, &revokedHash); err != nil || deletedRows != 0 || revokedHash.Valid {
				viol.add("after the later life: %d rows of the deleted trust, the revoked trust's hash %v (%v); want none and NULL", deletedRows, revokedHash, err)
			}
			checkInvariants(ctx, viol, b, "after the full cycle")

			verifications := 0
			for _, n := range counts {
				verifications += n
			}
			var tables int
			if err := b.admin.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			report(t, "secrets", v, "keys", len(secrets), "pieces", pieces, "verifications", verifications,
				"tables", tables, "rows", strings.Count(dump, "\n"), "log_records", strings.Count(logs, "\n"), "log_bytes", len(logs),
				"violations", viol.n)
		})
	}
}

// repeatMinter mints trust API keys that are all api, an existing trust's
// key, and internal-service keys from inner.
type repeatMinter struct {
	api   string
	inner flip.KeyMinter
}

func (m *repeatMinter) MintKey(kind flip.KeyKind) (string, error) {
	if kind == flip.TrustAPIKey {
		return m.api, nil
	}
	return m.inner.MintKey(kind)
}
