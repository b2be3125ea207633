package pgsql

// The statements of main-user seeding, in the order flip.Seeder sends them.
const (
	// InsertRole creates a role unless its id or name exists; an
	// existing role is left as it is. $1 id, $2 name, $3 description,
	// $4 created_at and updated_at.
	InsertRole = `INSERT INTO roles (id, name, description, created_at, updated_at)
VALUES ($1::pg_catalog.uuid, $2::pg_catalog.text, $3::pg_catalog.text, $4::pg_catalog.timestamptz, $4::pg_catalog.timestamptz)
ON CONFLICT DO NOTHING`

	// RoleExists checks, after InsertRole, that the role's id is
	// there (a name taken by another id makes the insert do nothing).
	// $1 id.
	RoleExists = `SELECT EXISTS (SELECT FROM roles WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid)`

	// LockUser takes a transaction-scoped advisory lock on the user, so
	// that two seeders deciding whether the user has a role take turns.
	// $1 user id.
	LockUser = `SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('flip.user:' OPERATOR(pg_catalog.||) $1::pg_catalog.text, 0::pg_catalog.int8))`

	// SelectProfile reads the profile to compare. $1 user id.
	SelectProfile = `SELECT name, organisation FROM user_profile WHERE user_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid`

	// InsertProfile creates the profile; a row that appeared meanwhile
	// (a writer that does not take LockUser) is left for the update.
	// $1 user id, $2 name, $3 organisation, $4 created_at and updated_at.
	InsertProfile = `INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at)
VALUES ($1::pg_catalog.uuid, $2::pg_catalog.text, $3::pg_catalog.text, $4::pg_catalog.timestamptz, $4::pg_catalog.timestamptz)
ON CONFLICT (user_id) DO NOTHING`

	// UpdateProfile changes name and organisation only when they differ
	// (a NULL differs from every value), so an unchanged profile is not
	// rewritten and keeps its updated_at.
	// $1 user id, $2 name, $3 organisation, $4 updated_at.
	UpdateProfile = `UPDATE user_profile
SET name = $2::pg_catalog.text, organisation = $3::pg_catalog.text, updated_at = $4::pg_catalog.timestamptz
WHERE user_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid
  AND NOT (COALESCE(name::pg_catalog.text OPERATOR(pg_catalog.=) $2::pg_catalog.text, false)
           AND COALESCE(organisation::pg_catalog.text OPERATOR(pg_catalog.=) $3::pg_catalog.text, false))`

	// GrantRoleIfNone grants a global role (trust_id NULL) only when the
	// user holds no role at all, global or for a trust, so that a role an
	// administrator changed is never undone. $1 grant id, $2 user id,
	// $3 role id.
	GrantRoleIfNone = `INSERT INTO user_role (id, user_id, role_id, trust_id)
SELECT $1::pg_catalog.uuid, $2::pg_catalog.uuid, $3::pg_catalog.uuid, NULL::pg_catalog.uuid
WHERE NOT EXISTS (SELECT FROM user_role WHERE user_id OPERATOR(pg_catalog.=) $2::pg_catalog.uuid)
ON CONFLICT DO NOTHING`
)
