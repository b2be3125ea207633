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

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx": every check runs on both drivers
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
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
	version int    // 1: the hub's schema without flip's indexes
	driver  string // database/sql driver name
	format  flip.KeyFormat
}

var variants = []variant{
	{"flip_schema/lib_pq", store.LatestVersion(), "postgres", flip.PrefixedKeys},
	{"flip_schema/pgx", store.LatestVersion(), "pgx", flip.ReferenceKeys},
	{"hub_schema/lib_pq", 1, "postgres", flip.ReferenceKeys},
	{"hub_schema/pgx", 1, "pgx", flip.PrefixedKeys},
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
	ctx    context.Context
	v      variant
	db     *fliptest.DB
	admin  *sql.DB
	minter *recordingMinter
	logs   *syncBuffer
	reg    *flip.Registry
}

// setup takes n connections from the budget (the test's pool plus the
// admin pool) and gives the test its database, whose pool it limits to
// n-adminConns.
func setup(t *testing.T, v variant, n int) *bundle {
	t.Helper()
	takeConns(t, n)
	db := fliptest.NewDB(t, fliptest.AtVersion(v.version), fliptest.WithDriver(v.driver))
	db.SetMaxOpenConns(n - adminConns)
	admin, err := sql.Open("postgres", db.URL)
	if err != nil {
		t.Fatalf("open admin pool: %v", err)
	}
	admin.SetMaxOpenConns(adminConns)
	// Registered after NewDB's cleanup, so it runs before the database is
	// dropped.
	t.Cleanup(func() { admin.Close() })
	timeout := short(3*time.Minute, 50*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	b := &bundle{
		ctx:    ctx,
		v:      v,
		db:     db,
		admin:  admin,
		minter: &recordingMinter{inner: flip.RandomKeyMinter{Format: v.format}},
		logs:   &syncBuffer{},
	}
	logger := slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.reg = flip.NewRegistry(store.New(), flip.WithKeyMinter(b.minter), flip.WithLogger(logger))
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

// invariantsSQL counts, per rule, the rows that break what must hold after
// any mix of registrations, failed ones included.
const invariantsSQL = `SELECT
  (SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id = t.id) <> 1),
  (SELECT count(*) FROM trust t WHERE (SELECT count(*) FROM trusts_audit a WHERE a.trust_id = t.id AND a.action = 'REGISTERED') <> 1),
  (SELECT count(*) FROM trusts_audit a WHERE NOT EXISTS (SELECT 1 FROM trust t WHERE t.id = a.trust_id)),
  (SELECT count(*) FROM fl_kit_slot s WHERE s.assigned_to_trust_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM trust t WHERE t.id = s.assigned_to_trust_id)),
  (SELECT count(*) FROM fl_kit_slot s WHERE (s.assigned_to_trust_id IS NULL) <> (s.assigned_at IS NULL)),
  (SELECT count(*) FROM (SELECT name FROM trust GROUP BY name HAVING count(*) > 1) d),
  (SELECT count(*) FROM (SELECT lower(code) FROM trust GROUP BY lower(code) HAVING count(*) > 1) d),
  (SELECT count(*) FROM trust WHERE api_key_hash IS NULL OR api_key_hash !~ '^[0-9a-f]{64}$')`

var invariantNames = []string{
	"trusts without exactly one kit slot",
	"trusts without exactly one REGISTERED audit row",
	"audit rows of a trust that does not exist",
	"slots assigned to a trust that does not exist",
	"slots half assigned (trust without time or time without trust)",
	"names held by more than one trust",
	"codes held by more than one trust (case-insensitively)",
	"trusts without a 64-hex-digit API key hash",
}

// checkInvariants adds a violation per broken rule and returns how many
// rules broke.
func checkInvariants(ctx context.Context, v *violations, db *sql.DB, where string) int {
	v.t.Helper()
	counts := make([]int, len(invariantNames))
	dest := make([]any, len(counts))
	for i := range counts {
		dest[i] = &counts[i]
	}
	if err := db.QueryRowContext(ctx, invariantsSQL).Scan(dest...); err != nil {
		v.add("%s: check invariants: %v", where, err)
		return 1
	}
	broken := 0
	for i, n := range counts {
		if n != 0 {
			broken++
			v.add("%s: invariant broken: %d %s", where, n, invariantNames[i])
		}
	}
	return broken
}

// tableText returns every row of every table in the public schema as text.
func tableText(ctx context.Context, db *sql.DB) (string, error) {
	sdb := sqlx.NewDb(db, "postgres")
	var tables []string
	if err := sdb.SelectContext(ctx, &tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`); err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	var b strings.Builder
	for _, tbl := range tables {
		var rows []string
		if err := sdb.SelectContext(ctx, &rows, fmt.Sprintf(`SELECT t::text FROM %q t`, tbl)); err != nil {
			return "", fmt.Errorf("read %s: %w", tbl, err)
		}
		for _, r := range rows {
			b.WriteString(tbl)
			b.WriteString(": ")
			b.WriteString(r)
			b.WriteByte('\n')
		}
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
	logs := b.logs.String()
	for _, k := range b.minter.since(0) {
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
		time.Sleep(5 * time.Millisecond)
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
