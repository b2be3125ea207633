// Command register-trust registers one NHS trust with FLIP from a deploy
// pipeline and prints its kit record, with its keys, once, as JSON.
//
// Usage:
//
//	register-trust --name NAME --code CODE [--region REGION] [--require-existing]
//	               [--aes-key] [--out-file PATH] [--slot-names-file PATH] [--plan]
//	               [--database-url URL] [--migrate] [--add-slots LIST]
//	               [--key-format prefixed|reference] [--timeout 60s]
//	register-trust --name NAME --rotate [--code CODE] [--aes-key] [--out-file PATH] [--plan] [options]
//	register-trust --migrate and/or --add-slots LIST   (no --name/--code)
//	register-trust --print-migrations
//
// Example, on a fresh database:
//
//	DATABASE_URL=postgres://flip:secret@db:5432/flip?sslmode=require \
//	register-trust --migrate --add-slots Trust_001..Trust_050 \
//	    --name "Guy's and St Thomas'" --code GSTT --region London --aes-key
//
// A new trust is printed as the reference hub's kit record, its keys shown
// only this once (trust_aes_key and trust_aes_kid only with --aes-key):
//
//	[{"status":"registered","trust_id":"…","trust_name":"Guy's and St Thomas'",
//	  "trust_api_key":"flip_ak_…","trust_internal_service_key":"flip_sk_…",
//	  "trust_aes_key":"…44 characters…","trust_aes_kid":"trust-…",
//	  "fl_kit_slot":"Trust_001","fl_kit_slot_number":1,
//	  "hub_shared":{"CENTRAL_HUB_API_URL":"…","DOCKER_TAG":"…"}}]
//
// hub_shared copies those of a fixed list of variables (hubSharedVars)
// that are set to something other than "" in the environment, and
// nothing else from it. The AES payload key is 32 bytes from crypto/rand
// in padded base64, stored nowhere, like the internal-service key.
//
// Running it again with the same name is safe: the trust is never
// re-keyed, and a metadata-only record with "status":"existing" (trust_id,
// trust_name, fl_kit_slot, fl_kit_slot_number, hub_shared) is printed
// instead. It holds no secret: its hub_shared leaves out the hub-wide
// AES_KEY_BASE64, which only a record carrying the trust's own keys
// (registered, rotated) includes. With --require-existing a missing trust
// is an error rather than being registered. A trust that holds no kit slot
// (a legacy row) has null in fl_kit_slot and fl_kit_slot_number.
//
// An existing trust is not always passed on as healthy. One without an API
// key (revoked by delete-trust --revoke or RevokeKey, or a legacy row
// never keyed) is reported as "status":"revoked" and the run fails (exit
// 1), --require-existing too: no kit of it can authenticate until --rotate
// re-keys it. An existing trust whose code or region is not the one asked
// for gets "drift":{"code":{"requested":…,"existing":…}} (likewise
// "region"; existing is null when the trust has none) in its record; a
// different code fails the run (exit 1), since the code names the trust's
// kit files, while a different region is only reported. Such a failing
// run prints the trust's record (it holds no secret), not [].
//
// --rotate re-keys an existing trust: it prints the same full record with
// "status":"rotated" and two new keys (and a new AES key with --aes-key),
// and the old API key stops working at the commit. It is how a trust
// whose keys were lost (or leaked) gets new ones, including after a
// registration whose result never arrived. A trust that does not exist is
// an error (exit 1); --rotate never registers. --code is not needed, since
// the name finds the trust; given, it must be the trust's code (in any
// case), a guard against re-keying the wrong trust. --region cannot be
// combined with --rotate, which changes nothing but the keys. The rotation
// is audited in flip_trust_key_audit with no user (NULL); on a database
// --migrate has not brought that far, a warning on stderr is its only
// record.
//
// --out-file PATH writes the JSON array to PATH instead, mode 0600, and
// stdout carries only the path of the file that holds the kit. The keys
// are on disk before they exist in the database: the complete kit is
// written and synced to a temporary file beside PATH before the commit
// (if that fails, nothing is committed: exit 1), and renamed over PATH
// after it. If the rename (or the directory sync after it) fails, the trust
// IS registered (or re-keyed): the kit is kept where it is, never deleted,
// its path printed on stdout and named on stderr, and the run exits 1; a
// later run with the same PATH refuses to start while that kit lies beside
// it. A record without keys (an existing trust) never replaces a kit that
// holds keys: when PATH holds this trust's kit and its API key is still
// the trust's, PATH is kept and printed (exit 0); any other kit with keys,
// or a file that is not a kit, is left alone (exit 1). An empty file is
// replaced. Refused before anything is registered: a symbolic link, a
// directory or another non-regular file at PATH, a file of another user's,
// a sticky directory (like /tmp) of another user's, and a PATH that holds
// the keys of a trust with another name. See kitFile.
//
// A registration that finds no free kit slot grows the pool, once, from
// --slot-names-file PATH or else $FL_KIT_SLOT_NAMES (a JSON list of slot
// names; "" counts as unset): the names the pool lacks are added in the
// registration's transaction and the claim is tried again. A source that
// cannot be read or parsed is logged and taken as empty, so the run fails
// as with an empty pool, saying what the source held.
//
// --plan writes nothing: it runs the registration (or rotation), with
// --add-slots, in a transaction that it rolls back, and prints one JSON
// object saying what the real run would do (see plan): its action
// (register, skip, rotate, revoked or fail), its drift, whether the trust
// exists, the slot it would claim or holds, the pool's size and free
// slots, the names the slot-name source would add, and the error it would
// fail with. It never holds a key. Exit 0 if the run would succeed, 1 if
// not.
//
// The database URL (or key=value connection string) comes from
// --database-url, else $DATABASE_URL; with neither, the command refuses
// to run (exit 2), so that a forgotten setting never writes to whatever
// database listens locally. --migrate brings the schema up to date first
// (safe to repeat); --add-slots adds FL kit slots to the pool, as
// comma-separated names or ranges such as Trust_001..Trust_050 (names
// already present are left alone). Given without --name and --code, they
// do just that and print
// {"slots_added":N,"slots_total":T,"slots_free":F}. --print-migrations
// prints the schema SQL for a DBA to review or apply and exits.
//
// --timeout (default 60s) bounds the whole run, connecting included; when
// it expires, whatever the step, the error says "--timeout 60s expired"
// rather than only what the driver makes of the cancelled statement.
//
// Stdout carries only the JSON result (or, with --out-file, its path; with
// --print-migrations, SQL); logs go to stderr and never contain a key or
// the database password.
//
// Exit status: 0 on success (registered, existing or rotated), 1 when
// registration, rotation or the database fails (stdout is then [], or
// nothing with --out-file), when the trust exists but is revoked or has
// another code (stdout is then its record, or nothing with --out-file),
// or when a committed kit could not be put at --out-file (stdout is then
// where it is), 2 for a usage error (stdout is then empty).
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/londonaicentre/flip"
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
// options are the parsed command-line flags.
type options struct {
	name, code, region string
	requireExisting    bool
	rotate             bool
	aesKey             bool
	outFile            string
	plan               bool
	slotNamesFile      string
	slotNames          flip.SlotNameSource // nil: an empty pool is an error
	database           cmddb.Source
	migrate            bool
	slots              []string // expanded --add-slots names
	printMigrations    bool
	keyFormat          flip.KeyFormat
	timeout            time.Duration
}

// poolSummary is printed when only --migrate and/or --add-slots are given.
type poolSummary struct {
	SlotsAdded int `json:"slots_added"`
	SlotsTotal int `json:"slots_total"`
	SlotsFree  int `json:"slots_free"`
}

// run is the whole command: it parses args, does the work and returns the
// exit status. JSON goes to stdout (or, with --out-file, to that file),
// logs and usage to stderr; getenv supplies DATABASE_URL and hub_shared.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	opts, err := parseFlags(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if opts.printMigrations {
		return printMigrations(stdout, stderr)
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	if opts.plan {
		log = log.With(slog.String("plan", "rolled back, nothing is written"))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opts.timeout, timeoutError{opts.timeout})
	defer cancel()

	// The kit file is prepared before anything is registered: a path that
	// cannot take the kit must fail the run before keys exist to be lost.
	var out *kitFile
	if opts.outFile != "" {
		name, nerr := flip.CanonicalTrustName(opts.name)
		if nerr != nil {
			name = opts.name // registration refuses it, with the reason
		}
		if out, err = openKitFile(opts.outFile, name); err != nil {
			log.Error("nothing registered", "error", err)
			return exitFail
		}
		defer out.discard() // a no-op for a kit that is kept or in place
	}

	registering := opts.name != ""
	// fail logs err and returns exit 1. On stdout it leaves a failed plan
	// under --plan, [] when registering to stdout, and nothing when the
	// kit was to go to --out-file (stdout carries only its path).
	fail := func(msg string, err error) int {
		err = timedOut(ctx, err)
		log.Error(msg, "error", err)
		if hint := hintFor(err); hint != "" {
			log.Error(hint)
		}
		switch {
		case opts.plan:
			writeJSON(stdout, log, failedPlan(opts, fmt.Errorf("%s: %w", msg, err)))
		case registering && out == nil:
			fmt.Fprintln(stdout, "[]")
		}
		return exitFail
	}

	log.Info("connecting", "database", cmddb.Redact(opts.database.URL))
	db, msg, err := cmddb.Connect(ctx, opts.database, 2)
	if err != nil {
		return fail(msg, err)
	}
	defer db.Close()

	if opts.plan {
		p, ok := makePlan(ctx, db, log, opts)
		if code := writeJSON(stdout, log, p); code != exitOK || !ok {
			return exitFail
		}
		return exitOK
	}

	added, msg, err := prepare(ctx, db, log, opts)
	if err != nil {
		return fail(msg, err)
	}
	if !registering {
		stats, err := store.CountSlots(ctx, db)
		if err != nil {
			return fail("counting kit slots failed", err)
		}
		return writeJSON(stdout, log, poolSummary{SlotsAdded: added, SlotsTotal: stats.Total, SlotsFree: stats.Free})
	}

	d := deployRun{log: log, opts: opts, out: out, stdout: stdout, getenv: getenv, fail: fail}
	return d.deploy(ctx, db)
}

// newRegistry is the Registry every registration and rotation of the
// command uses: keys in the format asked for, and the command's logger, so
// that what the registry reports (a rotation on a database without its
// audit table, a slot-name source it could not read) reaches stderr; and
// the slot-name source, if any, to grow an empty pool from.
func newRegistry(opts options, log *slog.Logger) *flip.Registry {
	regOpts := []flip.Option{flip.WithKeyMinter(flip.RandomKeyMinter{Format: opts.keyFormat}), flip.WithLogger(log)}
	if opts.slotNames != nil {
		regOpts = append(regOpts, flip.WithSlotNameSource(opts.slotNames))
	}
	return flip.NewRegistry(store.New(), regOpts...)
}

// prepare runs --migrate and --add-slots, returning how many slots were
// new; on failure the message names the step.
func prepare(ctx context.Context, db *sql.DB, log *slog.Logger, opts options) (int, string, error) {
	if opts.migrate {
		if err := store.Migrate(ctx, db, store.WithLogger(log)); err != nil {
			return 0, "migration failed", err
		}
	}
	if len(opts.slots) == 0 {
		return 0, "", nil
	}
	added, err := store.AddSlots(ctx, db, opts.slots...)
	if err != nil {
		return 0, "adding kit slots failed", err
	}
	log.Info("kit slots added", "requested", len(opts.slots), "new", added)
	return added, "", nil
}

// errTrustMissing is returned for --require-existing when no trust has the name.
var errTrustMissing = errors.New("no trust with that name is registered (--require-existing)")

// registerOrFind reports the trust named opts.name if it exists and
// registers it with register otherwise (unless --require-existing). An
// existing trust is never re-keyed. Lookups go to q: the database in a
// real run, the plan's transaction under --plan, where register works in
// that transaction too.
func registerOrFind(ctx context.Context, q flip.DBTX, log *slog.Logger, opts options,
	register func(flip.TrustParams) (flip.RegistrationResult, error)) (outcome, error) {
	params, err := flip.TrustParams{Name: opts.name, Code: opts.code, Region: opts.region}.Normalize()
	if err != nil {
		return outcome{}, err
	}
	trust, err := store.TrustByName(ctx, q, params.Name)
	switch {
	case err == nil:
		return existingOutcome(ctx, q, log, trust, params)
	case !errors.Is(err, store.ErrTrustNotFound):
		return outcome{}, err
	case opts.requireExisting:
		return outcome{}, fmt.Errorf("%w: %q", errTrustMissing, params.Name)
	}

	res, err := register(params)
	if errors.Is(err, flip.ErrDuplicateTrust) {
		// Registered by someone else between our lookup and our attempt?
		// The duplicate may be reported on the code (when two
		// registrations of one trust meet at flip's unique indexes,
		// whichever index PostgreSQL checks first reports it), so look
		// for the name either way; a code held by another trust stays an
		// error.
		if trust, lookupErr := store.TrustByName(ctx, q, params.Name); lookupErr == nil {
			log.Info("trust was registered concurrently by another run", "trust_name", params.Name)
			return existingOutcome(ctx, q, log, trust, params)
		}
	}
	if err != nil {
		return outcome{}, err
	}
	return outcome{status: "registered", res: res}, nil
}

// retryBackoff is how long the command waits before each new attempt at a
// registration or rotation that failed with flip.ErrRetryable (a deadlock,
// a lock timeout, a pool whose free slots other registrations are
// claiming).
var retryBackoff = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}

// retrying runs attempt, again after each pause of retryBackoff while it
// fails with flip.ErrRetryable (such a failure left nothing behind); what
// names the work in the log.
func retrying[T any](ctx context.Context, log *slog.Logger, what string, attempt func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		res, err := attempt()
		if !errors.Is(err, flip.ErrRetryable) || i == len(retryBackoff) {
			return res, err
		}
		log.Warn(what+" hit a transient conflict; retrying", "attempt", i+1, "wait", retryBackoff[i].String(), "error", err)
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(retryBackoff[i]):
		}
	}
}

// existingOutcome is the skip outcome for a trust that is already
// registered, with its kit slot if it holds one, and no keys: status
// "existing", or "revoked" when it holds no API key; with how it differs
// from what was asked (see outcome.refusal for what fails the run).
func existingOutcome(ctx context.Context, q flip.DBTX, log *slog.Logger, t flip.Trust, asked flip.TrustParams) (outcome, error) {
	o := outcome{status: "existing", res: flip.RegistrationResult{Trust: t}, drift: driftOf(t, asked)}
	slot, err := store.KitSlotOf(ctx, q, t.ID)
	switch {
	case err == nil:
		o.res.KitSlot = slot
	case !errors.Is(err, store.ErrSlotNotFound):
		return outcome{}, err
	}
	if o.keyHash, err = store.TrustAPIKeyHash(ctx, q, t.ID); err != nil {
		return outcome{}, err
	}
	if o.keyHash == "" {
		o.status = "revoked"
	}
	log.Info("trust already registered; keys not reissued (--rotate issues new ones)", "trust_id", t.ID, "trust_name", t.Name, "fl_kit_slot", slot.Name, "status", o.status)
	if o.drift != nil && o.drift.Region != nil {
		log.Warn("the trust's region is not the one requested; it is left as it is (see drift in the record)", "existing_region", t.Region, "requested_region", asked.Region)
	}
	return o, nil
}

// stderr on a usage error.
func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	var (
		opts             options
		addSlots, keyFmt string
	)
	fs := newFlagSet(stderr, &opts, &addSlots, &keyFmt)
	if err := fs.Parse(args); err != nil {
		return options{}, err // flag has printed the problem and usage
	}
	err := opts.finish(fs.Args(), addSlots, keyFmt, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "register-trust: %v\n", err)
		fs.Usage()
		return options{}, err
	}
	return opts, nil
}

// newFlagSet declares the command's flags, writing into opts and the two
// flags finish reads as text.
func newFlagSet(stderr io.Writer, opts *options, addSlots, keyFmt *string) *flag.FlagSet {
	fs := flag.NewFlagSet("register-trust", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  register-trust --name NAME --code CODE [--region REGION] [--require-existing]
                 [--aes-key] [--out-file PATH] [--plan] [options]
  register-trust --name NAME --rotate [--code CODE] [--aes-key] [--out-file PATH] [--plan] [options]
  register-trust [--migrate] [--add-slots LIST] [options]
  register-trust --print-migrations

Registers a trust (or, with --rotate, re-keys an existing one) and prints
it as a JSON array on stdout, or in --out-file (keys only for a new or
re-keyed trust). --plan prints what it would do and writes nothing.
Exit 0 registered, existing or rotated, 1 failed (or the trust is revoked,
or has another code), 2 usage error.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.name, "name", "", "trust `name` (required to register)")
	fs.StringVar(&opts.code, "code", "", "trust `code` (required to register)")
	fs.StringVar(&opts.region, "region", "", "trust `region` (optional)")
	fs.BoolVar(&opts.requireExisting, "require-existing", false, "fail (exit 1) instead of registering when no trust has this name")
	fs.BoolVar(&opts.rotate, "rotate", false, "issue new keys for the existing trust --name (exit 1 if there is none)")
	fs.BoolVar(&opts.aesKey, "aes-key", false, "also issue a per-trust AES payload key (trust_aes_key, trust_aes_kid) to a new or re-keyed trust; stored nowhere")
	fs.StringVar(&opts.outFile, "out-file", "", "write the kit to `PATH` (mode 0600; on disk before the commit, never replacing a kit that holds keys with one that does not) instead of stdout, which then carries only the kit file's path")
	fs.StringVar(&opts.slotNamesFile, "slot-names-file", "", "on an empty pool, add the slot names this JSON list `PATH` holds and claim again (default $"+envSlotNames+")")
	fs.BoolVar(&opts.plan, "plan", false, "write nothing; print what the run would do (exit 0 if it would succeed, 1 if not)")
	fs.StringVar(&opts.database.URL, "database-url", "", "PostgreSQL `URL` (default $DATABASE_URL; one of the two is required)")
	fs.BoolVar(&opts.migrate, "migrate", false, "apply pending schema migrations first (idempotent)")
	fs.StringVar(addSlots, "add-slots", "", "add FL kit slots: comma-separated `LIST` of names or ranges like Trust_001..Trust_050")
	fs.BoolVar(&opts.printMigrations, "print-migrations", false, "print the schema migration SQL and exit")
	fs.StringVar(keyFmt, "key-format", "prefixed", "`format` of new keys: prefixed (flip_ak_…) or reference (43-char base64url)")
	fs.DurationVar(&opts.timeout, "timeout", 60*time.Second, "give up after this `duration`")
	return fs
}

// finish checks the parsed flags against each other and fills in what
// follows from them: the key format, the expanded slot names and the
// database URL (with where it came from). An error is a usage error.
func (opts *options) finish(rest []string, addSlots, keyFmt string, getenv func(string) string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected argument %q", rest[0])
	case opts.timeout <= 0:
		return errors.New("--timeout must be positive")
	case opts.printMigrations && (opts.name != "" || opts.code != "" || opts.rotate || opts.migrate || addSlots != "" || opts.plan || opts.outFile != "" || opts.aesKey || opts.slotNamesFile != ""):
		return errors.New("--print-migrations cannot be combined with other actions")
	case opts.printMigrations:
		return nil
	case opts.name == "" && (opts.plan || opts.outFile != "" || opts.aesKey || opts.slotNamesFile != ""):
		return errors.New("--plan, --out-file, --aes-key and --slot-names-file need --name: they are about a trust's kit")
	case opts.rotate && opts.slotNamesFile != "":
		return errors.New("--rotate keeps the trust's slot: --slot-names-file cannot be given with it")
	case opts.plan && opts.migrate:
		return errors.New("--plan writes nothing, and --migrate would: run --migrate on its own first")
	case opts.plan && opts.outFile != "":
		return errors.New("--plan prints its plan on stdout and has no kit for --out-file")
	case opts.rotate && opts.name == "":
		return errors.New("--rotate needs --name")
	case opts.rotate && opts.region != "":
		return errors.New("--rotate changes only the keys: --region cannot be given with it")
	case !opts.rotate && (opts.name == "") != (opts.code == ""):
		return errors.New("--name and --code are both required to register a trust")
	case opts.name == "" && (opts.region != "" || opts.requireExisting):
		return errors.New("--region and --require-existing need --name and --code")
	case opts.name == "" && !opts.migrate && addSlots == "":
		return errors.New("nothing to do: give --name and --code, --migrate, --add-slots or --print-migrations")
	}
	switch keyFmt {
	case "prefixed":
		opts.keyFormat = flip.PrefixedKeys
	case "reference":
		opts.keyFormat = flip.ReferenceKeys
	default:
		return fmt.Errorf("--key-format must be prefixed or reference, not %q", keyFmt)
	}
	if addSlots != "" {
		slots, err := expandSlots(addSlots)
		if err != nil {
			return fmt.Errorf("--add-slots: %w", err)
		}
		opts.slots = slots
	}
	var err error
	if opts.database, err = cmddb.Resolve(opts.database.URL, getenv); err != nil {
		return err
	}
	opts.slotNames = slotNameSource(opts.slotNamesFile, getenv)
	return nil
}

// expandSlots turns "A,Trust_001..Trust_003" into A, Trust_001, Trust_002,
// Trust_003. Empty items are ignored, but the list must name at least one slot.
func expandSlots(list string) ([]string, error) {
	var names []string
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		expanded, err := store.SlotRange(item)
		if err != nil {
			return nil, err
		}
		names = append(names, expanded...)
	}
	if len(names) == 0 {
		return nil, errors.New("no slot names given")
	}
	return names, nil
}

// printMigrations writes the up SQL of every embedded migration to stdout,
// each headed by a comment naming its file.
func printMigrations(stdout, stderr io.Writer) int {
	ups, err := fs.Glob(store.MigrationsFS(), "*.up.sql") // in version order
	for _, name := range ups {
		var up []byte
		if up, err = fs.ReadFile(store.MigrationsFS(), name); err != nil {
			break
		}
		fmt.Fprintf(stdout, "-- %s\n%s\n", name, strings.TrimRight(string(up), "\n"))
	}
	if err != nil {
		fmt.Fprintf(stderr, "register-trust: %v\n", err)
		return exitFail
	}
	return exitOK
}

// timeoutError is the cause of the run's context ending when --timeout
// expires.
type timeoutError struct{ limit time.Duration }

func (e timeoutError) Error() string { return "--timeout " + e.limit.String() + " expired" }

// Is lets errors.Is(err, context.DeadlineExceeded) hold for it, as for
// the context's own error.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// timedOut returns err explained as the expiry of --timeout when that is
// what ended ctx, whichever step err comes from (connecting, a lookup,
// migrating, registering, rotating, planning). The driver reports a
// statement that the expiry cancelled in its own words (lib/pq: "pq:
// canceling statement due to user request"), which do not say that the
// command gave up, nor after how long; the original stays in the message,
// naming the step.
func timedOut(ctx context.Context, err error) error {
	var te timeoutError
	if err == nil || ctx.Err() == nil || !errors.As(context.Cause(ctx), &te) || errors.As(err, &te) {
		return err
	}
	return fmt.Errorf("%w (%w)", te, err)
}

// hintFor suggests a fix for errors an operator can act on.
func hintFor(err error) string {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" { // undefined_table
		return "the flip tables are missing: run with --migrate, or apply --print-migrations"
	}
	if errors.Is(err, flip.ErrNoFreeKitSlot) {
		return "add kit slots with --add-slots, e.g. --add-slots Trust_051..Trust_100, or list more names in --slot-names-file or " + envSlotNames
	}
	if errors.Is(err, flip.ErrRetryable) {
		return "other transactions held what this one needed; nothing was written, run the command again"
	}
	return ""
}

// encodeJSON is v as one line of JSON, "&" and "<" left as they are (a
// trust's name may hold them).
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return b.Bytes(), err
}

// writeJSON prints v as one line of JSON on stdout.
func writeJSON(stdout io.Writer, log *slog.Logger, v any) int {
	data, err := encodeJSON(v)
	if err == nil {
		_, err = stdout.Write(data)
	}
	if err != nil {
		log.Error("writing the result failed; any keys just issued are lost: re-key the trust with register-trust --name NAME --rotate", "error", err)
		return exitFail
	}
	return exitOK
}
