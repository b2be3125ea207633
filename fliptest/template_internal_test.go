package fliptest

import (
	"context"
	"testing"
	"time"
)

// Checkouts with different migrations share a server's templates: building
// one's template drops only siblings no test binary has taken up for a day
// (another checkout may be using its own), and a template dropped while a
// test binary uses it is built again instead of failing every later NewDB
// with "template database ... does not exist".
func TestTemplates_OthersInUseAreKeptAndADroppedOneIsRebuilt(t *testing.T) {
	t.Parallel()
	admin := RequireServer(t)
	ctx := t.Context()
	// A fixture, so a family of templates, of this test's own.
	fixture := []string{"SELECT 1 -- " + t.Name() + " " + randomSuffix()}
	family, name, err := templateName(1, fixture)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	siblings := map[string]string{ // another checkout's templates of the family, and their comments
		family + "_recent":   takenUp + now.Add(-time.Hour).Format(time.RFC3339),
		family + "_stale":    takenUp + now.Add(-2*staleAfter).Format(time.RFC3339),
		family + "_unmarked": "",
	}
	exists := func(db string) bool {
		t.Helper()
		var ok bool
		if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, db).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	drop := func(db string) error {
		_, _ = admin.ExecContext(context.Background(), `ALTER DATABASE `+quoteIdent(db)+` WITH IS_TEMPLATE false`)
		_, err := admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS `+quoteIdent(db)+` WITH (FORCE)`)
		return err
	}
	t.Cleanup(func() {
		for _, db := range []string{name, family + "_recent", family + "_stale", family + "_unmarked"} {
			_ = drop(db)
		}
	})
	for db, comment := range siblings {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(db)); err != nil {
			t.Fatal(err)
		}
		if comment != "" {
			if _, err := admin.ExecContext(ctx, `COMMENT ON DATABASE `+quoteIdent(db)+` IS '`+comment+`'`); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(db)+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`); err != nil {
			t.Fatal(err)
		}
	}

	NewDB(t, AtVersion(1), FromSQL(fixture...)) // builds the family's template
	for db, want := range map[string]bool{name: true, family + "_recent": true, family + "_unmarked": true, family + "_stale": false} {
		if got := exists(db); got != want {
			t.Errorf("after building %s: %s exists = %v, want %v", name, db, got, want)
		}
	}

	// Another checkout drops this binary's template as stale.
	if err := drop(name); err != nil {
		t.Fatal(err)
	}
	db := NewDB(t, AtVersion(1), FromSQL(fixture...))
	if err := db.PingContext(ctx); err != nil || !exists(name) {
		t.Errorf("after the template was dropped: ping %v, template exists %v", err, exists(name))
	}
}
