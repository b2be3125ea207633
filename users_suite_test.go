package flip_test

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
)

// The main-user storage behaviour suite: roles created once by id,
// profiles created, updated or left alone, a role granted only to a user
// without one (never undoing an administrator's change), one grant under
// concurrency, and a Seeder run that is idempotent. It once kept an
// in-memory fake honest; now it runs on the real store only: on flip's
// schema, on flip's migration 1 alone, on the hub's own schema
// (internal/hubfixture, with the hub's roles rows) before and after flip's
// migrations, and through the pgx stdlib driver. Roles a database already
// holds are kept, and the suite expects them kept.

var userSuiteVariants = []struct {
	name string
	opts []fliptest.Option
}{
	{"flip_schema/lib_pq", nil},
	{"flip_migration_1/lib_pq", []fliptest.Option{fliptest.AtVersion(1)}},
	{"hub_fixture/lib_pq", []fliptest.Option{fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0)}},
	{"hub_fixture_migrated/lib_pq", []fliptest.Option{fliptest.FromSQL(hubfixture.Schema)}},
	{"flip_schema/pgx", []fliptest.Option{fliptest.WithDriver("pgx")}},
}

func TestUserStoreSuite(t *testing.T) {
	t.Parallel()
	for _, c := range userSuiteCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range userSuiteVariants {
				t.Run(v.name, func(t *testing.T) {
					t.Parallel()
					c.run(t, newUserSuite(t, v.opts...))
				})
			}
		})
	}
}

// profileRow is a user_profile row.
type profileRow struct {
	flip.UserProfile
	CreatedAt time.Time
	UpdatedAt time.Time
}

// roleGrant is a user_role row: RoleID granted to UserID, globally when
// TrustID is uuid.Nil, else for that trust.
type roleGrant struct {
	UserID  uuid.UUID
	RoleID  uuid.UUID
	TrustID uuid.UUID
}

func compareGrants(a, b roleGrant) int {
	return cmp.Or(bytes.Compare(a.UserID[:], b.UserID[:]), bytes.Compare(a.RoleID[:], b.RoleID[:]), bytes.Compare(a.TrustID[:], b.TrustID[:]))
}

// userState is the committed state of the user tables, in a fixed order.
type userState struct {
	Roles    []flip.Role  // by id
	Profiles []profileRow // by user id, times in UTC
	Grants   []roleGrant  // by user, role, trust
}

// Run calls fn with a transaction of its own, committed when fn returns
// nil and rolled back otherwise, and returns fn's error.
func (s *userSuite) Run(ctx context.Context, fn func(tx flip.DBTX) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one that matters
		return err
	}
	return tx.Commit()
}

// PutProfile writes a profile directly, as the hub does at sign-up.
func (s *userSuite) PutProfile(ctx context.Context, p profileRow) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, organisation = excluded.organisation, created_at = excluded.created_at, updated_at = excluded.updated_at`,
		p.UserID, p.Name, p.Organisation, p.CreatedAt, p.UpdatedAt)
	return err
}

// Grant grants a role directly, as an administrator does in the hub; a
// trust-scoped grant's trust is created if missing.
func (s *userSuite) Grant(ctx context.Context, g roleGrant) error {
	trust := uuid.NullUUID{UUID: g.TrustID, Valid: g.TrustID != uuid.Nil}
	if trust.Valid {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO trust (id, name, created_at) VALUES ($1, $2, now()) ON CONFLICT (id) DO NOTHING`,
			g.TrustID, "test trust "+g.TrustID.String()); err != nil {
			return err
		}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO user_role (id, user_id, role_id, trust_id) VALUES ($1, $2, $3, $4)`,
		uuid.New(), g.UserID, g.RoleID, trust)
	return err
}

// snapshot reads the committed roles, profiles and grants.
func (s *userSuite) snapshot() userState {
	s.t.Helper()
	var st userState
	eachRow(s.t, s.ctx, s.db, `SELECT id, name, description FROM roles`, func(rows *sql.Rows) error {
		var r flip.Role
		err := rows.Scan(&r.ID, &r.Name, &r.Description)
		st.Roles = append(st.Roles, r)
		return err
	})
	eachRow(s.t, s.ctx, s.db, `SELECT user_id, name, organisation, created_at, updated_at FROM user_profile`, func(rows *sql.Rows) error {
		var p profileRow
		err := rows.Scan(&p.UserID, &p.Name, &p.Organisation, &p.CreatedAt, &p.UpdatedAt)
		p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
		st.Profiles = append(st.Profiles, p)
		return err
	})
	eachRow(s.t, s.ctx, s.db, `SELECT user_id, role_id, trust_id FROM user_role`, func(rows *sql.Rows) error {
		var (
			g     roleGrant
			trust uuid.NullUUID
		)
		err := rows.Scan(&g.UserID, &g.RoleID, &trust)
		g.TrustID = trust.UUID
		st.Grants = append(st.Grants, g)
		return err
	})
	slices.SortFunc(st.Roles, func(a, b flip.Role) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	slices.SortFunc(st.Profiles, func(a, b profileRow) int { return bytes.Compare(a.UserID[:], b.UserID[:]) })
	slices.SortFunc(st.Grants, compareGrants)
	return st
}

// userSuite is one case's database and store, with helpers that fail the
// test on setup errors.
type userSuite struct {
	db     *fliptest.DB
	DB     flip.DBTX // what a Seeder is given: the connection pool
	t      *testing.T
	ctx    context.Context
	at     time.Time   // a fixed time, as PostgreSQL stores it
	before []flip.Role // the roles the storage held before the case, e.g. the hub's own
}

func newUserSuite(t *testing.T, opts ...fliptest.Option) *userSuite {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	db := fliptest.NewDB(t, opts...)
	s := &userSuite{db: db, DB: db.DB, t: t, ctx: ctx, at: time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)}
	s.before = s.snapshot().Roles
	return s
}

// wantRoles is the role set after EnsureRoles of the well-known roles: the
// roles held before, untouched (a hub database already has its own, under
// its own names and descriptions), plus each well-known role whose id was
// missing, by id.
func (s *userSuite) wantRoles() []flip.Role {
	roles := slices.Clone(s.before)
	for _, r := range flip.WellKnownRoles() {
		if !slices.ContainsFunc(s.before, func(b flip.Role) bool { return b.ID == r.ID }) {
			roles = append(roles, r)
		}
	}
	slices.SortFunc(roles, func(a, b flip.Role) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return roles
}

// sameRoles compares roles by what the roles table stores (id, name,
// description); Role.PerTrust is a property of the well-known id that no
// column holds.
func sameRoles(got, want []flip.Role) bool {
	return slices.EqualFunc(got, want, func(a, b flip.Role) bool {
		return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description
	})
}

func (s *userSuite) ensureRoles(roles ...flip.Role) error {
	return s.Run(s.ctx, func(tx flip.DBTX) error { return flip.EnsureRoles(s.ctx, tx, roles, s.at) })
}

func (s *userSuite) mustEnsureWellKnownRoles() {
	s.t.Helper()
	if err := s.ensureRoles(flip.WellKnownRoles()...); err != nil {
		s.t.Fatalf("ensure roles: %v", err)
	}
}

func (s *userSuite) apply(p flip.UserProfile, roleID uuid.UUID, at time.Time) (flip.UserChange, error) {
	var c flip.UserChange
	err := s.Run(s.ctx, func(tx flip.DBTX) error {
		var err error
		c, err = flip.ApplyMainUser(s.ctx, tx, p, roleID, at)
		return err
	})
	return c, err
}

func (s *userSuite) mustApply(p flip.UserProfile, role flip.Role, at time.Time) flip.UserChange {
	s.t.Helper()
	c, err := s.apply(p, role.ID, at)
	if err != nil {
		s.t.Fatalf("apply %s: %v", p.UserID, err)
	}
	return c
}

// user returns the committed profile and grants of id.
func (s *userSuite) user(id uuid.UUID) (*profileRow, []roleGrant) {
	s.t.Helper()
	snap := s.snapshot()
	var p *profileRow
	for i := range snap.Profiles {
		if snap.Profiles[i].UserID == id {
			p = &snap.Profiles[i]
		}
	}
	var grants []roleGrant
	for _, g := range snap.Grants {
		if g.UserID == id {
			grants = append(grants, g)
		}
	}
	return p, grants
}

func (s *userSuite) wantChange(got, want flip.UserChange) {
	s.t.Helper()
	if got != want {
		s.t.Errorf("change = %+v, want %+v", got, want)
	}
}

var userSuiteCases = []struct {
	name string
	run  func(t *testing.T, s *userSuite)
}{
	{"EnsureRolesCreatesMissingRolesByIDOnce", func(t *testing.T, s *userSuite) {
		if err := s.ensureRoles(flip.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		edited := flip.RoleAdmin
		edited.Description = "changed by an administrator"
		if err := s.ensureRoles(edited); err != nil {
			t.Fatal(err)
		}
		s.mustEnsureWellKnownRoles()
		s.mustEnsureWellKnownRoles()
		// wantRoles holds the first Admin: flip's, or the one held before.
		if got, want := s.snapshot().Roles, s.wantRoles(); !sameRoles(got, want) {
			t.Errorf("roles = %+v\nwant %+v (the first Admin's description kept)", got, want)
		}
	}},
	{"EnsureRolesRefusesANameHeldByAnotherID", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		impostor := flip.Role{ID: uuid.New(), Name: flip.RoleAdmin.Name, Description: "same name, other id"}
		if err := s.ensureRoles(impostor); err == nil || !strings.Contains(err.Error(), flip.RoleAdmin.Name) {
			t.Errorf("err = %v, want an error naming the role", err)
		}
		if got := s.snapshot().Roles; !sameRoles(got, s.wantRoles()) {
			t.Errorf("roles = %+v, want the roles held before and the well-known roles only", got)
		}
	}},
	{"ApplyCreatesThenWritesNothing", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin", Organisation: "Example Trust"}
		s.wantChange(s.mustApply(p, flip.RoleAdmin, s.at), flip.UserChange{ProfileCreated: true, RoleGranted: true})
		s.wantChange(s.mustApply(p, flip.RoleAdmin, s.at.Add(time.Hour)), flip.UserChange{})
		s.wantChange(s.mustApply(p, flip.RoleViewer, s.at.Add(2*time.Hour)), flip.UserChange{})
		got, grants := s.user(p.UserID)
		want := profileRow{UserProfile: p, CreatedAt: s.at, UpdatedAt: s.at}
		if got == nil || *got != want {
			t.Errorf("profile = %+v, want %+v", got, want)
		}
		if g := []roleGrant{{UserID: p.UserID, RoleID: flip.RoleAdmin.ID}}; !slices.Equal(grants, g) {
			t.Errorf("grants = %+v, want %+v", grants, g)
		}
	}},
	{"ApplyUpdatesOnlyADriftedProfile", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin", Organisation: "Example Trust"}
		s.mustApply(p, flip.RoleAdmin, s.at)
		later := s.at.Add(time.Hour)
		for _, drifted := range []flip.UserProfile{
			{UserID: p.UserID, Name: "Ada Lovelace", Organisation: p.Organisation},
			{UserID: p.UserID, Name: "Ada Lovelace", Organisation: ""},
		} {
			later = later.Add(time.Minute)
			s.wantChange(s.mustApply(drifted, flip.RoleAdmin, later), flip.UserChange{ProfileUpdated: true})
			got, grants := s.user(p.UserID)
			want := profileRow{UserProfile: drifted, CreatedAt: s.at, UpdatedAt: later}
			if got == nil || *got != want {
				t.Errorf("profile = %+v, want %+v", got, want)
			}
			if len(grants) != 1 {
				t.Errorf("grants = %+v, want the first one only", grants)
			}
		}
	}},
	{"ApplyGrantsToAProfileWithoutRole", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		p := flip.UserProfile{UserID: uuid.New(), Name: "Signed Up", Organisation: "Example Trust"}
		if err := s.PutProfile(s.ctx, profileRow{UserProfile: p, CreatedAt: s.at, UpdatedAt: s.at}); err != nil {
			t.Fatal(err)
		}
		s.wantChange(s.mustApply(p, flip.RoleResearcher, s.at.Add(time.Hour)), flip.UserChange{RoleGranted: true})
		got, grants := s.user(p.UserID)
		if got == nil || !got.UpdatedAt.Equal(s.at) {
			t.Errorf("profile = %+v, want it untouched", got)
		}
		if g := []roleGrant{{UserID: p.UserID, RoleID: flip.RoleResearcher.ID}}; !slices.Equal(grants, g) {
			t.Errorf("grants = %+v, want %+v", grants, g)
		}
	}},
	{"ApplyNeverUndoesAnExistingRole", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		global := roleGrant{UserID: uuid.New(), RoleID: flip.RoleViewer.ID}
		scoped := roleGrant{UserID: uuid.New(), RoleID: flip.RoleTrustAdmin.ID, TrustID: uuid.New()}
		for _, g := range []roleGrant{global, scoped} {
			if err := s.Grant(s.ctx, g); err != nil {
				t.Fatal(err)
			}
			s.wantChange(s.mustApply(flip.UserProfile{UserID: g.UserID, Name: "Demoted"}, flip.RoleAdmin, s.at), flip.UserChange{ProfileCreated: true})
			if _, grants := s.user(g.UserID); !slices.Equal(grants, []roleGrant{g}) {
				t.Errorf("grants = %+v, want only the administrator's %+v", grants, g)
			}
		}
	}},
	{"ApplyWithAnUnknownRoleFailsNamingItAndWritesNothing", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		missing := uuid.New()
		p := flip.UserProfile{UserID: uuid.New(), Name: "N"}
		_, err := s.apply(p, missing, s.at)
		if err == nil || !strings.Contains(err.Error(), "no such role") || !strings.Contains(err.Error(), missing.String()) {
			t.Errorf("err = %v, want one naming role %s", err, missing)
		}
		if got, grants := s.user(p.UserID); got != nil || len(grants) != 0 {
			t.Errorf("after the failure: profile %+v, grants %+v; want nothing", got, grants)
		}
	}},
	{"ConcurrentAppliesCreateAndGrantOnce", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		const workers = 8
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin", Organisation: "Example Trust"}
		changes := make([]flip.UserChange, workers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range workers {
			role := flip.RoleAdmin
			if i%2 == 1 {
				role = flip.RoleResearcher // different roles race too: still one grant
			}
			wg.Go(func() {
				<-start
				var err error
				if changes[i], err = s.apply(p, role.ID, s.at); err != nil {
					t.Errorf("apply: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		created, granted := 0, 0
		for _, c := range changes {
			if c.ProfileCreated {
				created++
			}
			if c.RoleGranted {
				granted++
			}
			if c.ProfileUpdated {
				t.Errorf("change %+v: an identical profile was updated", c)
			}
		}
		if _, grants := s.user(p.UserID); created != 1 || granted != 1 || len(grants) != 1 {
			t.Errorf("%d created, %d granted, grants %+v; want 1, 1 and one grant", created, granted, grants)
		}
	}},
	{"SeederRunIsIdempotent", func(t *testing.T, s *userSuite) {
		idp := fliptest.NewIdentityProvider()
		ada := idp.AddUser("ada.admin@example.com")
		rita := idp.AddUser("rita.research@example.com")
		users := []flip.MainUser{
			{Email: ada.Email, Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"},
			{Email: rita.Email, Role: "researcher", Name: "Rita Research"},
			{Email: "new.starter@example.com", Role: "Viewer", Name: "New Starter"},
		}
		seeder := flip.NewSeeder(users)
		seeder.Now = func() time.Time { return s.at }
		var reports []string
		for range 2 {
			report, err := seeder.SeedMainUsers(s.ctx, s.DB, idp)
			if err != nil {
				t.Fatalf("seed: %v", err)
			}
			reports = append(reports, report.String())
		}
		want := []string{"3 users: 2 created, 1 skipped-not-found", "3 users: 2 unchanged, 1 skipped-not-found"}
		if !slices.Equal(reports, want) {
			t.Errorf("reports = %q, want %q", reports, want)
		}
		snap := s.snapshot()
		wantGrants := []roleGrant{{UserID: ada.ID, RoleID: flip.RoleAdmin.ID}, {UserID: rita.ID, RoleID: flip.RoleResearcher.ID}}
		slices.SortFunc(wantGrants, compareGrants)
		if !sameRoles(snap.Roles, s.wantRoles()) || len(snap.Profiles) != 2 || !slices.Equal(snap.Grants, wantGrants) {
			t.Errorf("state = %+v", snap)
		}
	}},
	{"CanceledContextFailsAndWritesNothing", func(t *testing.T, s *userSuite) {
		s.mustEnsureWellKnownRoles()
		ctx, cancel := context.WithCancel(s.ctx)
		cancel()
		p := flip.UserProfile{UserID: uuid.New(), Name: "N"}
		err := s.Run(s.ctx, func(tx flip.DBTX) error {
			_, err := flip.ApplyMainUser(ctx, tx, p, flip.RoleAdmin.ID, s.at)
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got, grants := s.user(p.UserID); got != nil || len(grants) != 0 {
			t.Errorf("after the failure: profile %+v, grants %+v; want nothing", got, grants)
		}
	}},
}

// String describes a grant for test failures.
func (g roleGrant) String() string {
	trust := "global"
	if g.TrustID != uuid.Nil {
		trust = "trust " + g.TrustID.String()
	}
	return fmt.Sprintf("%s: role %s (%s)", g.UserID, g.RoleID, trust)
}

// eachRow runs q on db and calls scan for each row, failing the test on any
// error.
func eachRow(t testing.TB, ctx context.Context, db flip.DBTX, q string, scan func(*sql.Rows) error) {
	t.Helper()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
}
