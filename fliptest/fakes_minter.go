package fliptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/londonaicentre/flip"
)

// KeyMinter is a deterministic flip.KeyMinter: the n-th key it mints is
// the same in every run, and still a well-formed key of its kind (it passes
// flip.CheckKey), because it is encoded by flip.RandomKeyMinter from bytes
// derived from Seed and n instead of crypto/rand. Use it where a test or
// an example needs stable output; never in production, where its keys
// would be guessable.
//
// Two KeyMinters with the same Seed mint the same keys, so tests sharing
// one database should give each minter its own Seed (t.Name() will do):
// the database refuses a second trust with an API-key hash it already
// holds.
//
// The zero value mints PrefixedKeys with an empty seed. It is safe for
// concurrent use.
type KeyMinter struct {
	// Seed makes this minter's keys differ from another's.
	Seed string
	// Format of the keys; the zero value is flip.PrefixedKeys.
	Format flip.KeyFormat

	faults faults
	mu     sync.Mutex
	n      uint64
}

var _ flip.KeyMinter = (*KeyMinter)(nil)

// NewKeyMinter returns a KeyMinter with the given seed ("" is fine when one
// minter is all the test uses).
func NewKeyMinter(seed string) *KeyMinter { return &KeyMinter{Seed: seed} }

// MintKey implements flip.KeyMinter. A failure injected with FailNext or
// OnCall is returned before a key is used up, so the sequence of keys
// minted is the same with and without faults.
func (m *KeyMinter) MintKey(kind flip.KeyKind) (string, error) {
	if err := m.faults.enter(context.Background(), MethodMintKey); err != nil {
		return "", err
	}
	m.mu.Lock()
	m.n++
	n := m.n
	m.mu.Unlock()
	h := sha256.New()
	h.Write([]byte("fliptest.KeyMinter\x00" + m.Seed + "\x00"))
	_ = binary.Write(h, binary.BigEndian, n)
	return flip.RandomKeyMinter{Format: m.Format, Rand: bytes.NewReader(h.Sum(nil))}.MintKey(kind)
}

// Minted returns how many keys were minted.
func (m *KeyMinter) Minted() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int(m.n)
}

// FailNext makes the next MintKey return err.
func (m *KeyMinter) FailNext(err error) { m.faults.failNext(MethodMintKey, err) }

// OnCall installs hook, consulted before every MintKey with no FailNext
// error queued; a non-nil result is returned as MintKey's error.
func (m *KeyMinter) OnCall(hook func(ctx context.Context, method Method) error) {
	m.faults.onCall(hook)
}
