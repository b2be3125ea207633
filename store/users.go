package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

var _ flip.UserStore = (*Store)(nil)

// The statements of main-user seeding, in the order flip.Seeder runs them.
// Exported, like the registration's, so DBAs can read exactly what runs.
const (
	// InsertRoleSQL creates a role unless its id or name exists; an
	// existing role is left as it is. $1 id, $2 name, $3 description,
	// $4 created_at and updated_at.
	InsertRoleSQL = `INSERT INTO roles (id, name, description, created_at, updated_at)
VALUES ($1, $2, $3, $4, $4)
ON CONFLICT DO NOTHING`

	// RoleExistsSQL checks, after InsertRoleSQL, that the role's id is
	// there (a name taken by another id makes the insert do nothing).
	// $1 id.
	RoleExistsSQL = `SELECT EXISTS (SELECT 1 FROM roles WHERE id = $1)`

	// LockUserSQL takes a transaction-scoped advisory lock on the user, so
	// that two seeders deciding whether the user has a role take turns.
	// $1 user id.
	LockUserSQL = `SELECT pg_advisory_xact_lock(hashtextextended('flip.user:' || $1::text, 0))`

	// SelectProfileSQL reads the profile to compare. $1 user id.
	SelectProfileSQL = `SELECT name, organisation FROM user_profile WHERE user_id = $1`

	// InsertProfileSQL creates the profile; a row that appeared meanwhile
	// (a writer that does not take LockUserSQL) is left for the update.
	// $1 user id, $2 name, $3 organisation, $4 created_at and updated_at.
	InsertProfileSQL = `INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at)
VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (user_id) DO NOTHING`

	// UpdateProfileSQL changes name and organisation only when they differ,
	// so an unchanged profile is not rewritten and keeps its updated_at.
	// $1 user id, $2 name, $3 organisation, $4 updated_at.
	UpdateProfileSQL = `UPDATE user_profile
SET name = $2, organisation = $3, updated_at = $4
WHERE user_id = $1 AND (name IS DISTINCT FROM $2 OR organisation IS DISTINCT FROM $3)`

	// GrantRoleIfNoneSQL grants a global role (trust_id NULL) only when the
	// user holds no role at all, global or for a trust, so that a role an
	// administrator changed is never undone. $1 grant id, $2 user id,
	// $3 role id.
	GrantRoleIfNoneSQL = `INSERT INTO user_role (id, user_id, role_id, trust_id)
SELECT $1::uuid, $2::uuid, $3::uuid, NULL::uuid
WHERE NOT EXISTS (SELECT 1 FROM user_role WHERE user_id = $2::uuid)
ON CONFLICT DO NOTHING`
)

// EnsureRoles implements flip.UserStore. Each role is one statement, so on
// a connection pool every insert commits by itself; concurrent callers
// inserting the same role wait for each other and neither fails.
func (*Store) EnsureRoles(ctx context.Context, db DBTX, roles []flip.Role, at time.Time) error {
	for _, r := range roles {
		if _, err := db.ExecContext(ctx, InsertRoleSQL, r.ID, r.Name, r.Description, at); err != nil {
			return fmt.Errorf("insert role %q: %w", r.Name, err)
		}
		var ok bool
		if err := db.QueryRowContext(ctx, RoleExistsSQL, r.ID).Scan(&ok); err != nil {
			return fmt.Errorf("check role %q: %w", r.Name, err)
		}
		if !ok {
			return fmt.Errorf("role %q cannot be created with id %s: a role with that name has another id", r.Name, r.ID)
		}
	}
	return nil
}

// ApplyMainUser implements flip.UserStore. tx must be a transaction (the
// advisory lock lasts until it ends); it is never committed here. When
// everything is already as asked, no row is written. A roleID missing from
// roles is an error naming the role (run EnsureRoles first).
func (*Store) ApplyMainUser(ctx context.Context, tx DBTX, p flip.UserProfile, roleID uuid.UUID, at time.Time) (flip.UserChange, error) {
	var change flip.UserChange
	if _, err := tx.ExecContext(ctx, LockUserSQL, p.UserID); err != nil {
		return change, fmt.Errorf("lock user %s: %w", p.UserID, err)
	}
	var name, org string
	err := tx.QueryRowContext(ctx, SelectProfileSQL, p.UserID).Scan(&name, &org)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		n, err := execCount(ctx, tx, InsertProfileSQL, p.UserID, p.Name, p.Organisation, at)
		if err != nil {
			return change, fmt.Errorf("insert user_profile %s: %w", p.UserID, err)
		}
		change.ProfileCreated = n == 1
		if !change.ProfileCreated { // someone else inserted it meanwhile
			n, err := execCount(ctx, tx, UpdateProfileSQL, p.UserID, p.Name, p.Organisation, at)
			if err != nil {
				return change, fmt.Errorf("update user_profile %s: %w", p.UserID, err)
			}
			change.ProfileUpdated = n == 1
		}
	case err != nil:
		return change, fmt.Errorf("read user_profile %s: %w", p.UserID, err)
	case name != p.Name || org != p.Organisation:
		n, err := execCount(ctx, tx, UpdateProfileSQL, p.UserID, p.Name, p.Organisation, at)
		if err != nil {
			return change, fmt.Errorf("update user_profile %s: %w", p.UserID, err)
		}
		change.ProfileUpdated = n == 1
	}
	n, err := execCount(ctx, tx, GrantRoleIfNoneSQL, uuid.New(), p.UserID, roleID)
	if sqlState(err) == codeForeignKeyViolation {
		return change, fmt.Errorf("grant role %s to %s: no such role: %w", roleID, p.UserID, err)
	}
	if err != nil {
		return change, fmt.Errorf("grant role %s to %s: %w", roleID, p.UserID, err)
	}
	change.RoleGranted = n == 1
	return change, nil
}

// execCount runs a statement and returns how many rows it changed.
func execCount(ctx context.Context, tx DBTX, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
