package flip

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on TrustParams, counted in characters (Unicode code points) after
// trimming. Longer values are refused with ErrInvalidTrustParams before any
// database access.
const (
	MaxNameLength   = 255
	MaxCodeLength   = 64
	MaxRegionLength = 255
)

// Normalize returns p in its canonical form, after checking its fields in
// the order name, code, region (so a caller sees the first problem). It is
// what RegisterTrust does before anything else; call it to look a trust up
// by the name RegisterTrust would store.
//
// A trust has one identity however it was typed, so that two spellings a
// person cannot tell apart are the same trust:
//   - surrounding whitespace is trimmed and every run of spaces inside
//     (U+0020, no-break space, the other Unicode space separators) becomes
//     one U+0020;
//   - the text is put in Unicode NFC, so "Cafe\u0301" (decomposed) and
//     "Café" are one name;
//   - invisible and bidirectional formatting characters (Unicode category
//     Cf: soft hyphen U+00AD, zero-width U+200B–U+200D, direction marks
//     and overrides U+200E–U+200F, U+202A–U+202E, U+2066–U+2069, word
//     joiner and invisible operators U+2060–U+2064, byte-order mark
//     U+FEFF, …) are refused wherever they appear, as are control
//     characters, line and paragraph separators, NUL, invalid UTF-8 and
//     U+FFFD (the replacement character: what a decoder leaves of text
//     that was not valid, such as a lone surrogate "\ud800" in JSON);
//   - the code, which names the trust's kit files, may hold only ASCII
//     letters, digits, '-' and '_', and must start with a letter or digit
//     (so "..", "a/b" and "-rf" are refused).
//
// Duplicate checks compare these canonical forms case-insensitively: codes
// by ASCII letter case, names with Unicode's full case folding, so
// "Newcomer Trust", "newcomer  trust" and "NEWCOMER TRUST" are one trust,
// as are "Straße" and "STRASSE". The name is stored as given (in canonical
// form), not folded.
func (p TrustParams) Normalize() (TrustParams, error) {
	var err error
	if p.Name, err = CanonicalTrustName(p.Name); err != nil {
		return p, err
	}
	if p.Code, err = cleanField("code", p.Code, MaxCodeLength, ErrEmptyTrustCode); err != nil {
		return p, err
	}
	if err = checkCode(p.Code); err != nil {
		return p, err
	}
	if p.Region, err = cleanField("region", p.Region, MaxRegionLength, nil); err != nil {
		return p, err
	}
	return p, nil
}

// CanonicalTrustName returns name in the canonical form Normalize gives a
// trust's name, or the error Normalize returns for it. Use it to look a
// trust up by a name as a person typed it; store.TrustsByName does.
func CanonicalTrustName(name string) (string, error) {
	return cleanField("name", name, MaxNameLength, ErrEmptyTrustName)
}

// Validate reports whether p would pass RegisterTrust's input checks,
// without touching any database. It returns the same errors.
func (p TrustParams) Validate() error {
	_, err := p.Normalize()
	return err
}

// cleanField returns s in canonical form (see Normalize) or the reason it
// cannot be one. A blank value returns whenEmpty, or "" when the field is
// optional (whenEmpty == nil).
func cleanField(field, s string, limit int, whenEmpty error) (string, error) {
	invalid := func(reason string, args ...any) error {
		return &InvalidTrustParamError{Field: field, Reason: fmt.Sprintf(reason, args...)}
	}
	if !utf8.ValidString(s) {
		return "", invalid("is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case r == 0:
			return "", invalid("contains a NUL byte")
		case r == utf8.RuneError:
			return "", invalid("contains U+FFFD, the replacement character: the text was mis-encoded (in JSON, a lone surrogate such as \\ud800)")
		case unicode.Is(unicode.Cf, r):
			return "", invalid("contains the invisible formatting character %U", r)
		case unicode.IsSpace(r) && !unicode.Is(unicode.Zs, r):
			// Tabs, line breaks and separators: allowed only at the ends,
			// checked below once those are trimmed.
		case unicode.IsControl(r):
			return "", invalid("contains control character %U", r)
		}
	}
	s = strings.TrimFunc(s, unicode.IsSpace)
	if s == "" {
		if whenEmpty == nil {
			return "", nil
		}
		return "", &InvalidTrustParamError{Field: field, Reason: "is blank", err: whenEmpty}
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) && !unicode.Is(unicode.Zs, r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", invalid("contains control character %U", r)
	}
	s = norm.NFC.String(collapseSpaces(s))
	if n := utf8.RuneCountInString(s); n > limit {
		return "", invalid("is %d characters long; the limit is %d", n, limit)
	}
	return s, nil
}

// collapseSpaces replaces every run of space separators (category Zs) in s
// with one U+0020.
func collapseSpaces(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && unicode.Is(unicode.Zs, r) }) && !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	inSpace := false
	for _, r := range s {
		if unicode.Is(unicode.Zs, r) {
			if !inSpace {
				b.WriteByte(' ')
			}
			inSpace = true
			continue
		}
		inSpace = false
		b.WriteRune(r)
	}
	return b.String()
}

// checkCode refuses a (clean, non-blank) code that is not safe as a file
// name: see Normalize.
func checkCode(code string) error {
	for i, r := range code {
		ok := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '-' || r == '_')))
		if !ok {
			return &InvalidTrustParamError{Field: "code", Reason: fmt.Sprintf(
				"contains %q at position %d: a code names the trust's kit files, so it may hold only ASCII letters, digits, '-' and '_', and starts with a letter or digit", r, i)}
		}
	}
	return nil
}

// isTrimmable is Unicode whitespace plus the invisible characters that
// copy-paste leaves at the ends of configuration values (zero-width space,
// word joiner, byte-order mark). Main-user emails and role names are
// trimmed with it; trust fields refuse such characters instead.
func isTrimmable(r rune) bool {
	switch r {
	case '\u200b', '\u2060', '\ufeff':
		return true
	}
	return unicode.IsSpace(r)
}
