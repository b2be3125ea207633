// Package cmddbtest holds what the tests of everything that is given a
// database connection string (the commands, the hub, the change feeds)
// share: connection strings to a port where nothing listens, each with a
// password in one of the forms a user can give it in, and the check that
// none of those passwords was printed. Only tests import it.
package cmddbtest

import (
	"strings"
	"testing"
)

// RefusedDSN is a connection string to 127.0.0.1:1, which refuses every
// connection, with a password in it.
type RefusedDSN struct {
	Name, DSN string
	Passwords []string // the password's text, never to be printed
	// Unparsable marks a string lib/pq cannot parse; its errors quote the
	// part they choked on, and pgx refuses it before a pool exists.
	Unparsable bool
}

// RefusedDSNs are the forms a password can be given in.
var RefusedDSNs = []RefusedDSN{
	{Name: "userinfo", DSN: "postgres://flip:pw-userinfo-1@127.0.0.1:1/none?sslmode=disable",
		Passwords: []string{"pw-userinfo-1"}},
	{Name: "query", DSN: "postgres://flip@127.0.0.1:1/none?sslmode=disable&password=pw-query-2&sslpassword=pw-ssl-3&PassWord=pw-case-4",
		Passwords: []string{"pw-query-2", "pw-ssl-3", "pw-case-4"}},
	{Name: "keywords", DSN: "host=127.0.0.1 port=1 user=flip sslmode=disable password='pw keywords 5' sslpassword=pw-ssl-6",
		Passwords: []string{"pw keywords 5", "pw-ssl-6"}},
	{Name: "unparsable keywords", DSN: "host=127.0.0.1 port=1 password=pw-un parsable-7",
		Passwords: []string{"pw-un", "parsable-7"}, Unparsable: true},
	{Name: "unparsable URL", DSN: "postgres://flip:pw-url-8%zz@127.0.0.1:1/none?sslmode=disable",
		Passwords: []string{"pw-url-8"}, Unparsable: true},
}

// NoPassword fails t when text (what names it) shows any of c's passwords.
func NoPassword(t testing.TB, c RefusedDSN, what, text string) {
	t.Helper()
	for _, pw := range c.Passwords {
		if strings.Contains(text, pw) {
			t.Errorf("%s: %s shows the password %q:\n%s", c.Name, what, pw, text)
		}
	}
}
