package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/store"
)

// The pgbench side of the comparison runs two scripts. The first holds
// exactly the statements a real RegisterTrust sends, in the same order,
// inside BEGIN … COMMIT as RegisterTrustDB does. They are not copied by
// hand: one registration is recorded through a DBTX that keeps every
// statement and its arguments, and each $n becomes an expression over
// pgbench variables chosen by what the recorded argument was: the trust's
// name, code, id or key hash, a time, another id, or a constant. If the
// library changes its statements, the script follows. The second is the
// reference hub's sequence (referenceStatements), its arguments the same
// probe values, so that both scripts get the same expressions.

// recordedStmt is one statement RegisterTrust sent.
type recordedStmt struct {
	query string
	args  []any
}

// recorder is a flip.DBTX that records what passes through it.
type recorder struct {
	tx    flip.DBTX
	mu    sync.Mutex
	stmts []recordedStmt
}

func (r *recorder) record(q string, args []any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = append(r.stmts, recordedStmt{q, append([]any(nil), args...)})
}

func (r *recorder) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r.record(q, args)
	return r.tx.ExecContext(ctx, q, args...)
}

func (r *recorder) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r.record(q, args)
	return r.tx.QueryContext(ctx, q, args...)
}

func (r *recorder) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	r.record(q, args)
	return r.tx.QueryRowContext(ctx, q, args...)
}

// probe is what the recorded registration was asked and returned, to tell
// which recorded argument is which.
type probe struct {
	name, code, apiKeyHash string
	trustID, auditUser     uuid.UUID
}

// benchAuditUser is the admin every benchmarked registration is audited as
// (the hub's path; the deploy path records NULL).
var benchAuditUser = uuid.MustParse("6d1e0f3a-2b7c-4e58-9a41-0c5b7d2e8f10")

// recordRegistration runs one RegisterTrust on db through a recorder, rolls
// it back, and returns the statements that RegisterTrustDB, which the flip
// runs measure, sends between its BEGIN and COMMIT: RegisterTrust's, less
// the savepoint around them (RegisterTrustDB's transaction is its own, so
// it undoes a failure by rolling back and sends no savepoint).
func recordRegistration(ctx context.Context, db *sql.DB) ([]recordedStmt, probe, error) {
	reg := flip.NewRegistry(store.New())
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, probe{}, err
	}
	defer tx.Rollback() //nolint:errcheck // the probe leaves nothing behind
	rec := &recorder{tx: tx}
	p := probe{name: "bench probe " + uuid.NewString(), code: "probe-" + uuid.NewString()[:8], auditUser: benchAuditUser}
	res, err := reg.RegisterTrust(ctx, rec, flip.TrustParams{Name: p.name, Code: p.code, AuditUserID: p.auditUser})
	if err != nil {
		return nil, probe{}, fmt.Errorf("record a registration: %w", err)
	}
	p.trustID = res.Trust.ID
	p.apiKeyHash = flip.HashAPIKey(res.APIKey)
	stmts := slices.DeleteFunc(rec.stmts, func(st recordedStmt) bool {
		return strings.HasPrefix(st.query, "SAVEPOINT ") || strings.HasPrefix(st.query, "RELEASE SAVEPOINT ")
	})
	return stmts, p, nil
}

// pgbench expressions for the values that differ per registration. The
// name and code are unique per transaction (client id and a 40-bit random
// number), the trust id is derived from the same two so the three
// statements that use it agree, and the key hash is a SHA-256 in hex, as
// HashAPIKey computes it in the client.
const (
	pgbenchSet      = `\set r random(1, 1099511627775)`
	pgbenchName     = `('pgbench ' || :client_id || '-' || :r)`
	pgbenchCode     = `('pb' || :client_id || '-' || :r)`
	pgbenchTrustID  = `(md5('trust ' || :client_id || '-' || :r)::uuid)`
	pgbenchKeyHash  = `encode(sha256(convert_to('key ' || :client_id || '-' || :r, 'UTF8')), 'hex')`
	pgbenchOtherID  = `gen_random_uuid()`
	pgbenchNow      = `now()`
	pgbenchNullText = `NULL`
)

var placeholderRE = regexp.MustCompile(`\$(\d+)`)

// pgbenchScript turns statements into a pgbench script, one transaction
// per registration. A statement ending in \gset (pgbench stores its
// result's columns in variables) takes no semicolon.
func pgbenchScript(comment string, stmts []recordedStmt, p probe) (string, error) {
	var b strings.Builder
	b.WriteString(comment + pgbenchSet + "\nBEGIN;\n")
	for _, st := range stmts {
		q, err := substitute(st, p)
		if err != nil {
			return "", err
		}
		if strings.Contains(q, ";") {
			return "", fmt.Errorf("statement contains a semicolon, which pgbench would split: %q", q)
		}
		b.WriteString(q)
		if !strings.HasSuffix(q, `\gset`) {
			b.WriteString(";")
		}
		b.WriteString("\n")
	}
	b.WriteString("COMMIT;\n")
	return b.String(), nil
}

const (
	flipScriptComment = "-- Generated by `go run ./bench` from the statements one real RegisterTrust sent.\n" +
		"-- One transaction = one registration, as RegisterTrustDB does it.\n"
	referenceScriptComment = "-- The reference hub's registration: duplicate check by exact name, slot claim,\n" +
		"-- trust, slot update, audit row; one transaction. Generated by `go run ./bench`.\n"
)

// referenceStatements is the reference hub's registration, statement by
// statement, with the probe's values as arguments (the slot claimed comes
// from the claim's result, as the hub reads it).
func referenceStatements(p probe) []recordedStmt {
	now := time.Now()
	return []recordedStmt{
		{`SELECT id, name, code, region, api_key_hash, last_heartbeat, created_at FROM trust WHERE name = $1`, []any{p.name}},
		{`SELECT slot_name, slot_number FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL ORDER BY slot_number, slot_name LIMIT 1 FOR UPDATE SKIP LOCKED \gset`, nil},
		{`INSERT INTO trust (id, name, code, region, api_key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			[]any{p.trustID, p.name, p.code, nil, p.apiKeyHash, now}},
		{`UPDATE fl_kit_slot SET assigned_to_trust_id = $1, assigned_at = $2 WHERE slot_name = :slot_name`, []any{p.trustID, now}},
		{`INSERT INTO trusts_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date, subject_user_id) VALUES ($1, $2, $3, 'REGISTERED', $4, $5, NULL)`,
			[]any{uuid.New(), p.trustID, p.name, p.auditUser, now}},
	}
}

// substitute replaces each $n of st by the pgbench expression for the
// argument it received.
func substitute(st recordedStmt, p probe) (string, error) {
	highest := 0
	for _, m := range placeholderRE.FindAllStringSubmatch(st.query, -1) {
		n, _ := strconv.Atoi(m[1])
		highest = max(highest, n)
	}
	if highest != len(st.args) {
		return "", fmt.Errorf("statement has $1..$%d but was sent %d arguments: %q", highest, len(st.args), st.query)
	}
	exprs := make([]string, len(st.args))
	for i, a := range st.args {
		e, err := pgbenchValue(a, p)
		if err != nil {
			return "", fmt.Errorf("argument $%d of %q: %w", i+1, st.query, err)
		}
		exprs[i] = e
	}
	return placeholderRE.ReplaceAllStringFunc(st.query, func(m string) string {
		n, _ := strconv.Atoi(m[1:])
		return exprs[n-1]
	}), nil
}

// pgbenchValue is the pgbench expression standing for a recorded argument.
func pgbenchValue(a any, p probe) (string, error) {
	switch v := a.(type) {
	case nil:
		return pgbenchNullText, nil
	case string:
		switch v {
		case p.name:
			return pgbenchName, nil
		case p.code:
			return pgbenchCode, nil
		case p.apiKeyHash:
			return "(" + pgbenchKeyHash + ")", nil
		}
		return quoteLiteral(v), nil
	case uuid.UUID:
		switch v {
		case p.trustID:
			return pgbenchTrustID, nil
		case p.auditUser:
			return quoteLiteral(v.String()), nil
		}
		return pgbenchOtherID, nil
	case time.Time:
		return pgbenchNow, nil
	case int, int32, int64, bool:
		return fmt.Sprint(v), nil
	case driver.Valuer:
		dv, err := v.Value()
		if err != nil {
			return "", err
		}
		return pgbenchValue(dv, p)
	}
	return "", fmt.Errorf("no pgbench expression for a %T", a)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var (
	tpsRE       = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	processedRE = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	failedRE    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	latencyRE   = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// runPgbench runs the script at path with clients connections for d on
// dbURL. mode is pgbench's -M: "prepared" (parse once per connection) or
// "extended" (parse at every execution, as an unnamed statement). The
// client CPU is pgbench's own user + system time.
func runPgbench(ctx context.Context, mode, path, dbURL string, clients int, d time.Duration) (runResult, error) {
	n := strconv.Itoa(clients)
	args := []string{"-n", "-M", mode, "-c", n, "-j", n, "-T", strconv.Itoa(int(d / time.Second)), "-f", path, dbURL}
	cmd := exec.CommandContext(ctx, "pgbench", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return runResult{}, fmt.Errorf("pgbench %s: %w\n%s", strings.Join(args[:len(args)-1], " "), err, tail(string(out), 20))
	}
	r, err := parsePgbench(string(out))
	if r.registrations > 0 {
		r.cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()) / time.Duration(r.registrations)
	}
	return r, err
}

// parsePgbench reads pgbench's summary; a failed transaction is an error.
func parsePgbench(text string) (runResult, error) {
	var r runResult
	m := tpsRE.FindStringSubmatch(text)
	if m == nil {
		return r, fmt.Errorf("no tps in pgbench output:\n%s", tail(text, 20))
	}
	r.rate, _ = strconv.ParseFloat(m[1], 64)
	if m := processedRE.FindStringSubmatch(text); m != nil {
		r.registrations, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := latencyRE.FindStringSubmatch(text); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		r.latency = time.Duration(ms * float64(time.Millisecond))
	}
	if m := failedRE.FindStringSubmatch(text); m != nil && m[1] != "0" {
		return r, fmt.Errorf("pgbench: %s failed transactions:\n%s", m[1], tail(text, 20))
	}
	return r, nil
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}
