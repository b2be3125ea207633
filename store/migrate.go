package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"time"
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

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	Up      string
	Down    string
}

// MigrationTable records which versions Migrate applied to a database.
const MigrationTable = "flip_schema_migrations"

// migrationLockKey is the session advisory lock that makes concurrent
// Migrate calls queue instead of racing ("flip.migrate" as 8 bytes).
const migrationLockKey int64 = 0x666c69702e6d6967

var migrationFile = regexp.MustCompile(`^(\d{3})_([a-z0-9_]+)\.(up|down)\.sql$`)

// Migrations returns the embedded migrations in version order. It checks
// that versions start at 1 with no gaps or duplicates and that each has an
// up and a down file.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
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
			mig = &Migration{Version: version, Name: m[2]}
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
	out := make([]Migration, 0, len(byVersion))
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
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Migrate brings db's schema to the latest version. It is safe to run at
// every start-up and from several processes at once: a session advisory
// lock makes them take turns, each version runs in its own transaction
// together with its row in flip_schema_migrations, and versions already
// applied are skipped. On a database the hub's own migrations created, the
// first version changes nothing (all IF NOT EXISTS).
func Migrate(ctx context.Context, db *sql.DB) error {
	return MigrateTo(ctx, db, LatestVersion())
}

// MigrateTo applies pending migrations up to and including version. Version
// 1 alone is the hub's schema without flip's extra indexes; tests use it to
// prove the code does not depend on them.
func MigrateTo(ctx context.Context, db *sql.DB, version int) error {
	all, err := Migrations()
	if err != nil {
		return err
	}
	if version < 0 || version > len(all) {
		return fmt.Errorf("migrate: no version %d (latest is %d)", version, len(all))
	}
	return withMigrationLock(ctx, db, func(conn *sql.Conn) error {
		applied, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for _, m := range all[:version] {
			if applied[m.Version] {
				continue
			}
			if err := runInTx(ctx, conn, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, m.Up); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx,
					`INSERT INTO `+MigrationTable+` (version, name, applied_at) VALUES ($1, $2, $3)`,
					m.Version, m.Name, time.Now().UTC())
				return err
			}); err != nil {
				return fmt.Errorf("migrate: apply %03d_%s: %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
}

// MigrateDownTo reverts applied migrations above version, newest first
// (version 0 removes everything flip created, data included). It is meant
// for tests and development databases.
func MigrateDownTo(ctx context.Context, db *sql.DB, version int) error {
	all, err := Migrations()
	if err != nil {
		return err
	}
	return withMigrationLock(ctx, db, func(conn *sql.Conn) error {
		applied, err := appliedVersions(ctx, conn)
		if err != nil {
			return err
		}
		for i := len(all) - 1; i >= 0 && all[i].Version > version; i-- {
			m := all[i]
			if !applied[m.Version] {
				continue
			}
			if err := runInTx(ctx, conn, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, m.Down); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `DELETE FROM `+MigrationTable+` WHERE version = $1`, m.Version)
				return err
			}); err != nil {
				return fmt.Errorf("migrate: revert %03d_%s: %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
}

// AppliedVersion returns the highest version Migrate recorded in db, or 0.
func AppliedVersion(ctx context.Context, db DBTX) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT max(version) FROM `+MigrationTable).Scan(&v)
	if isUndefinedTable(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read applied migration version: %w", err)
	}
	return int(v.Int64), nil
}

func withMigrationLock(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		// Unlock even when ctx has expired; closing the connection would
		// release the lock too, but the pool may keep it open.
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(unlockCtx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: release lock: %w", uerr))
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+MigrationTable+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create %s: %w", MigrationTable, err)
	}
	return fn(conn)
}

func appliedVersions(ctx context.Context, conn *sql.Conn) (map[int]bool, error) {
	rows, err := conn.QueryContext(ctx, `SELECT version FROM `+MigrationTable)
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", MigrationTable, err)
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
