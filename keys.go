package flip

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
	"strings"
)

// Keys
//
// A registration mints two secrets: the trust API key, which the trust
// presents to the hub and of which only the SHA-256 hash is stored, and the
// internal-service key, which is handed to the trust's deployment and never
// stored at all. Both are returned in plaintext exactly once, in
// RegistrationResult, each as a Secret that only its Reveal method shows.
//
// Two formats exist:
//
//   - PrefixedKeys (the default): a type prefix, 43 base62 characters
//     carrying 256 random bits, and 6 base62 characters of CRC-32 over
//     everything before them:
//
//     flip_ak_<43 × [0-9A-Za-z]: 256 random bits><6 × [0-9A-Za-z]: CRC-32>
//
//     The prefix ("flip_ak_" for trust API keys, "flip_sk_" for
//     internal-service keys) lets secret scanners recognise a leaked key
//     with a plain regular expression, and the checksum lets CheckKey refuse
//     a mistyped or truncated key without any database lookup. Keys are
//     57 characters long and contain only [0-9A-Za-z_].
//
//   - ReferenceKeys: 32 random bytes encoded as unpadded base64url (43
//     characters), the format the reference hub mints. It has no prefix and
//     no checksum, so only its length and alphabet can be checked.
//
// Whatever the format, the stored hash is HashAPIKey(key): the lowercase hex
// SHA-256 of the key string's bytes, so verifiers written for the reference
// hub keep working.

// KeyKind says which of a trust's two secrets a key is.
type KeyKind int

const (
	// TrustAPIKey is presented by a trust to the hub; only its hash is stored.
	TrustAPIKey KeyKind = iota + 1
	// InternalServiceKey is used between a trust's own services; never stored.
	InternalServiceKey
)

// String returns a human-readable name of the kind.
func (k KeyKind) String() string {
	switch k {
	case TrustAPIKey:
		return "trust API key"
	case InternalServiceKey:
		return "internal-service key"
	default:
		return fmt.Sprintf("KeyKind(%d)", int(k))
	}
}

// Prefix returns the PrefixedKeys prefix of the kind ("flip_ak_" or
// "flip_sk_"), or "" for an unknown kind.
func (k KeyKind) Prefix() string {
	switch k {
	case TrustAPIKey:
		return "flip_ak_"
	case InternalServiceKey:
		return "flip_sk_"
	default:
		return ""
	}
}

// KeyFormat selects how RandomKeyMinter encodes the random bytes of a key.
type KeyFormat int

const (
	// PrefixedKeys is the default format: type prefix, base62 body, CRC-32
	// checksum. See the package documentation of keys.
	PrefixedKeys KeyFormat = iota
	// ReferenceKeys is the reference hub's format: 43 characters of unpadded
	// base64url.
	ReferenceKeys
)

const (
	keyEntropyBytes = 32 // 256 bits of randomness in every key
	bodyLen         = 43 // base62 digits needed for 256 bits (62^43 > 2^256)
	checksumLen     = 6  // base62 digits needed for 32 bits (62^6 > 2^32)
	prefixLen       = 8  // len("flip_ak_")
	// PrefixedKeyLength is the length of every PrefixedKeys key.
	PrefixedKeyLength = prefixLen + bodyLen + checksumLen
	// ReferenceKeyLength is the length of every ReferenceKeys key.
	ReferenceKeyLength = 43
)

// KeyMinter mints the secrets of a new trust. RandomKeyMinter is the
// production implementation; tests may substitute a deterministic one. A
// KeyMinter must be safe for concurrent use.
type KeyMinter interface {
	// MintKey returns a new, unpredictable key of the given kind.
	MintKey(kind KeyKind) (string, error)
}

// RandomKeyMinter mints keys from a cryptographically secure random source.
// Its zero value mints PrefixedKeys from crypto/rand and is what NewRegistry
// uses unless told otherwise.
type RandomKeyMinter struct {
	// Format of the minted keys; the zero value is PrefixedKeys.
	Format KeyFormat
	// Rand is the entropy source; nil means crypto/rand.Reader. Anything
	// else is for tests: keys are only as secret as this reader.
	Rand io.Reader
}

var _ KeyMinter = RandomKeyMinter{}

// MintKey implements KeyMinter.
func (m RandomKeyMinter) MintKey(kind KeyKind) (string, error) {
	if kind.Prefix() == "" {
		return "", fmt.Errorf("mint key: unknown key kind %d", int(kind))
	}
	var raw [keyEntropyBytes]byte
	r := m.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", fmt.Errorf("mint %s: read random bytes: %w", kind, err)
	}
	switch m.Format {
	case PrefixedKeys:
		return encodePrefixed(kind, raw[:]), nil
	case ReferenceKeys:
		return base64.RawURLEncoding.EncodeToString(raw[:]), nil
	default:
		return "", fmt.Errorf("mint %s: unknown key format %d", kind, int(m.Format))
	}
}

// encodePrefixed lays out prefix + base62(raw) + base62(crc32(prefix+body)).
func encodePrefixed(kind KeyKind, raw []byte) string {
	var b strings.Builder
	b.Grow(PrefixedKeyLength)
	b.WriteString(kind.Prefix())
	writeBase62(&b, new(big.Int).SetBytes(raw), bodyLen)
	sum := crc32.ChecksumIEEE([]byte(b.String()))
	writeBase62(&b, new(big.Int).SetUint64(uint64(sum)), checksumLen)
	return b.String()
}

// writeBase62 writes n in base 62, left-padded with '0' to width digits.
func writeBase62(b *strings.Builder, n *big.Int, width int) {
	digits := n.Text(62)
	for i := len(digits); i < width; i++ {
		b.WriteByte('0')
	}
	b.WriteString(digits)
}

// CheckKey reports whether key is well formed for kind, in either format,
// without any lookup: a PrefixedKeys key must carry kind's prefix and a
// valid checksum; a ReferenceKeys key must be 43 base64url characters. It
// returns an error wrapping ErrMalformedKey, which never contains the key.
func CheckKey(kind KeyKind, key string) error {
	prefix := kind.Prefix()
	if prefix == "" {
		return fmt.Errorf("%w: unknown key kind %d", ErrMalformedKey, int(kind))
	}
	// The reference format first: a random reference key begins with
	// "flip_" about once in a billion, and must not be refused for it.
	// Prefixed keys are longer, so no prefixed key is taken for one.
	if len(key) == ReferenceKeyLength && isBase64URL(key) {
		return nil
	}
	if strings.HasPrefix(key, "flip_") {
		return checkPrefixed(kind, key)
	}
	return fmt.Errorf("%w: not a %s (expected %q followed by %d characters)", ErrMalformedKey, kind, prefix, bodyLen+checksumLen)
}

func checkPrefixed(kind KeyKind, key string) error {
	if !strings.HasPrefix(key, kind.Prefix()) {
		return fmt.Errorf("%w: wrong prefix for a %s", ErrMalformedKey, kind)
	}
	if len(key) != PrefixedKeyLength {
		return fmt.Errorf("%w: a %s is %d characters, got %d", ErrMalformedKey, kind, PrefixedKeyLength, len(key))
	}
	body, sum := key[:PrefixedKeyLength-checksumLen], key[PrefixedKeyLength-checksumLen:]
	if !isBase62(body[prefixLen:]) || !isBase62(sum) {
		return fmt.Errorf("%w: invalid characters in %s", ErrMalformedKey, kind)
	}
	want, ok := new(big.Int).SetString(sum, 62)
	if !ok || !want.IsUint64() || want.Uint64() != uint64(crc32.ChecksumIEEE([]byte(body))) {
		return fmt.Errorf("%w: checksum mismatch in %s (mistyped or truncated?)", ErrMalformedKey, kind)
	}
	return nil
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// HashAPIKey returns the value stored in trust.api_key_hash for key: the
// lowercase hex SHA-256 of the key string's bytes (64 characters). It is the
// same rule the reference hub uses, whatever the key's format.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// APIKeyMatchesHash reports whether key hashes to storedHash, comparing in
// constant time so that response timing reveals nothing about the stored
// hash. storedHash is compared case-insensitively (hex digits).
func APIKeyMatchesHash(key, storedHash string) bool {
	want, err := hex.DecodeString(storedHash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}
