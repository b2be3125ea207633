// Package cmddb is how flip's deploy commands (examples/register-trust,
// examples/delete-trust, examples/seed-users) and the example hub find and
// open their PostgreSQL database. It exists so that they share one answer
// to where the URL comes from (an explicit one, never a default), one way
// of opening it, one message for a database that does not answer, and one
// redaction of the connection string, which may hold a password.
//
// The redaction (Redact for the string, RedactError for a driver's error
// about it) is also what pqfeed, fliptest and the benchmarks use, so that
// every form a user can give a password in is handled in one place:
// postgres:// URLs with a password in the userinfo or in any query
// parameter whose name holds "password" (password, sslpassword, in any
// case, repeated or not), and key=value connection strings with such a key,
// quoted or not. What it cannot parse exactly as lib/pq would, it does not
// show at all.
package cmddb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lib/pq"
)

// ErrNoDatabase is the usage error of a command given no database. There
// is no default: a forgotten setting must stop the command rather than
// send its writes to whatever database happens to listen locally.
var ErrNoDatabase = errors.New("no database given (there is no default)")

// Source is a database URL and where it came from, for error messages.
type Source struct {
	URL  string
	From string // "--database-url" or "DATABASE_URL"
}

// Resolve returns flagURL (the --database-url flag) when it is set, else
// getenv("DATABASE_URL"), each with where it came from, and an error
// wrapping ErrNoDatabase, naming both, when neither is set.
func Resolve(flagURL string, getenv func(string) string) (Source, error) {
	if flagURL != "" {
		return Source{flagURL, "--database-url"}, nil
	}
	if u := getenv("DATABASE_URL"); u != "" {
		return Source{u, "DATABASE_URL"}, nil
	}
	return Source{}, fmt.Errorf("%w: pass --database-url or set DATABASE_URL", ErrNoDatabase)
}

// Open opens a pool of at most conns connections, all kept when idle, on
// dsn (a URL or a key=value connection string, as lib/pq takes). The
// string is parsed here, once, rather than by lib/pq at every connection:
// a string it cannot parse is refused now, with an error that does not
// quote it (lib/pq's own message may hold part of the password), and no
// later error can come from parsing it. Nothing is dialled yet.
func Open(dsn string, conns int) (*sql.DB, error) {
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("the database connection string is not valid: %w", RedactError(dsn, err))
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

// Connect opens src (as Open, with conns connections) and makes sure the
// database answers. On failure it returns a message for the log along with
// the error (redacted): which step failed and, for a database that does
// not answer, the redacted URL and where it came from.
//
// ctx bounds the whole of it: lib/pq heeds a context only while dialling,
// and a server that accepts the connection but never answers its startup
// message would otherwise hold the command until TCP gives up. A
// connection that arrives after ctx has ended is closed.
func Connect(ctx context.Context, src Source, conns int) (*sql.DB, string, error) {
	db, err := Open(src.URL, conns)
	if err != nil {
		return nil, "cannot open the database given by " + src.From, err
	}
	pinged := make(chan error, 1)
	go func() { pinged <- db.PingContext(ctx) }()
	select {
	case err = <-pinged:
	case <-ctx.Done():
		go func() { <-pinged; db.Close() }()
		return nil, "no answer from the database at " + Redact(src.URL) + ", taken from " + src.From, ctx.Err()
	}
	if err != nil {
		db.Close()
		return nil, "cannot connect to the database at " + Redact(src.URL) + ", taken from " + src.From +
			"; check that PostgreSQL is running there and the URL is right", RedactError(src.URL, err)
	}
	return db, "", nil
}

// notShown stands for a connection string that cannot be parsed exactly,
// so that no part of it can be shown safely.
const notShown = "(connection string not shown: it cannot be parsed safely)"

// mask replaces each password shown.
const mask = "xxxxx"

// Redact returns dsn fit for a log: a postgres:// URL or a key=value
// connection string with every password masked, or, when dsn cannot be
// parsed exactly as lib/pq parses it, a placeholder that shows none of it.
func Redact(dsn string) string {
	shown, _, ok := redact(dsn)
	if !ok {
		return notShown
	}
	return shown
}

// RedactError returns err with every password of dsn masked in its
// message, for an error that a driver may have built from dsn; errors.Is
// and errors.As still reach err and its causes (a *pq.Error's SQLState, a
// net.Error). When dsn cannot be parsed exactly, none of err's message is
// shown: a driver's parse error quotes the part of the string it choked
// on, which may be part of the password. A message that holds no password
// is returned as it is.
func RedactError(dsn string, err error) error {
	if err == nil {
		return nil
	}
	_, secrets, ok := redact(dsn)
	if !ok {
		return &redactedError{"the driver's message is not shown, as it may quote the connection string, which cannot be parsed safely (check its quoting, %-escapes and spaces)", err}
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, mask)
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg, err}
}

// redactedError is an error whose message has been redacted; Unwrap gives
// the original, so that callers can still match it, though printing it
// would show what the redaction hid.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact is the one parser behind Redact and RedactError. It returns dsn
// with its passwords masked, and every spelling of those passwords a
// message may hold (as written in dsn, decoded, and quoted as %q quotes
// it), longest first; ok is false when dsn cannot be parsed exactly as
// lib/pq would, so that nothing of it may be shown.
func redact(dsn string) (shown string, secrets []string, ok bool) {
	switch {
	case !utf8.ValidString(dsn): // lib/pq reads each bad byte as U+FFFD: not the text
		ok = false
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"): // as lib/pq tells them apart
		shown, secrets, ok = redactURL(dsn)
	default:
		shown, secrets, ok = redactKeywords(dsn)
	}
	if !ok {
		return "", nil, false
	}
	var all []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		quoted := strconv.Quote(s)
		all = append(all, s, quoted[1:len(quoted)-1])
	}
	slices.SortFunc(all, func(a, b string) int { // longest first, so none is masked in part
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return shown, slices.Compact(all), true
}

// secretKey reports whether a connection parameter named key holds a
// password: password and sslpassword in any case, and any other name with
// "password" in it, since masking too much costs nothing.
func secretKey(key string) bool {
	return strings.Contains(strings.ToLower(key), "password")
}

// plainKey reports whether key is a name PostgreSQL's parameters could
// have. A key outside that (spaces, quotes, '=' once decoded) is not
// something a connection string can hold safely: lib/pq would split it
// into other keys and values, and echo pieces of it in its errors.
func plainKey(key string) bool {
	return key != "" && strings.IndexFunc(key, func(r rune) bool {
		return !(r == '_' || r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
}

// redactURL is redact for a postgres:// URL. It refuses what net/url and
// lib/pq would read differently from the text: white space and control
// characters (never part of a URL), a query pair that net/url would drop
// (a ';' or a bad %-escape) and a parameter name that is not plainKey.
// The fragment, which lib/pq ignores, is masked as a password would be.
func redactURL(dsn string) (string, []string, bool) {
	if strings.IndexFunc(dsn, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "", nil, false
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Opaque != "" {
		return "", nil, false
	}
	var secrets []string
	if pw, set := u.User.Password(); set {
		// The password as written too: the authority ends where net/url
		// ends it, and its password runs from the first ':' to the last '@'.
		authority := dsn[strings.Index(dsn, "://")+3:]
		if i := strings.IndexAny(authority, "/?#"); i >= 0 {
			authority = authority[:i]
		}
		userinfo := authority[:strings.LastIndex(authority, "@")]
		_, raw, _ := strings.Cut(userinfo, ":")
		secrets = append(secrets, pw, raw)
		u.User = url.UserPassword(u.User.Username(), mask)
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, pair := range pairs {
			if pair == "" {
				continue
			}
			rawKey, rawValue, _ := strings.Cut(pair, "=")
			key, errKey := url.QueryUnescape(rawKey)
			value, errValue := url.QueryUnescape(rawValue)
			if strings.Contains(pair, ";") || errKey != nil || errValue != nil || !plainKey(key) {
				return "", nil, false
			}
			if secretKey(key) {
				secrets = append(secrets, value, rawValue)
				pairs[i] = rawKey + "=" + mask
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	if _, fragment, found := strings.Cut(dsn, "#"); found {
		secrets = append(secrets, fragment, u.Fragment) // not needed, and anything may be written there
		u.Fragment, u.RawFragment = "", ""
	}
	return u.String(), secrets, true
}

// redactKeywords is redact for a key=value connection string, scanned as
// lib/pq scans it (conninfo_parse of libpq): keys and values separated by
// white space, '=' with optional white space around it, a value either
// single-quoted or bare, and a backslash escaping the next character in
// both. A string lib/pq would refuse, or with a key that is not plainKey,
// is refused.
func redactKeywords(dsn string) (string, []string, bool) {
	type span struct{ from, to int } // a password value as written, quotes included
	var (
		secrets []string
		spans   []span
		i       int // byte offset of the next rune
	)
	// next returns the rune at i and the offset it starts at, advancing i.
	next := func() (r rune, at int, ok bool) {
		if i >= len(dsn) {
			return 0, i, false
		}
		r, n := utf8.DecodeRuneInString(dsn[i:])
		at, i = i, i+n
		return r, at, true
	}
	skipSpaces := func() (rune, int, bool) {
		r, at, ok := next()
		for ok && unicode.IsSpace(r) {
			r, at, ok = next()
		}
		return r, at, ok
	}
	for {
		r, at, ok := skipSpaces()
		if !ok {
			break
		}
		keyFrom := at
		for ok && !unicode.IsSpace(r) && r != '=' {
			r, at, ok = next()
		}
		key := dsn[keyFrom:at]
		if ok && r != '=' {
			r, _, ok = skipSpaces()
		}
		if !ok || r != '=' || !plainKey(key) {
			return "", nil, false
		}
		r, at, ok = skipSpaces()
		if !ok {
			break // "key=" at the end: an empty value
		}
		var value strings.Builder
		from, raw := at, ""
		if r != '\'' {
			for ok && !unicode.IsSpace(r) {
				if r == '\\' {
					if r, _, ok = next(); !ok {
						return "", nil, false
					}
				}
				value.WriteRune(r)
				r, at, ok = next()
			}
			raw = dsn[from:at]
		} else {
			for {
				if r, at, ok = next(); !ok {
					return "", nil, false // unterminated
				}
				if r == '\'' {
					raw, at = dsn[from+1:at], i
					break
				}
				if r == '\\' {
					if r, _, ok = next(); !ok {
						return "", nil, false
					}
				}
				value.WriteRune(r)
			}
		}
		if secretKey(key) {
			spans = append(spans, span{from, at})
			secrets = append(secrets, value.String(), raw)
		}
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		b.WriteString(dsn[last:s.from])
		b.WriteString(mask)
		last = s.to
	}
	b.WriteString(dsn[last:])
	return b.String(), secrets, true
}
