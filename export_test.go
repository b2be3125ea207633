package flip

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
)

// Seeding's two writes, for the storage tests (users_test.go,
// users_suite_test.go) that drive them with inputs a Seeder never sends.
// They take a DBTX, as the tests hold one, and adapt it as a Seeder does.

func EnsureRoles(ctx context.Context, db DBTX, roles []Role, at time.Time) error {
	return ensureRoles(ctx, dbexec.FromSQL(db), roles, at)
}

func ApplyMainUser(ctx context.Context, tx DBTX, p UserProfile, roleID uuid.UUID, at time.Time) (UserChange, error) {
	return applyMainUser(ctx, dbexec.FromSQL(tx), p, roleID, at)
}

type (
	UserProfile = userProfile
	UserChange  = userChange
)

// RoleByName resolves a role name as a main user's configuration does.
var RoleByName = roleByName
