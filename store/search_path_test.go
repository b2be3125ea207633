package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/callertx"
	"github.com/londonaicentre/flip/internal/hubfixture"
	"github.com/londonaicentre/flip/store"
)

// A role that may create objects in a schema on the hub's search_path
// (public, on PostgreSQL 14 and older, for every role) can plant functions
// and operators named like PostgreSQL's own but taking the exact argument
// types flip passes (varchar where pg_catalog takes text, integer where it
// takes bigint, …). PostgreSQL resolves an unqualified call by the best
// type match before the schema order, so such a look-alike would run
// inside flip's statements with the hub's privileges (CVE-2018-1058).
// flip schema-qualifies every function and operator it calls; here an
// unprivileged role plants look-alikes of every pg_catalog function flip's
// source names and of the operators it uses, and every operation flip
// offers runs, migrations included, without calling one. One variant also
// puts public before pg_catalog on the search_path, where even a
// look-alike with pg_catalog's exact argument types would be found first
// by a call that is not schema-qualified.
func TestSearchPath_LookAlikesInPublicNeverRun(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		fixture    []string
		native     bool
		searchPath string // the database's search_path, when not the default
	}{
		{"hub_fixture/lib_pq", []string{hubfixture.Schema, hubfixture.Legacy}, false, ""},
		{"hub_fixture/pgx_native", []string{hubfixture.Schema, hubfixture.Legacy}, true, ""},
		{"empty/lib_pq", nil, false, ""},
		{"hub_fixture/public_before_pg_catalog", []string{hubfixture.Schema, hubfixture.Legacy}, false, "public, pg_catalog"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := []fliptest.Option{fliptest.AtVersion(0)}
			if c.fixture != nil {
				opts = append(opts, fliptest.FromSQL(c.fixture...))
			}
			db := fliptest.NewDB(t, opts...)
			ctx := t.Context()
			plantLookAlikes(t, ctx, db)
			if c.searchPath != "" {
				if _, err := db.ExecContext(ctx, `ALTER DATABASE `+quoteIdent(db.Name)+` SET search_path = `+c.searchPath); err != nil {
					t.Fatal(err)
				}
			}
			// Fresh connections, which take the database's settings.
			hostile, err := sql.Open("postgres", db.URL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hostile.Close() })
			db = &fliptest.DB{DB: hostile, Name: db.Name, URL: db.URL}
			b := bundle{ctx: ctx, db: db, reg: flip.NewRegistry(store.New()), Pools: callertx.Pools{SQL: db.DB}}
			if c.native {
				b.Pgx = newPgxPool(t, db)
			}

			if c.fixture != nil { // the hub's bare schema first: the advisory-lock path
				exerciseEveryOperation(t, b, "before migrating")
			}
			mustNoLookAlike(t, store.Migrate(ctx, db.DB), "migrate")
			exerciseEveryOperation(t, b, "migrated")
			mustNoLookAlike(t, store.Migrate(ctx, db.DB, store.ToVersion(0)), "migrate down")
			mustNoLookAlike(t, store.Migrate(ctx, db.DB), "migrate up again")
			checkNoLookAlikeRan(t, ctx, db)
		})
	}
}

// exerciseEveryOperation runs each of flip's operations once on b, through
// the variant's driver, each expected to succeed (or to fail the way it
// should: a duplicate, no free slot).
func exerciseEveryOperation(t *testing.T, b bundle, stage string) {
	t.Helper()
	ctx := t.Context()
	step := func(what string, err error) { t.Helper(); mustNoLookAlike(t, err, stage+": "+what) }
	tag := strings.ReplaceAll(stage, " ", "-")

	_, err := store.AddSlots(ctx, b.db, "Trust_"+tag+"_001..Trust_"+tag+"_003")
	step("add slots", err)
	_, err = store.CountSlots(ctx, b.db)
	step("count slots", err)
	first, err := b.register(t, flip.TrustParams{Name: "Hostile " + tag + " Trust", Code: "HT1" + tag, Region: "London", AuditUserID: uuid.New()})
	step("register", err)
	_, err = b.register(t, flip.TrustParams{Name: "HOSTILE " + tag + " trust", Code: "HT2" + tag})
	if !errors.Is(err, flip.ErrDuplicateTrust) {
		t.Errorf("%s: a case variant of a registered name: %v, want a duplicate", stage, err)
	}
	_, err = b.register(t, flip.TrustParams{Name: "Other " + tag, Code: "ht1" + tag})
	if !errors.Is(err, flip.ErrDuplicateTrust) {
		t.Errorf("%s: a registered code in lower case: %v, want a duplicate", stage, err)
	}
	second, err := b.RegisterTrustDB(ctx, b.reg, flip.TrustParams{Name: "Second " + tag, Code: "HT3" + tag})
	step("register on a pool", err)

	_, err = store.TrustsByName(ctx, b.db, "hostile "+tag+" TRUST")
	step("look up by name", err)
	_, err = store.KitSlotOf(ctx, b.db, first.Trust.ID)
	step("look up kit slot", err)
	_, err = store.TrustAPIKeyHash(ctx, b.db, first.Trust.ID)
	step("look up the key hash", err)
	_, err = b.Verifier().Verify(ctx, first.APIKey.Reveal())
	step("verify", err)

	err = b.Run(ctx, func(tx callertx.Tx) error {
		_, err := tx.RotateKeys(ctx, b.reg, flip.TrustChange{TrustID: first.Trust.ID})
		return err
	})
	step("rotate", err)
	err = b.Run(ctx, func(tx callertx.Tx) error {
		_, err := tx.RevokeKey(ctx, b.reg, flip.TrustChange{TrustID: second.Trust.ID})
		return err
	})
	step("revoke", err)
	err = b.Run(ctx, func(tx callertx.Tx) error {
		_, err := tx.DeleteTrust(ctx, b.reg, flip.TrustChange{TrustID: second.Trust.ID})
		return err
	})
	step("delete", err)

	// An empty pool: every remaining slot taken, then the pool grown from
	// a slot-name source.
	for i := 0; ; i++ {
		_, err := b.RegisterTrustDB(ctx, b.reg, flip.TrustParams{Name: fmt.Sprintf("Filler %s %d", tag, i), Code: fmt.Sprintf("F%d%s", i, tag)})
		if errors.Is(err, flip.ErrNoFreeKitSlot) {
			break
		}
		step("fill the pool", err)
	}
	grow := flip.NewRegistry(store.New(), flip.WithSlotNameSource(slotNames{"Grown_" + tag}))
	_, err = b.RegisterTrustDB(ctx, grow, flip.TrustParams{Name: "Grown " + tag, Code: "G" + tag})
	step("register growing the pool", err)

	idp := fliptest.NewIdentityProvider()
	idp.AddUser("ada." + tag + "@example.com")
	seeder := flip.NewSeeder([]flip.MainUser{{Email: "ada." + tag + "@example.com", Role: "Admin", Name: "Ada", Organisation: "Example"}})
	if b.Pgx != nil {
		_, err = flippgx.SeedMainUsers(ctx, seeder, b.Pgx, idp)
	} else {
		_, err = seeder.SeedMainUsers(ctx, b.db, idp)
	}
	step("seed main users", err)
}

// slotNames is a SlotNameSource of fixed names.
type slotNames []string

func (s slotNames) SlotNames(context.Context) ([]string, error) { return s, nil }

// mustNoLookAlike fails the test when err is not nil, naming the
// look-alike when one ran: a planted function raises an error naming
// itself.
func mustNoLookAlike(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// The look-alikes are created by a role without privileges, in public. Each
// counts its calls in a sequence (which no rollback undoes) and then raises
// an error naming itself, so that a call is seen whether or not flip
// reports the error it causes.
const (
	lookAlikeCalls = "public.look_alike_calls"
	// sqlFunctionCall finds the names flip's source calls as functions.
	sqlFunctionCall = `\b([a-z_][a-z0-9_]*)\s*\(`
)

// plantLookAlikes creates, as a new role without privileges that may
// create objects in public, look-alikes of every pg_catalog function whose
// name flip's source calls, with each text argument as varchar or name,
// each bigint as integer and each polymorphic one as a concrete type (the
// types flip's statements pass), and of the operators flip uses, for the
// types its columns and parameters have. The role is dropped when the
// test ends.
func plantLookAlikes(t *testing.T, ctx context.Context, db *fliptest.DB) {
	t.Helper()
	role := "look_alike_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	admin := fliptest.RequireServer(t)
	exec := func(db *sql.DB, q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("plant look-alikes: %v\n%s", err, q)
		}
	}
	exec(admin, `CREATE ROLE `+role+` NOLOGIN`)
	t.Cleanup(func() {
		// The test's database is dropped by fliptest's cleanup, which runs
		// after this one; the role's objects live only there.
		_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP ROLE IF EXISTS `+role)
	})
	exec(db.DB, `GRANT CREATE, USAGE ON SCHEMA public TO `+role)

	var stmts []string
	stmts = append(stmts,
		`CREATE SEQUENCE `+lookAlikeCalls,
		`GRANT USAGE, UPDATE, SELECT ON SEQUENCE `+lookAlikeCalls+` TO PUBLIC`)
	stmts = append(stmts, lookAlikeFunctions(t, ctx, db.DB)...)
	stmts = append(stmts, lookAlikeOperators()...)
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET ROLE `+role); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, strings.Join(stmts, ";\n")); err != nil {
		t.Fatalf("plant look-alikes: %v", err)
	}
	if _, err := conn.ExecContext(ctx, `RESET ROLE`); err != nil {
		t.Fatal(err)
	}
	t.Logf("planted %d look-alike functions, aggregates and operators", len(stmts)-2)
}

// checkNoLookAlikeRan fails the test if any look-alike was called, even in
// a transaction that was rolled back.
func checkNoLookAlikeRan(t *testing.T, ctx context.Context, db *fliptest.DB) {
	t.Helper()
	var called bool
	if err := db.QueryRowContext(ctx, `SELECT is_called FROM `+lookAlikeCalls).Scan(&called); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("a look-alike function or operator in public ran inside one of flip's statements")
	}
}

// flipSQLFunctionNames returns every lower-case name followed by "(" in
// the source files flip's statements are written in: a superset of the
// SQL functions it calls (Go's own calls are in it too, and harmless).
func flipSQLFunctionNames(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../*.go", "../internal/pgsql/*.go", "*.go", "migrations/*.sql", "../flippgx/*.go", "../pqfeed/*.go"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	re := regexp.MustCompile(sqlFunctionCall)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// argSubstitutes are the argument types a look-alike takes in place of
// pg_catalog's: the types flip's statements may pass, which a function of
// pg_catalog reaches only through an implicit cast, so that the look-alike
// would be the better match.
var argSubstitutes = map[string][]string{
	"text":                  {"character varying", "name"},
	"bigint":                {"integer"},
	"anyelement":            {"json", "text", "character varying", "uuid", "integer", "bigint", "name"},
	"anynonarray":           {"json", "text", "character varying", "uuid", "integer", "bigint", "name"},
	"anycompatible":         {"json", "text", "character varying", "uuid", "integer", "bigint", "name"},
	"anycompatiblenonarray": {"text", "character varying", "uuid", "integer", "bigint", "name"},
}

// lookAlikeFunctions returns the statements that create the look-alikes
// of the pg_catalog functions and aggregates flip's source names: one with
// pg_catalog's own argument types, and one for each substitute.
func lookAlikeFunctions(t *testing.T, ctx context.Context, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT p.proname, p.prokind,
	        pg_catalog.array_to_json(ARRAY(SELECT pg_catalog.format_type(a, NULL)
	            FROM pg_catalog.unnest(p.proargtypes::pg_catalog.oid[]) AS a))::pg_catalog.text,
	        pg_catalog.format_type(p.prorettype, NULL), p.proretset
	    FROM pg_catalog.pg_proc AS p
	    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
	      AND p.proname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])
	      AND p.prokind OPERATOR(pg_catalog.=) ANY ('{f,a}'::pg_catalog."char"[])
	      AND p.provariadic OPERATOR(pg_catalog.=) 0`, "{"+strings.Join(flipSQLFunctionNames(t), ",")+"}")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var stmts []string
	seen := map[string]bool{}
	for rows.Next() {
		var (
			name, kind, ret string
			args            []string
			set             bool
		)
		var rawArgs string
		if err := rows.Scan(&name, &kind, &rawArgs, &ret, &set); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(rawArgs), &args); err != nil {
			t.Fatal(err)
		}
		for _, variant := range argVariants(args) {
			ret := ret
			if concrete, ok := polymorphicAs(args, variant, ret); ok {
				ret = concrete
			} else {
				continue
			}
			sig := name + "(" + strings.Join(variant, ", ") + ")"
			if seen[sig] || len(variant) == 0 {
				continue
			}
			seen[sig] = true
			stmts = append(stmts, lookAlikeFunction(name, kind, variant, ret, set, len(seen))...)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return stmts
}

// argVariants returns args with each substitutable type replaced by each
// of its substitutes, in every combination, args itself included.
func argVariants(args []string) [][]string {
	out := [][]string{nil}
	for _, a := range args {
		choices := append([]string{a}, argSubstitutes[a]...)
		var next [][]string
		for _, prefix := range out {
			for _, c := range choices {
				next = append(next, append(slices.Clone(prefix), c))
			}
		}
		out = next
	}
	return out
}

// polymorphicAs returns the return type of a look-alike taking variant
// where the original takes args: ret, or the concrete type that replaced
// a polymorphic argument when ret is that polymorphic type. It reports
// false when a polymorphic or pseudo-type ("any", internal) is left, which
// a PL/pgSQL function cannot take.
func polymorphicAs(args, variant []string, ret string) (string, bool) {
	for i, a := range args {
		if (strings.HasPrefix(a, "any") || a == `"any"` || a == "internal") && a == variant[i] {
			return "", false
		}
	}
	if !strings.HasPrefix(ret, "any") {
		return ret, true
	}
	for i, a := range args {
		if a == ret {
			return variant[i], true
		}
	}
	return "", false
}

// lookAlikeFunction is the statement (two for an aggregate) creating the
// n-th look-alike: public.name(args) returning ret, which counts its call
// and raises an error naming itself.
func lookAlikeFunction(name, kind string, args []string, ret string, set bool, n int) []string {
	sig := name + "(" + strings.Join(args, ", ") + ")"
	body := fmt.Sprintf(`$body$ BEGIN PERFORM pg_catalog.nextval('%s'); RAISE EXCEPTION 'look-alike %s ran'; END $body$`, lookAlikeCalls, sig)
	if kind == "a" {
		sfunc := fmt.Sprintf("public.look_alike_sfunc_%d", n)
		return []string{
			fmt.Sprintf(`CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE plpgsql AS %s`, sfunc, ret, strings.Join(args, ", "), ret, body),
			fmt.Sprintf(`CREATE AGGREGATE public.%s(%s) (SFUNC = %s, STYPE = %s)`, quoteIdent(name), strings.Join(args, ", "), sfunc, ret),
		}
	}
	if set {
		ret = "SETOF " + ret
	}
	return []string{fmt.Sprintf(`CREATE FUNCTION public.%s(%s) RETURNS %s LANGUAGE plpgsql AS %s`, quoteIdent(name), strings.Join(args, ", "), ret, body)}
}

// lookAlikeOperators returns the statements creating look-alikes of the
// operators flip's statements use, for pairs of the types they compare or
// combine.
func lookAlikeOperators() []string {
	stringish := []string{"character varying", "text", "name"}
	others := []string{"uuid", "integer", "bigint", "boolean", "timestamp with time zone", "oid", "regclass", "json"}
	var pairs [][2]string
	for _, a := range stringish {
		for _, b := range stringish {
			pairs = append(pairs, [2]string{a, b})
		}
	}
	for _, a := range others {
		pairs = append(pairs, [2]string{a, a})
	}
	pairs = append(pairs, [2]string{`"char"`, `"char"`}, [2]string{"smallint", "smallint"}, [2]string{"oid", "integer"}, [2]string{"smallint", "integer"})
	pairs = append(pairs, [2]string{"integer", "bigint"}, [2]string{"bigint", "integer"}, [2]string{"oid", "bigint"}, [2]string{"bigint", "oid"})
	var stmts []string
	n := 0
	for _, op := range []string{"=", "<>", "<", ">", "<=", ">=", "||", "~~", "~", "+", "-"} {
		for _, p := range pairs {
			ret := "boolean"
			switch op {
			case "||":
				ret = "text"
			case "+", "-":
				ret = p[0]
			}
			n++
			fn := fmt.Sprintf("public.look_alike_op_%d", n)
			stmts = append(stmts,
				fmt.Sprintf(`CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE plpgsql AS $body$ BEGIN PERFORM pg_catalog.nextval('%s'); RAISE EXCEPTION 'look-alike operator %s(%s, %s) ran'; END $body$`,
					fn, p[0], p[1], ret, lookAlikeCalls, op, p[0], p[1]),
				fmt.Sprintf(`CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)`, op, p[0], p[1], fn))
		}
	}
	return stmts
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
