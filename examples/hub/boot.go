package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/pqfeed"
	"github.com/londonaicentre/flip/store"
)

// SeedFunc is the boot step that seeds the platform's main users, e.g.
// NewSeedFunc(db, flip.NewSeeder(users), idp), or SeedFromEnv
// for the whole configuration. It runs after migration and before the
// first request is served. nil skips seeding.
type SeedFunc func(ctx context.Context) error

// The environment SeedFromEnv reads, besides flip.EnvMainUsers
// (FLIP_MAIN_USERS) and flip.EnvMainUsersFile (FLIP_MAIN_USERS_FILE).
const (
	// EnvUserPoolID names the Cognito user pool the main users are looked
	// up in; required when main users are configured.
	EnvUserPoolID = "COGNITO_USER_POOL_ID"
	// EnvCognitoEndpoint, when set, is the Cognito endpoint URL, e.g. the
	// cognito-local emulator's; unset means AWS.
	EnvCognitoEndpoint = "COGNITO_ENDPOINT"
)

// SeedTimeout bounds the seeding step, so that a hub whose identity
// provider hangs fails to boot instead of waiting for ever. Each lookup is
// bounded too (flip.DefaultLookupTimeout), and one that times out only
// skips its user.
const SeedTimeout = 2 * time.Minute

// placeholderRegion is the region used with EnvCognitoEndpoint when the
// AWS configuration names none: an emulator accepts any.
const placeholderRegion = "eu-west-2"

// NewSeedFunc returns the boot step that runs seeder through idp, writing
// on db (the hub's pool: one short transaction per user). Users the
// provider does not know, whose accounts do not prove the address (an
// unconfirmed sign-up with an admin's address gets nothing and cannot stop
// the boot), or that it cannot answer for are skipped with a warning in
// seeder's log and the hub still starts; a definitive failure (an HTTP 400
// or 403 from the provider, an address two verified accounts hold, a
// database error) is returned, and stops the boot.
func NewSeedFunc(db flip.DBTX, seeder *flip.Seeder, idp flip.IdentityProvider) SeedFunc {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, SeedTimeout)
		defer cancel()
		_, err := seeder.SeedMainUsers(ctx, db, idp)
		return err
	}
}

// SeedFromEnv builds the boot step that seeds the main users from the
// environment, read through getenv (os.Getenv in main):
//
//   - the main users from FLIP_MAIN_USERS (JSON) or FLIP_MAIN_USERS_FILE
//     (see flip.MainUsersFromEnv); with neither set, the step only logs
//     that seeding is skipped;
//   - the Cognito user pool COGNITO_USER_POOL_ID, reached at
//     COGNITO_ENDPOINT when that is set (the emulator), else at AWS, with
//     region and credentials from the standard AWS configuration chain
//     (AWS_REGION, AWS_ACCESS_KEY_ID, shared files, instance role). With
//     COGNITO_ENDPOINT and no AWS_ACCESS_KEY_ID, placeholder credentials
//     are used, which the emulator accepts.
//
// A configuration that cannot work (unreadable main users, users but no
// pool, no region for AWS) is an error here, before anything is migrated,
// so the hub refuses to start with a message saying what to set.
func SeedFromEnv(ctx context.Context, getenv func(string) string, db flip.DBTX, log *slog.Logger) (SeedFunc, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	users, err := flip.MainUsersFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("main users: %w", err)
	}
	if len(users) == 0 {
		return func(context.Context) error {
			log.Info("no main users configured; seeding skipped",
				slog.String("set", flip.EnvMainUsers+" or "+flip.EnvMainUsersFile))
			return nil
		}, nil
	}
	idp, err := CognitoFromEnv(ctx, getenv)
	if err != nil {
		return nil, err
	}
	seeder := flip.NewSeeder(users)
	seeder.Logger = log
	log.Info("main users will be seeded", slog.Int("users", len(users)), slog.String("user_pool_id", idp.UserPoolID()))
	return NewSeedFunc(db, seeder, idp), nil
}

// CognitoFromEnv builds the Cognito identity provider SeedFromEnv uses, from
// COGNITO_USER_POOL_ID, COGNITO_ENDPOINT and the AWS configuration chain.
func CognitoFromEnv(ctx context.Context, getenv func(string) string) (*cognito.Provider, error) {
	poolID, endpoint := getenv(EnvUserPoolID), getenv(EnvCognitoEndpoint)
	if poolID == "" {
		return nil, fmt.Errorf("main users are configured but %s is not set", EnvUserPoolID)
	}
	var opts []func(*config.LoadOptions) error
	if endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(endpoint))
		if getenv("AWS_ACCESS_KEY_ID") == "" {
			// The emulator accepts any signature; spare the default chain
			// its slow search for credentials that do not exist.
			opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if endpoint == "" {
			return nil, errors.New("no AWS region configured for Cognito: set AWS_REGION")
		}
		cfg.Region = placeholderRegion
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return cognito.NewFromConfig(cfg, poolID), nil
}

// ShutdownTimeout is how long Serve waits for requests in flight once its
// context ends.
const ShutdownTimeout = 10 * time.Second

// Prepare readies db for serving: it migrates the schema (store.Migrate
// with migrate's options, e.g. store.WithLogger; safe when several
// replicas boot at once) and then runs seed. It returns the first error,
// naming the step.
func Prepare(ctx context.Context, db *sql.DB, seed SeedFunc, migrate ...store.MigrateOption) error {
	if err := store.Migrate(ctx, db, migrate...); err != nil {
		return fmt.Errorf("boot: %w", err) // store's errors start with "migrate: "
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
func Boot(ctx context.Context, db *sql.DB, seed SeedFunc, srv *http.Server, ln net.Listener, migrate ...store.MigrateOption) error {
	if err := Prepare(ctx, db, seed, migrate...); err != nil {
		return err
	}
	return Serve(ctx, srv, ln)
}

// ListenForTrustChanges keeps v's cache true to the trust changes
// (rotations, revocations, deletions) that any process commits on the
// database at databaseURL, until ctx ends: v.Listen over a pqfeed
// connection of its own, so a key revoked through one replica stops
// authenticating at every other within moments, not at the end of the
// cache's TTL. Run it in a goroutine of its own for the server's life, on
// the Verifier given to NewServer, as main does. While the feed is not
// listening (starting, reconnecting, or stopped) v verifies every key
// against the database: correct, only uncached. A feed that stops before
// ctx ends is logged at error level.
func ListenForTrustChanges(ctx context.Context, v *flip.Verifier, databaseURL string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := v.Listen(ctx, pqfeed.New(databaseURL, log)); err != nil && ctx.Err() == nil {
		log.ErrorContext(ctx, "the trust change feed stopped; keys are verified without the cache from now on", slog.Any("error", err))
	}
}
