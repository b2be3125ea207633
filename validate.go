package flip

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on TrustParams, counted in characters (Unicode code points) after
// trimming. Longer values are refused with ErrInvalidTrustParams before any
// database access.
const (
	MaxNameLength   = 255
	MaxCodeLength   = 64
	MaxRegionLength = 255
)

// Normalize returns p with its text fields trimmed, after checking them in
// the order name, code, region (so a caller sees the first problem). It is
// what RegisterTrust does before anything else; call it to look a trust up
// by the name RegisterTrust would store.
func (p TrustParams) Normalize() (TrustParams, error) {
	var err error
	if p.Name, err = cleanField("name", p.Name, MaxNameLength, ErrEmptyTrustName); err != nil {
		return p, err
	}
	if p.Code, err = cleanField("code", p.Code, MaxCodeLength, ErrEmptyTrustCode); err != nil {
		return p, err
	}
	if p.Region, err = cleanField("region", p.Region, MaxRegionLength, nil); err != nil {
		return p, err
	}
	return p, nil
}

// Validate reports whether p would pass RegisterTrust's input checks,
// without touching any database. It returns the same errors.
func (p TrustParams) Validate() error {
	_, err := p.Normalize()
	return err
}

// cleanField trims s and refuses what cannot be stored or cannot be a name.
// A blank value returns whenEmpty, or "" when the field is optional
// (whenEmpty == nil).
func cleanField(field, s string, limit int, whenEmpty error) (string, error) {
	invalid := func(reason string, args ...any) error {
		return &InvalidTrustParamError{Field: field, Reason: fmt.Sprintf(reason, args...)}
	}
	if !utf8.ValidString(s) {
		return "", invalid("is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", invalid("contains a NUL byte")
	}
	s = strings.TrimFunc(s, isTrimmable)
	if s == "" {
		if whenEmpty == nil {
			return "", nil
		}
		return "", &InvalidTrustParamError{Field: field, Reason: "is blank", err: whenEmpty}
	}
	n := 0
	for _, r := range s {
		n++
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return "", invalid("contains control character %U", r)
		}
	}
	if n > limit {
		return "", invalid("is %d characters long; the limit is %d", n, limit)
	}
	return s, nil
}

// isTrimmable is Unicode whitespace plus the invisible characters that
// copy-paste leaves at the ends of names (zero-width space, word joiner,
// byte-order mark).
func isTrimmable(r rune) bool {
	switch r {
	case '\u200b', '\u2060', '\ufeff':
		return true
	}
	return unicode.IsSpace(r)
}
