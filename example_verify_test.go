package flip_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Check the API key a trust presents.
func ExampleVerifier() {
	ctx := context.Background()
	db := exampleDB()
	if _, err := store.AddSlots(ctx, db, "Trust_001"); err != nil {
		fmt.Println("add slots:", err)
		return
	}
	res, err := flip.NewRegistry(store.New()).RegisterTrustDB(ctx, db, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	if err != nil {
		fmt.Println("register:", err)
		return
	}

	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))

	trust, err := v.Verify(ctx, res.APIKey.Reveal())
	fmt.Println(trust.Code, err)

	// A mistyped key (one character changed) fails its checksum and never
	// reaches the database.
	typo := []byte(res.APIKey.Reveal())
	typo[20] ^= 1
	_, err = v.Verify(ctx, string(typo))
	fmt.Println(errors.Is(err, flip.ErrMalformedKey), errors.Is(err, flip.ErrUnauthorized))

	// A well-formed key no trust holds.
	other, _ := flip.RandomKeyMinter{}.MintKey(flip.TrustAPIKey)
	_, err = v.Verify(ctx, other)
	fmt.Println(err, errors.Is(err, flip.ErrUnauthorized))

	// Grants are cached, refusals never.
	fmt.Println("cached:", v.CachedGrants())
	// Output:
	// GSTT <nil>
	// true true
	// no trust holds this API key true
	// cached: 1
}

// After committing a change to the trust table, drop cached grants so the
// change takes effect at once.
func ExampleVerifier_Purge() {
	ctx := context.Background()
	db := exampleDB()
	if _, err := store.AddSlots(ctx, db, "Trust_001"); err != nil {
		fmt.Println("add slots:", err)
		return
	}
	res, err := flip.NewRegistry(store.New()).RegisterTrustDB(ctx, db, flip.TrustParams{Name: "A", Code: "A"})
	if err != nil {
		fmt.Println("register:", err)
		return
	}

	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Minute, 10_000))
	_, _ = v.Verify(ctx, res.APIKey.Reveal())
	fmt.Println("cached:", v.CachedGrants())
	v.Purge() // or v.Invalidate(res.Trust.ID) for one trust
	fmt.Println("cached:", v.CachedGrants())
	// Output:
	// cached: 1
	// cached: 0
}
