package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/lib/pq"
	"github.com/londonaicentre/flip"
)

// work finds, registers or re-keys the trust, as opts ask, in tx: the
// command's own transaction, committed by deployRun.deploy, or the plan's,
// rolled back. Registration and rotation run under the library's
// savepoint, so a transient conflict is retried in the same transaction.
func work(ctx context.Context, tx *sql.Tx, log *slog.Logger, opts options) (outcome, error) {
	reg := newRegistry(opts, log)
	if opts.rotate {
		return rotate(ctx, tx, log, opts, func(c flip.TrustChange) (flip.RegistrationResult, error) {
			return retrying(ctx, log, "rotation", func() (flip.RegistrationResult, error) { return reg.RotateKeys(ctx, tx, c) })
		})
	}
	return registerOrFind(ctx, tx, log, opts, func(p flip.TrustParams) (flip.RegistrationResult, error) {
		return retrying(ctx, log, "registration", func() (flip.RegistrationResult, error) { return reg.RegisterTrust(ctx, tx, p) })
	})
}

// deployRun is a run that registers, re-keys or reports a trust (not
// --plan): where its record goes, and how it fails.
type deployRun struct {
	log    *slog.Logger
	opts   options
	out    *kitFile // nil: the record goes to stdout
	stdout io.Writer
	getenv func(string) string
	// fail logs a failure that left nothing committed and prints [] (or
	// nothing, with --out-file); it returns exit 1.
	fail func(msg string, err error) int
}

// deploy does the run in a transaction of the command's own, which it
// commits only once the record is complete and, with --out-file, on disk
// (kitFile.stage): keys never exist in the database before they exist
// somewhere the caller can reach. What happens after the commit can no
// longer lose them: a kit that cannot be put in place stays where it is.
func (d deployRun) deploy(ctx context.Context, db *sql.DB) int {
	undone := "trust not registered"
	if d.opts.rotate {
		undone = "trust keys not rotated"
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return d.fail(undone, err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	o, err := work(ctx, tx, d.log, d.opts)
	if err != nil {
		return d.fail(undone, err)
	}
	rec, err := kitRecord(o, d.opts.aesKey, d.getenv)
	if err != nil {
		return d.fail(undone+": minting the AES key failed", err)
	}
	if err := o.refusal(); err != nil {
		// The record says what the trust is (status revoked, drift), and
		// holds no secret; a kit file is left as it was.
		d.log.Error("the trust exists but cannot be passed on as it is", "error", err)
		if d.out == nil {
			writeJSON(d.stdout, d.log, []record{rec})
		}
		return exitFail
	}
	if !o.issuesKeys() { // the trust was only looked up: nothing to commit
		return d.skip(o, rec)
	}
	data, err := encodeJSON([]record{rec})
	if err != nil {
		return d.fail(undone, err)
	}
	if d.out != nil {
		if err := d.out.stage(data); err != nil {
			return d.fail(undone+": the kit could not be written beside --out-file, so nothing was committed", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return d.commitFailed(ctx, o, undone, err)
	}
	if d.out == nil {
		return writeJSON(d.stdout, d.log, []record{rec})
	}
	d.out.keep()
	return d.install(o)
}

// commitRefused says whether err, from COMMIT, means that nothing was
// committed: the server answered with an error (it has an SQLSTATE),
// lib/pq found the transaction failed and rolled it back, or database/sql
// never sent the COMMIT, its context having ended. Anything else (a
// connection lost while committing) leaves the outcome unknown.
func commitRefused(err error) bool {
	var pgErr interface{ SQLState() string }
	return errors.As(err, &pgErr) || errors.Is(err, pq.ErrInFailedTransaction) || errors.Is(err, sql.ErrTxDone) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// commitFailed reports a COMMIT that failed. When nothing was committed
// the staged kit is removed as the run fails. When the outcome is unknown
// the keys may be in force: a staged kit is kept, and named on stdout.
func (d deployRun) commitFailed(ctx context.Context, o outcome, undone string, err error) int {
	if commitRefused(err) {
		return d.fail(undone+": the commit was refused, so nothing was committed", err)
	}
	change := "the trust may or may not be registered"
	if o.status == "rotated" {
		change = "the trust may or may not hold the new keys"
	}
	if d.out == nil {
		return d.fail("the commit got no answer, so "+change+", and its keys were never shown: register-trust --plan tells whether the trust exists; if it does, re-key it with register-trust --name NAME --rotate", err)
	}
	d.out.keep()
	d.log.Error("the commit got no answer, so "+change+"; the kit with the keys it would hold is kept at kit_file: if register-trust --plan says the trust exists (and, after a rotation, the new key works), move the file to the --out-file path, else delete it and run again",
		"kit_file", d.out.tmpName, "error", timedOut(ctx, err))
	fmt.Fprintln(d.stdout, d.out.tmpName)
	return exitFail
}

// install puts the committed kit at the --out-file path and prints where
// it is. If that fails, the trust has the keys the kit holds, so the kit
// stays where it is, and that place is printed instead (exit 1).
func (d deployRun) install(o outcome) int {
	at, err := d.out.install()
	if err != nil {
		done := "registered"
		if o.status == "rotated" {
			done = "re-keyed (its old API key no longer works)"
		}
		d.log.Error("the trust IS "+done+", but putting its kit at the --out-file path failed; the kit, with its keys, is at kit_file: move it there yourself",
			"kit_file", at, "path", d.out.path, "trust_id", o.res.Trust.ID, "error", err)
		fmt.Fprintln(d.stdout, at)
		return exitFail
	}
	d.log.Info("kit written", "path", at, "trust_id", o.res.Trust.ID, "status", o.status)
	fmt.Fprintln(d.stdout, at)
	return exitOK
}

// skip prints the record of a trust that was only looked up, or writes it
// to the --out-file path, except over a kit that holds keys: a record
// without keys never replaces one with them. A kit of this trust's whose
// API key is still the trust's is kept and named as the run's kit (exit
// 0); any other kit with keys, or a file that is not a kit, is left alone
// and the run fails.
func (d deployRun) skip(o outcome, rec record) int {
	if d.out == nil {
		return writeJSON(d.stdout, d.log, []record{rec})
	}
	prior, err := readKit(d.out.path)
	switch {
	case err != nil:
		d.log.Error("the --out-file path holds something other than kit records, so whether it holds keys cannot be told; it is left as it is: move it away", "path", d.out.path, "error", err)
		return exitFail
	case !holdsKeys(prior):
	case len(prior) == 1 && prior[0].TrustID == rec.TrustID && flip.APIKeyMatchesHash(prior[0].TrustAPIKey, o.keyHash):
		d.log.Warn("kit file kept: it holds this trust's keys, still in force, from an earlier run; a record without keys never replaces it",
			"path", d.out.path, "kit_status", prior[0].Status, "trust_id", rec.TrustID)
		fmt.Fprintln(d.stdout, d.out.path)
		return exitOK
	default:
		d.log.Error("the --out-file path holds keys of a trust of this name that no longer authenticate it (it was re-keyed since, or deleted and registered again); a record without keys is not written over them: move the file away, or re-key the trust with --rotate for a new kit",
			"path", d.out.path, "trust_id", rec.TrustID)
		return exitFail
	}
	data, err := encodeJSON([]record{rec})
	if err == nil {
		err = d.out.stage(data)
	}
	if err == nil {
		_, err = d.out.install()
	}
	if err != nil {
		d.log.Error("writing the record to --out-file failed (the trust is registered; no keys were at stake)", "path", d.out.path, "error", err)
		return exitFail
	}
	d.log.Info("kit written", "path", d.out.path, "trust_id", rec.TrustID, "status", o.status)
	fmt.Fprintln(d.stdout, d.out.path)
	return exitOK
}
