package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/londonaicentre/flip/store"
)

// SeedFunc is the boot step that seeds the platform's main users, e.g.
//
//	func(ctx context.Context) error {
//		_, err := flip.NewSeeder(store.New(), users).SeedMainUsers(ctx, db, idp)
//		return err
//	}
//
// It runs after migration and before the first request is served. nil
// skips seeding.
type SeedFunc func(ctx context.Context) error

// ShutdownTimeout is how long Serve waits for requests in flight once its
// context ends.
const ShutdownTimeout = 10 * time.Second

// Prepare readies db for serving: it migrates the schema (store.Migrate,
// safe when several replicas boot at once) and then runs seed. It returns
// the first error, naming the step.
func Prepare(ctx context.Context, db *sql.DB, seed SeedFunc) error {
	if err := store.Migrate(ctx, db); err != nil {
		return fmt.Errorf("boot: migrate: %w", err)
	}
	if seed != nil {
		if err := seed(ctx); err != nil {
			return fmt.Errorf("boot: seed main users: %w", err)
		}
	}
	return nil
}

// Serve serves srv on ln until ctx ends, then shuts down gracefully,
// letting requests in flight finish for up to ShutdownTimeout. It returns
// nil after a clean shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("boot: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("boot: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("boot: serve: %w", err)
	}
	return nil
}

// Boot is the hub's start-up path: Prepare (migrate, then seed), then
// Serve. Nothing is served unless both succeeded, so a hub never answers
// with a schema or main users it does not have. ln may be bound before the
// call: connections made meanwhile wait in its backlog and are answered
// once Prepare is done, so a readiness probe simply times out until then.
func Boot(ctx context.Context, db *sql.DB, seed SeedFunc, srv *http.Server, ln net.Listener) error {
	if err := Prepare(ctx, db, seed); err != nil {
		return err
	}
	return Serve(ctx, srv, ln)
}
