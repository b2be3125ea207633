package flippgx_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/internal/exampledb"
	"github.com/londonaicentre/flip/store"
)

// examplePool is the hub's pgx pool, on a database of the example's own
// migrated by flip (store.Migrate), whose kit-slot pool holds slot.
func examplePool(ctx context.Context, slot string) *pgxpool.Pool {
	pool, err := pgxpool.New(ctx, exampledb.New().URL)
	if err != nil {
		panic(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO fl_kit_slot (slot_name, slot_number) VALUES ($1, 1)`, slot); err != nil {
		panic(err)
	}
	return pool
}

// Keep a Verifier's cache true to key changes made by any process, with
// the LISTEN session taken from the hub's pgx pool: database/sql is
// nowhere in the path.
func ExampleNewFeed() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := examplePool(ctx, "Trust_001")
	defer pool.Close()
	reg := flippgx.New(flip.NewRegistry(store.New()))
	res, err := reg.RegisterTrustDB(ctx, pool, flip.TrustParams{Name: "Guy's and St Thomas'", Code: "GSTT"})
	if err != nil {
		fmt.Println("register:", err)
		return
	}

	v := flippgx.NewVerifier(pool, flip.WithVerifierCache(time.Hour, 10_000))
	listenCtx, stop := context.WithCancel(ctx)
	listened := make(chan error, 1)
	go func() { listened <- v.Listen(listenCtx, flippgx.NewFeed(pool, nil)) }()
	defer func() { stop(); <-listened }()

	trust, err := v.Verify(ctx, res.APIKey.Reveal())
	fmt.Println(trust.Code, err)

	// Any process revokes the key (here this one, in a transaction of its own) ...
	tx, err := pool.Begin(ctx)
	if err != nil {
		fmt.Println("begin:", err)
		return
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := reg.RevokeKey(ctx, tx, flip.TrustChange{TrustID: res.Trust.ID}); err != nil {
		fmt.Println("revoke:", err)
		return
	}
	if err := tx.Commit(ctx); err != nil {
		fmt.Println("commit:", err)
		return
	}
	// ... and, within moments of the commit, the cached grant is gone.
	for _, err = v.Verify(ctx, res.APIKey.Reveal()); err == nil; _, err = v.Verify(ctx, res.APIKey.Reveal()) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println(err)
	// Output:
	// GSTT <nil>
	// no trust holds this API key
}
