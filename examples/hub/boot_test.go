package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

func TestPrepare_MigratesBeforeSeeding(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.AtVersion(1))
	seeded := false
	err := Prepare(t.Context(), db.DB.DB, func(ctx context.Context) error {
		v, err := store.AppliedVersion(ctx, db)
		if err != nil || v != store.LatestVersion() {
			t.Errorf("seeding ran at schema version %d (%v), want %d", v, err, store.LatestVersion())
		}
		seeded = true
		return nil
	})
	if err != nil || !seeded {
		t.Fatalf("Prepare = %v, seeded %v", err, seeded)
	}
	if err := Prepare(t.Context(), db.DB.DB, nil); err != nil {
		t.Errorf("second boot: %v", err)
	}
}

func TestBoot_StopsBeforeServingWhenAStepFails(t *testing.T) {
	t.Parallel()
	seedErr := errors.New("identity provider refused: 403")
	t.Run("seed", func(t *testing.T) {
		t.Parallel()
		db := fliptest.NewDB(t)
		ln := listen(t)
		err := Boot(t.Context(), db.DB.DB, func(context.Context) error { return seedErr }, &http.Server{Handler: http.NotFoundHandler()}, ln)
		if !errors.Is(err, seedErr) {
			t.Fatalf("Boot = %v, want the seeding error", err)
		}
	})
	t.Run("migrate", func(t *testing.T) {
		t.Parallel()
		db := fliptest.NewDB(t)
		db.Close()
		seeded := false
		err := Boot(t.Context(), db.DB.DB, func(context.Context) error { seeded = true; return nil }, &http.Server{}, listen(t))
		if err == nil || seeded {
			t.Fatalf("Boot = %v, seeded %v; want a migration error before seeding", err, seeded)
		}
	})
}

func TestBoot_ServesUntilContextEnds(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	ln := listen(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Boot(ctx, db.DB.DB, nil, &http.Server{Handler: NewHandler(Config{DB: db.DB.DB, Authoriser: fakeAuth})}, ln)
	}()
	url := "http://" + ln.Addr().String() + "/healthz"
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, http.MethodGet, url, "", "", nil)
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz never answered 200 (last %d)", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Boot after cancel = %v, want nil", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
