package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// TrustAPIKeyHash tells a trust that holds a key from a revoked one, and
// a rotation brings the key back.
func TestTrustAPIKeyHash(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	res := fliptest.RegisterTrust(t, db, flipParams("Hashed", "HSH"))
	ctx := context.Background()
	if h, err := store.TrustAPIKeyHash(ctx, db, res.Trust.ID); err != nil || h != flip.HashAPIKey(res.APIKey.Reveal()) {
		t.Errorf("registered: hash %q, %v; want the key's", h, err)
	}
	change := func(f func(tx flip.DBTX) error) {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		if err := f(tx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	c := flip.TrustChange{TrustID: res.Trust.ID}
	change(func(tx flip.DBTX) error { _, err := flipRegistry().RevokeKey(ctx, tx, c); return err })
	if h, err := store.TrustAPIKeyHash(ctx, db, res.Trust.ID); err != nil || h != "" {
		t.Errorf("revoked: hash %q, %v; want \"\"", h, err)
	}
	var rotated flip.RegistrationResult
	change(func(tx flip.DBTX) (err error) { rotated, err = flipRegistry().RotateKeys(ctx, tx, c); return err })
	if h, err := store.TrustAPIKeyHash(ctx, db, res.Trust.ID); err != nil || h != flip.HashAPIKey(rotated.APIKey.Reveal()) {
		t.Errorf("rotated: hash %q, %v; want the new key's", h, err)
	}
	if _, err := store.TrustAPIKeyHash(ctx, db, uuid.New()); !errors.Is(err, store.ErrTrustNotFound) {
		t.Errorf("unknown id: %v, want ErrTrustNotFound", err)
	}
}
