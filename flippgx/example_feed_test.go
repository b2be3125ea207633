package flippgx_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/internal/exampledb"
	"github.com/londonaicentre/flip/store"
)

// examplePool is the hub's pgx pool, on a database of the example's own
// migrated by flip (store.Migrate).
func examplePool(ctx context.Context) *pgxpool.Pool {
	pool, err := pgxpool.New(ctx, exampledb.New().URL)
	if err != nil {
		panic(err)
	}
	return pool
}

// Keep a Verifier's cache true to key changes made by any process, with
// the LISTEN session taken from the hub's pgx pool.
func ExampleNewFeed() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := examplePool(ctx)
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool) // database/sql over the same pool, for flip's executor
	defer db.Close()
	if _, err := store.AddSlots(ctx, db, "Trust_001"); err != nil {
		fmt.Println("add slots:", err)
		return
	}
	reg := flip.NewRegistry(store.New())
	res, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	if err != nil {
		fmt.Println("register:", err)
		return
	}

	v := flip.NewVerifier(db, flip.WithVerifierCache(time.Hour, 10_000))
	listenCtx, stop := context.WithCancel(ctx)
	listened := make(chan error, 1)
	go func() { listened <- v.Listen(listenCtx, flippgx.NewFeed(pool, nil)) }()
	defer func() { stop(); <-listened }()

	trust, err := v.Verify(ctx, res.APIKey)
	fmt.Println(trust.Code, err)

	// Any process revokes the key (here this one, in a transaction of its own) ...
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		fmt.Println("begin:", err)
		return
	}
	defer tx.Rollback()
	if _, err := reg.RevokeKey(ctx, tx, flip.TrustChange{TrustID: res.Trust.ID}); err != nil {
		fmt.Println("revoke:", err)
		return
	}
	if err := tx.Commit(); err != nil {
		fmt.Println("commit:", err)
		return
	}
	// ... and, within moments of the commit, the cached grant is gone.
	for _, err = v.Verify(ctx, res.APIKey); err == nil; _, err = v.Verify(ctx, res.APIKey) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(err)
	// Output:
	// GSTT <nil>
	// no trust holds this API key
}
