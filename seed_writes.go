package flip

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// userProfile is a row of user_profile as seeding writes it.
type userProfile struct {
	UserID       uuid.UUID // the identity provider's id (Cognito sub)
	Name         string
	Organisation string
}

// userChange says what applyMainUser wrote.
type userChange struct {
	ProfileCreated bool // user_profile inserted
	ProfileUpdated bool // name or organisation differed and was updated
	RoleGranted    bool // the user had no role and was granted one
}

// ensureRoles inserts each of roles whose id is missing and changes no
// existing role. A role's name taken by a role with another id is an
// error, because grants refer to the fixed ids. Each role is one
// statement, so on a connection pool every insert commits by itself;
// concurrent callers inserting the same role wait for each other and
// neither fails.
func ensureRoles(ctx context.Context, db dbexec.Executor, roles []Role, at time.Time) error {
	for _, r := range roles {
		if _, err := db.Exec(ctx, pgsql.InsertRole, r.ID, r.Name, r.Description, at); err != nil {
			return fmt.Errorf("insert role %q: %w", r.Name, err)
		}
		var ok bool
		if err := db.QueryRow(ctx, pgsql.RoleExists, r.ID).Scan(&ok); err != nil {
			return fmt.Errorf("check role %q: %w", r.Name, err)
		}
		if !ok {
			return fmt.Errorf("role %q cannot be created with id %s: a role with that name has another id", r.Name, r.ID)
		}
	}
	return nil
}

// applyMainUser, inside transaction tx (never committed here), serialises
// with concurrent calls for the same user until tx ends, then inserts p,
// or updates its name and organisation when they differ, and grants roleID
// globally (trust_id NULL) only if the user holds no role at all. When
// everything is already as asked, no row is written. A roleID missing from
// roles is an error naming the role.
func applyMainUser(ctx context.Context, tx dbexec.Executor, p userProfile, roleID uuid.UUID, at time.Time) (userChange, error) {
	var change userChange
	if _, err := tx.Exec(ctx, pgsql.LockUser, p.UserID); err != nil {
		return change, fmt.Errorf("lock user %s: %w", p.UserID, err)
	}
	var name, org string
	err := tx.QueryRow(ctx, pgsql.SelectProfile, p.UserID).Scan(&name, &org)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		n, err := execCount(ctx, tx, pgsql.InsertProfile, p.UserID, p.Name, p.Organisation, at)
		if err != nil {
			return change, fmt.Errorf("insert user_profile %s: %w", p.UserID, err)
		}
		change.ProfileCreated = n == 1
		if !change.ProfileCreated { // someone else inserted it meanwhile
			n, err := execCount(ctx, tx, pgsql.UpdateProfile, p.UserID, p.Name, p.Organisation, at)
			if err != nil {
				return change, fmt.Errorf("update user_profile %s: %w", p.UserID, err)
			}
			change.ProfileUpdated = n == 1
		}
	case err != nil:
		return change, fmt.Errorf("read user_profile %s: %w", p.UserID, err)
	case name != p.Name || org != p.Organisation:
		n, err := execCount(ctx, tx, pgsql.UpdateProfile, p.UserID, p.Name, p.Organisation, at)
		if err != nil {
			return change, fmt.Errorf("update user_profile %s: %w", p.UserID, err)
		}
		change.ProfileUpdated = n == 1
	}
	n, err := execCount(ctx, tx, pgsql.GrantRoleIfNone, uuid.New(), p.UserID, roleID)
	if pgsql.SQLState(err) == "23503" /* foreign_key_violation */ {
		return change, fmt.Errorf("grant role %s to %s: no such role: %w", roleID, p.UserID, err)
	}
	if err != nil {
		return change, fmt.Errorf("grant role %s to %s: %w", roleID, p.UserID, err)
	}
	change.RoleGranted = n == 1
	return change, nil
}

// execCount runs a statement and returns how many rows it changed.
func execCount(ctx context.Context, tx dbexec.Executor, query string, args ...any) (int64, error) {
	res, err := tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
