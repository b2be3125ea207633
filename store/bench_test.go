package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// benchDB returns a database whose pool holds n more free slots than it
// had, so a benchmark never runs it dry.
func benchDB(b *testing.B, db *fliptest.DB, n int) {
	b.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Bench_%s_%d", uuid.NewString()[:8], i)
	}
	if _, err := store.AddSlots(context.Background(), db, names...); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRegisterTrust measures one registration in its own transaction
// (begin, RegisterTrust, commit) on the real database.
func BenchmarkRegisterTrust(b *testing.B) {
	for _, v := range variants[:2] {
		b.Run(v.name, func(b *testing.B) {
			db := fliptest.NewDB(b, v.dbOptions()...)
			reg := flip.NewRegistry(store.New())
			ctx := context.Background()
			benchDB(b, db, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: fmt.Sprintf("Bench %d", i), Code: fmt.Sprintf("B%d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
		})
	}
}

// BenchmarkRegisterTrustParallel runs registrations from GOMAXPROCS×4
// goroutines, each with its own connection and transaction.
func BenchmarkRegisterTrustParallel(b *testing.B) {
	db := fliptest.NewDB(b)
	db.SetMaxOpenConns(32)
	reg := flip.NewRegistry(store.New())
	ctx := context.Background()
	benchDB(b, db, b.N)
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := uuid.NewString()
			if _, err := reg.RegisterTrustDB(ctx, db, flip.TrustParams{Name: "Bench " + id, Code: id}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
}
