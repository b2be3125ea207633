package flip

import (
	"strings"

	"github.com/google/uuid"
)

// Role is a row of the roles table. The hub's permission checks refer to
// the well-known roles by id, so their ids are fixed and the same in every
// deployment.
type Role struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
}

// PerTrust reports whether the hub grants r only together with a trust
// (user_role.trust_id set), as it does Trust Admin. Such a role is never
// granted globally, so it cannot be a main user's role.
func (r Role) PerTrust() bool { return r.ID == RoleTrustAdmin.ID }

// The well-known roles, with the ids the FLIP hub expects. Seeding creates
// any that are missing (by id) and never changes one that exists, so a
// description edited by an administrator stays as it is.
var (
	RoleAdmin = Role{
		ID:          uuid.MustParse("64d3145b-034c-4328-b637-8eb54313b7c5"),
		Name:        "Admin",
		Description: "Administers the FLIP platform: trusts, users and roles",
	}
	RoleResearcher = Role{
		ID:          uuid.MustParse("10b64ed0-bc90-4c01-9cc3-933c704905c1"),
		Name:        "Researcher",
		Description: "Creates projects and runs federated training",
	}
	RoleViewer = Role{
		ID:          uuid.MustParse("cdee79c9-a5e1-4b9e-a315-1ec2f3d29efe"),
		Name:        "Viewer",
		Description: "Reads projects and results without changing them",
	}
	// RoleTrustAdmin is per-trust: the hub always grants it with a
	// trust_id. The hub first created it as "Trust Owner"; seeding finds it
	// by id whatever its name.
	RoleTrustAdmin = Role{
		ID:          uuid.MustParse("8a3d6f14-9b52-4e07-a6c8-1d4f7b2e9053"),
		Name:        "Trust Admin",
		Description: "Administers one trust's users and settings",
	}
)

// WellKnownRoles returns the roles seeding guarantees exist, in a fixed
// order (Admin, Researcher, Viewer, Trust Admin). The slice is new on each
// call; changing it changes nothing else.
func WellKnownRoles() []Role {
	return []Role{RoleAdmin, RoleResearcher, RoleViewer, RoleTrustAdmin}
}

// roleByName returns the well-known role called name, compared
// case-insensitively after trimming, so that "admin" and "Trust admin" in
// a configuration file work.
func roleByName(name string) (Role, bool) {
	name = strings.TrimFunc(name, isTrimmable)
	for _, r := range WellKnownRoles() {
		if strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	return Role{}, false
}
