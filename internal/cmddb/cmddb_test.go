package cmddb

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/lib/pq"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "DATABASE_URL" {
				return v
			}
			return ""
		}
	}
	for _, c := range []struct {
		flag, env string
		want      Source
	}{
		{"postgres://f/a", "postgres://e/b", Source{"postgres://f/a", "--database-url"}},
		{"", "postgres://e/b", Source{"postgres://e/b", "DATABASE_URL"}},
	} {
		if got, err := Resolve(c.flag, env(c.env)); got != c.want || err != nil {
			t.Errorf("Resolve(%q) with DATABASE_URL=%q = %+v, %v; want %+v", c.flag, c.env, got, err, c.want)
		}
	}
	got, err := Resolve("", env(""))
	if !errors.Is(err, ErrNoDatabase) || got != (Source{}) {
		t.Errorf("neither set: %+v, %v; want ErrNoDatabase", got, err)
	}
	if !strings.Contains(err.Error(), "--database-url") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("neither set: %q names not both", err)
	}
}

// redactCases are connection strings in every form a password can be given
// in, each with the password's own text (which must never be shown) and
// what Redact shows.
var redactCases = []struct {
	name, dsn string
	secrets   []string
	want      string
}{
	{"userinfo", "postgres://flip:hunter2@db:5432/flip?sslmode=require",
		[]string{"hunter2"}, "postgres://flip:xxxxx@db:5432/flip?sslmode=require"},
	{"userinfo escaped", "postgresql://flip:hu%3Anter%40two@db/flip",
		[]string{"hu%3Anter%40two", "hu:nter@two"}, "postgresql://flip:xxxxx@db/flip"},
	{"userinfo with ':'", "postgres://flip:hu:nter2@db/flip",
		[]string{"hu:nter2"}, "postgres://flip:xxxxx@db/flip"},
	{"no password", "postgres://postgres@127.0.0.1/test",
		nil, "postgres://postgres@127.0.0.1/test"},
	{"query password", "postgres://flip@db/flip?sslmode=disable&password=hunter2",
		[]string{"hunter2"}, "postgres://flip@db/flip?sslmode=disable&password=xxxxx"},
	{"query password escaped", "postgres://flip@db/flip?password=hu%20nter+2%26x&sslmode=disable",
		[]string{"hu%20nter+2%26x", "hu nter 2&x"}, "postgres://flip@db/flip?password=xxxxx&sslmode=disable"},
	{"query sslpassword", "postgres://flip@db/flip?sslpassword=keypass9&sslmode=verify-full",
		[]string{"keypass9"}, "postgres://flip@db/flip?sslpassword=xxxxx&sslmode=verify-full"},
	{"query key in other cases", "postgres://flip@db/flip?PASSWORD=upper1&SslPassword=mixed2",
		[]string{"upper1", "mixed2"}, "postgres://flip@db/flip?PASSWORD=xxxxx&SslPassword=xxxxx"},
	{"query key escaped", "postgres://flip@db/flip?pass%77ord=sneaky3",
		[]string{"sneaky3"}, "postgres://flip@db/flip?pass%77ord=xxxxx"},
	{"query key repeated", "postgres://flip@db/flip?password=first4&password=second5",
		[]string{"first4", "second5"}, "postgres://flip@db/flip?password=xxxxx&password=xxxxx"},
	{"everywhere at once", "postgres://flip:one1@db/flip?password=two2&sslpassword=three3#frag",
		[]string{"one1", "two2", "three3"}, "postgres://flip:xxxxx@db/flip?password=xxxxx&sslpassword=xxxxx"},
	{"fragment", "postgres://flip@db/flip#password=frag6",
		[]string{"password=frag6"}, "postgres://flip@db/flip"},
	{"keywords", "host=db user=flip password=hunter2 sslmode=disable",
		[]string{"hunter2"}, "host=db user=flip password=xxxxx sslmode=disable"},
	{"keywords quoted", `host=db password='se cr\'et\\7' port=5432`,
		[]string{`se cr\'et\\7`, `se cr'et\7`}, "host=db password=xxxxx port=5432"},
	{"keywords escaped bare", `password=se\ cret8 host=db`,
		[]string{`se\ cret8`, "se cret8"}, "password=xxxxx host=db"},
	{"keywords spaced", "host=db  password =  'spaced9'dbname=x",
		[]string{"spaced9"}, "host=db  password =  xxxxxdbname=x"},
	{"keywords sslpassword", "host=db sslpassword=keypass10 sslkey=/k.pem",
		[]string{"keypass10"}, "host=db sslpassword=xxxxx sslkey=/k.pem"},
	{"keywords repeated and cased", "PASSWORD=aa11 password=bb12 host=db",
		[]string{"aa11", "bb12"}, "PASSWORD=xxxxx password=xxxxx host=db"},
	{"keywords empty password", "host=db password=", nil, "host=db password="},
	{"keywords none", "host=db user=flip", nil, "host=db user=flip"},

	// What cannot be parsed exactly is not shown at all.
	{"bad escape", "postgres://flip:hunter2%zz@db/flip", []string{"hunter2"}, notShown},
	{"bad query escape", "postgres://flip@db/flip?password=hunter2%zz", []string{"hunter2"}, notShown},
	{"bad query key escape", "postgres://flip@db/flip?pass%zzword=hunter2", []string{"hunter2"}, notShown},
	{"semicolon", "postgres://flip@db/flip?sslmode=disable;password=hunter2", []string{"hunter2"}, notShown},
	{"space in URL", "postgres://flip@db/flip?sslmode=disable hunter2", []string{"hunter2"}, notShown},
	{"odd query key", "postgres://flip@db/flip?x%3D1%20password=hunter2", []string{"hunter2"}, notShown},
	{"upper-case scheme", "POSTGRES://flip:hunter2@db/flip", []string{"hunter2"}, notShown},
	{"opaque", "postgres:flip:hunter2@db", []string{"hunter2"}, notShown},
	{"unterminated quote", "host=db password='hunter2", []string{"hunter2"}, notShown},
	{"bare value with a space", "host=db password=hun ter2", []string{"hun", "ter2"}, notShown},
	{"trailing backslash", `host=db password=hunter2\`, []string{"hunter2"}, notShown},
	{"key without value", "host=db hunter2", []string{"hunter2"}, notShown},
	{"odd keyword key", "host=db 'x=hunter2", []string{"hunter2"}, notShown},
	{"plain text", "hunter2", []string{"hunter2"}, notShown},
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, c := range redactCases {
		got := Redact(c.dsn)
		if got != c.want {
			t.Errorf("%s: Redact(%q) = %q, want %q", c.name, c.dsn, got, c.want)
		}
		for _, s := range c.secrets {
			if strings.Contains(got, s) {
				t.Errorf("%s: Redact(%q) = %q shows %q", c.name, c.dsn, got, s)
			}
		}
	}
}

// TestRedactError puts each case's connection string, and each of its
// passwords, into an error as a driver might: every one is masked, or the
// whole message replaced, and the cause is still reachable.
func TestRedactError(t *testing.T) {
	t.Parallel()
	cause := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	for _, c := range redactCases {
		driverErr := &pq.Error{Code: "28P01", Message: "quoting " + c.dsn + " and " + strings.Join(c.secrets, ", ") + " " + strings.Join(c.secrets, "\x01")}
		for _, err := range []error{driverErr, errors.Join(cause, driverErr)} {
			got := RedactError(c.dsn, err)
			for _, s := range c.secrets {
				if strings.Contains(got.Error(), s) {
					t.Errorf("%s: RedactError shows %q: %q", c.name, s, got)
				}
			}
			var pqErr *pq.Error
			if !errors.As(got, &pqErr) || pqErr.Code != "28P01" {
				t.Errorf("%s: errors.As finds no *pq.Error in %v", c.name, got)
			}
		}
	}
	if got := RedactError("postgres://flip@db/flip", cause); got != error(cause) {
		t.Errorf("an error with no password: %v, want it as it was", got)
	}
	if RedactError("postgres://flip:pw@db/flip", nil) != nil {
		t.Error("RedactError of nil is not nil")
	}
	masked := RedactError("postgres://flip:hunter2@db/flip", errors.New(`pq: password authentication failed for user "flip" at "hunter2"`))
	if want := `pq: password authentication failed for user "flip" at "xxxxx"`; masked.Error() != want {
		t.Errorf("masked message %q, want %q", masked, want)
	}
}

// TestRedactAgreesWithLibPQ checks the redaction against lib/pq's own
// parser: whatever password lib/pq would send, in every case it accepts,
// is one Redact masks.
func TestRedactAgreesWithLibPQ(t *testing.T) {
	t.Parallel()
	for _, c := range redactCases {
		checkAgainstLibPQ(t, c.dsn)
	}
}

func FuzzRedact(f *testing.F) {
	for _, c := range redactCases {
		f.Add(c.dsn)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		checkAgainstLibPQ(t, dsn)
	})
}

// checkAgainstLibPQ fails t when lib/pq reads dsn differently from the
// redaction: a string the redaction parses must not fail lib/pq's own
// scanning (its messages quote the text), and every parameter lib/pq reads
// with "password" in its name must be among the passwords masked.
func checkAgainstLibPQ(t *testing.T, dsn string) {
	t.Helper()
	shown, secrets, ok := redact(dsn)
	if !ok {
		return // nothing of it is shown
	}
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		for _, scanning := range []string{`missing "="`, "backslash", "unterminated", "parse "} {
			if strings.Contains(err.Error(), scanning) {
				t.Fatalf("redact parses %q, which lib/pq cannot scan: %v", dsn, err)
			}
		}
		return
	}
	values := map[string]string{}
	if os.Getenv("PGPASSWORD") == "" {
		values["password"] = cfg.Password
	}
	for k, v := range cfg.Runtime {
		if secretKey(k) {
			values[k] = v
		}
	}
	for k, v := range values {
		if v != "" && !containsString(secrets, v) {
			t.Fatalf("Redact(%q) = %q: lib/pq reads %s=%q, which is not masked (masked: %q)", dsn, shown, k, v, secrets)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestOpen(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://flip:hunter2%zzsecret@127.0.0.1:1/none",
		"host=127.0.0.1 port=1 password=hunter2 secret",
		"host=127.0.0.1 port=1 password='hunter2 secret",
		"POSTGRES://flip:hunter2secret@127.0.0.1:1/none",
		"postgres://127.0.0.1:1/none?sslmode=disable hunter2secret",
	} {
		db, err := Open(dsn, 2)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) accepted it", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): error %q quotes the password", dsn, err)
		}
	}
	// What lib/pq refuses in a string that can be shown is said.
	_, err := Open("postgres://flip:hunter2@127.0.0.1:1/none?sslmode=sometimes", 2)
	if err == nil || !strings.Contains(err.Error(), `"sometimes" is not supported`) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a bad sslmode: error %v, want lib/pq's message without the password", err)
	}
	db, err := Open("postgres://postgres@127.0.0.1:1/none?sslmode=disable", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.Stats().MaxOpenConnections; n != 3 {
		t.Errorf("MaxOpenConnections = %d, want 3", n)
	}
}

func TestConnectNamesTheRedactedURLAndItsSource(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, shown string }{
		{"postgres://flip:hunter2@127.0.0.1:1/none?sslmode=disable", "postgres://flip:xxxxx@127.0.0.1:1/none?sslmode=disable"},
		{"postgres://flip@127.0.0.1:1/none?sslmode=disable&password=hunter2", "postgres://flip@127.0.0.1:1/none?sslmode=disable&password=xxxxx"},
		{"host=127.0.0.1 port=1 sslmode=disable password='hunter2'", "host=127.0.0.1 port=1 sslmode=disable password=xxxxx"},
	} {
		db, msg, err := Connect(context.Background(), Source{c.url, "DATABASE_URL"}, 2)
		if err == nil {
			db.Close()
			t.Fatal("connected to port 1")
		}
		want := "cannot connect to the database at " + c.shown + ", taken from DATABASE_URL; check that PostgreSQL is running there and the URL is right"
		if msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
		if !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q, want the refusal without the password", err)
		}
	}
	_, msg, err := Connect(context.Background(), Source{"postgres://a:b%zz@h/d", "--database-url"}, 2)
	if msg != "cannot open the database given by --database-url" || err == nil || strings.Contains(err.Error(), "b%zz") {
		t.Errorf("malformed URL: message %q, error %v", msg, err)
	}
}
