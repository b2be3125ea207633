// Command seed-users seeds FLIP's main users: it looks each configured user
// up in Cognito by email and gives them a user_profile row and, if they
// hold no role yet, the configured role. It prints the per-user report as
// JSON.
//
// Usage:
//
//	seed-users --user-pool-id ID [--users FILE] [--endpoint URL] [--region R]
//	           [--database-url URL] [--migrate] [--concurrency N]
//	           [--max-attempts N] [--timeout 2m]
//
// Against the cognito-local emulator, which scripts/cognito-local starts
// with a user pool holding the example users (it prints the variables to
// export), and a scratch database on the local server (see the README,
// "Trying seed-users on your machine", which creates it):
//
//	eval "$(bash scripts/cognito-local start examples/seed-users/main-users.example.json)"
//	export DATABASE_URL='postgres://postgres@127.0.0.1:5432/flip_seed_demo?sslmode=disable'
//	go run ./examples/seed-users --migrate --users examples/seed-users/main-users.example.json
//	bash scripts/cognito-local stop
//
// The main users come from --users (a JSON file, see flip.ParseMainUsers),
// else from $FLIP_MAIN_USERS (the JSON itself) or $FLIP_MAIN_USERS_FILE.
// --user-pool-id defaults to $COGNITO_USER_POOL_ID and --endpoint to
// $COGNITO_ENDPOINT. AWS region and credentials come from the usual AWS
// configuration (environment, shared files, instance role); with --endpoint
// and no AWS_ACCESS_KEY_ID, placeholder credentials are used, which the
// emulator accepts. The database URL (or key=value connection string)
// comes from --database-url, else $DATABASE_URL; with neither, the command
// refuses to run (exit 2), so that a forgotten setting never writes to whatever
// database listens locally. --migrate brings the schema up to date first.
//
// Stdout carries only the JSON report:
//
//	{"users":[{"email":"ada.admin@example.com","role":"Admin","result":"created",
//	  "user_id":"…","profile_created":true,"role_granted":true}, …]}
//
// Logs go to stderr and never contain credentials or the database password.
// Users the identity provider does not know ("skipped-not-found"), whose
// accounts do not prove the address ("skipped-unverified": an unconfirmed
// sign-up, an unverified email, a disabled account; each such account is
// named in a warning), or that it could not answer for (5xx, throttling,
// timeouts: "skipped-transient") are skipped with a warning and reported;
// the next run tries them again.
//
// Exit status: 0 when every user was seeded or skipped; 1 when the
// configuration is refused or the database does not answer (nothing is
// printed) or seeding stopped (a 400 or 403 from Cognito, an address two
// verified accounts hold, a database error; the report so far is printed);
// 2 for a usage error, including no main users configured and no database
// given.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/cognito"
	"github.com/londonaicentre/flip/internal/cmddb"
	"github.com/londonaicentre/flip/store"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// options are the parsed command-line flags.
type options struct {
	usersFile   string
	userPoolID  string
	endpoint    string
	region      string
	database    cmddb.Source
	migrate     bool
	concurrency int
	maxAttempts int
	timeout     time.Duration
}

func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("seed-users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.usersFile, "users", "", "JSON file of main users (default: $FLIP_MAIN_USERS or $FLIP_MAIN_USERS_FILE)")
	fs.StringVar(&o.userPoolID, "user-pool-id", getenv("COGNITO_USER_POOL_ID"), "Cognito user pool id (default $COGNITO_USER_POOL_ID)")
	fs.StringVar(&o.endpoint, "endpoint", getenv("COGNITO_ENDPOINT"), "Cognito endpoint URL, e.g. the emulator's (default $COGNITO_ENDPOINT, else AWS)")
	fs.StringVar(&o.region, "region", "", "AWS region (default: from the AWS configuration, else eu-west-2)")
	fs.StringVar(&o.database.URL, "database-url", "", "PostgreSQL `URL` (default $DATABASE_URL; one of the two is required)")
	fs.BoolVar(&o.migrate, "migrate", false, "bring the schema up to date first")
	fs.IntVar(&o.concurrency, "concurrency", flip.DefaultSeedConcurrency, "lookups in flight at once")
	fs.IntVar(&o.maxAttempts, "max-attempts", 3, "attempts per lookup, the first included")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound on the whole run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	usage := func(msg string) error {
		fmt.Fprintln(stderr, "seed-users:", msg)
		fs.Usage()
		return errors.New(msg)
	}
	switch {
	case fs.NArg() > 0:
		return o, usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case o.userPoolID == "":
		return o, usage("--user-pool-id (or COGNITO_USER_POOL_ID) is required")
	case o.concurrency < 1, o.maxAttempts < 1, o.timeout <= 0:
		return o, usage("--concurrency, --max-attempts and --timeout must be positive")
	}
	database, err := cmddb.Resolve(o.database.URL, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "seed-users:", err)
		fs.Usage()
		return o, err
	}
	o.database = database
	return o, nil
}

// run is the whole command: it parses args, seeds and returns the exit
// status. The JSON report goes to stdout, logs and usage to stderr; getenv
// supplies the environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	opts, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := context.WithTimeout(ctx, opts.timeout)
	defer cancel()
	fail := func(msg string, err error) int {
		log.Error(msg, "error", err)
		return exitFail
	}

	users, err := loadUsers(opts.usersFile, getenv)
	if err != nil {
		return fail("main-user configuration refused", err)
	}
	if len(users) == 0 {
		fmt.Fprintln(stderr, "seed-users: no main users configured (--users, FLIP_MAIN_USERS or FLIP_MAIN_USERS_FILE)")
		return exitUsage
	}
	idp, err := newProvider(ctx, opts, getenv)
	if err != nil {
		return fail("cannot configure Cognito", err)
	}

	log.Info("connecting", "database", cmddb.Redact(opts.database.URL))
	db, msg, err := cmddb.Connect(ctx, opts.database, 2)
	if err != nil {
		return fail(msg, err)
	}
	defer db.Close()
	if opts.migrate {
		if err := store.Migrate(ctx, db, store.WithLogger(log)); err != nil {
			return fail("migration failed", err)
		}
	}

	seeder := flip.NewSeeder(users)
	seeder.Concurrency = opts.concurrency
	seeder.Logger = log
	report, seedErr := seeder.SeedMainUsers(ctx, db, idp)
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(report); err != nil {
		return fail("cannot write the report", err)
	}
	if seedErr != nil {
		return fail("seeding stopped", seedErr)
	}
	return exitOK
}

// loadUsers reads the main users from file, else from the environment.
func loadUsers(file string, getenv func(string) string) ([]flip.MainUser, error) {
	if file != "" {
		return flip.LoadMainUsersFile(file)
	}
	return flip.MainUsersFromEnv(getenv)
}

// newProvider builds the Cognito IdentityProvider from the AWS
// configuration, pointed at opts.endpoint when given.
func newProvider(ctx context.Context, opts options, getenv func(string) string) (*cognito.Provider, error) {
	var loadOpts []func(*config.LoadOptions) error
	if opts.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.region))
	}
	if opts.endpoint != "" {
		loadOpts = append(loadOpts, config.WithBaseEndpoint(opts.endpoint))
		if getenv("AWS_ACCESS_KEY_ID") == "" {
			// The emulator accepts any signature; spare the default chain
			// its slow search for credentials that do not exist.
			loadOpts = append(loadOpts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "eu-west-2"
	}
	if opts.endpoint != "" {
		cfg.BaseEndpoint = aws.String(opts.endpoint)
	}
	return cognito.NewFromConfig(cfg, opts.userPoolID, cognito.WithMaxAttempts(opts.maxAttempts)), nil
}
