package flip_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/londonaicentre/flip"
	"golang.org/x/text/unicode/norm"
)

func TestTrustParamsNormalize_Trims(t *testing.T) {
	t.Parallel()
	got, err := flip.TrustParams{Name: "\u00a0 Barts Health \u2003", Code: "\tBH\n", Region: " London\u3000"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Barts Health" || got.Code != "BH" || got.Region != "London" {
		t.Errorf("Normalize = %+v", got)
	}
}

// Spellings a person cannot tell apart must come out as one canonical
// name, or be refused: never a second trust.
func TestTrustParamsNormalize_OneIdentityForLookAlikes(t *testing.T) {
	t.Parallel()
	same := []struct{ in, want string }{
		{"Cafe\u0301 Hospital", "Café Hospital"}, // NFD → NFC
		{"Café Hospital", "Café Hospital"},
		{"Guy's and\u00a0St Thomas'", "Guy's and St Thomas'"},  // no-break space
		{"Guy's  and St\u2002Thomas'", "Guy's and St Thomas'"}, // runs of spaces
	}
	for _, c := range same {
		got, err := flip.TrustParams{Name: c.in, Code: "C"}.Normalize()
		if err != nil || got.Name != c.want {
			t.Errorf("name %+q = %+q, %v; want %+q", c.in, got.Name, err, c.want)
		}
	}
	refused := map[string]string{
		"zero-width joiner at the end":    "GSTT\u200d",
		"zero-width space inside":         "GS\u200bTT",
		"left-to-right mark":              "GSTT\u200e",
		"soft hyphen at the start":        "\u00adGSTT",
		"right-to-left override":          "GSTT\u202e",
		"zero-width non-joiner in a name": "Guy's and St\u200c Thomas'",
		"override inside a name":          "Evil \u202eTSGG",
		"isolate":                         "A\u2067B",
		"word joiner":                     "A\u2060B",
		"byte-order mark":                 "\ufeffGSTT",
		"replacement character":           "G\ufffdSTT", // what encoding/json makes of "\ud800"
	}
	for what, in := range refused {
		for _, p := range []flip.TrustParams{{Name: in, Code: "C"}, {Name: "N", Code: in}, {Name: "N", Code: "C", Region: in}} {
			err := p.Validate()
			var invalid *flip.InvalidTrustParamError
			if !errors.Is(err, flip.ErrInvalidTrustParams) || !errors.As(err, &invalid) {
				t.Errorf("%s (%+v): err = %v, want ErrInvalidTrustParams", what, p, err)
			}
		}
	}
}

func TestTrustParamsNormalize_CodeIsSafeAsAFileName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"GSTT", "rj1", "R-J1_2", "0abc"} {
		if err := (flip.TrustParams{Name: "N", Code: ok}).Validate(); err != nil {
			t.Errorf("code %q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"../../etc/passwd", `a/b\c`, "..", ".", "G S T T", "GSTT🏥", "-rf", "_x", "x.y", "GSTÉ", "Ｇ"} {
		err := flip.TrustParams{Name: "N", Code: bad}.Validate()
		var invalid *flip.InvalidTrustParamError
		if !errors.As(err, &invalid) || invalid.Field != "code" || !errors.Is(err, flip.ErrInvalidTrustParams) {
			t.Errorf("code %q: err = %v, want an invalid code", bad, err)
		}
	}
}

func TestTrustParamsNormalize_AcceptsUnicodeNamesAtTheLimit(t *testing.T) {
	t.Parallel()
	p := flip.TrustParams{
		Name:   strings.Repeat("ŵ", flip.MaxNameLength), // Welsh: multi-byte, within the limit in characters
		Code:   strings.Repeat("C", flip.MaxCodeLength),
		Region: "Cymru – Gogledd",
	}
	if _, err := p.Normalize(); err != nil {
		t.Errorf("a name of exactly the limit was refused: %v", err)
	}
}

func TestTrustParamsNormalize_ErrorsNameTheFieldAndSentinels(t *testing.T) {
	t.Parallel()
	err := flip.TrustParams{Name: "  ", Code: "X"}.Validate()
	if err == nil || err.Error() != "trust name is required" {
		t.Errorf("blank name: %v", err)
	}
	for _, target := range []error{flip.ErrEmptyTrustName, flip.ErrInvalidTrustParams, flip.ErrTrustRegistration} {
		if !errors.Is(err, target) {
			t.Errorf("blank name error is not %v", target)
		}
	}
	if errors.Is(err, flip.ErrEmptyTrustCode) || errors.Is(err, flip.ErrDuplicateTrust) {
		t.Error("blank name error matches an unrelated sentinel")
	}
	err = flip.TrustParams{Name: "N", Code: "X", Region: "a\x7fb"}.Validate()
	var invalid *flip.InvalidTrustParamError
	if !errors.As(err, &invalid) || invalid.Field != "region" || !strings.Contains(err.Error(), "U+007F") {
		t.Errorf("DEL in region: %v", err)
	}
}

func TestSentinelsAllDescendFromTheBase(t *testing.T) {
	t.Parallel()
	for _, err := range []error{flip.ErrInvalidTrustParams, flip.ErrEmptyTrustName, flip.ErrEmptyTrustCode,
		flip.ErrDuplicateTrust, flip.ErrNoFreeKitSlot} {
		if !errors.Is(err, flip.ErrTrustRegistration) {
			t.Errorf("%v does not match ErrTrustRegistration", err)
		}
	}
	for _, err := range []error{flip.ErrTrustNotFound, flip.ErrTrustDeletionBlocked, &flip.DeletionBlockedError{Table: "t"}} {
		if !errors.Is(err, flip.ErrTrustChange) || errors.Is(err, flip.ErrTrustRegistration) {
			t.Errorf("%v: want ErrTrustChange and not ErrTrustRegistration", err)
		}
	}
	// Classes shared by registration and the lifecycle belong to neither
	// base; the errors returned carry the operation's base as well.
	for _, err := range []error{flip.ErrNotInTransaction, flip.ErrRollbackRequired, flip.ErrRetryable} {
		if errors.Is(err, flip.ErrTrustRegistration) || errors.Is(err, flip.ErrTrustChange) {
			t.Errorf("%v matches an operation's base", err)
		}
	}
	dup := &flip.DuplicateTrustError{Field: "code", Name: "N", Code: "C"}
	if !errors.Is(dup, flip.ErrDuplicateTrust) || !errors.Is(dup, flip.ErrTrustRegistration) || dup.Error() != `a trust with code "C" already exists` {
		t.Errorf("DuplicateTrustError: %v", dup)
	}
}

// FuzzTrustParamsNormalize checks the validation's promises on any input:
// it never panics, every error is a registration error, and what it
// accepts is trimmed, valid UTF-8, free of NUL and control characters,
// within the limits, non-blank, and stable under a second Normalize.
func FuzzTrustParamsNormalize(f *testing.F) {
	for _, seed := range [][3]string{
		{"Guy's and St Thomas'", "GSTT", "London"},
		{"  padded  ", "\tC\n", ""},
		{"", "C", ""},
		{"N", "", ""},
		{"nul\x00", "C", ""},
		{"bad\xff", "C", ""},
		{"line\nbreak", "C", ""},
		{"\u200bzero width\ufeff", "c", "r"},
		{"para\u2029sep", "C", ""},
		{strings.Repeat("x", 256), "C", ""},
		{"N", strings.Repeat("c", 65), ""},
		{"Ysbyty Gwynedd", "BCU", "Cymru"},
		{"Cafe\u0301  Hospital", "../x", "\ufffd"},
		{"GS\u200bTT", "G\u202eS", "\u00a0r"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, name, code, region string) {
		p, err := flip.TrustParams{Name: name, Code: code, Region: region}.Normalize()
		if err != nil {
			if !errors.Is(err, flip.ErrInvalidTrustParams) || !errors.Is(err, flip.ErrTrustRegistration) {
				t.Fatalf("error %v is not an ErrInvalidTrustParams", err)
			}
			return
		}
		for field, v := range map[string]string{"name": p.Name, "code": p.Code, "region": p.Region} {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				t.Fatalf("%s %q accepted with invalid bytes", field, v)
			}
			if strings.IndexFunc(v, unicode.IsControl) >= 0 {
				t.Fatalf("%s %q accepted with a control character", field, v)
			}
			if v != strings.TrimSpace(v) {
				t.Fatalf("%s %q not trimmed", field, v)
			}
			if strings.ContainsFunc(v, func(r rune) bool { return unicode.Is(unicode.Cf, r) || r == utf8.RuneError }) {
				t.Fatalf("%s %q accepted with a format or replacement character", field, v)
			}
			if !norm.NFC.IsNormalString(v) {
				t.Fatalf("%s %q accepted outside NFC", field, v)
			}
		}
		if strings.ContainsFunc(p.Code, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			t.Fatalf("code %q accepted with a character unsafe in a file name", p.Code)
		}
		if p.Name == "" || p.Code == "" {
			t.Fatalf("blank name or code accepted: %+v", p)
		}
		if utf8.RuneCountInString(p.Name) > flip.MaxNameLength || utf8.RuneCountInString(p.Code) > flip.MaxCodeLength ||
			utf8.RuneCountInString(p.Region) > flip.MaxRegionLength {
			t.Fatalf("over-long value accepted: %d/%d/%d characters", utf8.RuneCountInString(p.Name),
				utf8.RuneCountInString(p.Code), utf8.RuneCountInString(p.Region))
		}
		again, err := p.Normalize()
		if err != nil || again != p {
			t.Fatalf("Normalize is not idempotent: %+v → %+v, %v", p, again, err)
		}
	})
}
