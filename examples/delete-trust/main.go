// Command delete-trust removes one NHS trust from FLIP, as the reference
// hub's delete_trust script does, and prints what it did as one JSON
// object.
//
// Usage:
//
//	delete-trust --name NAME [--revoke] [--database-url URL] [--timeout 60s]
//	delete-trust --id UUID   [--revoke] [--database-url URL] [--timeout 60s]
//
// It finds the trust by name the way register-trust does (the same
// canonical form), or takes its id. A legacy hub may hold several trusts
// with one name (the reference hub's duplicate-check race): the command
// then refuses to guess, lists their ids and changes nothing; pick one
// with --id. It frees the trust's FL kit slots, deletes its rows from every
// table that references it (user_role's trust-scoped grants and
// cohort_snapshot_status included), writes a DELETED row to trusts_audit
// with no user (NULL) and deletes the trust, in one transaction:
//
//	{"status":"deleted","trust_id":"…","name":"Guy's and St Thomas'",
//	 "freed_fl_kit_slot":"Trust_001",
//	 "dependent_rows_deleted":{"fl_job_trust":3,"fl_logs":120,…}}
//
// freed_fl_kit_slot is null when the trust held no slot; a legacy trust
// holding several also gets "freed_fl_kit_slots", all their names.
// dependent_rows_deleted has every referencing table, zeros included,
// named as flip.DeletionResult names it (schema-qualified and quoted where
// needed, so that no two tables share a name). A trust that does not
// exist, including one another run deleted a moment before, prints
// {"status":"not_found","name":"…"}, so running the command again is
// safe.
//
// With --revoke the trust is kept, with its slot and data, and only its
// API key stops working ({"status":"revoked","trust_id":"…","name":"…"});
// register-trust --name NAME --rotate later issues new keys. Revoking a
// revoked trust succeeds again.
//
// The database URL (or key=value connection string) comes from
// --database-url, else $DATABASE_URL; with neither, the command refuses
// to run (exit 2), so that a forgotten setting never deletes from
// whatever database listens locally. Stdout carries only the JSON result;
// logs go to stderr and never contain a key or the database password.
//
// Exit status: 0 when deleted, revoked or not found; 1 when the deletion
// or the database fails, for instance when another table's rows reference
// the trust's rows (stdout is then empty, and nothing was changed unless
// the message says the commit got no answer); 2 for a usage error.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
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
type options struct {
	name     string
	id       uuid.UUID // uuid.Nil: find the trust by name
	revoke   bool
	database cmddb.Source
	timeout  time.Duration
}

// deletion is printed for a deleted trust, its keys in the reference
// script's order.
type deletion struct {
	Status               string           `json:"status"` // "deleted"
	TrustID              string           `json:"trust_id"`
	Name                 string           `json:"name"`
	FreedFLKitSlot       *string          `json:"freed_fl_kit_slot"` // null when it held none
	DependentRowsDeleted map[string]int64 `json:"dependent_rows_deleted"`
	// FreedFLKitSlots is flip's addition, for a legacy trust that held
	// more than one slot (the reference script frees only the first).
	FreedFLKitSlots []string `json:"freed_fl_kit_slots,omitempty"`
}

// outcome is printed when nothing was deleted: "not_found" (no trust_id)
// or "revoked".
type outcome struct {
	Status  string `json:"status"`
	TrustID string `json:"trust_id,omitempty"`
	Name    string `json:"name,omitempty"`
}

// run is the whole command: it parses args, does the work and returns the
// exit status. JSON goes to stdout, logs and usage to stderr; getenv
// supplies DATABASE_URL.
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
		if hint := hintFor(err); hint != "" {
			log.Error(hint)
		}
		return exitFail
	}

	name := ""
	if opts.id == uuid.Nil {
		if name, err = flip.CanonicalTrustName(opts.name); err != nil {
			return fail("bad trust name", err)
		}
	}
	log.Info("connecting", "database", cmddb.Redact(opts.database.URL))
	db, msg, err := cmddb.Connect(ctx, opts.database, 2)
	if err != nil {
		return fail(msg, err)
	}
	defer db.Close()

	notFound := func(why string) int {
		log.Info(why, "name", name, "trust_id", opts.id)
		o := outcome{Status: "not_found", Name: name}
		if opts.id != uuid.Nil {
			o.TrustID = opts.id.String()
		}
		return writeJSON(stdout, log, o)
	}
	trust := flip.Trust{ID: opts.id}
	if opts.id == uuid.Nil {
		trusts, err := store.TrustsByName(ctx, db, name)
		switch {
		case errors.Is(err, store.ErrTrustNotFound):
			return notFound("no trust has this name; nothing to do")
		case err != nil:
			return fail("looking the trust up failed", err)
		case len(trusts) > 1:
			return fail("nothing changed", ambiguous(name, trusts))
		}
		trust = trusts[0]
	}

	// The Registry logs each change; on a database without
	// flip_trust_key_audit that line is a revocation's only record.
	reg := flip.NewRegistry(store.New(), flip.WithLogger(log))
	change := flip.TrustChange{TrustID: trust.ID} // AuditUserID nil: NULL, as the reference script
	if opts.revoke {
		log.Info("revoking the trust's API key", "trust_id", trust.ID, "trust_name", trust.Name)
		var revoked flip.Trust
		err := inTx(ctx, db, func(tx *sql.Tx) (err error) {
			revoked, err = reg.RevokeKey(ctx, tx, change)
			return err
		})
		switch {
		case errors.Is(err, flip.ErrTrustNotFound):
			return notFound("the trust was deleted by another run meanwhile; nothing to do")
		case err != nil:
			return fail("trust key not revoked", err)
		}
		return writeJSON(stdout, log, outcome{Status: "revoked", TrustID: trust.ID.String(), Name: revoked.Name})
	}

	log.Info("deleting the trust", "trust_id", trust.ID, "trust_name", trust.Name)
	var res flip.DeletionResult
	err = inTx(ctx, db, func(tx *sql.Tx) (err error) {
		res, err = reg.DeleteTrust(ctx, tx, change)
		return err
	})
	switch {
	case errors.Is(err, flip.ErrTrustNotFound):
		return notFound("the trust was deleted by another run meanwhile; nothing to do")
	case err != nil:
		return fail("trust not deleted", err)
	}
	return writeJSON(stdout, log, deletionRecord(res))
}

// deletionRecord turns what DeleteTrust removed into the printed object.
func deletionRecord(res flip.DeletionResult) deletion {
	d := deletion{
		Status:               "deleted",
		TrustID:              res.Trust.ID.String(),
		Name:                 res.Trust.Name,
		DependentRowsDeleted: res.DependentRowsDeleted,
	}
	if len(res.FreedKitSlots) > 0 {
		d.FreedFLKitSlot = &res.FreedKitSlots[0].Name
	}
	if len(res.FreedKitSlots) > 1 {
		for _, s := range res.FreedKitSlots {
			d.FreedFLKitSlots = append(d.FreedFLKitSlots, s.Name)
		}
	}
	return d
}

// errCommitUnknown is returned when a commit got no answer: the change may
// or may not have been made. Running the command again settles it.
var errCommitUnknown = errors.New("the commit got no answer, so the change may or may not have been made: run the command again (a deleted trust is then not_found)")

// inTx runs change in a transaction of the command's own and commits it.
// The Registry's changes never commit: the transaction is the caller's, and
// is rolled back on any error.
func inTx(ctx context.Context, db *sql.DB, change func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if err := change(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %w", errCommitUnknown, err)
	}
	return nil
}

// ambiguous says which trusts share name, so that the operator can pick
// one with --id.
func ambiguous(name string, trusts []flip.Trust) error {
	ids := make([]string, len(trusts))
	for i, t := range trusts {
		ids[i] = fmt.Sprintf("%s (%q, code %q, created %s)", t.ID, t.Name, t.Code, t.CreatedAt.Format(time.RFC3339))
	}
	return fmt.Errorf("%d trusts have the name %q: %s; choose one with --id", len(trusts), name, strings.Join(ids, ", "))
}

// parseFlags parses args into options, printing usage and the problem to
// stderr on a usage error.
func parseFlags(args []string, stderr io.Writer, getenv func(string) string) (options, error) {
	var opts options
	fs := flag.NewFlagSet("delete-trust", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  delete-trust --name NAME [--revoke] [options]
  delete-trust --id UUID [--revoke] [options]

Deletes a trust, its kit slot assignments and its rows in the hub's tables
(or, with --revoke, only disables its API key) and prints one JSON object
on stdout. Exit 0 deleted, revoked or not found, 1 failed, 2 usage error.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&opts.name, "name", "", "trust `name` (this or --id)")
	id := fs.String("id", "", "trust `id`, where several trusts share a name (this or --name)")
	fs.BoolVar(&opts.revoke, "revoke", false, "keep the trust and only revoke its API key")
	fs.StringVar(&opts.database.URL, "database-url", "", "PostgreSQL `URL` (default $DATABASE_URL; one of the two is required)")
	fs.DurationVar(&opts.timeout, "timeout", 60*time.Second, "give up after this `duration`")
	if err := fs.Parse(args); err != nil {
		return options{}, err // flag has printed the problem and usage
	}
	var err error
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case (strings.TrimSpace(opts.name) == "") == (*id == ""):
		err = errors.New("exactly one of --name and --id is required")
	case opts.timeout <= 0:
		err = errors.New("--timeout must be positive")
	}
	if *id != "" && err == nil {
		if opts.id, err = uuid.Parse(*id); err != nil || opts.id == uuid.Nil {
			err = fmt.Errorf("--id %q is not a trust id (a UUID)", *id)
		}
	}
	if err == nil {
		opts.database, err = cmddb.Resolve(opts.database.URL, getenv)
	}
	if err != nil {
		fmt.Fprintf(stderr, "delete-trust: %v\n", err)
		fs.Usage()
		return options{}, err
	}
	return opts, nil
}

// hintFor suggests a fix for errors an operator can act on.
func hintFor(err error) string {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" { // undefined_table
		return "the trust table is missing: is this the hub's database?"
	}
	var blocked *flip.DeletionBlockedError
	if errors.As(err, &blocked) {
		if blocked.ReferencedFrom != "" {
			return "nothing was deleted: remove the rows of " + blocked.ReferencedFrom + " that point at the trust's rows in " + blocked.Table + ", then run the command again"
		}
		return "nothing was deleted: a row referencing the trust's rows appeared while it ran; run the command again"
	}
	if errors.Is(err, flip.ErrRetryable) {
		return "other transactions held what this one needed; nothing was changed, run the command again"
	}
	return ""
}

// writeJSON prints v as one line of JSON on stdout.
func writeJSON(stdout io.Writer, log *slog.Logger, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		log.Error("writing the result failed, after the change was committed; running the command again reports it", "error", err)
		return exitFail
	}
	return exitOK
}
