package flip_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/londonaicentre/flip"
)

const usersJSON = `{"main_users": [
  {"email": " ada.admin@example.com ", "role": "admin", "name": " Ada Admin ", "organisation": "Example Trust"},
  {"email": "rita.research@example.com", "role": "researcher", "name": "Rita Research", "organisation": ""}
]}`

var wantUsers = []flip.MainUser{
	{Email: " ada.admin@example.com ", Role: "admin", Name: " Ada Admin ", Organisation: "Example Trust"},
	{Email: "rita.research@example.com", Role: "researcher", Name: "Rita Research"},
}

func TestParseMainUsers_ObjectAndArrayForms(t *testing.T) {
	t.Parallel()
	got, err := flip.ParseMainUsers([]byte(usersJSON))
	if err != nil || !reflect.DeepEqual(got, wantUsers) {
		t.Fatalf("object form = %+v, %v", got, err)
	}
	array := usersJSON[strings.Index(usersJSON, "[") : strings.LastIndex(usersJSON, "]")+1]
	got, err = flip.ParseMainUsers([]byte(array))
	if err != nil || !reflect.DeepEqual(got, wantUsers) {
		t.Fatalf("array form = %+v, %v", got, err)
	}
}

func TestParseMainUsers_RefusesUnknownFieldsAndTrailingData(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"main_users": [{"email": "a@example.com", "role": "Admin", "name": "A", "organization": "typo"}]}`,
		`{"users": []}`,
		`[{"email": "a@example.com", "role": "Admin", "name": "A"}] []`,
		`not json`,
	} {
		if _, err := flip.ParseMainUsers([]byte(in)); !errors.Is(err, flip.ErrInvalidMainUsers) {
			t.Errorf("%s: err = %v, want ErrInvalidMainUsers", in, err)
		}
	}
}

func TestMainUser_NormalizeTrimsAndSpellsTheRole(t *testing.T) {
	t.Parallel()
	got, err := wantUsers[0].Normalize()
	want := flip.MainUser{Email: "ada.admin@example.com", Role: "Admin", Name: "Ada Admin", Organisation: "Example Trust"}
	if err != nil || got != want {
		t.Fatalf("Normalize = %+v, %v; want %+v", got, err, want)
	}
	if r, ok := flip.RoleByName(" trust ADMIN "); !ok || r != flip.RoleTrustAdmin {
		t.Errorf("RoleByName = %+v, %v", r, ok)
	}
}

func TestValidateMainUsers_NamesTheEntryAndField(t *testing.T) {
	t.Parallel()
	ok := flip.MainUser{Email: "ok@example.com", Role: "Viewer", Name: "Ok"}
	cases := []struct {
		user          flip.MainUser
		field         string
		invalidEmail  bool
		reasonContain string
	}{
		{flip.MainUser{Email: `bad"quote@example.com`, Role: "Admin", Name: "B"}, "email", true, "double quote"},
		{flip.MainUser{Email: `back\slash@example.com`, Role: "Admin", Name: "B"}, "email", true, "backslash"},
		{flip.MainUser{Email: "  ", Role: "Admin", Name: "B"}, "email", true, "empty"},
		{flip.MainUser{Email: "b@example.com", Role: "Owner", Name: "B"}, "role", false, "Admin, Researcher, Viewer"},
		// The hub grants Trust Admin only with a trust: never as a main
		// user's global role.
		{flip.MainUser{Email: "b@example.com", Role: "Trust Admin", Name: "B"}, "role", false, "per-trust role"},
		{flip.MainUser{Email: "b@example.com", Role: " trust admin", Name: "B"}, "role", false, `"b@example.com"`},
		{flip.MainUser{Email: "b@example.com", Role: "Admin", Name: " "}, "name", false, "blank"},
		{flip.MainUser{Email: "b@example.com", Role: "Admin", Name: strings.Repeat("n", 256)}, "name", false, "limit"},
		{flip.MainUser{Email: "b@example.com", Role: "Admin", Name: "B", Organisation: "x\x00"}, "organisation", false, "NUL"},
		{flip.MainUser{Email: "OK@example.com", Role: "Admin", Name: "B"}, "email", false, "repeats main user #1"},
	}
	for _, c := range cases {
		err := flip.ValidateMainUsers([]flip.MainUser{ok, c.user})
		var mue *flip.InvalidMainUserError
		if !errors.As(err, &mue) || !errors.Is(err, flip.ErrInvalidMainUsers) {
			t.Errorf("%+v: err = %v, want *InvalidMainUserError", c.user, err)
			continue
		}
		if mue.Index != 1 || mue.Field != c.field || !strings.Contains(err.Error(), c.reasonContain) ||
			errors.Is(err, flip.ErrInvalidIdentifier) != c.invalidEmail {
			t.Errorf("%+v: err = %v (index %d field %q)", c.user, err, mue.Index, mue.Field)
		}
	}
}

func TestLoadMainUsersFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(usersJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := flip.LoadMainUsersFile(path)
	if err != nil || !reflect.DeepEqual(got, wantUsers) {
		t.Fatalf("LoadMainUsersFile = %+v, %v", got, err)
	}
	if _, err := flip.LoadMainUsersFile(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, flip.ErrInvalidMainUsers) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestMainUsersFromEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(usersJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	got, err := flip.MainUsersFromEnv(env(map[string]string{flip.EnvMainUsers: usersJSON}))
	if err != nil || !reflect.DeepEqual(got, wantUsers) {
		t.Errorf("inline: %+v, %v", got, err)
	}
	got, err = flip.MainUsersFromEnv(env(map[string]string{flip.EnvMainUsersFile: path}))
	if err != nil || !reflect.DeepEqual(got, wantUsers) {
		t.Errorf("file: %+v, %v", got, err)
	}
	got, err = flip.MainUsersFromEnv(env(nil))
	if err != nil || got != nil {
		t.Errorf("unset: %+v, %v", got, err)
	}
	_, err = flip.MainUsersFromEnv(env(map[string]string{flip.EnvMainUsers: usersJSON, flip.EnvMainUsersFile: path}))
	if !errors.Is(err, flip.ErrInvalidMainUsers) {
		t.Errorf("both set: err = %v", err)
	}
	_, err = flip.MainUsersFromEnv(env(map[string]string{flip.EnvMainUsers: `[{"email": "x@example.com"}]`}))
	if !errors.Is(err, flip.ErrInvalidMainUsers) || !strings.Contains(err.Error(), flip.EnvMainUsers) {
		t.Errorf("invalid inline: err = %v", err)
	}
}

func TestWellKnownRoles_HaveTheHubsFixedIDs(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"Admin":       "64d3145b-034c-4328-b637-8eb54313b7c5",
		"Researcher":  "10b64ed0-bc90-4c01-9cc3-933c704905c1",
		"Viewer":      "cdee79c9-a5e1-4b9e-a315-1ec2f3d29efe",
		"Trust Admin": "8a3d6f14-9b52-4e07-a6c8-1d4f7b2e9053",
	}
	roles := flip.WellKnownRoles()
	if len(roles) != len(want) {
		t.Fatalf("%d roles", len(roles))
	}
	for _, r := range roles {
		if want[r.Name] != r.ID.String() || r.Description == "" {
			t.Errorf("role %+v", r)
		}
	}
	roles[0].Name = "changed"
	if flip.WellKnownRoles()[0].Name != "Admin" {
		t.Error("WellKnownRoles shares its slice")
	}
}
