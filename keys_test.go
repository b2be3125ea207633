package flip_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
)

var prefixedKey = regexp.MustCompile(`^flip_(ak|sk)_[0-9A-Za-z]{49}$`)

func TestRandomKeyMinter_PrefixedFormat(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, kind := range []flip.KeyKind{flip.TrustAPIKey, flip.InternalServiceKey} {
		for range 200 {
			key, err := flip.RandomKeyMinter{}.MintKey(kind)
			if err != nil {
				t.Fatal(err)
			}
			if !prefixedKey.MatchString(key) || !strings.HasPrefix(key, kind.Prefix()) || len(key) != flip.PrefixedKeyLength {
				t.Fatalf("%s %q does not match the documented format", kind, key)
			}
			if err := flip.CheckKey(kind, key); err != nil {
				t.Fatalf("minted key fails CheckKey: %v", err)
			}
			if seen[key] {
				t.Fatal("the same key was minted twice")
			}
			seen[key] = true
		}
	}
}

func TestRandomKeyMinter_ReferenceFormat(t *testing.T) {
	t.Parallel()
	key, err := flip.RandomKeyMinter{Format: flip.ReferenceKeys}.MintKey(flip.TrustAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(key) {
		t.Errorf("reference key %q is not 43 base64url characters", key)
	}
	if err := flip.CheckKey(flip.TrustAPIKey, key); err != nil {
		t.Errorf("reference key fails CheckKey: %v", err)
	}
}

func TestRandomKeyMinter_UsesItsEntropySource(t *testing.T) {
	t.Parallel()
	zeros := flip.RandomKeyMinter{Rand: bytes.NewReader(make([]byte, 64))}
	a, _ := zeros.MintKey(flip.TrustAPIKey)
	if want := "flip_ak_" + strings.Repeat("0", 43); !strings.HasPrefix(a, want) {
		t.Errorf("all-zero entropy gave %q", a)
	}
	_, err := flip.RandomKeyMinter{Rand: bytes.NewReader(make([]byte, 10))}.MintKey(flip.TrustAPIKey)
	if err == nil {
		t.Error("a short entropy source did not fail")
	}
	if _, err := (flip.RandomKeyMinter{}).MintKey(flip.KeyKind(9)); err == nil {
		t.Error("an unknown kind was minted")
	}
}

func TestCheckKey_CatchesTyposWithoutLookup(t *testing.T) {
	t.Parallel()
	key, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	// Change one character of the body: the checksum must catch it.
	i := len("flip_ak_") + 5
	c := byte('a')
	if key[i] == 'a' {
		c = 'b'
	}
	typo := key[:i] + string(c) + key[i+1:]
	swapped := key[:i] + string(key[i+1]) + string(key[i]) + key[i+2:]
	cases := map[string]string{
		"one character changed": typo,
		"empty":                 "",
		"truncated":             key[:len(key)-1],
		"extra character":       key + "x",
		"wrong kind prefix":     strings.Replace(key, "flip_ak_", "flip_sk_", 1),
		"unknown prefix":        "flip_zz_" + key[8:],
		"space inside":          key[:20] + " " + key[21:],
		"reference too short":   strings.Repeat("A", 42),
		"reference bad char":    strings.Repeat("A", 42) + "+",
	}
	if swapped != key {
		cases["adjacent characters swapped"] = swapped
	}
	for name, bad := range cases {
		err := flip.CheckKey(flip.TrustAPIKey, bad)
		if !errors.Is(err, flip.ErrMalformedKey) {
			t.Errorf("%s: CheckKey = %v, want ErrMalformedKey", name, err)
		}
		if err != nil && bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("%s: error message contains the key", name)
		}
	}
}

func TestCheckKey_AcceptsAReferenceKeyThatHappensToStartWithFlip(t *testing.T) {
	t.Parallel()
	key := "flip_" + strings.Repeat("Q", flip.ReferenceKeyLength-5) // 43 base64url characters
	if err := flip.CheckKey(flip.TrustAPIKey, key); err != nil {
		t.Errorf("a reference-format key beginning with flip_ was refused: %v", err)
	}
}

func TestHashAPIKey_MatchesTheReferenceRule(t *testing.T) {
	t.Parallel()
	key := "example-key"
	sum := sha256.Sum256([]byte(key))
	want := hex.EncodeToString(sum[:])
	if got := flip.HashAPIKey(key); got != want || len(got) != 64 || strings.ToLower(got) != got {
		t.Errorf("HashAPIKey = %q, want %q", got, want)
	}
	if !flip.APIKeyMatchesHash(key, want) || !flip.APIKeyMatchesHash(key, strings.ToUpper(want)) {
		t.Error("APIKeyMatchesHash refuses the right key")
	}
	for _, h := range []string{"", "zz", want[:62], flip.HashAPIKey("other")} {
		if flip.APIKeyMatchesHash(key, h) {
			t.Errorf("APIKeyMatchesHash accepts hash %q", h)
		}
	}
}

// FuzzCheckKey: CheckKey never panics, never echoes its input, and accepts
// a prefixed key only if its checksum holds.
func FuzzCheckKey(f *testing.F) {
	good, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	ref, _ := flip.RandomKeyMinter{Format: flip.ReferenceKeys}.MintKey(flip.TrustAPIKey)
	for _, s := range []string{good, ref, "", "flip_", "flip_ak_", good[:len(good)-1] + "0", strings.Repeat("z", 57), "flip_ak_" + strings.Repeat("\xff", 49)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := flip.CheckKey(flip.TrustAPIKey, key)
		if err != nil {
			if !errors.Is(err, flip.ErrMalformedKey) {
				t.Fatalf("CheckKey error %v is not ErrMalformedKey", err)
			}
			if len(key) >= 8 && strings.Contains(err.Error(), key) {
				t.Fatal("error message echoes the key")
			}
			return
		}
		switch len(key) {
		case flip.ReferenceKeyLength:
			if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(key) {
				t.Fatalf("accepted %q as a reference key", key)
			}
		case flip.PrefixedKeyLength:
			if !prefixedKey.MatchString(key) || !strings.HasPrefix(key, flip.TrustAPIKey.Prefix()) {
				t.Fatalf("accepted malformed prefixed key %q", key)
			}
		default:
			t.Fatalf("accepted %q of length %d", key, len(key))
		}
	})
}

func BenchmarkMintAndHash(b *testing.B) {
	for _, tc := range []struct {
		name   string
		minter flip.RandomKeyMinter
	}{{"prefixed", flip.RandomKeyMinter{}}, {"reference", flip.RandomKeyMinter{Format: flip.ReferenceKeys}}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				api, err := tc.minter.MintKey(flip.TrustAPIKey)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tc.minter.MintKey(flip.InternalServiceKey); err != nil {
					b.Fatal(err)
				}
				_ = flip.HashAPIKey(api)
			}
		})
	}
}

func BenchmarkCheckKey(b *testing.B) {
	key, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	b.ReportAllocs()
	for b.Loop() {
		if err := flip.CheckKey(flip.TrustAPIKey, key); err != nil {
			b.Fatal(err)
		}
	}
}
