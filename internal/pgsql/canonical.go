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
// trust name in column col. flip's name index (migration 002) is built on
// exactly this expression for col "name", so the duplicate check uses it.
func CanonicalName(col string) string {
	return "normalize(btrim(regexp_replace(regexp_replace(" + col + ", '" + formatClass + "', '', 'g'), '" +
		spaceClass + "+', ' ', 'g')), NFC)"
}

// CanonicalCode is the SQL expression for the canonical form of the
// trust code in column col, lower-cased: codes are unique
// case-insensitively. flip's code index is built on it for col "code".
func CanonicalCode(col string) string {
	return "lower(normalize(regexp_replace(" + col + ", '" + formatOrSpaceClass + "', '', 'g'), NFC))"
}

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
