package flip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cognitolocal"
)

// BenchmarkSeedMainUsers seeds 200 users on an empty user_profile and
// user_role, looking them up in the emulator through a proxy that adds 5ms
// to every request (a stand-in for the network between a hub and
// Cognito), one lookup at a time and with several in flight.
//
//	go test -run '^$' -bench SeedMainUsers -benchtime 5x .
func BenchmarkSeedMainUsers(b *testing.B) {
	const n = 200
	emu := cognitolocal.Shared(b)
	db := fliptest.NewDB(b)
	admin := emu.Client()
	pool := cognitolocal.NewUserPool(b, admin)
	users := mainUsers(n)
	for _, u := range users {
		cognitolocal.CreateUser(b, admin, pool, u.Email)
	}
	proxy := cognitolocal.NewProxy(b, emu.URL)
	proxy.SetLatency(5 * time.Millisecond)
	idp := cognito.New(cognitolocal.NewClient(proxy.URL), pool, cognito.WithRateLimit(0, 0)) // no quota on the emulator
	ctx := context.Background()

	for _, concurrency := range []int{1, flip.DefaultSeedConcurrency, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			seeder := flip.NewSeeder(users)
			seeder.Concurrency = concurrency
			for range b.N {
				b.StopTimer()
				if _, err := db.ExecContext(ctx, `TRUNCATE user_role, user_profile`); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				report, err := seeder.SeedMainUsers(ctx, db, idp)
				if err != nil {
					b.Fatal(err)
				}
				if report.Count(flip.SeedCreated) != n {
					b.Fatalf("report: %s", report)
				}
			}
		})
	}
}
