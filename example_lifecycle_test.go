package flip_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// Rotate a trust's keys, revoke them, bring them back, and delete the
// trust, each inside a transaction of the caller's: the old key is refused
// from each commit on.
func ExampleRegistry_RotateKeys() {
	ctx := context.Background()
	db := exampleDB()
	if _, err := store.AddSlots(ctx, db, "Trust_001"); err != nil {
		fmt.Println("add slots:", err)
		return
	}
	reg := flip.NewRegistry(store.New())
	verifier := flip.NewVerifier(db)
	first, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	if err != nil {
		fmt.Println("register:", err)
		return
	}
	change := flip.TrustChange{TrustID: first.Trust.ID} // AuditUserID: the admin's Cognito sub

	// inTx runs op in a transaction and commits it.
	inTx := func(op func(tx *sql.Tx) error) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if err := op(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	refused := func(key string) bool {
		_, err := verifier.Verify(ctx, key)
		return errors.Is(err, flip.ErrUnauthorized)
	}

	var rotated flip.RegistrationResult
	err = inTx(func(tx *sql.Tx) (err error) {
		rotated, err = reg.RotateKeys(ctx, tx, change)
		return err
	})
	fmt.Println("rotated:", err, "old refused:", refused(first.APIKey.Reveal()), "new refused:", refused(rotated.APIKey.Reveal()), rotated.KitSlot.Name)

	err = inTx(func(tx *sql.Tx) error { _, err := reg.RevokeKey(ctx, tx, change); return err })
	fmt.Println("revoked:", err, "key refused:", refused(rotated.APIKey.Reveal()))

	var deleted flip.DeletionResult
	err = inTx(func(tx *sql.Tx) (err error) {
		deleted, err = reg.DeleteTrust(ctx, tx, change)
		return err
	})
	fmt.Println("deleted:", err, deleted.Trust.Name, "freed:", deleted.FreedKitSlots[0].Name, "grants deleted:", deleted.DependentRowsDeleted["user_role"])

	err = inTx(func(tx *sql.Tx) error { _, err := reg.DeleteTrust(ctx, tx, change); return err })
	fmt.Println("again:", errors.Is(err, flip.ErrTrustNotFound))
	// Output:
	// rotated: <nil> old refused: true new refused: false Trust_001
	// revoked: <nil> key refused: true
	// deleted: <nil> Guy's and St Thomas' freed: Trust_001 grants deleted: 0
	// again: true
}
