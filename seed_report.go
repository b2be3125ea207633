package flip

import (
	"fmt"

	"github.com/google/uuid"
)

// SeedResult is what seeding did for one main user.
type SeedResult string

// The results of seeding one user. A user whose profile was created and
// who was granted a role in the same run is SeedCreated, with
// UserOutcome.RoleGranted set.
const (
	// SeedCreated: the user_profile row was inserted.
	SeedCreated SeedResult = "created"
	// SeedUpdated: the profile existed with another name or organisation
	// and was updated (updated_at bumped).
	SeedUpdated SeedResult = "updated"
	// SeedGranted: the profile was already right; the user had no role and
	// was granted the configured one.
	SeedGranted SeedResult = "granted"
	// SeedUnchanged: nothing was written.
	SeedUnchanged SeedResult = "unchanged"
	// SeedSkippedNotFound: the identity provider has no user with this
	// email; nothing was written.
	SeedSkippedNotFound SeedResult = "skipped-not-found"
	// SeedSkippedTransient: the identity provider could not answer (see
	// ErrIdentityProviderUnavailable); nothing was written. The next run
	// tries again.
	SeedSkippedTransient SeedResult = "skipped-transient"
	// SeedSkippedUnverified: accounts hold the email but none proves it
	// (ErrUserNotVerified, User.ProvesAddress): an unconfirmed sign-up,
	// an unverified address, a disabled account. Nothing was written; the
	// next run tries again. Not a failure of the run, so that signing up
	// with a main user's address cannot stop the hub's boot.
	SeedSkippedUnverified SeedResult = "skipped-unverified"
)

// UserOutcome is the result of seeding one configured main user.
type UserOutcome struct {
	Email  string     `json:"email"`
	Role   string     `json:"role"`
	Result SeedResult `json:"result"`
	// UserID is the identity provider's id for the user; zero when the
	// user was skipped.
	UserID uuid.UUID `json:"user_id,omitzero"`
	// ProfileCreated, ProfileUpdated and RoleGranted say what was written.
	ProfileCreated bool `json:"profile_created,omitempty"`
	ProfileUpdated bool `json:"profile_updated,omitempty"`
	RoleGranted    bool `json:"role_granted,omitempty"`
	// IgnoredAccounts counts the accounts that hold the email without
	// proving it (User.ProvesAddress), which seeding warned about and
	// gave nothing, whatever the result.
	IgnoredAccounts int `json:"ignored_accounts,omitempty"`
	// Status and Code are the identity provider's HTTP status and error
	// code for a skipped user, when it answered.
	Status int    `json:"status,omitempty"`
	Code   string `json:"code,omitempty"`
	// Cause is why the user was skipped; Reason is its text, for JSON.
	Cause  error  `json:"-"`
	Reason string `json:"reason,omitempty"`
}

// Skipped reports whether the user was skipped (not found, not verified,
// or the provider was unavailable).
func (o UserOutcome) Skipped() bool {
	return o.Result == SeedSkippedNotFound || o.Result == SeedSkippedTransient || o.Result == SeedSkippedUnverified
}

// SeedReport lists the outcome of every main user seeding reached, in
// configuration order. When SeedMainUsers stops with an error, the users
// after the one that failed are absent.
type SeedReport struct {
	Users []UserOutcome `json:"users"`
}

// Count returns how many users had result r.
func (r SeedReport) Count(result SeedResult) int {
	n := 0
	for _, o := range r.Users {
		if o.Result == result {
			n++
		}
	}
	return n
}

// Changed reports whether the run wrote anything for any user.
func (r SeedReport) Changed() bool {
	for _, o := range r.Users {
		if o.ProfileCreated || o.ProfileUpdated || o.RoleGranted {
			return true
		}
	}
	return false
}

// String summarises the report in one line, e.g.
// "3 users: 1 created, 1 unchanged, 1 skipped-not-found".
func (r SeedReport) String() string {
	s := fmt.Sprintf("%d users", len(r.Users))
	sep := ": "
	for _, res := range []SeedResult{SeedCreated, SeedUpdated, SeedGranted, SeedUnchanged, SeedSkippedNotFound, SeedSkippedUnverified, SeedSkippedTransient} {
		if n := r.Count(res); n > 0 {
			s += fmt.Sprintf("%s%d %s", sep, n, res)
			sep = ", "
		}
	}
	return s
}
