package flippgx_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", database/sql over pgx, measured beside pgx native
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/flippgx"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// BenchmarkRegisterTrust measures one registration on flip's schema, in
// the caller's transaction (begin, RegisterTrust, commit: the savepoint
// included) and in one of its own (RegisterTrustDB), through pgx natively
// and through database/sql with lib/pq and with pgx's stdlib driver, one
// caller at a time on a local server.
func BenchmarkRegisterTrust(b *testing.B) {
	type way struct {
		name   string
		driver string // database/sql driver; "" for pgx native
		ownTx  bool
	}
	for _, w := range []way{
		{"pgx_native/tx", "", false},
		{"pgx_native/own_tx", "", true},
		{"database_sql_lib_pq/tx", "postgres", false},
		{"database_sql_lib_pq/own_tx", "postgres", true},
		{"database_sql_pgx_stdlib/tx", "pgx", false},
		{"database_sql_pgx_stdlib/own_tx", "pgx", true},
	} {
		b.Run(w.name, func(b *testing.B) {
			driver := w.driver
			if driver == "" {
				driver = "postgres"
			}
			db := fliptest.NewDB(b, fliptest.WithDriver(driver))
			ctx := context.Background()
			names := make([]string, b.N)
			for i := range names {
				names[i] = fmt.Sprintf("Bench_%s_%d", uuid.NewString()[:8], i)
			}
			if _, err := store.AddSlots(ctx, db, names...); err != nil {
				b.Fatal(err)
			}
			core := flip.NewRegistry(store.New())
			register := func(p flip.TrustParams) error { _, err := core.RegisterTrustDB(ctx, db, p); return err }
			switch {
			case w.driver == "":
				pool, err := pgxpool.New(ctx, db.URL)
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Close()
				reg := flippgx.New(core)
				register = func(p flip.TrustParams) error { _, err := reg.RegisterTrustDB(ctx, pool, p); return err }
				if !w.ownTx {
					register = func(p flip.TrustParams) error {
						tx, err := pool.Begin(ctx)
						if err != nil {
							return err
						}
						defer tx.Rollback(ctx)
						if _, err := reg.RegisterTrust(ctx, tx, p); err != nil {
							return err
						}
						return tx.Commit(ctx)
					}
				}
			case !w.ownTx:
				register = func(p flip.TrustParams) error {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					if _, err := core.RegisterTrust(ctx, tx, p); err != nil {
						return err
					}
					return tx.Commit()
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := register(flip.TrustParams{Name: fmt.Sprintf("Bench %d", i), Code: fmt.Sprintf("B%d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
		})
	}
}
