package flip

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// undo rolls the caller's transaction back to flip's savepoint
// after cause, and releases it, which leaves the transaction exactly as it
// was. It uses a context of its own: the caller's may be what just
// expired, and leaving the transaction aborted would break the promise
// that it stays usable. A failed undo is tried once more. If the work
// still cannot be undone (the savepoint is gone after a RELEASE whose
// answer was lost, say), the transaction is aborted on purpose, so that
// the caller's COMMIT fails instead of persisting a change whose
// keys nobody received, and the error also matches ErrRollbackRequired.
//
// When the transaction itself is already over (database/sql rolled it
// back because its context ended, or the connection died and the server
// rolled it back) nothing of it can be committed any more: that is
// reported as such, without ErrRollbackRequired.
func undo(ctx context.Context, tx dbexec.Executor, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	for range 2 {
		if err = rollbackToSavepoint(ctx, tx); err == nil || transactionGone(err) {
			break
		}
	}
	switch {
	case err == nil:
		return cause
	case transactionGone(err):
		err = fmt.Errorf("the transaction had already ended and was rolled back; nothing of it was committed: %w", err)
	default:
		_, _ = tx.Exec(ctx, pgsql.AbortTransaction) // fails by design
		err = fmt.Errorf("%w: %w", ErrRollbackRequired, err)
	}
	return errors.Join(cause, fmt.Errorf("undo the failed work: %w", err))
}

func rollbackToSavepoint(ctx context.Context, tx dbexec.Executor) error {
	for _, q := range [...]string{pgsql.RollbackToSavepoint, pgsql.ReleaseSavepoint} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// transactionGone reports whether err says the transaction can no longer
// commit anything: database/sql ended it (sql.ErrTxDone, after its
// context was cancelled), the connection is broken (driver.ErrBadConn, a
// connection exception, SQLSTATE class 08), or the server ended the
// session (57P01–57P03, e.g. pg_terminate_backend). In each case the
// server has rolled the whole transaction back.
func transactionGone(err error) bool {
	if errors.Is(err, sql.ErrTxDone) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	state := pgsql.SQLState(err)
	return strings.HasPrefix(state, "08") || state == "57P01" || state == "57P02" || state == "57P03"
}

// nullTrust is pgsql.Register's dup_* columns, all NULL without a duplicate.
type nullTrust struct {
	id                 uuid.NullUUID
	name, code, region sql.NullString
	createdAt          sql.NullTime
	sameName           sql.NullBool
}

func (d nullTrust) duplicateError(p TrustParams) *DuplicateTrustError {
	field := "code"
	if d.sameName.Bool {
		field = "name"
	}
	existing := &Trust{ID: d.id.UUID, Name: d.name.String, Code: d.code.String, Region: d.region.String, CreatedAt: d.createdAt.Time.UTC()}
	return &DuplicateTrustError{Field: field, Name: p.Name, Code: p.Code, Existing: existing}
}

// insertError turns a unique violation of flip's name or code index
// (migrations 002 and 004: a rival committed between the check and the insert, at
// REPEATABLE READ or above) into a *DuplicateTrustError. PostgreSQL quotes
// the constraint's name in the message in every locale and driver.
func insertError(err error, p TrustParams) error {
	if pgsql.SQLState(err) != "23505" {
		return err
	}
	for field, index := range map[string]string{"name": "flip_trust_folded_name_key", "code": "flip_trust_code_key"} {
		if strings.Contains(err.Error(), `"`+index+`"`) {
			return &DuplicateTrustError{Field: field, Name: p.Name, Code: p.Code, cause: err}
		}
	}
	return err
}

// nullUUID maps uuid.Nil to SQL NULL.
func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}
