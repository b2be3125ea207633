package fliptest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// IdentityProvider is a flip.IdentityProvider over a directory held in
// memory, for seeding without Cognito: AddUser puts in it an account that
// proves its address (the seeder grants it the main user's role),
// AddAccount any other account (an unconfirmed sign-up carrying someone's
// address, an unverified one, a disabled one, a second holder of an
// address), and FailEmail makes every lookup of one address fail with the
// error of your choice. Like a Cognito pool created in the console, it
// matches addresses case-insensitively; like the Cognito adapter, it
// refuses an address flip.ValidateEmail refuses, answers an unknown one
// with flip.ErrUserNotFound, and fails a lookup whose context has ended as
// a transient error. The zero value is ready; it is safe for concurrent
// use.
//
//	idp := fliptest.NewIdentityProvider()
//	ada := idp.AddUser("ada.admin@example.com") // ada.ID is her sub
//	idp.AddAccount(flip.User{Email: "ada.admin@example.com", Status: flip.UserUnconfirmed, Enabled: true}) // ignored, with a warning
//	idp.FailEmail("rita@example.com", &flip.IdentityProviderError{Status: 503, Kind: flip.ErrIdentityProviderUnavailable})
//	report, err := flip.NewSeeder(users).SeedMainUsers(ctx, db, idp)
type IdentityProvider struct {
	mu       sync.Mutex
	accounts []flip.User
	errs     map[string]error
}

var _ flip.IdentityProvider = (*IdentityProvider)(nil)

// NewIdentityProvider returns an empty IdentityProvider.
func NewIdentityProvider() *IdentityProvider { return &IdentityProvider{} }

// AddUser adds an account with this email that proves it (enabled,
// EmailVerified, status flip.UserConfirmed) and a new random id, and
// returns it; accounts already holding exactly this email are replaced.
func (p *IdentityProvider) AddUser(email string) flip.User {
	u := flip.User{ID: uuid.New(), Email: email, Enabled: true, EmailVerified: true, Status: flip.UserConfirmed}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts = slices.DeleteFunc(p.accounts, func(a flip.User) bool { return a.Email == email })
	p.accounts = append(p.accounts, u)
	return u
}

// AddAccount adds u as one more account, beside any holding the same
// address, and returns it; a zero u.ID gets a new random id. Its fields
// are what the seeder judges (flip.User.ProvesAddress): leave
// EmailVerified false, or set Status to flip.UserUnconfirmed, for an
// account that does not prove its address.
func (p *IdentityProvider) AddAccount(u flip.User) flip.User {
	if u.ID == uuid.Nil {
		u.ID = uuid.New()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts = append(p.accounts, u)
	return u
}

// FailEmail makes every lookup of email return err, until FailEmail(email,
// nil). A *flip.IdentityProviderError with a Kind is classified by the
// seeder as the adapter's errors are; Code flip.CodeAmbiguousEmail stands
// for an answer that does not list every account.
func (p *IdentityProvider) FailEmail(email string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.errs == nil {
		p.errs = map[string]error{}
	}
	p.errs[email] = err
}

// LookupUsersByEmail implements flip.IdentityProvider: every account whose
// email equals email case-insensitively, in the order they were added.
func (p *IdentityProvider) LookupUsersByEmail(ctx context.Context, email string) ([]flip.User, error) {
	if err := flip.ValidateEmail(email); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &flip.IdentityProviderError{Op: "ListUsers", Kind: flip.ErrIdentityProviderUnavailable, Err: err}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.errs[email]; err != nil {
		return nil, err
	}
	var found []flip.User
	for _, a := range p.accounts {
		if strings.EqualFold(a.Email, email) {
			found = append(found, a)
		}
	}
	if len(found) == 0 {
		return nil, &flip.IdentityProviderError{Op: "ListUsers", Status: http.StatusOK, Kind: flip.ErrUserNotFound}
	}
	return found, nil
}

// KeyMinter is a flip.KeyMinter for tests. MintKey calls MintKeyFn when
// it is set (to fail, or to hand out keys of the test's choosing);
// otherwise it mints keys that are the same in every run: well-formed
// (flip.CheckKey accepts them), encoded by flip.RandomKeyMinter from bytes
// derived from Seed and a counter instead of crypto/rand. Never use it in
// production, where such keys would be guessable.
//
// Two KeyMinters with one Seed mint the same keys, and a database refuses
// a second trust with an API-key hash it holds already: give each minter
// that shares a database its own Seed (t.Name() will do). The zero value
// mints flip.PrefixedKeys; a KeyMinter is safe for concurrent use.
//
//	reg := flip.NewRegistry(store.New(), flip.WithKeyMinter(&fliptest.KeyMinter{Seed: t.Name()}))
type KeyMinter struct {
	Seed      string
	Format    flip.KeyFormat
	MintKeyFn func(kind flip.KeyKind) (string, error)

	mu sync.Mutex
	n  uint64
}

var _ flip.KeyMinter = (*KeyMinter)(nil)

// MintKey implements flip.KeyMinter.
func (m *KeyMinter) MintKey(kind flip.KeyKind) (string, error) {
	if m.MintKeyFn != nil {
		return m.MintKeyFn(kind)
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
