package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

func TestMigrations_AreNumberedWithoutGaps(t *testing.T) {
	t.Parallel()
	ms, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 || store.LatestVersion() != len(ms) {
		t.Fatalf("%d migrations, latest %d", len(ms), store.LatestVersion())
	}
	for i, m := range ms {
		if m.Version != i+1 || m.Up == "" || m.Down == "" {
			t.Errorf("migration %d: %+v", i, m.Version)
		}
	}
}

// migHubDB returns a database holding the hub's own schema (not flip's
// migration 1), with the legacy rows when legacy is set, migrated by flip
// up to version (0: flip never touched it).
func migHubDB(t *testing.T, legacy bool, version int) *fliptest.DB {
	t.Helper()
	sqls := []string{hubfixture.Schema}
	if legacy {
		sqls = append(sqls, hubfixture.Legacy)
	}
	return fliptest.NewDB(t, fliptest.FromSQL(sqls...), fliptest.AtVersion(version))
}

// migCatalogSQL lists, one line each, what the catalog says about every object
// in the public schema that is not flip's (named flip_…): relations,
// indexes, constraints, types, enum labels, columns and triggers. Nothing
// in it depends on OIDs, so two databases built alike list the same. With
// $1 set (comma-separated names) only those tables, their indexes,
// constraints, columns and triggers, and those types are listed.
const migCatalogSQL = `
WITH keep AS (SELECT string_to_array($1, ',') AS names)
SELECT line FROM (
	SELECT format('class %s kind=%s persistence=%s owner=%s rowtype=%s acl=%s options=%s triggers=%s rls=%s',
		c.relname, c.relkind, c.relpersistence, c.relowner::regrole, c.reltype::regtype,
		coalesce(c.relacl::text, '-'), coalesce(c.reloptions::text, '-'), c.relhastriggers, c.relrowsecurity) AS line,
		coalesce(i.indrelid::regclass::text, c.relname) AS tbl
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_index i ON i.indexrelid = c.oid
	WHERE n.nspname = 'public' AND c.relname NOT LIKE 'flip\_%'
	UNION ALL
	SELECT format('index %s on %s unique=%s primary=%s valid=%s ready=%s %s',
		c.relname, i.indrelid::regclass, i.indisunique, i.indisprimary, i.indisvalid, i.indisready, pg_get_indexdef(i.indexrelid)),
		i.indrelid::regclass::text
	FROM pg_index i
	JOIN pg_class c ON c.oid = i.indexrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'public' AND c.relname NOT LIKE 'flip\_%'
	UNION ALL
	SELECT format('constraint %s.%s type=%s deferrable=%s validated=%s %s',
		con.conrelid::regclass, con.conname, con.contype, con.condeferrable, con.convalidated, pg_get_constraintdef(con.oid)),
		con.conrelid::regclass::text
	FROM pg_constraint con
	JOIN pg_namespace n ON n.oid = con.connamespace
	WHERE n.nspname = 'public' AND con.conname NOT LIKE 'flip\_%'
	UNION ALL
	SELECT format('type %s type=%s category=%s', t.typname, t.typtype, t.typcategory), t.typname
	FROM pg_type t
	JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE n.nspname = 'public' AND t.typname NOT LIKE 'flip\_%' AND t.typname NOT LIKE '\_flip\_%'
	UNION ALL
	SELECT format('enum %s %s %s', t.typname, e.enumsortorder, e.enumlabel), t.typname
	FROM pg_enum e
	JOIN pg_type t ON t.oid = e.enumtypid
	JOIN pg_namespace n ON n.oid = t.typnamespace
	WHERE n.nspname = 'public'
	UNION ALL
	SELECT format('column %s.%s %s %s notnull=%s dropped=%s default=%s collation=%s identity=%s generated=%s',
		c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attisdropped,
		coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), a.attcollation, a.attidentity, a.attgenerated),
		c.relname
	FROM pg_attribute a
	JOIN pg_class c ON c.oid = a.attrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE 'flip\_%' AND a.attnum > 0
	UNION ALL
	SELECT format('trigger %s %s function=%s type=%s enabled=%s internal=%s',
		tg.tgrelid::regclass, regexp_replace(tg.tgname, '[0-9]+', 'N', 'g'), tg.tgfoid::regproc, tg.tgtype, tg.tgenabled, tg.tgisinternal),
		tg.tgrelid::regclass::text
	FROM pg_trigger tg
	JOIN pg_class c ON c.oid = tg.tgrelid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'public' AND c.relname NOT LIKE 'flip\_%'
) lines, keep
WHERE $1 = '' OR tbl = ANY (keep.names)
ORDER BY line`

// migCatalog returns migCatalogSQL's lines for tables (all when none given).
func migCatalog(t *testing.T, ctx context.Context, db *fliptest.DB, tables ...string) []string {
	t.Helper()
	var lines []string
	if err := sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &lines, migCatalogSQL, strings.Join(tables, ",")); err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return lines
}

// migHubData returns every row of every table of the public schema that is
// not flip's, as text, table by table.
func migHubData(t *testing.T, ctx context.Context, db *fliptest.DB) map[string]string {
	t.Helper()
	var tables []string
	must(t, sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'flip\_%'`))
	data := map[string]string{}
	for _, tbl := range tables {
		var rows string
		must(t, db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) || ': ' || coalesce(string_agg(r::text, E'\n' ORDER BY r::text), '') FROM %q r`, tbl)).Scan(&rows))
		data[tbl] = rows
	}
	return data
}

// migHubState is everything of the hub's that flip must leave alone.
type migHubState struct {
	catalog []string
	data    map[string]string
}

func migSnapshotHub(t *testing.T, ctx context.Context, db *fliptest.DB) migHubState {
	t.Helper()
	return migHubState{catalog: migCatalog(t, ctx, db), data: migHubData(t, ctx, db)}
}

// diff reports how b differs from a, or "" when it does not.
func (a migHubState) diff(b migHubState) string {
	var out []string
	for _, l := range a.catalog {
		if !slices.Contains(b.catalog, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b.catalog {
		if !slices.Contains(a.catalog, l) {
			out = append(out, "+ "+l)
		}
	}
	for _, tbl := range slices.Sorted(maps.Keys(a.data)) {
		if a.data[tbl] != b.data[tbl] {
			out = append(out, fmt.Sprintf("rows of %s changed:\n%s\n->\n%s", tbl, a.data[tbl], b.data[tbl]))
		}
	}
	for tbl := range b.data {
		if _, ok := a.data[tbl]; !ok {
			out = append(out, "+ table "+tbl)
		}
	}
	return strings.Join(out, "\n")
}

// migFlipIndexes maps each of flip's indexes on the hub's tables (not on
// flip's own) to whether it is unique.
func migFlipIndexes(t *testing.T, ctx context.Context, db *fliptest.DB) map[string]bool {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT c.relname, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid
		WHERE c.relname LIKE 'flip\_%' AND c.relkind = 'i' AND t.relname NOT LIKE 'flip\_%'`)
	must(t, err)
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var name string
		var unique bool
		must(t, rows.Scan(&name, &unique))
		got[name] = unique
	}
	must(t, rows.Err())
	return got
}

// migAllUnique is flip's index set where no legacy row is in the way.
var migAllUnique = map[string]bool{
	"flip_fl_kit_slot_free_idx":     false,
	"flip_fl_kit_slot_assigned_key": true,
	"flip_trust_api_key_hash_key":   true,
	"flip_trust_folded_name_key":    true,
	"flip_trust_code_key":           true,
}

// migLegacyIndexes is flip's index set on the hub fixture with its legacy
// rows: a trust with two slots, two ” hashes and three trusts of one
// canonical name force plain indexes; the codes (NULLs, GS\u200bTT) allow
// a unique one.
var migLegacyIndexes = map[string]bool{
	"flip_fl_kit_slot_free_idx":     false,
	"flip_fl_kit_slot_assigned_idx": false,
	"flip_trust_api_key_hash_idx":   false,
	"flip_trust_folded_name_idx":    false,
	"flip_trust_code_key":           true,
}

// migLog is a slog.Handler keeping every record, with an optional
// hook called on each (outside its lock).
type migLog struct {
	mu      sync.Mutex
	records []string
	hook    func(msg string)
}

func (r *migLog) Enabled(context.Context, slog.Level) bool { return true }
func (r *migLog) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *migLog) WithGroup(string) slog.Handler            { return r }
func (r *migLog) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, line)
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(rec.Message)
	}
	return nil
}

// lines returns the records whose line contains every one of parts.
func (r *migLog) lines(parts ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.records {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			out = append(out, l)
		}
	}
	return out
}

func (r *migLog) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.records, "\n")
}

func TestMigrate_ConcurrentRunsOnAFreshDatabaseAgree(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	db.SetMaxOpenConns(16)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = store.Migrate(ctx, db.DB) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	v, err := store.AppliedVersion(ctx, db)
	if err != nil || v != store.LatestVersion() {
		t.Errorf("applied version %d, %v", v, err)
	}
	var rows int
	must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM `+store.MigrationTable).Scan(&rows))
	if rows != store.LatestVersion() {
		t.Errorf("%d rows in %s, want one per version", rows, store.MigrationTable)
	}
	// Idempotent: running again changes nothing.
	must(t, store.Migrate(ctx, db.DB))
}

// Finding 1: on a fresh database, migration 1 creates the hub's tables
// under exactly the hub's names (uq_user_role_per_trust, not
// uq_user_role_trust): the catalog of those tables matches the hub
// fixture's, written independently from the hub's facts.
func TestMigrate_FreshDatabaseGetsExactlyTheHubsNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fresh := fliptest.NewDB(t, fliptest.AtVersion(0))
	must(t, store.Migrate(ctx, fresh.DB))
	hub := migHubDB(t, false, 0)
	tables := []string{"trust", "fl_kit_slot", "trusts_audit", "roles", "user_profile", "user_role", "trustauditaction"}
	got, want := migCatalog(t, ctx, fresh, tables...), migCatalog(t, ctx, hub, tables...)
	if d := (migHubState{catalog: want}).diff(migHubState{catalog: got}); d != "" {
		t.Errorf("flip's migration 1 differs from the hub's schema (- hub only, + flip only):\n%s", d)
	}
	var userRoleIndexes []string
	must(t, sqlx.NewDb(fresh.DB, "postgres").SelectContext(ctx, &userRoleIndexes, `SELECT indexname FROM pg_indexes WHERE tablename = 'user_role' ORDER BY 1`))
	if w := []string{"ix_user_role_trust_id", "ix_user_role_user_id", "uq_user_role_global", "uq_user_role_per_trust", "user_role_pkey"}; !slices.Equal(userRoleIndexes, w) {
		t.Errorf("user_role indexes = %v, want %v", userRoleIndexes, w)
	}
	if got := migFlipIndexes(t, ctx, fresh); !maps.Equal(got, migAllUnique) {
		t.Errorf("flip's indexes = %v, want %v", got, migAllUnique)
	}
}

// Findings 1 and 2: on the hub's own database with its legacy rows,
// Migrate succeeds, adds only flip_… objects (plain indexes where the rows
// forbid unique ones, each fallback logged with its reason), changes
// nothing of the hub's, is a no-op when run again, and migrating down to 0
// removes flip's indexes and leaves every hub table and row.
func TestMigrate_HubDatabaseWithLegacyRowsGetsOnlyFlipsObjects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, true, 0)
	before := migSnapshotHub(t, ctx, db)

	log := &migLog{}
	start := time.Now()
	must(t, store.Migrate(ctx, db.DB, store.WithLogger(slog.New(log))))
	t.Logf("migrating the hub fixture with legacy rows took %v", time.Since(start))
	if d := before.diff(migSnapshotHub(t, ctx, db)); d != "" {
		t.Errorf("Migrate changed the hub's objects or rows:\n%s", d)
	}
	if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, migLegacyIndexes) {
		t.Errorf("flip's indexes = %v, want %v", got, migLegacyIndexes)
	}
	for _, want := range []struct{ plain, unique, reason string }{
		{"flip_fl_kit_slot_assigned_idx", "flip_fl_kit_slot_assigned_key", "2 kit slots held by 1 trust holding more than one"},
		{"flip_trust_api_key_hash_idx", "flip_trust_api_key_hash_key", "2 trusts share 1 api_key_hash value"},
		{"flip_trust_folded_name_idx", "flip_trust_folded_name_key", "3 trusts share 1 canonical name in any letter case"},
	} {
		if got := log.lines("WARN", "index="+want.plain, "instead_of="+want.unique, want.reason); len(got) != 1 {
			t.Errorf("want one warning for %s (%s); log:\n%s", want.plain, want.reason, log.all())
		}
	}
	if got := log.lines("without uniqueness"); len(got) != 3 {
		t.Errorf("%d fallback warnings, want 3:\n%s", len(got), log.all())
	}
	if got := log.lines("up to date"); len(got) != 0 {
		t.Errorf("a run that migrated logged %q", got)
	}
	if got := log.lines("migration applied"); len(got) != store.LatestVersion() {
		t.Errorf("want a line per version applied:\n%s", log.all())
	}

	// The unique code index is on the canonical form: the legacy
	// GS\u200bTT blocks a new GSTT.
	_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, code, created_at) VALUES (gen_random_uuid(), 'New', 'gstt', now())`)
	if got := migSQLState(err); got != "23505" || !strings.Contains(err.Error(), "flip_trust_code_key") {
		t.Errorf("inserting code gstt beside the legacy GS\\u200bTT: %v, want a unique violation of flip_trust_code_key", err)
	}

	// Running again is a no-op, flip's objects included, and says so.
	migrated := migCatalogAll(t, ctx, db)
	again := &migLog{}
	must(t, store.Migrate(ctx, db.DB, store.WithLogger(slog.New(again))))
	if got := migCatalogAll(t, ctx, db); !slices.Equal(got, migrated) {
		t.Errorf("a second Migrate changed the catalog")
	}
	if got := again.lines("flip schema up to date", fmt.Sprintf("version=%d", store.LatestVersion())); len(got) != 1 {
		t.Errorf("second run logged:\n%s", again.all())
	}

	must(t, store.Migrate(ctx, db.DB, store.ToVersion(0)))
	if d := before.diff(migSnapshotHub(t, ctx, db)); d != "" {
		t.Errorf("MigrateDownTo(0) changed the hub's objects or rows:\n%s", d)
	}
	if got := migFlipIndexes(t, ctx, db); len(got) != 0 {
		t.Errorf("flip's indexes left after migrating down to 0: %v", got)
	}
	if v, err := store.AppliedVersion(ctx, db); err != nil || v != 0 {
		t.Errorf("applied version after down = %d, %v", v, err)
	}
	must(t, store.Migrate(ctx, db.DB))
	if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, migLegacyIndexes) {
		t.Errorf("after down and up again, flip's indexes = %v", got)
	}
}

// migCatalogAll lists every object of the public schema, flip's included.
func migCatalogAll(t *testing.T, ctx context.Context, db *fliptest.DB) []string {
	t.Helper()
	var lines []string
	must(t, sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &lines, `SELECT format('%s %s %s', c.relname, c.relkind, pg_get_indexdef(i.indexrelid))
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_index i ON i.indexrelid = c.oid
		WHERE n.nspname = 'public' ORDER BY 1`))
	var rows []string
	must(t, sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &rows, `SELECT version || ' ' || name FROM `+store.MigrationTable+` ORDER BY version`))
	return append(lines, rows...)
}

func migSQLState(err error) string {
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		return coded.SQLState()
	}
	return ""
}

// Finding 2, case by case: each unique index falls back to a plain one for
// exactly the rows that forbid it, comparing canonical forms; rows that
// only look alike to a machine (NULL codes) do not.
func TestMigrate_EachUniqueIndexFallsBackOnlyForItsOwnDuplicates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, rows string
		plain      string // the index that must come out plain; "" for none
	}{
		{"no rows", ``, ""},
		{"NULL codes and hashes", `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), 'A', now()), (gen_random_uuid(), 'B', now())`, ""},
		{"NFD and NFC names", `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), U&'Cafe\0301 Hospital', now()), (gen_random_uuid(), U&'Caf\00E9 Hospital', now())`, "flip_trust_folded_name_idx"},
		{"names with a soft hyphen and extra spaces", `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), 'North  Trust ', now()), (gen_random_uuid(), U&'North \00ADTrust', now())`, "flip_trust_folded_name_idx"},
		{"names by letter case", `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), 'Newcomer Trust', now()), (gen_random_uuid(), 'newcomer  trust', now())`, "flip_trust_folded_name_idx"},
		{"names by full case folding", `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), U&'Stra\00DFe Clinic', now()), (gen_random_uuid(), 'STRASSE CLINIC', now())`, "flip_trust_folded_name_idx"},
		{"names alike but for accents", `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), 'Cafe Hospital', now()), (gen_random_uuid(), U&'Caf\00C9 Hospital', now())`, ""},
		{"codes by case and zero-width space", `INSERT INTO trust (id, name, code, created_at) VALUES (gen_random_uuid(), 'A', 'GSTT', now()), (gen_random_uuid(), 'B', U&'gs\200Btt', now())`, "flip_trust_code_idx"},
		{"equal api_key_hash", `INSERT INTO trust (id, name, api_key_hash, created_at) VALUES (gen_random_uuid(), 'A', '', now()), (gen_random_uuid(), 'B', '', now())`, "flip_trust_api_key_hash_idx"},
		{"a trust with two slots", `INSERT INTO trust (id, name, created_at) VALUES ('00000000-0000-4000-8000-000000000001', 'A', now());
			INSERT INTO fl_kit_slot (slot_name, slot_number, assigned_to_trust_id, assigned_at) VALUES
				('S_1', 1, '00000000-0000-4000-8000-000000000001', now()), ('S_2', 2, '00000000-0000-4000-8000-000000000001', now())`, "flip_fl_kit_slot_assigned_idx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := migHubDB(t, false, 1)
			if c.rows != "" {
				_, err := db.ExecContext(ctx, c.rows)
				must(t, err)
			}
			log := &migLog{}
			must(t, store.Migrate(ctx, db.DB, store.WithLogger(slog.New(log))))
			want := maps.Clone(migAllUnique)
			if c.plain != "" {
				key := strings.TrimSuffix(c.plain, "_idx") + "_key"
				delete(want, key)
				want[c.plain] = false
				if got := log.lines("WARN", "index="+c.plain, "instead_of="+key); len(got) != 1 {
					t.Errorf("fallback not logged:\n%s", log.all())
				}
			}
			if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, want) {
				t.Errorf("flip's indexes = %v, want %v", got, want)
			}
			if got := log.lines("without uniqueness"); c.plain == "" && len(got) != 0 {
				t.Errorf("unexpected fallback warnings: %v", got)
			}
		})
	}
}

// Finding 2's race, made deterministic: a writer has inserted a duplicate
// name and not committed when migration 002 starts. 002 waits for the
// writer (its SHARE lock), then checks and sees the duplicate, so it
// builds a plain index; checking first without the lock, as before, it
// would have missed the row and failed building the unique index.
func TestMigrate_DuplicateWrittenWhileMigratingGetsAPlainIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, false, 1)
	_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), 'Race', now())`)
	must(t, err)
	writer, err := db.BeginTx(ctx, nil)
	must(t, err)
	defer writer.Rollback() //nolint:errcheck // no-op after Commit
	_, err = writer.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), 'Race', now())`)
	must(t, err)

	done := make(chan error, 1)
	// A lock timeout no try reaches: only the writer's commit ends the
	// wait, however long a loaded machine takes to see the wait and
	// commit (with the default, five tries of 500 ms, the test would time
	// that).
	go func() { done <- store.Migrate(ctx, db.DB, store.WithLockTimeout(time.Hour)) }()
	migWaitForLockWait(t, ctx, db, done)
	must(t, writer.Commit())
	must(t, <-done)
	got := migFlipIndexes(t, ctx, db)
	if got["flip_trust_folded_name_key"] || len(got) != len(migAllUnique) {
		t.Errorf("flip's indexes = %v, want flip_trust_folded_name_idx and no flip_trust_folded_name_key", got)
	}
	if _, ok := got["flip_trust_folded_name_idx"]; !ok {
		t.Errorf("flip's indexes = %v, want flip_trust_folded_name_idx", got)
	}
}

// migWaitForLockWait returns once some backend waits for a lock on trust,
// failing the test if the migration ends first.
func migWaitForLockWait(t *testing.T, ctx context.Context, db *fliptest.DB, done <-chan error) {
	t.Helper()
	for {
		var waiting int
		must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'trust'::regclass`).Scan(&waiting))
		if waiting > 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("migration ended before waiting for the writer: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Finding 2's race, left to chance: a writer inserts a duplicate name
// while migration 002 runs. Whoever wins, the database never ends with a
// unique name index over duplicate names, and a writer that loses gets a
// unique violation.
func TestMigrate_ConcurrentDuplicateWriterNeverLeavesAUniqueIndexOverDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, false, 1)
	db.SetMaxOpenConns(4)
	outcomes := map[string]int{}
	for i := range 15 {
		name := fmt.Sprintf("Race %d", i)
		_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), $1, now())`, name)
		must(t, err)
		var wg sync.WaitGroup
		var migErr, writeErr error
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			migErr = store.Migrate(ctx, db.DB)
		})
		wg.Go(func() {
			<-start
			// Staggered, so that some rounds write before the migration
			// takes its lock and some while it holds it; only the
			// invariant is asserted, whichever way each round goes.
			time.Sleep(time.Duration(i) * 100 * time.Microsecond)
			_, writeErr = db.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES (gen_random_uuid(), $1, now())`, name)
		})
		close(start)
		wg.Wait()
		must(t, migErr)
		var dups int
		must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM trust WHERE name = $1`, name).Scan(&dups))
		unique := migFlipIndexes(t, ctx, db)["flip_trust_folded_name_key"]
		switch {
		case unique && dups > 1:
			t.Fatalf("round %d: a unique name index over %d trusts named %q", i, dups, name)
		case writeErr != nil && migSQLState(writeErr) != "23505":
			t.Fatalf("round %d: writer failed with %v, want success or a unique violation", i, writeErr)
		case writeErr != nil:
			outcomes["writer refused by the unique index"]++
		case unique:
			t.Fatalf("round %d: the writer succeeded and the index is unique, with %d rows", i, dups)
		default:
			outcomes["plain index over the duplicate"]++
		}
		must(t, store.Migrate(ctx, db.DB, store.ToVersion(1)))
		_, err = db.ExecContext(ctx, `DELETE FROM trust`)
		must(t, err)
	}
	t.Logf("outcomes: %v", outcomes)
}

// A lock held on trust for longer than the migration is willing to wait:
// each try waits lock_timeout, the version is retried a few times, then
// Migrate fails with an error saying why and changes nothing; once the
// lock is gone, Migrate succeeds. The outcome shows the wait is bounded:
// Migrate returns while the lock is still held.
func TestMigrate_HeldLockFailsClearlyAfterBoundedTries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, false, 1)
	holder := lockTrust(t, ctx, db, "ROW EXCLUSIVE") // as a writer mid-transaction would

	log := &migLog{}
	err := store.Migrate(ctx, db.DB, store.WithLockTimeout(20*time.Millisecond), store.WithLogger(slog.New(log)))
	if err == nil {
		t.Fatal("Migrate succeeded while trust was locked")
	}
	if migSQLState(err) != "55P03" || !strings.Contains(err.Error(), "held a lock it needs through 5 tries of lock_timeout 20ms") ||
		!strings.Contains(err.Error(), "002_flip_indexes") {
		t.Errorf("err = %v, want a lock_not_available error naming the version and the tries", err)
	}
	if got := log.lines("WARN", "waiting for a table lock"); len(got) != 4 {
		t.Errorf("%d retries logged, want 4:\n%s", len(got), log.all())
	}
	if v, err := store.AppliedVersion(ctx, db); err != nil || v != 1 {
		t.Errorf("applied version = %d, %v; want 1 (002 not applied)", v, err)
	}
	if got := migFlipIndexes(t, ctx, db); len(got) != 0 {
		t.Errorf("flip indexes after the failed migration: %v", got)
	}

	must(t, holder.Rollback())
	must(t, store.Migrate(ctx, db.DB))
	if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, migAllUnique) {
		t.Errorf("flip's indexes = %v", got)
	}
}

// A lock released while the migration is retrying: the next try gets it
// and the migration succeeds.
func TestMigrate_HeldLockReleasedBetweenTriesThenSucceeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, false, 1)
	holder := lockTrust(t, ctx, db, "ROW EXCLUSIVE") // as a writer mid-transaction would

	var once sync.Once
	log := &migLog{}
	log.hook = func(msg string) {
		if strings.Contains(msg, "waiting for a table lock") {
			once.Do(func() { _ = holder.Rollback() }) // the first try timed out; free the table before the next
		}
	}
	must(t, store.Migrate(ctx, db.DB, store.WithLockTimeout(20*time.Millisecond), store.WithLogger(slog.New(log))))
	if got := log.lines("WARN", "waiting for a table lock"); len(got) != 1 {
		t.Errorf("%d retries logged, want 1:\n%s", len(got), log.all())
	}
	if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, migAllUnique) {
		t.Errorf("flip's indexes = %v", got)
	}
}

func TestMigrate_ConcurrentRunsOnTheHubFixtureAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, true, 0)
	db.SetMaxOpenConns(16)
	before := migSnapshotHub(t, ctx, db)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = store.Migrate(ctx, db.DB) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	var rows int
	must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM `+store.MigrationTable).Scan(&rows))
	if rows != store.LatestVersion() {
		t.Errorf("%d rows in %s, want one per version", rows, store.MigrationTable)
	}
	if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, migLegacyIndexes) {
		t.Errorf("flip's indexes = %v, want %v", got, migLegacyIndexes)
	}
	if d := before.diff(migSnapshotHub(t, ctx, db)); d != "" {
		t.Errorf("concurrent migrations changed the hub's objects or rows:\n%s", d)
	}
}

// Finding 1: migrating down never drops a table flip did not create; on
// a database flip created from nothing it keeps them too (flip cannot
// tell), and only flip's own indexes go.
func TestMigrate_DownAndUpAgain(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	ctx := context.Background()
	fliptest.AddSlots(t, db, "Trust_001", "Trust_002")
	fliptest.RegisterTrust(t, db, flipParams("Before", "BEF"))
	must(t, store.Migrate(ctx, db.DB, store.ToVersion(0)))
	var tables []string
	must(t, sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> $1 ORDER BY 1`, store.MigrationTable))
	if want := []string{"fl_kit_slot", "roles", "trust", "trusts_audit", "user_profile", "user_role"}; !slices.Equal(tables, want) {
		t.Errorf("tables after migrating down to 0: %v, want %v", tables, want)
	}
	if got := migFlipIndexes(t, ctx, db); len(got) != 0 {
		t.Errorf("flip's indexes left: %v", got)
	}
	if _, err := store.TrustByName(ctx, db, "Before"); err != nil {
		t.Errorf("the registered trust is gone: %v", err)
	}
	must(t, store.Migrate(ctx, db.DB))
	fliptest.RegisterTrust(t, db, flipParams("After", "AFT"))
}

// Migrating below version 3 drops flip_trust_key_audit only while it is
// empty: an audit trail with rows survives, and migrating up keeps it.
func TestMigrate_DownKeepsAKeyAuditTrailWithRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exists := func(db *fliptest.DB) bool {
		var ok bool
		must(t, db.QueryRowContext(ctx, `SELECT to_regclass('flip_trust_key_audit') IS NOT NULL`).Scan(&ok))
		return ok
	}
	empty := fliptest.NewDB(t)
	must(t, store.Migrate(ctx, empty.DB, store.ToVersion(2)))
	if exists(empty) {
		t.Error("an empty flip_trust_key_audit survived migrating down to 2")
	}

	kept := fliptest.NewDB(t)
	fliptest.AddSlots(t, kept, "Trust_001")
	res := fliptest.RegisterTrust(t, kept, flipParams("Audited", "AUD"))
	tx, err := kept.BeginTx(ctx, nil)
	must(t, err)
	_, err = flip.NewRegistry(store.New()).RevokeKey(ctx, tx, flip.TrustChange{TrustID: res.Trust.ID})
	must(t, err)
	must(t, tx.Commit())
	must(t, store.Migrate(ctx, kept.DB, store.ToVersion(2)))
	if !exists(kept) {
		t.Fatal("migrating down dropped an audit trail with rows")
	}
	must(t, store.Migrate(ctx, kept.DB))
	var n int
	must(t, kept.QueryRowContext(ctx, `SELECT count(*) FROM flip_trust_key_audit WHERE action = 'REVOKED'`).Scan(&n))
	if n != 1 {
		t.Errorf("%d REVOKED rows after migrating down and up, want 1", n)
	}
}

// A hub database that already holds duplicate names, registered before
// flip closed the race: flip's migrations apply, with plain indexes, and
// registration keeps refusing duplicates through the advisory locks.
func TestMigrate_AdoptsAHubDatabaseWithDuplicates(t *testing.T) {
	t.Parallel()
	db := migHubDB(t, false, 0)
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, code, created_at) VALUES
		(gen_random_uuid(), 'Twin', 'T1', now()), (gen_random_uuid(), 'Twin', 't1', now())`)
	must(t, err)
	must(t, store.Migrate(ctx, db.DB))
	got := migFlipIndexes(t, ctx, db)
	if _, ok := got["flip_trust_folded_name_idx"]; !ok {
		t.Errorf("flip's indexes: %v, want flip_trust_folded_name_idx", got)
	}
	if _, ok := got["flip_trust_code_idx"]; !ok {
		t.Errorf("flip's indexes: %v, want flip_trust_code_idx", got)
	}
	fliptest.AddSlots(t, db, "Trust_001")
	if _, err := flipRegistry().RegisterTrustDB(ctx, db, flipParams("Twin", "NEW")); err == nil {
		t.Error("registered a third Twin")
	}
}

// The migrations run through pgx's database/sql driver as through lib/pq,
// the comment-only down step of version 1 included.
func TestMigrate_UpAndDownThroughPgx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, true, 0)
	before := migSnapshotHub(t, ctx, db)
	pgx, err := sql.Open("pgx", db.URL)
	must(t, err)
	defer pgx.Close()
	must(t, store.Migrate(ctx, pgx))
	if got := migFlipIndexes(t, ctx, db); !maps.Equal(got, migLegacyIndexes) {
		t.Errorf("flip's indexes = %v, want %v", got, migLegacyIndexes)
	}
	must(t, store.Migrate(ctx, pgx, store.ToVersion(0)))
	if d := before.diff(migSnapshotHub(t, ctx, db)); d != "" {
		t.Errorf("up and down through pgx changed the hub's objects or rows:\n%s", d)
	}
	if got := migFlipIndexes(t, ctx, db); len(got) != 0 {
		t.Errorf("flip's indexes left: %v", got)
	}
}

// After migrating, a hub with legacy rows keeps registering: a new trust
// gets the lowest free slot, and an existing legacy name is refused.
func TestMigrate_HubWithLegacyRowsKeepsRegistering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := migHubDB(t, true, store.LatestVersion())
	res := fliptest.RegisterTrust(t, db, flipParams("New Trust", "NEW"))
	if res.KitSlot.Name != "Legacy_005" {
		t.Errorf("claimed %s, want Legacy_005 (the lowest free slot)", res.KitSlot.Name)
	}
	if _, err := flipRegistry().RegisterTrustDB(ctx, db, flipParams("Twin Hospital", "TW9")); err == nil {
		t.Error("registered another Twin Hospital")
	}
}

// A database in another encoding is refused before anything is written,
// with an error that says why, instead of failing half-way through 002.
func TestMigrate_RefusesANonUTF8DatabaseUntouched(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := fliptest.RequireServer(t)
	name := "flip_test_ascii_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	_, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'`)
	must(t, err)
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	u, err := url.Parse(fliptest.ServerURL())
	must(t, err)
	u.Path = "/" + name
	db, err := sql.Open("postgres", u.String())
	must(t, err)
	defer db.Close()
	err = store.Migrate(ctx, db)
	if err == nil || !strings.Contains(err.Error(), "SQL_ASCII") || !strings.Contains(err.Error(), "UTF8") {
		t.Fatalf("Migrate on SQL_ASCII = %v, want an error naming the encoding", err)
	}
	var tables int
	must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables))
	if tables != 0 {
		t.Errorf("%d tables created in a database Migrate refused", tables)
	}
}
