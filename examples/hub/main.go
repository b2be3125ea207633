// Command hub is a minimal FLIP hub built on flip: it registers trusts
// over HTTP and checks trust API keys, to show how the library fits into a
// net/http service. Copy what you need; it is not a product.
//
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	FLIP_HUB_ADMIN_TOKEN=change-me FLIP_HUB_ADMIN_ID=$(uuidgen) \
//	go run ./examples/hub
//
//	curl -X POST localhost:8080/admin/trusts -H 'Authorization: Bearer change-me' \
//	     -H 'Content-Type: application/json' -d '{"name":"Guy'\''s and St Thomas'\''","code":"GSTT","region":"London"}'
//	curl localhost:8080/trust/me -H 'X-API-Key: flip_ak_…'
//
// At start it migrates the database, seeds the main users and only then
// listens (HUB_ADDR, default 127.0.0.1:8080). Add kit slots first, e.g.
// with go run ./examples/register-trust --add-slots Trust_001..Trust_050.
// Without FLIP_HUB_ADMIN_TOKEN every admin request is answered 401.
//
// Seeding looks the main users of FLIP_MAIN_USERS (JSON) or
// FLIP_MAIN_USERS_FILE up in the Cognito user pool COGNITO_USER_POOL_ID,
// with region and credentials from the usual AWS configuration; set
// COGNITO_ENDPOINT to use the cognito-local emulator instead of AWS. With
// no main users configured, seeding is skipped with a log line. A user
// Cognito does not know, or cannot answer for, is skipped with a warning;
// a 400 or 403 from Cognito stops the boot (see SeedFromEnv):
//
//	FLIP_MAIN_USERS='[{"email":"ada.admin@example.com","role":"Admin","name":"Ada Admin","organisation":"Example Trust"}]' \
//	COGNITO_USER_POOL_ID=local_abc123 COGNITO_ENDPOINT=http://127.0.0.1:9229 \
//	go run ./examples/hub
package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "github.com/lib/pq" // the "postgres" driver
)

// defaultDatabaseURL is used when DATABASE_URL is not set: the local
// development server.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(ctx, log); err != nil {
		log.Error("hub stopped", slog.Any("error", err))
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	dbURL := getenv("DATABASE_URL", defaultDatabaseURL)
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(20)

	tokens := map[string]uuid.UUID{}
	if tok := os.Getenv("FLIP_HUB_ADMIN_TOKEN"); tok != "" {
		id, err := uuid.Parse(os.Getenv("FLIP_HUB_ADMIN_ID"))
		if err != nil {
			return err
		}
		tokens[tok] = id
	} else {
		log.Warn("FLIP_HUB_ADMIN_TOKEN is not set: every admin request will be refused")
	}

	seed, err := SeedFromEnv(ctx, os.Getenv, db, log)
	if err != nil {
		return fmt.Errorf("boot: seeding configuration: %w", err)
	}

	ln, err := net.Listen("tcp", getenv("HUB_ADDR", "127.0.0.1:8080"))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           NewHandler(Config{DB: db, Authoriser: NewStaticTokenAuthoriser(tokens), Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("hub starting", slog.String("addr", ln.Addr().String()))
	return Boot(ctx, db, seed, srv, ln)
}

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
