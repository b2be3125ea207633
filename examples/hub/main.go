// Command hub is a minimal FLIP hub built on flip: it registers trusts
// over HTTP, rotates, revokes and deletes them, and checks trust API keys,
// to show how the library fits into a net/http service. Copy what you
// need; it is not a product.
//
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	FLIP_HUB_ADMIN_TOKEN=change-me FLIP_HUB_ADMIN_ID=$(uuidgen) \
//	go run ./examples/hub
//
//	curl -X POST localhost:8080/admin/trusts -H 'Authorization: Bearer change-me' \
//	     -H 'Content-Type: application/json' -d '{"name":"Guy'\''s and St Thomas'\''","code":"GSTT","region":"London"}'
//	curl localhost:8080/trust/me -H 'X-API-Key: flip_ak_…'
//	curl -X POST localhost:8080/admin/trusts/$ID/rotate-key -H 'Authorization: Bearer change-me'
//	curl -X POST localhost:8080/admin/trusts/$ID/revoke -H 'Authorization: Bearer change-me'
//	curl -X DELETE localhost:8080/admin/trusts/$ID -H 'Authorization: Bearer change-me'
//
// The routes (see NewHandler):
//
//	POST   /admin/trusts                  register a trust: 201 with its keys
//	POST   /admin/trusts/{id}/rotate-key  new keys: 200 with them, as registration's 201
//	POST   /admin/trusts/{id}/revoke      the API key stops authenticating: 200
//	DELETE /admin/trusts/{id}             the trust and its rows go, its slots are freed: 200
//	GET    /trust/me                      the calling trust, by its API key
//	GET    /healthz                       readiness
//
// # Pools, bounds and timeouts
//
// Admin writes (registrations and the trust changes: rotation,
// revocation, deletion) must never stop a trust's requests from being
// answered, and must never commit after their client has been given up on
// (a trust would exist with keys nobody holds, or hold keys nobody has).
// The hub gets both from four small measures, all defined in server.go:
//
//   - Two connection pools (OpenPools): key verification and /healthz use
//     a pool of VerifyPoolSize (20) connections that nothing able to wait
//     on a lock touches; admin writes use their own pool of AdminPoolSize
//     (4). A lock that blocks them can use up only the admin pool. This is
//     the measure that isolates; the others make failures fast.
//   - One bound on admin writes in flight (a Bound), equal to the admin
//     pool's size and shared by registrations and changes: one more is
//     answered 503 with Retry-After at once instead of queueing for a
//     connection.
//   - lock_timeout (DefaultLockTimeout, 2s) set with SET LOCAL in every
//     admin transaction: a held lock becomes a fast, retryable 503.
//   - A deadline on every admin write, RegistrationTimeout(WriteTimeout):
//     the server's WriteTimeout (30s) less a margin (5s). The library call
//     and the commit both run under it; once it has passed database/sql
//     rolls the transaction back and refuses the commit, and the client
//     still gets its 503. The commit is the last thing before the 201 or
//     200 is written. NewServer derives both values from one setting.
//
// /healthz pings the verification pool within HealthTimeout (1s): 200 when
// trusts' keys can be checked, 503 when they cannot. Use it as the
// readiness probe.
//
// # Status codes of POST /admin/trusts
//
//	201 registered; the body holds both keys, the only copy
//	400 bad input (blank, malformed or hostile name, code or region; bad
//	    JSON; a key repeated, unknown, or not spelled exactly name, code or
//	    region)
//	401, 403 no credentials, or not an admin
//	409 duplicate trust, or no free kit slot (add slots)
//	413, 415 body too large, not application/json
//	503 + Retry-After: nothing was registered, try again: too many
//	    admin writes in flight, every free kit slot being claimed
//	    (flip.ErrKitSlotsBusy), a retryable conflict or lock timeout
//	    (flip.ErrRetryable), or the deadline passed
//	500 anything else, with no detail; also a commit whose outcome is
//	    unknown (the connection broke during COMMIT)
//
// # Status codes of rotate-key, revoke and DELETE
//
// Each runs in a transaction of the request's own, audited as the admin
// (rotations and revocations in flip_trust_key_audit, deletions in
// trusts_audit), and rolled back on every error: only a 200 changed
// anything.
//
//	200 done. rotate-key: the registration's 201 body with the new keys,
//	    the only copy; the old API key is refused from now on. revoke:
//	    {"id","name","status":"revoked"}; the trust and its kit slot stay,
//	    and rotate-key brings it back. DELETE: {"status":"deleted",
//	    "trust_id","name","freed_fl_kit_slot" (the first freed slot, or
//	    null),"freed_fl_kit_slots","dependent_rows_deleted" (rows per table
//	    that references trust)}
//	400 the id is not a UUID (checked after the credentials; 400 rather
//	    than 404 so that a mistyped id is not taken for a deleted trust)
//	401, 403 no credentials, or not an admin
//	404 no trust has this id (a retried DELETE whose first try committed)
//	405 another method (ServeMux's, with Allow)
//	409 DELETE only: a row of the trust's is referenced from a table that
//	    is not the trust's; the message names both tables; nothing deleted
//	503 + Retry-After: nothing was changed, try again: too many admin
//	    writes in flight, a retryable conflict or lock timeout (e.g. the
//	    trust's row held by another transaction), or the deadline passed
//	500 anything else, with no detail; also a commit whose outcome is
//	    unknown (rotate-key: rotate again, to have keys for certain)
//
// After the commit the hub drops the trust's cached grant from its own
// Verifier at once; other replicas hear of the change on the database's
// change feed (ListenForTrustChanges, started by main), within moments.
//
// GET /trust/me answers 401 for a missing, unknown or revoked key and 503
// when the key cannot be checked.
//
// # Running it
//
// The database comes from DATABASE_URL (a URL or a key=value connection
// string), which must be set: there is no default, so that a forgotten
// setting stops the hub (exit 1) instead of pointing it at whatever
// database listens locally. Its password never reaches the log. At start
// the hub migrates the database, seeds the main users and only then
// listens (HUB_ADDR, default 127.0.0.1:8080). Add kit slots first, e.g.
// with go run ./examples/register-trust --add-slots Trust_001..Trust_050
// (with the same DATABASE_URL), or set FL_KIT_SLOT_NAMES to a JSON list of
// slot names: as the reference hub does in development, a registration
// that finds the pool empty then adds the names it lacks and claims again
// (flip.WithSlotNameSource).
// Without FLIP_HUB_ADMIN_TOKEN every admin request is answered 401.
//
// Seeding looks the main users of FLIP_MAIN_USERS (JSON) or
// FLIP_MAIN_USERS_FILE up in the Cognito user pool COGNITO_USER_POOL_ID,
// with region and credentials from the usual AWS configuration; set
// COGNITO_ENDPOINT to use the cognito-local emulator instead of AWS. With
// no main users configured, seeding is skipped with a log line. Only an
// account that proves the address (email_verified, enabled, a status such
// as CONFIRMED; see flip.User.ProvesAddress) gets a main user's role: any
// other account with the address, an unconfirmed sign-up for one, is
// ignored with a warning. A user Cognito does not know, whose accounts do
// not prove the address, or that it cannot answer for (5xx, throttling,
// timeouts), is skipped with a warning; a 400 or 403 from Cognito, an
// email two verified accounts hold, or a configuration fault (a host that
// does not resolve, a TLS failure, missing or refused credentials, an
// unknown user pool) stops the boot with an error naming the user (see
// SeedFromEnv):
//
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	FLIP_MAIN_USERS='[{"email":"ada.admin@example.com","role":"Admin","name":"Ada Admin","organisation":"Example Trust"}]' \
//	COGNITO_USER_POOL_ID=local_abc123 COGNITO_ENDPOINT=http://127.0.0.1:9229 \
//	go run ./examples/hub
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/cmddb"
	"github.com/londonaicentre/flip/store"
)

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
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		return fmt.Errorf("%w: set DATABASE_URL to the hub's database", cmddb.ErrNoDatabase)
	}
	verifyDB, adminDB, err := OpenPools(dbURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer verifyDB.Close()
	defer adminDB.Close()
	if err := verifyDB.PingContext(ctx); err != nil {
		return fmt.Errorf("cannot connect to the database at DATABASE_URL (%s): check that PostgreSQL is running there and the URL is right: %w",
			cmddb.Redact(dbURL), cmddb.RedactError(dbURL, err))
	}

	tokens := map[string]uuid.UUID{}
	if tok := os.Getenv("FLIP_HUB_ADMIN_TOKEN"); tok != "" {
		id, err := uuid.Parse(os.Getenv("FLIP_HUB_ADMIN_ID"))
		if err != nil {
			return fmt.Errorf("FLIP_HUB_ADMIN_TOKEN is set, so FLIP_HUB_ADMIN_ID must be that admin's Cognito sub (a UUID, recorded in trusts_audit): %q: %w", os.Getenv("FLIP_HUB_ADMIN_ID"), err)
		}
		tokens[tok] = id
	} else {
		log.Warn("FLIP_HUB_ADMIN_TOKEN is not set: every admin request will be refused")
	}

	seed, err := SeedFromEnv(ctx, os.Getenv, adminDB, log)
	if err != nil {
		return fmt.Errorf("boot: seeding configuration: %w", err)
	}

	ln, err := net.Listen("tcp", getenv("HUB_ADDR", "127.0.0.1:8080"))
	if err != nil {
		return err
	}
	verifier := newVerifier(verifyDB)
	go ListenForTrustChanges(ctx, verifier, dbURL, log)
	var regOpts []flip.Option                 // the handlers log each outcome themselves
	if os.Getenv("FL_KIT_SLOT_NAMES") != "" { // set and not empty, as register-trust reads it
		// As the reference hub in development: the pool grows from this
		// JSON list when a registration finds it empty. In production the
		// reference reads an SSM parameter: plug in a SlotNameSource of
		// your own.
		regOpts = append(regOpts, flip.WithSlotNameSource(flip.SlotNamesFromEnv("FL_KIT_SLOT_NAMES")))
	}
	srv := NewServer(Config{DB: verifyDB, AdminDB: adminDB, Authoriser: NewStaticTokenAuthoriser(tokens), Verifier: verifier, Logger: log,
		Registry: flip.NewRegistry(store.New(), regOpts...)})
	log.Info("hub starting", slog.String("addr", ln.Addr().String()))
	return Boot(ctx, verifyDB, seed, srv, ln, store.WithLogger(log))
}

func getenv(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
