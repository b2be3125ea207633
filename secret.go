package flip

import (
	"fmt"
	"io"
	"log/slog"
)

// Secret is a plaintext key that nothing but Reveal shows: fmt (every
// verb), log/slog, encoding/json, encoding/xml and encoding/gob all see
// "[REDACTED]".
//
// Methods alone cannot promise that: fmt and slog's text handler print a
// value that sits in an unexported struct field by reflection, without
// calling its methods, and deep printers follow pointers. So the key is
// not held in a field reflection can read: it is captured by a func,
// whose captured variables reflection cannot reach; such a printer shows
// the func's code address, which is the same for every Secret.
//
// The zero Secret reveals "". A Secret is not comparable with ==: compare
// the revealed strings (with crypto/subtle where timing matters).
type Secret struct {
	reveal func() string
}

// NewSecret wraps key. flip builds the keys of its results with it; it is
// exported so that fakes and tests can build a RegistrationResult.
func NewSecret(key string) Secret { return Secret{reveal: func() string { return key }} }

// Reveal returns the plaintext key.
func (s Secret) Reveal() string {
	if s.reveal == nil {
		return ""
	}
	return s.reveal()
}

// String returns "[REDACTED]", never the key.
func (Secret) String() string { return redacted }

// GoString is what %#v prints: never the key.
func (Secret) GoString() string { return "flip.Secret(" + redacted + ")" }

// Format prints "[REDACTED]" for every verb (%#v: GoString), so that no
// verb reaches the key: without it fmt would print %d, %x and the like of
// the struct by reflection.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// MarshalJSON encodes "[REDACTED]": a Secret in a struct that is
// marshalled (a log record, an API answer) never carries the key. Code
// that is meant to send the key puts Reveal's string in its own field.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[REDACTED]"; encoding/xml uses it.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// GobEncode encodes "[REDACTED]": gob ignores MarshalText, and would
// otherwise refuse any value holding a Secret (it has no exported
// fields) rather than encode it as JSON does, keys redacted.
func (Secret) GobEncode() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer: "[REDACTED]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
