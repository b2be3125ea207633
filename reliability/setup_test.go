package reliability

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx": every check runs on both drivers
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/store"
)

var soakFlag = flag.Bool("soak", false, "run the long soak instead of the short CI form (or set FLIP_SOAK=1)")

// soak reports whether the long form was asked for. The environment
// variable works with `go test ./...`, where a package flag would not.
func soak() bool { return *soakFlag || os.Getenv("FLIP_SOAK") == "1" }

// short returns s in the CI form and long in the soak.
func short[T any](s, long T) T {
	if soak() {
		return long
	}
	return s
}

// variant is one combination of schema and driver every check runs on.
type variant struct {
	name    string
	version int    // 1: the hub's schema without flip's indexes; 0: flip never migrated it
	driver  string // database/sql driver name, of b.db
	// native makes the callers' transactions pgx's own: a pgx.Tx from a
	// *pgxpool.Pool, calling flip through flippgx, as a hub written on pgx
	// does; b.db is then left unused.
	native bool
	format flip.KeyFormat
	// fixture, when set, is the SQL the database starts from (the hub's
	// own schema and legacy rows), before migrating to version.
	fixture []string
}

// legacy reports whether the database holds the hub's legacy rows, which
// break rules flip keeps for what it writes itself (two slots for a trust,
// duplicate names, placeholder hashes): only the rules that hold for any
// hub data are checked there.
func (v variant) legacy() bool { return len(v.fixture) > 0 }

var variants = []variant{
	{name: "flip_schema/lib_pq", version: store.LatestVersion(), driver: "postgres", format: flip.PrefixedKeys},
	{name: "flip_schema/pgx", version: store.LatestVersion(), driver: "pgx", format: flip.ReferenceKeys},
	{name: "hub_schema/lib_pq", version: 1, driver: "postgres", format: flip.ReferenceKeys},
	{name: "hub_schema/pgx", version: 1, driver: "pgx", format: flip.PrefixedKeys},
	{name: "flip_schema/pgx_native", version: store.LatestVersion(), driver: "pgx", native: true, format: flip.PrefixedKeys},
	{name: "hub_schema/pgx_native", version: 1, driver: "pgx", native: true, format: flip.ReferenceKeys},
}

// connBudget is how many PostgreSQL connections the package's tests may
// hold at once, whatever -parallel says: the server's default
// max_connections is 100, shared with the other test packages that
// `go test ./...` runs beside this one.
const connBudget = 24

var conns = struct {
	sync.Mutex
	cond *sync.Cond
	used int
}{}

func init() { conns.cond = sync.NewCond(&conns.Mutex) }

// takeConns waits until n connections fit in the budget and holds them
// until t ends.
func takeConns(t *testing.T, n int) {
	t.Helper()
	conns.Lock()
	for conns.used+n > connBudget {
		conns.cond.Wait()
	}
	conns.used += n
	conns.Unlock()
	t.Cleanup(func() {
		conns.Lock()
		conns.used -= n
		conns.Unlock()
		conns.cond.Broadcast()
	})
}

// recordingMinter mints real keys and remembers every one, so the tests can
// search the database and the logs for them.
type recordingMinter struct {
	inner flip.KeyMinter
	mu    sync.Mutex
	keys  []mintedKey
}

type mintedKey struct {
	kind flip.KeyKind
	key  string
}

func (m *recordingMinter) MintKey(kind flip.KeyKind) (string, error) {
	key, err := m.inner.MintKey(kind)
	if err == nil {
		m.mu.Lock()
		m.keys = append(m.keys, mintedKey{kind, key})
		m.mu.Unlock()
	}
	return key, err
}

// minted returns the keys minted so far and how many there are; since(n)
// returns those minted after the first n.
func (m *recordingMinter) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

func (m *recordingMinter) since(n int) []mintedKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mintedKey(nil), m.keys[n:]...)
}

// syncBuffer is a bytes.Buffer safe for the registry's concurrent logging.
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

// bundle is what a reliability test needs: its own database, a registry
// whose keys are recorded and whose debug log is captured, and a small
// second pool on the same database for the test's own queries (killing
// backends, holding locks, checking), so those never compete with the
// connections under test.
// adminConns is the size of a test's own second pool.
const adminConns = 3

type bundle struct {
	// ctx is the test's own context (t.Context()), without a deadline of
	// its own: a fault run takes minutes on a loaded machine (two on one
	// with a load of 17 on two cores, three being the deadline it once
	// had), and a deadline is for a hang, which go test's -timeout fails.
	ctx context.Context
	v   variant
	db  *fliptest.DB
	// The callers' pools: db's, and pgx's in a native variant, which the
	// callers then use instead (see callertx.Pools and conn).
	callertx.Pools
	admin  *sql.DB
	minter *recordingMinter
	logs   *syncBuffer
	logger *slog.Logger
	reg    *flip.Registry
}

// registry returns a Registry like b.reg, whose keys are recorded and
// whose log is captured, with opts on top (a slot-name source, say).
func (b *bundle) registry(opts ...flip.Option) *flip.Registry {
	return flip.NewRegistry(store.New(), append([]flip.Option{flip.WithKeyMinter(b.minter), flip.WithLogger(b.logger)}, opts...)...)
}

// setup takes n connections from the budget (the callers' pool plus the
// admin pool) and gives the test its database, whose callers' pool (b.db,
// or b.Pgx in a native variant) it limits to n-adminConns, all of them
// kept open between calls as a hub's pool keeps them.
func setup(t *testing.T, v variant, n int) *bundle {
	t.Helper()
	takeConns(t, n)
	opts := []fliptest.Option{fliptest.AtVersion(v.version), fliptest.WithDriver(v.driver)}
	if v.legacy() {
		opts = append(opts, fliptest.FromSQL(v.fixture...))
	}
	db := fliptest.NewDB(t, opts...)
	db.SetMaxOpenConns(n - adminConns)
	db.SetMaxIdleConns(n - adminConns)
	admin, err := sql.Open("postgres", db.URL)
	if err != nil {
		t.Fatalf("open admin pool: %v", err)
	}
	admin.SetMaxOpenConns(adminConns)
	// Registered after NewDB's cleanup, so it runs before the database is
	// dropped.
	t.Cleanup(func() { admin.Close() })
	ctx := t.Context()
	var pool *pgxpool.Pool
	if v.native {
		cfg, err := pgxpool.ParseConfig(db.URL)
		if err != nil {
			t.Fatalf("pgx pool config: %v", err)
		}
		cfg.MaxConns = int32(n - adminConns)
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			t.Fatalf("open pgx pool: %v", err)
		}
		// Like admin's, before the database is dropped.
		t.Cleanup(pool.Close)
		// Nothing under test may go through db instead: its connections
		// would be outside the budget, and it would test the other driver.
		t.Cleanup(func() {
			if n := db.Stats().OpenConnections; n != 0 {
				t.Errorf("the pgx-native variant opened %d database/sql connections to the test database", n)
			}
		})
	}
	b := &bundle{
		ctx:    ctx,
		v:      v,
		db:     db,
		Pools:  callertx.Pools{SQL: db.DB, Pgx: pool},
		admin:  admin,
		minter: &recordingMinter{inner: flip.RandomKeyMinter{Format: v.format}},
		logs:   &syncBuffer{},
	}
	b.logger = slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.reg = b.registry()
	return b
}

// violations collects what went wrong without stopping at the first, so a
// run reports every broken fault point or round, and counts them for the
// RELIABILITY line.
type violations struct {
	t *testing.T
	n int
}

func (v *violations) add(format string, args ...any) {
	v.t.Helper()
	v.n++
	v.t.Errorf(format, args...)
}

// invariant is one rule that must hold after any mix of registrations,
// rotations, revocations and deletions, failed ones included: sql counts
// the rows that break it. anyData marks the rules that hold for any hub
// data, legacy rows included; keyAudit those that need flip's
// flip_trust_key_audit (migration 3).
type invariant struct {
	name     string
	sql      string
	anyData  bool
	keyAudit bool
}

var invariants = []invariant{
	{name: "trusts without exactly one kit slot",
		sql: `SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id = t.id) <> 1`},
	{name: "trusts without exactly one REGISTERED audit row",
		sql: `SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM trusts_audit a WHERE a.trust_id = t.id AND a.action = 'REGISTERED') <> 1`},
	{name: "audit rows of a trust that does not exist and was never deleted", anyData: true,
		sql: `SELECT count(*) FROM trusts_audit a WHERE NOT EXISTS (SELECT 1 FROM trust t WHERE t.id = a.trust_id)
		      AND NOT EXISTS (SELECT 1 FROM trusts_audit d WHERE d.trust_id = a.trust_id AND d.action = 'DELETED')`},
	{name: "trusts that exist after their DELETED audit row", anyData: true,
		sql: `SELECT count(*) FROM trust t WHERE EXISTS (SELECT 1 FROM trusts_audit d WHERE d.trust_id = t.id AND d.action = 'DELETED')`},
	{name: "slots assigned to a trust that does not exist", anyData: true,
		sql: `SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trust t WHERE t.id = s.assigned_to_trust_id)`},
	{name: "slots half assigned (trust without time or time without trust)", anyData: true,
		sql: `SELECT count(*) FROM fl_kit_slot s WHERE (s.assigned_to_trust_id IS NULL) <> (s.assigned_at IS NULL)`},
	{name: "names held by more than one trust",
		sql: `SELECT count(*) FROM (SELECT name FROM trust GROUP BY name HAVING count(*) > 1) d`},
	{name: "codes held by more than one trust (case-insensitively)",
		sql: `SELECT count(*) FROM (SELECT lower(code) FROM trust GROUP BY lower(code) HAVING count(*) > 1) d`},
	{name: "trusts with an API key hash that is not 64 hex digits",
		sql: `SELECT count(*) FROM trust WHERE api_key_hash !~ '^[0-9a-f]{64}$'`},
	// A NULL hash is a revoked key; where flip_trust_key_audit exists, the
	// trust's last key change must say so. (Below version 3 only the log
	// records a revocation.)
	{name: "trusts without an API key hash whose last key change is not a revocation", keyAudit: true,
		sql: `SELECT count(*) FROM trust t WHERE t.api_key_hash IS NULL
		      AND coalesce((SELECT k.action FROM flip_trust_key_audit k WHERE k.trust_id = t.id ORDER BY k.audit_date DESC LIMIT 1), '') <> 'REVOKED'`},
}

// checkInvariants adds a violation per broken rule of those that apply to
// b's database and returns how many rules broke.
func checkInvariants(ctx context.Context, v *violations, b *bundle, where string) int {
	v.t.Helper()
	var keyAudit bool
	if err := b.admin.QueryRowContext(ctx, `SELECT to_regclass('flip_trust_key_audit') IS NOT NULL`).Scan(&keyAudit); err != nil {
		v.add("%s: check invariants: %v", where, err)
		return 1
	}
	var rules []invariant
	var parts []string
	for _, r := range invariants {
		if (b.v.legacy() && !r.anyData) || (r.keyAudit && !keyAudit) {
			continue
		}
		rules = append(rules, r)
		parts = append(parts, "("+r.sql+")")
	}
	counts := make([]int, len(rules))
	dest := make([]any, len(counts))
	for i := range counts {
		dest[i] = &counts[i]
	}
	if err := b.admin.QueryRowContext(ctx, "SELECT "+strings.Join(parts, ",\n")).Scan(dest...); err != nil {
		v.add("%s: check invariants: %v", where, err)
		return 1
	}
	broken := 0
	for i, n := range counts {
		if n != 0 {
			broken++
			v.add("%s: invariant broken: %d %s", where, n, rules[i].name)
		}
	}
	return broken
}

// tableText returns every row of every table in the public schema as
// text, a line each, prefixed with its table: every table in one
// statement, which the fault harness sends twice per fault point.
func tableText(ctx context.Context, db *sql.DB) (string, error) {
	sdb := sqlx.NewDb(db, "postgres")
	var tables []string
	if err := sdb.SelectContext(ctx, &tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`); err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	if len(tables) == 0 {
		return "", nil
	}
	parts := make([]string, len(tables))
	for i, tbl := range tables {
		parts[i] = fmt.Sprintf(`SELECT %s || ': ' || t::text FROM %q t`, pq.QuoteLiteral(tbl), tbl)
	}
	var rows []string
	if err := sdb.SelectContext(ctx, &rows, strings.Join(parts, "\nUNION ALL\n")); err != nil {
		return "", fmt.Errorf("read the tables: %w", err)
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// checkSecrets searches every table and the registry's log for every key
// the minter ever produced: no plaintext key may be stored or logged, and
// an internal-service key may not be stored even hashed.
func checkSecrets(ctx context.Context, v *violations, b *bundle, where string) {
	v.t.Helper()
	dump, err := tableText(ctx, b.admin)
	if err != nil {
		v.add("%s: dump tables: %v", where, err)
		return
	}
	checkSecretsIn(v, b, dump, where)
}

// checkSecretsIn is checkSecrets on a dump the caller already has.
func checkSecretsIn(v *violations, b *bundle, dump, where string) {
	v.t.Helper()
	checkKeys(v, b.minter.since(0), dump, b.logs.String(), where)
}

// checkKeys searches dump and logs for keys.
func checkKeys(v *violations, keys []mintedKey, dump, logs, where string) {
	v.t.Helper()
	for _, k := range keys {
		if strings.Contains(dump, k.key) {
			v.add("%s: plaintext %s stored in the database", where, k.kind)
		}
		if strings.Contains(logs, k.key) {
			v.add("%s: plaintext %s in the registry's log", where, k.kind)
		}
		if k.kind == flip.InternalServiceKey && strings.Contains(dump, flip.HashAPIKey(k.key)) {
			v.add("%s: hash of an internal-service key stored", where)
		}
	}
}

// backendGone waits until the server process pid has exited, so the next
// step never races a dying backend that still holds locks. It gives up
// after a minute, which only a hung server reaches.
func backendGone(ctx context.Context, admin *sql.DB, pid int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backend %d still alive after a minute", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// counts formats outcome counts as "a:1,b:2", sorted, without spaces, for
// a RELIABILITY line.
func counts(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// report logs the line scripts/reliability summarises: a fixed prefix, the
// test, then key=value pairs.
func report(t *testing.T, what string, v variant, kv ...any) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "RELIABILITY %s variant=%s", what, v.name)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	fmt.Fprintf(&b, " mode=%s", short("short", "soak"))
	t.Log(b.String())
}
