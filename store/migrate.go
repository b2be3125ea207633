package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/londonaicentre/flip/internal/pgsql"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationsFS returns the embedded migration files
// (NNN_name.up.sql / NNN_name.down.sql) for a service that applies
// migrations with its own tool instead of Migrate.
func MigrationsFS() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// migration is one numbered schema change.
type migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// migrationTable records which versions Migrate applied to a database.
const migrationTable = "flip_schema_migrations"

// migrationLockKey is the session advisory lock that makes concurrent
// Migrate calls queue instead of racing ("flip.migrate" as 8 bytes).
const migrationLockKey int64 = 0x666c69702e6d6967

var migrationFile = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.(up|down)\.sql$`)

// migrations returns the embedded migrations in version order. It checks
// that versions start at 1 with no gaps or duplicates and that each has an
// up and a down file.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q is not named NNN_name.up.sql or NNN_name.down.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(migrationFiles, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		mig := byVersion[version]
		if mig == nil {
			mig = &migration{Version: version, Name: m[2]}
			byVersion[version] = mig
		}
		if mig.Name != m[2] {
			return nil, fmt.Errorf("migration %03d has two names: %q and %q", version, mig.Name, m[2])
		}
		if m[3] == "up" {
			mig.Up = string(body)
		} else {
			mig.Down = string(body)
		}
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions have a gap or duplicate at %03d", m.Version)
		}
		if m.Up == "" || m.Down == "" {
			return nil, fmt.Errorf("migration %03d_%s needs both an up and a down file", m.Version, m.Name)
		}
	}
	return out, nil
}

// LatestVersion is the highest embedded migration version.
func LatestVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// MigrateOption adjusts Migrate.
type MigrateOption func(*migrateConfig)

type migrateConfig struct {
	log         *slog.Logger
	lockTimeout time.Duration
	version     int // -1: the latest
}

// defaultMigrationLockTimeout is how long one try of a version waits for a
// table lock (SET LOCAL lock_timeout) unless WithLockTimeout says
// otherwise. While a migration waits for a lock, the hub's writers of that
// table queue behind it, so the wait is kept short and retried instead. It
// is below PostgreSQL's default deadlock_timeout (1 s), so that where a hub
// transaction takes the two tables in the other order, the migration gives
// way before the deadlock detector picks a victim, which might be the hub's.
const defaultMigrationLockTimeout = 500 * time.Millisecond

// migrationLockTries is how many times a version is tried when its
// transaction fails for want of a lock, with a short backoff between
// tries.
const migrationLockTries = 5

// WithLogger makes a migration report through l: each version applied or
// reverted, each retry after a lock timeout, each unique index of versions 2
// and 4 that the rows forced to be a plain index and why (e.g. "3 trusts
// share 1 canonical name in any letter case"), and "schema up to date" when
// there was nothing to do.
// Without it nothing is logged.
//
//	err := store.Migrate(ctx, db, store.WithLogger(slog.Default()))
func WithLogger(l *slog.Logger) MigrateOption {
	return func(c *migrateConfig) { c.log = l }
}

// WithLockTimeout sets how long one try of a version may wait for a table
// lock (default 500 ms). A version whose locks are not
// granted in time is rolled back and tried again, a few times, before the
// migration fails with an error saying so.
func WithLockTimeout(d time.Duration) MigrateOption {
	return func(c *migrateConfig) { c.lockTimeout = d }
}

// ToVersion makes Migrate bring the schema to version instead of the
// latest: it applies the versions up to it that are missing and reverts,
// newest first, the applied ones above it. Reverting drops only flip's own
// objects (version 2's flip_… indexes, version 3's flip_trust_key_audit
// while it is empty: an audit trail with rows is kept, version 4's
// flip_fold_trust_name and the index on it); version 1's down
// step is empty, so
// the hub's tables and their rows stay even at version 0, where flip
// cannot tell whether it or the hub created them. Version 1 alone is the
// hub's schema without flip's indexes; tests use it to prove the code does
// not depend on them.
func ToVersion(version int) MigrateOption {
	return func(c *migrateConfig) { c.version = version }
}

func newMigrateConfig(opts []MigrateOption) migrateConfig {
	c := migrateConfig{lockTimeout: defaultMigrationLockTimeout, version: -1}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.lockTimeout < time.Millisecond {
		c.lockTimeout = time.Millisecond // 0 would mean wait forever
	}
	return c
}

// Migrate brings db's schema to the latest version (or the one ToVersion
// names). It is safe to run at every start-up and from several processes
// at once: a session advisory lock makes them take turns, each version
// runs in its own transaction together with its row in
// flip_schema_migrations, and versions already applied are skipped.
//
// On a database the hub created, Migrate adds only flip's own objects
// (named flip_…) and never adds to, alters or drops a table, index, type or
// enum value of the hub's: version 1 creates the hub's tables only where
// they are missing, version 2 adds flip's indexes, each unique one only
// where the rows allow it (otherwise a plain index, logged through
// WithLogger), version 3 adds flip_trust_key_audit, where rotations and
// revocations are recorded, and version 4 rebuilds the name index on the
// case-folded name (flip_fold_trust_name), unique where the rows allow it.
// Whatever legacy rows the hub holds, Migrate succeeds.
func Migrate(ctx context.Context, db *sql.DB, opts ...MigrateOption) error {
	cfg := newMigrateConfig(opts)
	all, err := migrations()
	if err != nil {
		return err
	}
	if cfg.version == -1 {
		cfg.version = len(all)
	}
	if cfg.version < 0 || cfg.version > len(all) {
		return fmt.Errorf("migrate: no version %d (latest is %d)", cfg.version, len(all))
	}
	if err := requireUTF8(ctx, db); err != nil {
		return err
	}
	return withMigrationLock(ctx, db, func(conn *sql.Conn) error {
		applied, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		done, err := cfg.up(ctx, conn, all[:cfg.version], applied)
		if err != nil {
			return err
		}
		reverted, err := cfg.down(ctx, conn, all[cfg.version:], applied)
		switch {
		case err != nil:
			return err
		case len(done) == 0 && reverted == 0:
			cfg.log.Info("flip schema up to date", "version", maxVersion(applied))
		case slices.Contains(done, flipIndexesVersion) || slices.Contains(done, nameKeyIndexVersion):
			cfg.reportIndexFallbacks(ctx, conn)
		}
		return nil
	})
}

// up applies the migrations of ms not in applied, in order, and returns
// their versions.
func (c migrateConfig) up(ctx context.Context, conn *sql.Conn, ms []migration, applied map[int]bool) ([]int, error) {
	var done []int
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		start := time.Now()
		if err := c.run(ctx, conn, m, "apply", m.Up, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO `+migrationTable+` (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, time.Now().UTC())
			return err
		}); err != nil {
			return done, err
		}
		c.log.Info("flip migration applied", "version", m.Version, "name", m.Name, "elapsed", time.Since(start).Round(time.Microsecond))
		done = append(done, m.Version)
	}
	return done, nil
}

// down reverts the migrations of ms that are in applied, newest first, and
// returns how many it reverted.
func (c migrateConfig) down(ctx context.Context, conn *sql.Conn, ms []migration, applied map[int]bool) (int, error) {
	n := 0
	for _, m := range slices.Backward(ms) {
		if !applied[m.Version] {
			continue
		}
		if err := c.run(ctx, conn, m, "revert", m.Down, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM `+migrationTable+` WHERE version OPERATOR(pg_catalog.=) $1::pg_catalog.int4`, m.Version)
			return err
		}); err != nil {
			return n, err
		}
		c.log.Info("flip migration reverted", "version", m.Version, "name", m.Name)
		n++
	}
	return n, nil
}

// run executes body and record in one transaction under SET LOCAL
// lock_timeout, trying again with a short backoff when a lock was not
// granted in time (or a deadlock chose the migration as its victim): a
// busy hub table delays the migration a little instead of queueing the
// hub's writers behind it.
func (c migrateConfig) run(ctx context.Context, conn *sql.Conn, m migration, verb, body string, record func(*sql.Tx) error) error {
	timeout := fmt.Sprintf("%dms", c.lockTimeout.Milliseconds())
	for try := 1; ; try++ {
		err := runInTx(ctx, conn, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.set_config('lock_timeout', $1::pg_catalog.text, true)`, timeout); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, body); err != nil {
				return err
			}
			return record(tx)
		})
		if err == nil {
			return nil
		}
		if state := pgsql.SQLState(err); state != codeLockNotAvailable && state != codeDeadlockDetected {
			return fmt.Errorf("migrate: %s %03d_%s: %w", verb, m.Version, m.Name, err)
		}
		if try == migrationLockTries {
			return fmt.Errorf("migrate: %s %03d_%s: other transactions held a lock it needs through %d tries of lock_timeout %v (nothing was changed; run it again when they finish): %w",
				verb, m.Version, m.Name, try, c.lockTimeout, err)
		}
		// 100 ms, 200 ms, 400 ms, … with up to 50% jitter, so that
		// replicas retrying together do not return in step.
		backoff := 100 * time.Millisecond << (try - 1)
		backoff += rand.N(backoff / 2)
		c.log.Warn("flip migration waiting for a table lock; retrying",
			"version", m.Version, "name", m.Name, "try", try, "of", migrationLockTries,
			"lock_timeout", c.lockTimeout, "backoff", backoff.Round(time.Millisecond), "error", err)
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("migrate: %s %03d_%s: %w (while waiting to retry after: %v)", verb, m.Version, m.Name, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// requireUTF8 refuses, before anything is written, a database whose
// encoding is not UTF8: the canonical forms flip compares trust names and
// codes in (store/canonical.go) use PostgreSQL's normalize(), which works
// only there, and a hub should not find that out from a failing
// registration.
func requireUTF8(ctx context.Context, db *sql.DB) error {
	var enc string
	if err := db.QueryRowContext(ctx, `SHOW server_encoding`).Scan(&enc); err != nil {
		return fmt.Errorf("migrate: read server_encoding: %w", err)
	}
	if enc != "UTF8" {
		return fmt.Errorf("migrate: the database's encoding is %s; flip needs UTF8 (it compares trust names in Unicode NFC with normalize(), which PostgreSQL offers only in UTF8 databases); nothing was changed", enc)
	}
	return nil
}

func maxVersion(applied map[int]bool) int {
	v := 0
	for k := range applied {
		v = max(v, k)
	}
	return v
}

// flipIndexesVersion is the migration that creates the indexes in
// uniqueIndexes; nameKeyIndexVersion rebuilds the name's on its
// case-folded key.
const (
	flipIndexesVersion  = 2
	nameKeyIndexVersion = 4
)

// countGroups is the query counting the groups of rows a GROUP BY (from
// clause on) puts together more than once, and the rows in them.
func countGroups(fromClause string) string {
	return `SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(n), 0) FROM (SELECT pg_catalog.count(*) AS n ` + fromClause +
		` HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) AS g`
}

// uniqueIndexes are flip's unique indexes (versions 2 and 4), each with the plain index
// it falls back to when the rows do not allow it, and a query counting the
// offending groups and rows, to say why.
var uniqueIndexes = []struct {
	unique, plain string
	count         string // returns (groups, rows)
	reason        func(groups, rows int) string
}{
	{
		"flip_fl_kit_slot_assigned_key", "flip_fl_kit_slot_assigned_idx",
		countGroups(`FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL GROUP BY assigned_to_trust_id`),
		func(groups, rows int) string {
			return plural(rows, "kit slot", "kit slots") + " held by " + plural(groups, "trust", "trusts") + " holding more than one"
		},
	},
	{
		"flip_trust_api_key_hash_key", "flip_trust_api_key_hash_idx",
		countGroups(`FROM trust WHERE api_key_hash IS NOT NULL GROUP BY api_key_hash`),
		func(groups, rows int) string {
			return plural(rows, "trust", "trusts") + " share " + plural(groups, "api_key_hash value", "api_key_hash values")
		},
	},
	{
		"flip_trust_name_key", "flip_trust_name_idx",
		countGroups(`FROM trust GROUP BY ` + pgsql.CanonicalName("name")),
		func(groups, rows int) string {
			return plural(rows, "trust", "trusts") + " share " + plural(groups, "canonical name", "canonical names")
		},
	},
	{
		"flip_trust_folded_name_key", "flip_trust_folded_name_idx",
		countGroups(`FROM trust GROUP BY ` + pgsql.NameKey("name")),
		func(groups, rows int) string {
			return plural(rows, "trust", "trusts") + " share " + plural(groups, "canonical name", "canonical names") + " in any letter case"
		},
	},
	{
		"flip_trust_code_key", "flip_trust_code_idx",
		countGroups(`FROM trust WHERE code IS NOT NULL GROUP BY ` + pgsql.CanonicalCode("code")),
		func(groups, rows int) string {
			return plural(rows, "trust", "trusts") + " share " + plural(groups, "canonical code", "canonical codes")
		},
	},
}

// reportIndexFallbacks logs, for each unique index of versions 2 and 4 that
// came out as a plain index, which and why. PostgreSQL's RAISE NOTICE does not
// reach database/sql, so the catalog and the rows are asked afterwards.
// A failure here is logged, never returned: the migration has committed.
func (c migrateConfig) reportIndexFallbacks(ctx context.Context, conn *sql.Conn) {
	rows, err := conn.QueryContext(ctx, `SELECT c.relname FROM pg_catalog.pg_class AS c
		WHERE c.relkind OPERATOR(pg_catalog.=) 'i'::pg_catalog."char"
		  AND pg_catalog.starts_with(c.relname::pg_catalog.text, 'flip_') AND pg_catalog.pg_table_is_visible(c.oid)`)
	if err != nil {
		c.log.Warn("flip migration: cannot list flip's indexes", "error", err)
		return
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			break
		}
		have[name] = true
	}
	err = errors.Join(rows.Err(), rows.Close())
	if err != nil {
		c.log.Warn("flip migration: cannot list flip's indexes", "error", err)
		return
	}
	for _, ix := range uniqueIndexes {
		if have[ix.unique] || !have[ix.plain] {
			continue
		}
		var groups, n int
		reason := "the rows did not allow a unique index"
		if err := conn.QueryRowContext(ctx, ix.count).Scan(&groups, &n); err == nil {
			reason = ix.reason(groups, n)
		}
		c.log.Warn("flip index created without uniqueness", "index", ix.plain, "instead_of", ix.unique, "reason", reason)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func withMigrationLock(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_catalog.pg_advisory_lock($1::pg_catalog.int8)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		// Unlock even when ctx has expired; closing the connection would
		// release the lock too, but the pool may keep it open.
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(unlockCtx, `SELECT pg_catalog.pg_advisory_unlock($1::pg_catalog.int8)`, migrationLockKey); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: release lock: %w", uerr))
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+migrationTable+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create %s: %w", migrationTable, err)
	}
	return fn(conn)
}

func appliedVersions(ctx context.Context, conn *sql.Conn) (map[int]bool, error) {
	rows, err := conn.QueryContext(ctx, `SELECT version FROM `+migrationTable)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", migrationTable, err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

func runInTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
