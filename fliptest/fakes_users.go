package fliptest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// The methods of UserStore that faults can be injected into.
const (
	MethodEnsureRoles   Method = "EnsureRoles"
	MethodApplyMainUser Method = "ApplyMainUser"
)

// UserStore is an in-memory flip.UserStore that decides as store.Store does
// on PostgreSQL: roles are created by id and never changed; a profile is
// inserted, or updated (bumping UpdatedAt) only when its name or
// organisation differs; a role is granted globally only to a user who
// holds no role at all, global or for a trust, so a role changed by an
// administrator is never undone. TestUserStore checks that against the
// real store.
//
// Every write is committed at once: the db and tx arguments are ignored
// and may be nil, so a Seeder can be run as
// seeder.SeedMainUsers(ctx, nil, idp). A failed call writes nothing; a
// call whose context has ended fails with ctx.Err(), as a database call
// does.
//
// FailNext and OnCall inject failures, as for Store. The zero value is not
// ready; use NewUserStore. A UserStore is safe for concurrent use.
//
//	users := fliptest.NewUserStore()
//	report, err := flip.NewSeeder(users, mainUsers).SeedMainUsers(ctx, nil, idp)
//	profile, ok := users.Profile(id)
type UserStore struct {
	faults faults

	mu       sync.Mutex
	roles    map[uuid.UUID]flip.Role
	profiles map[uuid.UUID]ProfileRow
	grants   []RoleGrant
}

var _ flip.UserStore = (*UserStore)(nil)

// ProfileRow is a user_profile row.
type ProfileRow struct {
	flip.UserProfile
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RoleGrant is a user_role row: RoleID granted to UserID, globally when
// TrustID is uuid.Nil, else for that trust.
type RoleGrant struct {
	UserID  uuid.UUID
	RoleID  uuid.UUID
	TrustID uuid.UUID
}

// NewUserStore returns a UserStore with no roles, profiles or grants.
func NewUserStore() *UserStore {
	return &UserStore{roles: map[uuid.UUID]flip.Role{}, profiles: map[uuid.UUID]ProfileRow{}}
}

// FailNext makes the next call of m (MethodEnsureRoles or
// MethodApplyMainUser) return err before doing anything. Calls queue.
func (s *UserStore) FailNext(m Method, err error) { s.faults.failNext(m, err) }

// OnCall installs hook, consulted before every call that has no FailNext
// error queued; a non-nil result is returned as the call's error. A hook
// may block and must be safe for concurrent use. nil removes it.
func (s *UserStore) OnCall(hook func(ctx context.Context, method Method) error) {
	s.faults.onCall(hook)
}

// Calls returns how many times m was called, failed calls included.
func (s *UserStore) Calls(m Method) int { return s.faults.count(m) }

// enter counts a call of m and returns its injected failure, else the
// context's error.
func (s *UserStore) enter(ctx context.Context, m Method) error {
	if err := s.faults.enter(ctx, m); err != nil {
		return err
	}
	return ctx.Err()
}

// EnsureRoles implements flip.UserStore.
func (s *UserStore) EnsureRoles(ctx context.Context, _ flip.DBTX, roles []flip.Role, _ time.Time) error {
	if err := s.enter(ctx, MethodEnsureRoles); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range roles {
		if _, ok := s.roles[r.ID]; ok {
			continue
		}
		for _, old := range s.roles {
			if old.Name == r.Name {
				return fmt.Errorf("role %q cannot be created with id %s: a role with that name has another id", r.Name, r.ID)
			}
		}
		s.roles[r.ID] = r
	}
	return nil
}

// ApplyMainUser implements flip.UserStore. Granting a role the store does
// not hold is an error naming it, and writes nothing; like store.Store,
// the role is only checked when a grant is due.
func (s *UserStore) ApplyMainUser(ctx context.Context, _ flip.DBTX, p flip.UserProfile, roleID uuid.UUID, at time.Time) (flip.UserChange, error) {
	if err := s.enter(ctx, MethodApplyMainUser); err != nil {
		return flip.UserChange{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var c flip.UserChange
	c.RoleGranted = !slices.ContainsFunc(s.grants, func(g RoleGrant) bool { return g.UserID == p.UserID })
	if _, ok := s.roles[roleID]; c.RoleGranted && !ok {
		return flip.UserChange{}, fmt.Errorf("grant role %s to %s: no such role", roleID, p.UserID)
	}
	old, ok := s.profiles[p.UserID]
	switch {
	case !ok:
		s.profiles[p.UserID] = ProfileRow{UserProfile: p, CreatedAt: at, UpdatedAt: at}
		c.ProfileCreated = true
	case old.UserProfile != p:
		old.UserProfile, old.UpdatedAt = p, at
		s.profiles[p.UserID] = old
		c.ProfileUpdated = true
	}
	if c.RoleGranted {
		s.grants = append(s.grants, RoleGrant{UserID: p.UserID, RoleID: roleID})
	}
	return c, nil
}

// PutProfile writes a profile directly, as the hub does when a user signs
// up, replacing any other with the same user id.
func (s *UserStore) PutProfile(p ProfileRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[p.UserID] = p
}

// Grant grants a role directly, as an administrator does in the hub:
// globally when g.TrustID is uuid.Nil, else for that trust. The role must
// exist (EnsureRoles); granting the same role twice is an error, as the
// unique indexes of user_role make it.
func (s *UserStore) Grant(g RoleGrant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.roles[g.RoleID]; !ok {
		return fmt.Errorf("fliptest: grant role %s: no such role", g.RoleID)
	}
	if slices.Contains(s.grants, g) {
		return fmt.Errorf("fliptest: user %s already holds role %s for trust %s", g.UserID, g.RoleID, g.TrustID)
	}
	s.grants = append(s.grants, g)
	return nil
}

// Roles returns the roles, ordered by id.
func (s *UserStore) Roles() []flip.Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]flip.Role, 0, len(s.roles))
	for _, r := range s.roles {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b flip.Role) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// Profile returns the profile of userID.
func (s *UserStore) Profile(userID uuid.UUID) (ProfileRow, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.profiles[userID]
	return p, ok
}

// Profiles returns every profile, ordered by user id.
func (s *UserStore) Profiles() []ProfileRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProfileRow, 0, len(s.profiles))
	for _, p := range s.profiles {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ProfileRow) int { return bytes.Compare(a.UserID[:], b.UserID[:]) })
	return out
}

// Grants returns the role grants of userID, or of every user when userID
// is uuid.Nil, ordered by user, role and trust.
func (s *UserStore) Grants(userID uuid.UUID) []RoleGrant {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []RoleGrant
	for _, g := range s.grants {
		if userID == uuid.Nil || g.UserID == userID {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, compareGrants)
	return out
}

func compareGrants(a, b RoleGrant) int {
	return cmp.Or(bytes.Compare(a.UserID[:], b.UserID[:]), bytes.Compare(a.RoleID[:], b.RoleID[:]), bytes.Compare(a.TrustID[:], b.TrustID[:]))
}
