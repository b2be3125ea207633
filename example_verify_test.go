package flip_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
)

// Check the API key a trust presents. In the hub the lookup is
// store.NewAPIKeyLookup(db) on the connection pool; here it is fliptest's
// in-memory store.
func ExampleVerifier() {
	ctx := context.Background()
	s := fliptest.NewStore()
	_, _ = s.AddSlots("Trust_001")
	tx := s.Begin()
	res, _ := flip.NewRegistry(s).RegisterTrust(ctx, tx, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	_ = tx.Commit()

	v := flip.NewVerifier(s, flip.WithCache(time.Minute, 10_000))

	trust, err := v.Verify(ctx, res.APIKey)
	fmt.Println(trust.Code, err)

	// A mistyped key (one character changed) fails its checksum and never
	// reaches the database.
	typo := []byte(res.APIKey)
	typo[20] ^= 1
	_, err = v.Verify(ctx, string(typo))
	fmt.Println(errors.Is(err, flip.ErrMalformedKey), errors.Is(err, flip.ErrUnauthorized))

	// A well-formed key no trust holds.
	other, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	_, err = v.Verify(ctx, other)
	fmt.Println(err, errors.Is(err, flip.ErrUnauthorized))

	fmt.Println("database lookups:", s.Calls(fliptest.MethodLookupAPIKeyHash))
	// Output:
	// GSTT <nil>
	// true true
	// no trust holds this API key true
	// database lookups: 2
}

// After committing a change to the trust table, drop cached grants so the
// change takes effect at once.
func ExampleVerifier_Purge() {
	ctx := context.Background()
	s := fliptest.NewStore()
	_, _ = s.AddSlots("Trust_001")
	tx := s.Begin()
	res, _ := flip.NewRegistry(s).RegisterTrust(ctx, tx, flip.TrustParams{Name: "A", Code: "A"})
	_ = tx.Commit()

	v := flip.NewVerifier(s, flip.WithCache(time.Minute, 10_000))
	_, _ = v.Verify(ctx, res.APIKey)
	fmt.Println("cached:", v.CachedGrants())
	v.Purge() // or v.Invalidate(res.Trust.ID) for one trust
	fmt.Println("cached:", v.CachedGrants())
	// Output:
	// cached: 1
	// cached: 0
}
