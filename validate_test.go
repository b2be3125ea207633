package flip_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/londonaicentre/flip"
)

func TestTrustParamsNormalize_Trims(t *testing.T) {
	t.Parallel()
	got, err := flip.TrustParams{Name: "\u00a0 Barts Health \u2003", Code: "\tBH\n", Region: "\ufeffLondon\u200b"}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Barts Health" || got.Code != "BH" || got.Region != "London" {
		t.Errorf("Normalize = %+v", got)
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
		flip.ErrDuplicateTrust, flip.ErrNoFreeKitSlot, flip.ErrNotInTransaction} {
		if !errors.Is(err, flip.ErrTrustRegistration) {
			t.Errorf("%v does not match ErrTrustRegistration", err)
		}
	}
	dup := flip.NewDuplicateTrustError("code", "N", "C", errors.New("pq: duplicate key"))
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
