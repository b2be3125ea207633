package cmddb

import (
	"context"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
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
		{"", "", Source{DefaultURL, "the default (neither --database-url nor DATABASE_URL is set)"}},
	} {
		if got := Resolve(c.flag, env(c.env)); got != c.want {
			t.Errorf("Resolve(%q) with DATABASE_URL=%q = %+v, want %+v", c.flag, c.env, got, c.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://flip:hunter2@db:5432/flip?sslmode=require": "postgres://flip:xxxxx@db:5432/flip?sslmode=require",
		"postgres://postgres@127.0.0.1/test":                   "postgres://postgres@127.0.0.1/test",
		"host=db user=flip password=hunter2":                   "(connection string not shown)",
		"postgres://flip:hunter2%zz@db/flip":                   "(connection string not shown)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpen(t *testing.T) {
	_, err := Open("postgres://flip:hunter2%zzsecret@127.0.0.1:1/none", 2)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a malformed URL: error %v, want one that does not echo it", err)
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
	src := Source{"postgres://flip:hunter2@127.0.0.1:1/none?sslmode=disable", "DATABASE_URL"}
	db, msg, err := Connect(context.Background(), src, 2)
	if err == nil {
		db.Close()
		t.Fatal("connected to port 1")
	}
	want := "cannot connect to the database at postgres://flip:xxxxx@127.0.0.1:1/none?sslmode=disable, taken from DATABASE_URL; check that PostgreSQL is running there and the URL is right"
	if msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	if _, msg, _ := Connect(context.Background(), Source{"postgres://a:b%zz@h/d", "--database-url"}, 2); msg != "cannot open database" {
		t.Errorf("malformed URL: message %q", msg)
	}
}
