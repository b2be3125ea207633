package flip_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx", to prove the user statements are driver-independent
	"github.com/jmoiron/sqlx"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/store"
)

// usersVariant is a schema and driver the user statements must work on.
type usersVariant struct {
	name    string
	version int
	driver  string
}

var usersVariants = []usersVariant{
	{"flip_schema/lib_pq", store.LatestVersion(), "postgres"},
	{"hub_schema/lib_pq", 1, "postgres"},
	{"flip_schema/pgx", store.LatestVersion(), "pgx"},
}

type usersBundle struct {
	ctx context.Context
	db  *fliptest.DB
	at  time.Time
}

// forEachUsersVariant runs fn as a parallel subtest per variant, each with
// its own database holding the well-known roles.
func forEachUsersVariant(t *testing.T, fn func(t *testing.T, b usersBundle)) {
	t.Helper()
	for _, v := range usersVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			db := fliptest.NewDB(t, fliptest.AtVersion(v.version), fliptest.WithDriver(v.driver))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			t.Cleanup(cancel)
			b := usersBundle{ctx: ctx, db: db, at: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			if err := flip.EnsureRoles(ctx, db, flip.WellKnownRoles(), b.at); err != nil {
				t.Fatalf("ensure roles: %v", err)
			}
			fn(t, b)
		})
	}
}

// apply runs ApplyMainUser in a transaction of its own and commits it.
func (b usersBundle) apply(t *testing.T, p flip.UserProfile, role flip.Role, at time.Time) flip.UserChange {
	t.Helper()
	tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	change, err := flip.ApplyMainUser(b.ctx, tx, p, role.ID, at)
	if err != nil {
		t.Fatalf("apply %s: %v", p.UserID, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return change
}

// userRows returns the user's profile and role rows, with the row
// versions (xmin), as text: equal snapshots mean nothing was rewritten.
func userRows(t *testing.T, ctx context.Context, sqldb *sql.DB, id uuid.UUID) string {
	db := sqlx.NewDb(sqldb, "postgres")
	t.Helper()
	var rows []string
	err := sqlx.NewDb(db.DB, "postgres").SelectContext(ctx, &rows, `
		SELECT 'profile ' || name || '|' || organisation || '|' || created_at::text || '|' || updated_at::text || '|' || xmin::text
		FROM user_profile WHERE user_id = $1
		UNION ALL
		SELECT 'role ' || role_id::text || '|' || coalesce(trust_id::text, 'global') || '|' || xmin::text
		FROM user_role WHERE user_id = $1
		ORDER BY 1`, id)
	if err != nil {
		t.Fatalf("read rows: %v", err)
	}
	return strings.Join(rows, "\n")
}

func TestEnsureRoles_CreatesTheWellKnownRolesOnceByID(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		var before []string
		if err := sqlx.NewDb(b.db.DB, "postgres").SelectContext(b.ctx, &before, `SELECT id::text || name || xmin::text FROM roles ORDER BY id`); err != nil {
			t.Fatal(err)
		}
		if len(before) != 4 {
			t.Fatalf("%d roles, want 4", len(before))
		}
		if err := flip.EnsureRoles(b.ctx, b.db, flip.WellKnownRoles(), b.at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var after []string
		if err := sqlx.NewDb(b.db.DB, "postgres").SelectContext(b.ctx, &after, `SELECT id::text || name || xmin::text FROM roles ORDER BY id`); err != nil {
			t.Fatal(err)
		}
		if strings.Join(before, ",") != strings.Join(after, ",") {
			t.Errorf("second run rewrote roles:\n%v\n%v", before, after)
		}
	})
}

func TestEnsureRoles_KeepsAnEditedRoleAndRefusesANameWithAnotherID(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		if _, err := b.db.ExecContext(b.ctx, `UPDATE roles SET description = 'edited' WHERE id = $1`, flip.RoleViewer.ID); err != nil {
			t.Fatal(err)
		}
		if err := flip.EnsureRoles(b.ctx, b.db, flip.WellKnownRoles(), b.at); err != nil {
			t.Fatal(err)
		}
		var desc string
		if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &desc, `SELECT description FROM roles WHERE id = $1`, flip.RoleViewer.ID); err != nil || desc != "edited" {
			t.Errorf("description = %q, %v", desc, err)
		}

		impostor := flip.Role{ID: uuid.New(), Name: "Admin", Description: "x"}
		err := flip.EnsureRoles(b.ctx, b.db, []flip.Role{impostor}, b.at)
		if err == nil || !strings.Contains(err.Error(), `"Admin"`) {
			t.Errorf("err = %v, want one naming the role", err)
		}
	})
}

func TestApplyMainUser_CreatesThenWritesNothing(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin", Organisation: "Example Trust"}
		if c := b.apply(t, p, flip.RoleAdmin, b.at); c != (flip.UserChange{ProfileCreated: true, RoleGranted: true}) {
			t.Errorf("first apply = %+v", c)
		}
		before := userRows(t, b.ctx, b.db.DB, p.UserID)
		want := "profile Ada Admin|Example Trust|2026-01-02 03:04:05+00|2026-01-02 03:04:05+00|"
		if !strings.HasPrefix(before, want) || !strings.Contains(before, "role "+flip.RoleAdmin.ID.String()+"|global|") {
			t.Fatalf("rows:\n%s", before)
		}
		if c := b.apply(t, p, flip.RoleAdmin, b.at.Add(time.Hour)); c != (flip.UserChange{}) {
			t.Errorf("second apply = %+v, want no change", c)
		}
		if after := userRows(t, b.ctx, b.db.DB, p.UserID); after != before {
			t.Errorf("second apply rewrote rows:\n%s\n%s", before, after)
		}
	})
}

func TestApplyMainUser_UpdatesOnlyADriftedProfile(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin", Organisation: "Old Org"}
		b.apply(t, p, flip.RoleAdmin, b.at)
		p.Organisation = "New Org"
		later := b.at.Add(time.Hour)
		if c := b.apply(t, p, flip.RoleAdmin, later); c != (flip.UserChange{ProfileUpdated: true}) {
			t.Errorf("apply = %+v, want ProfileUpdated only", c)
		}
		var org string
		var created, updated time.Time
		if err := b.db.QueryRowContext(b.ctx, `SELECT organisation, created_at, updated_at FROM user_profile WHERE user_id = $1`, p.UserID).
			Scan(&org, &created, &updated); err != nil {
			t.Fatal(err)
		}
		if org != "New Org" || !created.Equal(b.at) || !updated.Equal(later) {
			t.Errorf("profile = %q created %v updated %v", org, created, updated)
		}
	})
}

func TestApplyMainUser_NeverUndoesAnExistingRole(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		trustID := uuid.New()
		if _, err := b.db.ExecContext(b.ctx, `INSERT INTO trust (id, name, created_at) VALUES ($1, 'Example Trust', now())`, trustID); err != nil {
			t.Fatal(err)
		}
		global, scoped := uuid.New(), uuid.New()
		if _, err := b.db.ExecContext(b.ctx, `INSERT INTO user_role (id, user_id, role_id, trust_id) VALUES ($1, $2, $3, NULL), ($4, $5, $6, $7)`,
			uuid.New(), global, flip.RoleViewer.ID, uuid.New(), scoped, flip.RoleTrustAdmin.ID, trustID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []uuid.UUID{global, scoped} {
			c := b.apply(t, flip.UserProfile{UserID: id, Name: "N"}, flip.RoleAdmin, b.at)
			if c.RoleGranted || !c.ProfileCreated {
				t.Errorf("%s: change = %+v, want profile created and no grant", id, c)
			}
			var n int
			if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &n, `SELECT count(*) FROM user_role WHERE user_id = $1 AND role_id = $2`, id, flip.RoleAdmin.ID); err != nil || n != 0 {
				t.Errorf("%s: %d Admin grants, %v", id, n, err)
			}
		}
	})
}

func TestApplyMainUser_ConcurrentTransactionsGrantOnce(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		const workers = 8
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin", Organisation: "Example Trust"}
		// With the profile in place no insert serialises the workers by
		// accident: only the lock keeps them from granting twice.
		if _, err := b.db.ExecContext(b.ctx, `INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
			p.UserID, p.Name, p.Organisation, b.at); err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			changes []flip.UserChange
			start   = make(chan struct{})
		)
		for i := range workers {
			role := flip.RoleAdmin
			if i%2 == 1 {
				role = flip.RoleResearcher // different roles race too: still one grant
			}
			wg.Go(func() {
				<-start
				tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				defer tx.Rollback() //nolint:errcheck // no-op after Commit
				c, err := flip.ApplyMainUser(b.ctx, tx, p, role.ID, b.at)
				if err == nil {
					err = tx.Commit()
				}
				if err != nil {
					t.Errorf("apply: %v", err)
					return
				}
				mu.Lock()
				changes = append(changes, c)
				mu.Unlock()
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
		}
		var roles int
		if err := sqlx.NewDb(b.db.DB, "postgres").GetContext(b.ctx, &roles, `SELECT count(*) FROM user_role WHERE user_id = $1`, p.UserID); err != nil {
			t.Fatal(err)
		}
		if created != 0 || granted != 1 || roles != 1 {
			t.Errorf("%d created, %d granted, %d role rows; want 0, 1, 1", created, granted, roles)
		}
	})
}

func TestApplyMainUser_NeverCommitsTheCallersTransaction(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := flip.UserProfile{UserID: uuid.New(), Name: "Rolled Back"}
		if _, err := flip.ApplyMainUser(b.ctx, tx, p, flip.RoleViewer.ID, b.at); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatalf("rollback: %v (was the transaction ended behind the caller?)", err)
		}
		if rows := userRows(t, b.ctx, b.db.DB, p.UserID); rows != "" {
			t.Errorf("rows after rollback:\n%s", rows)
		}
	})
}

func TestApplyMainUser_UnknownRoleIsAnErrorNamingIt(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // the test only reads the error
		missing := uuid.New()
		_, err = flip.ApplyMainUser(b.ctx, tx, flip.UserProfile{UserID: uuid.New(), Name: "N"}, missing, b.at)
		if err == nil || !strings.Contains(err.Error(), "no such role") || !strings.Contains(err.Error(), missing.String()) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestApplyMainUser_WaitsForAnOpenTransactionOnTheSameUser(t *testing.T) {
	t.Parallel()
	forEachUsersVariant(t, func(t *testing.T, b usersBundle) {
		p := flip.UserProfile{UserID: uuid.New(), Name: "Ada Admin"}
		if _, err := b.db.ExecContext(b.ctx, `INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at) VALUES ($1, $2, '', $3, $3)`,
			p.UserID, p.Name, b.at); err != nil {
			t.Fatal(err)
		}
		first, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Rollback() //nolint:errcheck // no-op after Commit
		if c, err := flip.ApplyMainUser(b.ctx, first, p, flip.RoleAdmin.ID, b.at); err != nil || !c.RoleGranted {
			t.Fatalf("first: %+v, %v", c, err)
		}

		type result struct {
			c   flip.UserChange
			err error
		}
		done := make(chan result, 1)
		go func() {
			tx, err := sqlx.NewDb(b.db.DB, "postgres").BeginTxx(b.ctx, nil)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer tx.Rollback() //nolint:errcheck // no-op after Commit
			c, err := flip.ApplyMainUser(b.ctx, tx, p, flip.RoleResearcher.ID, b.at)
			if err == nil {
				err = tx.Commit()
			}
			done <- result{c, err}
		}()
		// The server says when the second waits on the first, not a
		// clock: on a loaded machine it may not have started yet after
		// any fixed pause.
		for waiting := false; !waiting; time.Sleep(2 * time.Millisecond) {
			select {
			case r := <-done:
				t.Fatalf("second seeder did not wait for the first: %+v, %v", r.c, r.err)
			default:
			}
			if err := b.db.QueryRowContext(b.ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock')`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
		}
		if err := first.Commit(); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || r.c.RoleGranted {
			t.Errorf("second seeder: %+v, %v; want no grant once the first committed", r.c, r.err)
		}
	})
}
