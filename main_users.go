package flip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Main-user configuration
//
// The main users are the people who must be able to administer a fresh
// deployment: typically one Admin per operating organisation. They are
// configuration, supplied by the caller in code, in a JSON file or in an
// environment variable; the library knows nobody's address. In JSON:
//
//	{"main_users": [
//	  {"email": "ada.admin@example.com", "role": "Admin", "name": "Ada Admin", "organisation": "Example Trust"}
//	]}
//
// A bare array of the same objects is accepted too.

// MainUser is one main user to seed: who, with which role, and the profile
// to record.
type MainUser struct {
	// Email is the address the user signs in with; it is looked up in the
	// identity provider exactly as given (after trimming).
	Email string `json:"email"`
	// Role names a well-known global role ("Admin", "Researcher" or
	// "Viewer"; case-insensitive). It is granted globally, and only when
	// the user has no role yet. "Trust Admin" is refused: the hub grants
	// that role only for a trust (see Role.PerTrust).
	Role string `json:"role"`
	// Name is the display name stored in user_profile.name (required, at
	// most 255 characters).
	Name string `json:"name"`
	// Organisation is stored in user_profile.organisation (may be empty,
	// at most 255 characters).
	Organisation string `json:"organisation"`
}

// The environment variables MainUsersFromEnv reads.
const (
	// EnvMainUsers holds the main users as JSON, in the file format.
	EnvMainUsers = "FLIP_MAIN_USERS"
	// EnvMainUsersFile holds the path of a JSON file of main users.
	EnvMainUsersFile = "FLIP_MAIN_USERS_FILE"
)

// mainUser is a validated MainUser with its role resolved.
type mainUser struct {
	MainUser
	role Role
}

// Normalize returns u trimmed, with Role spelled as the well-known role's
// name, or an *InvalidMainUserError (index 0) saying what is wrong.
func (u MainUser) Normalize() (MainUser, error) {
	m, err := normalizeMainUser(0, u)
	return m.MainUser, err
}

// ValidateMainUsers checks a whole configuration as SeedMainUsers does
// before it starts: every entry valid and no email twice (compared
// case-insensitively). It returns the first problem found.
func ValidateMainUsers(users []MainUser) error {
	_, err := normalizeMainUsers(users)
	return err
}

func normalizeMainUsers(users []MainUser) ([]mainUser, error) {
	out := make([]mainUser, 0, len(users))
	seen := make(map[string]int, len(users))
	for i, u := range users {
		m, err := normalizeMainUser(i, u)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(m.Email)
		if first, dup := seen[key]; dup {
			return nil, &InvalidMainUserError{Index: i, Email: u.Email, Field: "email",
				Reason: fmt.Sprintf("repeats main user #%d", first+1)}
		}
		seen[key] = i
		out = append(out, m)
	}
	return out, nil
}

func normalizeMainUser(i int, u MainUser) (mainUser, error) {
	refuse := func(field, reason string, cause error) error {
		return &InvalidMainUserError{Index: i, Email: u.Email, Field: field, Reason: reason, cause: cause}
	}
	m := mainUser{MainUser: u}
	m.Email = strings.TrimFunc(u.Email, isTrimmable)
	if err := ValidateEmail(m.Email); err != nil {
		return m, refuse("email", "is not a usable address: "+strings.TrimPrefix(err.Error(), ErrInvalidIdentifier.Error()+": "), err)
	}
	role, ok := roleByName(u.Role)
	if !ok || role.PerTrust() {
		names := make([]string, 0, 3)
		for _, r := range WellKnownRoles() {
			if !r.PerTrust() {
				names = append(names, r.Name)
			}
		}
		reason := fmt.Sprintf("%q is not one of %s", u.Role, strings.Join(names, ", "))
		if ok {
			reason = fmt.Sprintf("%q is a per-trust role: the hub grants it only together with a trust, never globally; "+
				"give the user one of %s here and grant %s for a trust in the admin UI", role.Name, strings.Join(names, ", "), role.Name)
		}
		return m, refuse("role", reason, nil)
	}
	m.role, m.Role = role, role.Name
	var err error
	if m.Name, err = cleanField("name", u.Name, MaxNameLength, ErrInvalidMainUsers); err != nil {
		return m, refuse("name", fieldReason(err), nil)
	}
	if m.Organisation, err = cleanField("organisation", u.Organisation, MaxNameLength, nil); err != nil {
		return m, refuse("organisation", fieldReason(err), nil)
	}
	return m, nil
}

// fieldReason extracts the reason from cleanField's error.
func fieldReason(err error) string {
	var ite *InvalidTrustParamError
	if errors.As(err, &ite) {
		return ite.Reason
	}
	return err.Error()
}

// mainUsersFile is the object form of the JSON configuration.
type mainUsersFile struct {
	MainUsers []MainUser `json:"main_users"`
}

// ParseMainUsers reads a JSON main-user configuration: an object with a
// "main_users" array, or a bare array. Unknown fields are refused, so a
// misspelt "organization" is caught instead of silently storing "". It
// validates the result as ValidateMainUsers does.
func ParseMainUsers(data []byte) ([]MainUser, error) {
	var users []MainUser
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var err error
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		err = dec.Decode(&users)
	} else {
		var f mainUsersFile
		err = dec.Decode(&f)
		users = f.MainUsers
	}
	if err == nil {
		if _, next := dec.Token(); next != io.EOF {
			err = errors.New("unexpected data after the configuration")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMainUsers, err)
	}
	if err := ValidateMainUsers(users); err != nil {
		return nil, err
	}
	return users, nil
}

// LoadMainUsersFile reads and parses the JSON main-user configuration at
// path (see ParseMainUsers).
func LoadMainUsersFile(path string) ([]MainUser, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMainUsers, err)
	}
	users, err := ParseMainUsers(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}

// MainUsersFromEnv loads the main users from the environment through
// getenv (os.Getenv in a program, a map lookup in a test): the JSON in
// FLIP_MAIN_USERS, or the file named by FLIP_MAIN_USERS_FILE. Setting both
// is an error; setting neither returns no users and no error.
//
//	users, err := flip.MainUsersFromEnv(os.Getenv)
func MainUsersFromEnv(getenv func(string) string) ([]MainUser, error) {
	inline, file := getenv(EnvMainUsers), getenv(EnvMainUsersFile)
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("%w: set %s or %s, not both", ErrInvalidMainUsers, EnvMainUsers, EnvMainUsersFile)
	case file != "":
		return LoadMainUsersFile(file)
	case inline != "":
		users, err := ParseMainUsers([]byte(inline))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvMainUsers, err)
		}
		return users, nil
	}
	return nil, nil
}
