package flip

// Seeding's two writes, for the storage tests (users_test.go,
// users_suite_test.go) that drive them with inputs a Seeder never sends.
var (
	EnsureRoles   = ensureRoles
	ApplyMainUser = applyMainUser
)

type (
	UserProfile = userProfile
	UserChange  = userChange
)

// RoleByName resolves a role name as a main user's configuration does.
var RoleByName = roleByName
