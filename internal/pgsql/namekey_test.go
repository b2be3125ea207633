package pgsql_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// The duplicate check compares FoldName, computed in Go from the name a
// caller gives, with NameKey, computed by PostgreSQL from the names stored.
// They must agree on every character the fold table maps, alone and
// among others, and on random mixes of the characters most likely to
// disagree (those that fold to several, combining marks, decomposed
// accents, spaces a legacy row may hold).
func TestNameKey_SQLAgreesWithFoldName(t *testing.T) {
	t.Parallel()
	db := fliptest.RequireServer(t)
	table := pgsql.FoldTable()
	var names []string
	for r := range table {
		names = append(names, string(r), "A"+string(r)+"b", string(r)+string(r))
	}
	pool := []rune("aAzZ ßẞİıŉǰΐΰſKÅﬁﬃΣσς\u0345\u0301\u0308e\u00a0\u200b\u1e9e\u1f80\u1fb3ᾼ")
	for r := range table {
		pool = append(pool, r)
	}
	slices.Sort(pool)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 1 + rng.IntN(12)
		s := make([]rune, n)
		for i := range s {
			s[i] = pool[rng.IntN(len(pool))]
		}
		names = append(names, string(s))
	}
	arg, err := json.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(t.Context(), `SELECT `+pgsql.NameKey("s.name")+`
		FROM pg_catalog.json_array_elements_text($1::pg_catalog.json) WITH ORDINALITY AS s(name, i) ORDER BY s.i`, string(arg))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked := 0
	for i := 0; rows.Next(); i++ {
		var sqlKey string
		if err := rows.Scan(&sqlKey); err != nil {
			t.Fatal(err)
		}
		canonical, err := flip.CanonicalTrustName(names[i])
		if err != nil {
			continue // a name flip refuses; legacy rows may hold it, but no caller can ask for it
		}
		checked++
		if goKey := pgsql.FoldName(canonical); goKey != sqlKey {
			t.Errorf("%+q: Go's key %+q, PostgreSQL's %+q", names[i], goKey, sqlKey)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d names compared", checked)
}
