// Package exampledb gives flip's runnable examples what fliptest.NewDB
// gives its tests: a migrated PostgreSQL database of their own. An example
// has no *testing.T to skip or fail with, so Main decides for all of a
// package's examples at once, as fliptest decides for a test: when nothing
// listens at the server's address they are skipped (they print what the
// database answers and cannot pass without one), and under CI=true the
// run fails as well; on any other failure to connect (a refused role or
// password, a missing database) they are skipped and the run fails.
//
//	func TestMain(m *testing.M) { exampledb.Main(m) }
//
//	func exampleDB() *sql.DB { return exampledb.New().DB }
package exampledb

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/cmddb"
)

// Main runs m and exits with its code, dropping every database New
// handed out once the tests and examples are done. When no connection to
// fliptest.ServerURL can be made, it adds ^Example to -test.skip and says
// so on stderr; the run then fails too, unless nothing listens there
// (fliptest.ServerAbsent) and CI is not "true".
func Main(m *testing.M) {
	flag.Parse()
	noServer := ping()
	if noServer != nil {
		fmt.Fprintf(os.Stderr, "exampledb: cannot connect to PostgreSQL (%v): skipping the examples (set DATABASE_URL)\n", noServer)
		skip := flag.Lookup("test.skip")
		pattern := "^Example"
		if v := skip.Value.String(); v != "" {
			pattern = v + "|" + pattern
		}
		_ = skip.Value.Set(pattern)
	}
	code := m.Run()
	tb.cleanup()
	switch {
	case noServer == nil:
	case !fliptest.ServerAbsent(noServer):
		fmt.Fprintf(os.Stderr, "exampledb: FAIL: cannot connect to PostgreSQL (%v), although something is there: "+
			"fix DATABASE_URL or the server; only a server that is not there skips the examples\n", noServer)
		code = max(code, 1)
	case os.Getenv("CI") == "true":
		fmt.Fprintln(os.Stderr, "exampledb: FAIL: under CI=true the examples must run, and they need PostgreSQL")
		code = max(code, 1)
	}
	os.Exit(code)
}

// ping reports whether the server answers, with an error fit to print:
// the password of DATABASE_URL masked.
func ping() error {
	db, err := sql.Open("postgres", fliptest.ServerURL())
	if err != nil {
		return cmddb.RedactError(fliptest.ServerURL(), err)
	}
	defer db.Close()
	// A bound against a server that never answers, not a measurement.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return cmddb.RedactError(fliptest.ServerURL(), db.PingContext(ctx))
}

// New returns a database of the calling example's own, migrated to
// flip's latest version (fliptest.NewDB with opts) and dropped when Main
// ends. A failure panics, which fails the example.
func New(opts ...fliptest.Option) *fliptest.DB { return fliptest.NewDB(tb, opts...) }

// tb is the testing.TB New hands fliptest.NewDB: it implements the methods
// NewDB calls (Helper, Fatalf, Skipf, Errorf, Logf, Failed, Cleanup); the
// nil embedded TB makes any other call panic, loudly.
var tb = &exampleTB{}

type exampleTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (*exampleTB) Helper()                           {}
func (*exampleTB) Failed() bool                      { return false }
func (*exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (*exampleTB) Skipf(format string, args ...any)  { panic(fmt.Sprintf(format, args...)) }
func (*exampleTB) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (*exampleTB) Logf(format string, args ...any)   { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (e *exampleTB) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// cleanup runs the cleanups, last first, as testing does.
func (e *exampleTB) cleanup() {
	e.mu.Lock()
	fs := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
