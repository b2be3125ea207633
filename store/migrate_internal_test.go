package store

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/londonaicentre/flip/internal/pgsql"
)

// The store's duplicate checks compare pgsql.CanonicalCode("code") and,
// until migration 004 replaced it with the folded name key, compared
// pgsql.CanonicalName("name"); flip's indexes serve them only if migration
// 002 builds its indexes on exactly these expressions. 002 is plain SQL
// (so that a DBA can read and apply it), so the expressions are pasted
// into it; this keeps the copy honest when canonical.go or Go's Unicode
// tables change. To refresh 002, print the two expressions and paste them
// over the old ones.
func TestMigration002_BuildsOnTheCanonicalExpressions(t *testing.T) {
	t.Parallel()
	body, err := fs.ReadFile(MigrationsFS(), "002_flip_indexes.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	up := string(body)
	for _, c := range []struct{ index, expr string }{
		{"flip_trust_name_key", pgsql.CanonicalName("name")},
		{"flip_trust_name_idx", pgsql.CanonicalName("name")},
		{"flip_trust_code_key", pgsql.CanonicalCode("code")},
		{"flip_trust_code_idx", pgsql.CanonicalCode("code")},
	} {
		if !strings.Contains(up, c.index+" ON trust (("+c.expr+"))") {
			t.Errorf("002 does not build %s on the expression the store queries:\n%s", c.index, c.expr)
		}
		if !strings.Contains(up, "GROUP BY "+c.expr+" HAVING") {
			t.Errorf("002's duplicate check for %s does not group by the expression the store queries", c.index)
		}
	}
}

// Migration 004 builds the name index on flip_fold_trust_name, an SQL
// function whose body is pgsql.NameKey: PostgreSQL inlines it, so the
// index serves the queries only while the body is the very expression they
// write (TestFindDuplicate_UsesTheCanonicalIndexes proves the plan). Its
// down step puts back 002's index on the canonical form.
func TestMigration004_BuildsOnTheNameKey(t *testing.T) {
	t.Parallel()
	read := func(name string) string {
		body, err := fs.ReadFile(MigrationsFS(), name)
		if err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	if up := read("004_flip_trust_folded_name.up.sql"); !strings.Contains(up, "$key$"+pgsql.NameKey("$1")+"$key$") {
		t.Errorf("004's flip_fold_trust_name is not the expression the store queries:\n%s", pgsql.NameKey("$1"))
	}
	down := read("004_flip_trust_folded_name.down.sql")
	for _, index := range []string{"flip_trust_name_key", "flip_trust_name_idx"} {
		if !strings.Contains(down, index+" ON trust (("+pgsql.CanonicalName("name")+"))") {
			t.Errorf("004's down step does not rebuild %s on 002's expression", index)
		}
	}
}
