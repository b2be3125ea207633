package fliptest

import (
	"context"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// AddSlots adds kit slots to db's pool, failing the test on error. Each
// spec is a slot name or a range such as "Trust_001..Trust_050" (see
// store.AddSlots). It returns how many slots were new.
func AddSlots(t testing.TB, db flip.DBTX, specs ...string) int {
	t.Helper()
	n, err := store.AddSlots(context.Background(), db, specs...) // it expands ranges itself
	if err != nil {
		t.Fatalf("fliptest: add slots: %v", err)
	}
	return n
}

// RegisterTrust registers p on db in a transaction of its own with the
// PostgreSQL store and default keys, failing the test on error. Add slots
// first: a pool without a free slot fails it.
func RegisterTrust(t testing.TB, db flip.TxBeginner, p flip.TrustParams) flip.RegistrationResult {
	t.Helper()
	res, err := flip.NewRegistry(store.New()).RegisterTrustDB(context.Background(), db, p)
	if err != nil {
		t.Fatalf("fliptest: register trust %q: %v", p.Name, err)
	}
	return res
}

// DumpTables returns every row of every table in db's public schema as
// text, one row a line, as PostgreSQL's row-to-text cast renders it. Tests
// search it for what must never be stored, such as a plaintext key:
//
//	if strings.Contains(fliptest.DumpTables(t, db), res.APIKey.Reveal()) { t.Fatal("plaintext key stored") }
func DumpTables(t testing.TB, db flip.DBTX) string {
	t.Helper()
	tables := queryStrings(t, db, "list tables", `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	var b strings.Builder
	for _, table := range tables {
		for _, line := range queryStrings(t, db, "read "+table, `SELECT t::text FROM `+table+` t`) {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// queryStrings returns the one text column of every row q returns,
// failing the test with what on error.
func queryStrings(t testing.TB, db flip.DBTX, what, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("fliptest: %s: %v", what, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("fliptest: %s: %v", what, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("fliptest: %s: %v", what, err)
	}
	return out
}
