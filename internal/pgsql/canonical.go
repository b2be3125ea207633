// Package pgsql holds every SQL statement flip runs, once, and the one
// reader of PostgreSQL error codes (SQLState). The root package's
// registration, seeding and verification send the statements, the store
// package's migrations build their indexes on the same canonical
// expressions, and the tests and benchmarks compare against them. It has
// no driver and imports nothing of flip's.
package pgsql

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Trust names and codes are compared in their canonical form, the one
// flip.TrustParams.Normalize gives new values: Unicode NFC, no format
// characters (category Cf: soft hyphen, zero-width and bidirectional
// controls, …), whitespace runs collapsed to one space and trimmed; a code
// also lower-cased with no whitespace at all. New values are refused
// unless already clean, but a hub database may hold rows written before
// flip, with odd spellings; the SQL below maps those stored values to the
// same canonical form, so that "GS\u200bTT" in an old row still blocks
// "GSTT". The character classes are generated from Go's Unicode tables,
// the ones Normalize uses, so the two sides cannot disagree.

var (
	formatClass = sqlCharClass(unicode.Cf)
	spaceClass  = sqlCharClass(unicode.White_Space)
	// formatOrSpaceClass is both classes in one bracket expression.
	formatOrSpaceClass = formatClass[:len(formatClass)-1] + spaceClass[1:]
)

// CanonicalName is the SQL expression for the canonical form of the
// trust name in column col (NFC, format characters removed, whitespace
// collapsed and trimmed): the form RegisterTrust stores. Migration 002
// built flip's first name index on exactly this expression; names are now
// compared by NameKey, which folds it.
func CanonicalName(col string) string {
	return "pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(" + col +
		"::pg_catalog.text, '" + formatClass + "', '', 'g'), '" + spaceClass + "+', ' ', 'g')), 'NFC')"
}

// NameKey is the SQL expression for the key trust names are compared by:
// the canonical form of column col's name (CanonicalName), case-folded
// with Unicode's full case folding. So "Newcomer Trust", "newcomer  trust"
// and "NEWCOMER TRUST" are one name, as are "Straße" and "STRASSE". flip's
// name index (migration 004) is built on exactly this expression, and
// FoldName computes it in Go.
//
// The name is folded in NFD and put back in NFC (Unicode's canonical
// caseless match: a precomposed letter folds as its parts do), which needs
// a table of the 1,158 characters that fold to one and a replace for each
// of the 17 that fold to several (ß → ss), instead of three times as many
// nested calls, which PostgreSQL takes milliseconds to parse. A name of
// ASCII alone, almost every trust's, takes a short cut: its letters A–Z
// lower-cased, the same result at a fraction of the cost. The folding is
// written out, from the frozen table in casefold_table.go, rather than
// left to lower() or a collation, whose answers depend on the server's
// locale and library versions: an index built on it must give the same
// keys on every server, for ever.
func NameKey(col string) string {
	c := CanonicalName(col)
	// ASCII in, ASCII canonical form out; the raw column is tested so that
	// the canonical form is computed once.
	raw := col + "::pg_catalog.text"
	return "CASE WHEN pg_catalog.octet_length(" + raw + ") OPERATOR(pg_catalog.=) pg_catalog.char_length(" + raw + ")" +
		" THEN pg_catalog.translate(" + c + ", '" + asciiUpper + "', '" + asciiLower + "')" +
		" ELSE pg_catalog.normalize(" + foldSQL("pg_catalog.normalize("+c+", 'NFD')") + ", 'NFC') END"
}

const (
	asciiUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	asciiLower = "abcdefghijklmnopqrstuvwxyz"
)

// CanonicalCode is the SQL expression for the canonical form of the
// trust code in column col, lower-cased: codes are unique
// case-insensitively. flip's code index (migration 002) is built on it for
// col "code"; ByCanonicalCode compares it with a code.
func CanonicalCode(col string) string {
	return "pg_catalog.lower(pg_catalog.normalize(pg_catalog.regexp_replace(" + col +
		"::pg_catalog.text, '" + formatOrSpaceClass + "', '', 'g'), 'NFC'))"
}

// foldSQL is expr, in NFD, case-folded: one translate for the characters
// that fold to one character, then a replace for each that folds to
// several.
func foldSQL(expr string) string {
	var b strings.Builder
	for range foldMulti {
		b.WriteString("pg_catalog.replace(")
	}
	b.WriteString("pg_catalog.translate(" + expr + ", '" + foldFrom + "', '" + foldTo + "')")
	for _, m := range foldMulti {
		b.WriteString(", '" + string(m.from) + "', '" + m.to + "')")
	}
	return b.String()
}

// FoldName is NameKey computed in Go, for a name already in canonical
// form (what flip.TrustParams.Normalize returns): the key the duplicate
// check and the lookups compare with NameKey("name").
func FoldName(canonical string) string {
	if isASCII(canonical) {
		return strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, canonical)
	}
	var b strings.Builder
	b.Grow(len(canonical))
	for _, r := range norm.NFD.String(canonical) {
		if f, ok := foldMap[r]; ok {
			b.WriteString(f)
		} else {
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(b.String())
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldMap is the fold table as a map, for FoldName.
var foldMap = func() map[rune]string {
	m := make(map[rune]string, len(foldFrom)/2+len(foldMulti))
	to := []rune(foldTo)
	for i, r := range []rune(foldFrom) {
		m[r] = string(to[i])
	}
	for _, f := range foldMulti {
		m[f.from] = f.to
	}
	return m
}()

// sqlCharClass writes t as a PostgreSQL regular-expression bracket
// expression of \uXXXX / \UXXXXXXXX escapes, e.g. [\u00AD\u0600-\u0605].
// It expects standard_conforming_strings (PostgreSQL's default since 9.1),
// under which a backslash in a string literal reaches the regex engine.
func sqlCharClass(t *unicode.RangeTable) string {
	var b strings.Builder
	b.WriteByte('[')
	esc := func(r rune) string {
		if r > 0xFFFF {
			return fmt.Sprintf(`\U%08X`, r)
		}
		return fmt.Sprintf(`\u%04X`, r)
	}
	add := func(lo, hi, stride rune) {
		if stride != 1 {
			for r := lo; r <= hi; r += stride {
				b.WriteString(esc(r))
			}
			return
		}
		b.WriteString(esc(lo))
		if hi > lo {
			b.WriteString("-" + esc(hi))
		}
	}
	for _, r := range t.R16 {
		add(rune(r.Lo), rune(r.Hi), rune(r.Stride))
	}
	for _, r := range t.R32 {
		add(rune(r.Lo), rune(r.Hi), rune(r.Stride))
	}
	b.WriteByte(']')
	return b.String()
}
