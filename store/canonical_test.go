package store_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/pgsql"
	"github.com/londonaicentre/flip/store"
)

// insertLegacyTrust writes a trust row as the hub (or a hand-written
// script) could have before flip: any spelling, no validation.
func insertLegacyTrust(t *testing.T, b bundle, name string, code any) uuid.UUID {
	t.Helper()
	id := uuid.New()
	if _, err := b.db.ExecContext(b.ctx, `INSERT INTO trust (id, name, code, created_at) VALUES ($1, $2, $3, now())`, id, name, code); err != nil {
		t.Fatalf("insert legacy trust %+q: %v", name, err)
	}
	return id
}

// An old hub row spelled with invisible characters or decomposed accents
// still blocks the trust a person would call the same.
func TestRegisterTrust_LegacyLookAlikesAreDuplicates(t *testing.T) {
	t.Parallel()
	forEachVariant(t, func(t *testing.T, v variant) {
		b := setup(t, v)
		fliptest.AddSlots(t, b.db, "Trust_001..Trust_010")
		guys := insertLegacyTrust(t, b, "Guy's and St\u200c Thomas'", "GS\u200bTT")
		cafe := insertLegacyTrust(t, b, "Cafe\u0301  Hospital", nil) // NFD, two spaces, NULL code
		bidi := insertLegacyTrust(t, b, "North\u00a0Trust", "N T\u202e")
		cases := []struct {
			p        flip.TrustParams
			field    string
			existing uuid.UUID
		}{
			{flip.TrustParams{Name: "Guy's and St Thomas'", Code: "NEW1"}, "name", guys},
			{flip.TrustParams{Name: "Another", Code: "gstt"}, "code", guys},
			{flip.TrustParams{Name: "Café Hospital", Code: "NEW2"}, "name", cafe},
			{flip.TrustParams{Name: "Cafe\u0301 Hospital", Code: "NEW3"}, "name", cafe},
			{flip.TrustParams{Name: "North Trust", Code: "NEW4"}, "name", bidi},
			{flip.TrustParams{Name: "Yet another", Code: "NT"}, "code", bidi},
		}
		for _, c := range cases {
			before := snapshot(t, b.ctx, b.db)
			_, err := b.register(t, c.p)
			var dup *flip.DuplicateTrustError
			if !errors.As(err, &dup) || dup.Field != c.field || dup.Existing == nil || dup.Existing.ID != c.existing {
				t.Errorf("%+v: err = %v, want a duplicate %s of %s", c.p, err, c.field, c.existing)
			}
			if after := snapshot(t, b.ctx, b.db); after != before {
				t.Errorf("%+v: refused registration changed the tables", c.p)
			}
		}
		// The deploy command's lookup finds the legacy row by the clean name.
		if tr, err := store.TrustByName(b.ctx, b.db, "Café Hospital"); err != nil || tr.ID != cafe {
			t.Errorf("TrustByName(clean) = %+v, %v; want the legacy row %s", tr, err, cafe)
		}
		// A name that only differs in case is the same trust.
		_, err := b.register(t, flip.TrustParams{Name: "GUY'S AND ST THOMAS'", Code: "GUY2"})
		var dup *flip.DuplicateTrustError
		if !errors.As(err, &dup) || dup.Field != "name" {
			t.Errorf("a name in other letter case: %v, want a duplicate name", err)
		}
	})
}

// The SQL that canonicalises stored rows and the Go that canonicalises new
// input must agree on every format and space character Go knows.
func TestCanonicalSQL_AgreesWithNormalizeOnEveryFormatAndSpaceCharacter(t *testing.T) {
	t.Parallel()
	b := setup(t, variants[0])
	var names, want []string
	for _, table := range []*unicode.RangeTable{unicode.Cf, unicode.White_Space} {
		for _, r := range rangeRunes(table) {
			names = append(names, "A"+string(r)+"b")
			if unicode.Is(unicode.Cf, r) {
				want = append(want, "Ab")
			} else {
				want = append(want, "A b")
			}
		}
	}
	for i, name := range names {
		id := insertLegacyTrust(t, b, name, strings.ToUpper(name))
		p, err := flip.TrustParams{Name: want[i], Code: "AB"}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		// The legacy row must be found by the clean name and, as a code,
		// by the clean code.
		if tr, err := store.TrustByName(b.ctx, b.db, p.Name); err != nil || tr.ID != id {
			t.Errorf("%+q is not found as %+q: %v", name, p.Name, err)
		}
		var byCode uuid.UUID
		if err := b.db.QueryRowContext(b.ctx, `SELECT id FROM trust WHERE `+pgsql.ByCanonicalCode, "ab").Scan(&byCode); err != nil || byCode != id {
			t.Errorf("code %+q is not found as ab: %v", strings.ToUpper(name), err)
		}
		if _, err := b.db.ExecContext(b.ctx, `DELETE FROM trust WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
	}
}

func rangeRunes(t *unicode.RangeTable) []rune {
	var out []rune
	for _, r := range t.R16 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			out = append(out, c)
		}
	}
	for _, r := range t.R32 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			out = append(out, c)
		}
	}
	return out
}

// Once flip has migrated (its own schema, or the hub's), the duplicate
// check is two index probes on the canonical expressions, not a scan of
// every trust: migrations 002 and 004 build their indexes on the queries'
// exact expressions (004's through an SQL function PostgreSQL inlines).
func TestFindDuplicate_UsesTheCanonicalIndexes(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		if v.version < store.LatestVersion() || v.driver != "postgres" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, v)
			if _, err := b.db.ExecContext(b.ctx, `INSERT INTO trust (id, name, code, created_at)
SELECT gen_random_uuid(), 'Trust ' || i, 'C' || i, now() FROM generate_series(1, 5000) AS i`); err != nil {
				t.Fatal(err)
			}
			if _, err := b.db.ExecContext(b.ctx, `ANALYZE trust`); err != nil {
				t.Fatal(err)
			}
			conn, err := b.db.Conn(b.ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(b.ctx, `PREPARE register AS `+pgsql.Register); err != nil {
				t.Fatal(err)
			}
			rows, err := conn.QueryContext(b.ctx, `EXPLAIN EXECUTE register('Trust 42', 'c42', gen_random_uuid(), '', 'h', now(), gen_random_uuid(), NULL, false, 'trust 42')`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan strings.Builder
			for rows.Next() {
				var line string
				must(t, rows.Scan(&line))
				plan.WriteString(line + "\n")
			}
			if p := plan.String(); !strings.Contains(p, "flip_trust_folded_name_key") || !strings.Contains(p, "flip_trust_code_key") || strings.Contains(p, "Seq Scan on trust") {
				t.Errorf("the duplicate check does not probe both canonical indexes:\n%s", p)
			}
		})
	}
}
