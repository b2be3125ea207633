package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/londonaicentre/flip/fliptest"
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

func TestMigrate_ConcurrentRunsOnAFreshDatabaseAgree(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	db.SetMaxOpenConns(16)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = store.Migrate(ctx, db.DB.DB)
		}()
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
	must(t, store.Migrate(ctx, db.DB.DB))
}

func TestMigrate_DownAndUpAgain(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	ctx := context.Background()
	must(t, store.MigrateDownTo(ctx, db.DB.DB, 0))
	var tables int
	must(t, db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> $1`, store.MigrationTable).Scan(&tables))
	if tables != 0 {
		t.Errorf("%d tables left after migrating down to 0", tables)
	}
	must(t, store.Migrate(ctx, db.DB.DB))
	fliptest.AddSlots(t, db, "Trust_001")
	fliptest.RegisterTrust(t, db, flipParams("After", "AFT"))
}

// A database the hub created (its schema, no flip indexes) that already
// holds duplicate names, registered before flip closed the race: flip's
// migrations must still apply, falling back to plain indexes.
func TestMigrate_AdoptsAHubDatabaseWithDuplicates(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(1))
	ctx := context.Background()
	_, err := db.ExecContext(ctx, `INSERT INTO trust (id, name, code, created_at) VALUES
		(gen_random_uuid(), 'Twin', 'T1', now()), (gen_random_uuid(), 'Twin', 't1', now())`)
	must(t, err)
	must(t, store.Migrate(ctx, db.DB.DB))
	var idx []string
	must(t, db.SelectContext(ctx, &idx, `SELECT indexname FROM pg_indexes WHERE tablename = 'trust' ORDER BY 1`))
	got := strings.Join(idx, ",")
	if !strings.Contains(got, "flip_trust_name_idx") || !strings.Contains(got, "flip_trust_code_idx") {
		t.Errorf("indexes on trust: %s", got)
	}
	// Registration keeps refusing duplicates through the advisory locks.
	fliptest.AddSlots(t, db, "Trust_001")
	if _, err := flipRegistry().RegisterTrustDB(ctx, db, flipParams("Twin", "NEW")); err == nil {
		t.Error("registered a third Twin")
	}
}

func TestMigrate_FirstVersionIsANoOpOnTheHubSchema(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(0))
	ctx := context.Background()
	ms, _ := store.Migrations()
	// The hub created its tables by itself, without flip's tracking table.
	_, err := db.ExecContext(ctx, ms[0].Up)
	must(t, err)
	must(t, store.Migrate(ctx, db.DB.DB))
	v, err := store.AppliedVersion(ctx, db)
	if err != nil || v != store.LatestVersion() {
		t.Errorf("applied %d, %v", v, err)
	}
}
