package flip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip/internal/dbexec"
)

// Seeding main users
//
// At boot the hub makes sure its main users (MainUser, from configuration)
// can administer the platform: each is looked up in the identity provider
// by email, given a user_profile row, and granted the configured role if
// they hold none yet. A role changed later in the admin UI is never undone
// by the next boot, and a second run writes nothing.

// Defaults of Seeder.
const (
	// DefaultSeedConcurrency is how many identity-provider lookups a Seeder
	// runs at once when Concurrency is 0: enough to hide network latency
	// for a handful of users without tripping Cognito's rate limits.
	DefaultSeedConcurrency = 4
	// DefaultLookupTimeout bounds one lookup, retries included, when
	// LookupTimeout is 0. A lookup that takes longer is a transient
	// failure: the user is skipped and the others are still seeded.
	DefaultLookupTimeout = 15 * time.Second
)

// Seeder seeds the main users. Set its fields, then call SeedMainUsers;
// a Seeder is not changed by seeding and may be reused and shared.
//
//	seeder := flip.NewSeeder(users)
//	seeder.Logger = logger
//	report, err := seeder.SeedMainUsers(ctx, db, cognito.New(client, poolID))
type Seeder struct {
	// Users are the main users, in the order their writes are applied.
	Users []MainUser
	// Concurrency is how many lookups may run at once (default
	// DefaultSeedConcurrency; 1 looks users up one after another). Writes
	// are applied in configuration order whatever its value, so the
	// outcome does not depend on which lookup answers first.
	Concurrency int
	// LookupTimeout bounds each lookup (default DefaultLookupTimeout).
	LookupTimeout time.Duration
	// Logger receives one record per user, with warnings for skipped users
	// (default: discard). Records carry emails, ids, HTTP statuses and
	// error codes, never credentials.
	Logger *slog.Logger
	// Now is the source of created_at and updated_at (default time.Now).
	Now func() time.Time
}

// NewSeeder returns a Seeder for users with the default concurrency,
// timeout and a discarding logger.
func NewSeeder(users []MainUser) *Seeder {
	return &Seeder{Users: users}
}

// SeedMainUsers seeds every configured main user and reports what it did
// for each. It first checks the whole configuration (an error wrapping
// ErrInvalidMainUsers, before anything is sent or written), then makes sure
// the well-known roles exist, then for each user in configuration order:
//   - looks the user up by email in idp (several lookups may be in flight,
//     see Concurrency), and keeps the accounts whose address is the email,
//     compared case-insensitively;
//   - logs a warning for each of those accounts that does not prove the
//     address (User.ProvesAddress: verified address, enabled, a status
//     meaning its owner holds it), naming the email, the account, its
//     status and email_verified, and gives it nothing;
//   - one account proves the address: writes its profile and grants the
//     role;
//   - no account holds the address: logs a warning and skips the user
//     (SeedSkippedNotFound);
//   - accounts hold it but none proves it: logs a warning and skips the
//     user (SeedSkippedUnverified), so that whoever signs up with a main
//     user's address gets nothing and cannot stop the boot either;
//   - transient failure (ErrIdentityProviderUnavailable, or the lookup's
//     own timeout): logs a warning with the email and HTTP status, skips
//     the user (SeedSkippedTransient) and carries on;
//   - two or more accounts prove the address, or the provider's answer
//     does not list every account holding it (Code CodeAmbiguousEmail),
//     any other lookup failure (HTTP 400 or 403, ErrInvalidIdentifier, an
//     unexpected error) or a database error: stops and returns a
//     *SeedUserError naming the user, the step and the status.
//
// The error is nil when every user was seeded or skipped; skipped users are
// in the report, and the next run tries them again. A run is idempotent:
// repeating it writes nothing. Two runs at once on one database (two hub
// replicas booting) end with the same rows as one run, without errors.
//
// db decides the transactions. A connection pool or *sql.Conn (anything
// with BeginTx) gets one short transaction per user, committed before the
// next user's. A transaction (*sql.Tx, *sqlx.Tx) receives every write and
// is never committed or rolled back here: the caller does that, and should
// run at READ COMMITTED so that a concurrent seeder's rows are seen.
//
// ctx bounds the whole run: when it ends, SeedMainUsers returns promptly
// with an error wrapping ctx.Err(), even if the identity provider hangs.
func (s *Seeder) SeedMainUsers(ctx context.Context, db DBTX, idp IdentityProvider) (SeedReport, error) {
	var begin dbexec.Beginner
	if b, ok := db.(TxBeginner); ok {
		begin = dbexec.BeginnerFromSQL(b)
	}
	return s.seedMainUsers(ctx, dbexec.FromSQL(db), begin, idp)
}

// seedMainUsers is SeedMainUsers on ex, whatever its driver: with begin,
// each user's writes get a transaction of their own from it; without,
// ex is the caller's transaction.
func (s *Seeder) seedMainUsers(ctx context.Context, ex dbexec.Executor, begin dbexec.Beginner, idp IdentityProvider) (SeedReport, error) {
	users, err := normalizeMainUsers(s.Users)
	if err != nil {
		return SeedReport{}, fmt.Errorf("%w: %w", ErrSeedMainUsers, err)
	}
	if idp == nil {
		return SeedReport{}, fmt.Errorf("%w: Seeder needs an IdentityProvider", ErrSeedMainUsers)
	}
	if err := ctx.Err(); err != nil {
		return SeedReport{}, fmt.Errorf("%w: %w", ErrSeedMainUsers, err)
	}
	to := seedDB{ex: ex, begin: begin}
	if err := ensureRoles(ctx, to.ex, WellKnownRoles(), s.now()); err != nil {
		return SeedReport{}, fmt.Errorf("%w: ensure roles: %w", ErrSeedMainUsers, withContextError(ctx, err))
	}

	lookupCtx, stopLookups := context.WithCancel(ctx)
	defer stopLookups()
	results := s.startLookups(lookupCtx, users, idp)

	report := SeedReport{Users: make([]UserOutcome, 0, len(users))}
	for i, u := range users {
		var r lookupResult
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			// The provider may ignore cancellation; do not wait for it.
			return report, &SeedUserError{Index: i, Email: u.Email, Step: "lookup", Err: ctx.Err()}
		}
		out, err := s.seedOne(ctx, to, i, u, r)
		if err != nil {
			s.logger().LogAttrs(ctx, slog.LevelError, "seeding main users stopped",
				slog.String("email", u.Email), slog.Any("error", err))
			return report, err
		}
		report.Users = append(report.Users, out)
	}
	s.logger().LogAttrs(ctx, slog.LevelInfo, "main users seeded", slog.String("summary", report.String()))
	return report, nil
}

// seedOne turns user i's lookup result into an outcome, writing when one
// account proves the user's address. A non-nil error stops the run.
func (s *Seeder) seedOne(ctx context.Context, to seedDB, i int, u mainUser, r lookupResult) (UserOutcome, error) {
	out := UserOutcome{Email: u.Email, Role: u.Role}
	var user User
	if r.err == nil {
		var ignored []User
		user, ignored, r.err = chooseAccount(u.Email, r.users)
		out.IgnoredAccounts = len(ignored)
		for _, a := range ignored {
			s.logger().LogAttrs(ctx, slog.LevelWarn, "account ignored: it does not prove the main user's address",
				slog.String("email", u.Email), slog.String("role", u.Role),
				slog.String("account_email", a.Email), slog.String("username", a.Username), slog.String("user_id", a.ID.String()),
				slog.String("status", string(a.Status)), slog.Bool("email_verified", a.EmailVerified), slog.Bool("enabled", a.Enabled))
		}
	}
	if r.err != nil {
		var ipe *IdentityProviderError
		if errors.As(r.err, &ipe) {
			out.Status, out.Code = ipe.Status, ipe.Code
		}
		out.Cause, out.Reason = r.err, r.err.Error()
		switch {
		case ctx.Err() != nil:
			err := r.err
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return out, &SeedUserError{Index: i, Email: u.Email, Step: "lookup", Status: out.Status, Code: out.Code, Err: err}
		case errors.Is(r.err, ErrUserNotFound):
			out.Result = SeedSkippedNotFound
			s.logger().LogAttrs(ctx, slog.LevelWarn, "main user skipped: not found in the identity provider",
				slog.String("email", u.Email), slog.String("role", u.Role))
			return out, nil
		case errors.Is(r.err, ErrUserNotVerified):
			out.Result = SeedSkippedUnverified
			s.logger().LogAttrs(ctx, slog.LevelWarn, "main user skipped: no account proves the address",
				slog.String("email", u.Email), slog.String("role", u.Role), slog.Int("accounts", out.IgnoredAccounts))
			return out, nil
		case transientLookupError(r.err):
			out.Result = SeedSkippedTransient
			s.logger().LogAttrs(ctx, slog.LevelWarn, "main user skipped: identity provider unavailable",
				slog.String("email", u.Email), slog.Int("status", out.Status), slog.String("code", out.Code),
				slog.Any("error", r.err))
			return out, nil
		}
		return out, &SeedUserError{Index: i, Email: u.Email, Step: "lookup", Status: out.Status, Code: out.Code, Err: r.err}
	}
	if user.ID == uuid.Nil {
		return out, &SeedUserError{Index: i, Email: u.Email, Step: "lookup",
			Err: fmt.Errorf("%w: the identity provider returned a user without an id", ErrIdentityProvider)}
	}
	out.UserID = user.ID
	change, err := s.write(ctx, to, userProfile{UserID: user.ID, Name: u.Name, Organisation: u.Organisation}, u.role.ID)
	if err != nil {
		return out, &SeedUserError{Index: i, Email: u.Email, Step: "write", Err: withContextError(ctx, err)}
	}
	out.ProfileCreated, out.ProfileUpdated, out.RoleGranted = change.ProfileCreated, change.ProfileUpdated, change.RoleGranted
	switch {
	case change.ProfileCreated:
		out.Result = SeedCreated
	case change.ProfileUpdated:
		out.Result = SeedUpdated
	case change.RoleGranted:
		out.Result = SeedGranted
	default:
		out.Result = SeedUnchanged
	}
	level := slog.LevelInfo
	if out.Result == SeedUnchanged {
		level = slog.LevelDebug
	}
	s.logger().LogAttrs(ctx, level, "main user seeded",
		slog.String("email", u.Email), slog.String("user_id", out.UserID.String()),
		slog.String("result", string(out.Result)), slog.Bool("role_granted", out.RoleGranted), slog.String("role", u.Role))
	return out, nil
}

// seedDB is where a run writes: ex sends the statements on the caller's
// handle, and begin, when that handle can begin transactions, gives each
// user's writes a transaction of their own.
type seedDB struct {
	ex    dbexec.Executor
	begin dbexec.Beginner // nil: the handle is the caller's transaction
}

// write applies one user's profile and role, in a transaction of its own
// when the caller's handle can begin one, else in the caller's transaction.
func (s *Seeder) write(ctx context.Context, to seedDB, p userProfile, roleID uuid.UUID) (userChange, error) {
	if to.begin == nil {
		return applyMainUser(ctx, to.ex, p, roleID, s.now())
	}
	tx, err := to.begin.Begin(ctx)
	if err != nil {
		return userChange{}, fmt.Errorf("begin: %w", err)
	}
	change, err := applyMainUser(ctx, tx, p, roleID, s.now())
	if err != nil {
		// The error being returned is the one that matters. Not ctx, which
		// may be what ended (see registerTrustDB).
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return userChange{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return userChange{}, fmt.Errorf("commit: %w", err)
	}
	return change, nil
}

// lookupResult is a lookup's answer: the accounts the provider found for
// one email, not yet judged (chooseAccount does that, in seedOne).
type lookupResult struct {
	users []User
	err   error
}

// startLookups looks users up with at most Concurrency lookups in flight,
// roughly in configuration order, and delivers user i's result on the i-th
// channel (buffered, so a worker never waits for the writer).
func (s *Seeder) startLookups(ctx context.Context, users []mainUser, idp IdentityProvider) []chan lookupResult {
	results := make([]chan lookupResult, len(users))
	for i := range results {
		results[i] = make(chan lookupResult, 1)
	}
	var next atomic.Int64
	for range min(s.concurrency(), len(users)) {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				results[i] <- s.lookup(ctx, idp, users[i].Email)
			}
		}()
	}
	return results
}

// lookup runs one lookup under LookupTimeout, turning a panic in the
// provider into an error instead of a crash of the hub.
func (s *Seeder) lookup(ctx context.Context, idp IdentityProvider, email string) (r lookupResult) {
	if err := ctx.Err(); err != nil {
		return lookupResult{err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.lookupTimeout())
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			r = lookupResult{err: fmt.Errorf("%w: identity provider panicked: %v", ErrIdentityProvider, p)}
		}
	}()
	users, err := idp.LookupUsersByEmail(ctx, email)
	return lookupResult{users: users, err: err}
}

// transientLookupError reports whether a failed lookup may pass at the
// next boot. The provider's own verdict decides (IdentityProviderError's
// Kind): a configuration fault stays definitive even when its text
// mentions a timeout. Without one, the lookup's own deadline counts as
// transient.
func transientLookupError(err error) bool {
	var ipe *IdentityProviderError
	if errors.As(err, &ipe) {
		return ipe.Transient()
	}
	return errors.Is(err, ErrIdentityProviderUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

func (s *Seeder) concurrency() int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return DefaultSeedConcurrency
}

func (s *Seeder) lookupTimeout() time.Duration {
	if s.LookupTimeout > 0 {
		return s.LookupTimeout
	}
	return DefaultLookupTimeout
}

func (s *Seeder) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Seeder) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}
