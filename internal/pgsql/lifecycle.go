package pgsql

import (
	"fmt"
	"strings"
)

// The statements of a trust's later life: rotating or revoking its API
// key, and deleting it.

// ChangeChannel is the NOTIFY channel every key change is announced on,
// with the trust's id as the payload. The notice is sent on the caller's
// transaction, so PostgreSQL delivers it only if that commits (and drops
// it with a savepoint rolled back to), to every session listening on the
// database: the hub's other replicas included.
const ChangeChannel = "flip_trust_changes"

// SetAPIKeyHash replaces a trust's stored API-key hash ($2; NULL revokes
// the key) and announces the change on ChangeChannel. It locks the row
// first, so that it queues behind a concurrent deletion and then finds
// nothing. It returns no row when no trust has id $1; otherwise the
// trust, whether it held a key before, its kit slot (the lowest-numbered
// if a legacy row holds several; NULL if none), and whether
// flip_trust_key_audit (migration 3) exists for InsertKeyAudit. $1 trust
// id, $2 the new hash.
const SetAPIKeyHash = `WITH old AS (
    SELECT id, api_key_hash FROM trust WHERE id = $1 FOR UPDATE
),
updated AS (
    UPDATE trust AS t SET api_key_hash = $2::text
    FROM old
    WHERE t.id = old.id
    RETURNING ` + qualifiedTrustColumns + `, old.api_key_hash IS NOT NULL AS had_key
),
notified AS (
    SELECT pg_notify('` + ChangeChannel + `', id::text) FROM updated
)
SELECT u.*, s.slot_name, s.slot_number, to_regclass('flip_trust_key_audit') IS NOT NULL
FROM updated AS u
LEFT JOIN LATERAL (
    SELECT slot_name, slot_number FROM fl_kit_slot
    WHERE assigned_to_trust_id = u.id
    ORDER BY slot_number, slot_name
    LIMIT 1
) AS s ON true
CROSS JOIN (SELECT count(*) FROM notified) AS n`

// InsertKeyAudit records a rotation or revocation in flip_trust_key_audit:
// the hub's trustauditaction enum has no value for either, and flip never
// adds one. $1 row id, $2 trust id, $3 trust name, $4 action ("ROTATED"
// or "REVOKED"), $5 the admin's id (NULL from the deploy tooling), $6 now.
const InsertKeyAudit = `INSERT INTO flip_trust_key_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date)
VALUES ($1, $2, $3, $4, $5, $6)`

const qualifiedTrustColumns = `t.id, t.name, coalesce(t.code, '') AS code, coalesce(t.region, '') AS region, t.created_at`

// LockTrustForDelete locks the trust row (which also keeps new rows that
// reference it out until the transaction ends: their foreign-key check
// needs a lock this one excludes) and reads, from the catalog, every
// foreign key that points at trust or at a table that does, as JSON (see
// ForeignKey), after the trust's columns, the oid of trust and that of
// fl_kit_slot, whose rows a deletion frees instead of deleting. It returns
// no row when no trust has id $1. $1 trust id.
const LockTrustForDelete = `SELECT ` + qualifiedTrustColumns + `,
       'trust'::regclass::oid::bigint,
       to_regclass('fl_kit_slot')::oid::bigint,
       (SELECT coalesce(json_agg(json_build_object(
                   'from', c.conrelid::oid::bigint,
                   'to', c.confrelid::oid::bigint,
                   'schema', n.nspname,
                   'table', r.relname,
                   'label', CASE WHEN pg_catalog.pg_table_is_visible(r.oid) THEN pg_catalog.quote_ident(r.relname)
                                 ELSE pg_catalog.concat(pg_catalog.quote_ident(n.nspname), '.', pg_catalog.quote_ident(r.relname)) END,
                   'columns', ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(num, ord)
                                    JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.ord),
                   'references', ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(num, ord)
                                       JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.ord)
               ) ORDER BY n.nspname, r.relname, c.conname), '[]')::text
        FROM pg_constraint AS c
        JOIN pg_class AS r ON r.oid = c.conrelid
        JOIN pg_namespace AS n ON n.oid = r.relnamespace
        WHERE c.contype = 'f' AND c.conparentid = 0
          AND (c.confrelid = 'trust'::regclass
               OR c.confrelid IN (SELECT conrelid FROM pg_constraint
                                  WHERE contype = 'f' AND conparentid = 0 AND confrelid = 'trust'::regclass)))
FROM trust AS t
WHERE t.id = $1
FOR UPDATE OF t`

// ForeignKey is one row of LockTrustForDelete's JSON: a foreign key from
// table From's Columns to table To's References.
//
// Label names the table in reports (a deletion's rows per table, a
// blocked deletion's message) as SQL would write it to reach that table:
// the bare name for a table found first on the search_path, schema.table
// otherwise, each part quoted (quote_ident) when it is not a plain
// lower-case identifier. The hub's own tables keep their bare names
// (fl_logs), and two tables never share a label: other.fl_logs (schema
// other) is not "other.fl_logs" (a name with a dot, on the search_path),
// which one unquoted label would name both.
type ForeignKey struct {
	From       uint32   `json:"from"`
	To         uint32   `json:"to"`
	Schema     string   `json:"schema"`
	Table      string   `json:"table"`
	Label      string   `json:"label"`
	Columns    []string `json:"columns"`
	References []string `json:"references"`
}

// Dependent is a table with rows that reference the trust being deleted,
// through one or more foreign keys.
type Dependent struct {
	Schema, Table, Label string
	OID                  uint32
	Keys                 []ForeignKey // its foreign keys to trust
}

// Blocker is a foreign key into a Dependent from Referrer: rows of
// Referrer that point at the trust's rows of the Dependent stop the
// deletion, unless they are themselves the trust's rows (and so deleted
// in the same statement).
type Blocker struct {
	Dependent int // index into the dependents
	Key       ForeignKey
	Referrer  int // index into the dependents, or -1 when the referrer is not one
}

// ownedBy is the condition "this row of alias references trust $1" over
// every foreign key of d, false (never NULL) for a row that does not.
func ownedBy(d Dependent, alias string) string {
	conds := make([]string, 0, len(d.Keys))
	for _, k := range d.Keys {
		conds = append(conds, fmt.Sprintf("(%s) IN (SELECT %s FROM trust WHERE id = $1)",
			columnList(alias, k.Columns), columnList("", k.References)))
	}
	return "coalesce(" + strings.Join(conds, " OR ") + ", false)"
}

// CheckBlockers is one statement that returns the index of the first
// blocker whose referrer has rows pointing at the trust's rows of its
// dependent, or no row when none does. $1 trust id.
func CheckBlockers(deps []Dependent, blockers []Blocker) string {
	parts := make([]string, 0, len(blockers))
	for i, b := range blockers {
		d := deps[b.Dependent]
		notOwned := "true"
		if b.Referrer >= 0 {
			notOwned = "NOT " + ownedBy(deps[b.Referrer], "g")
		}
		parts = append(parts, fmt.Sprintf(
			"SELECT %d WHERE EXISTS (SELECT FROM %s AS g WHERE (%s) IN (SELECT %s FROM %s AS d WHERE %s) AND %s)",
			i, identifier(b.Key.Schema, b.Key.Table), columnList("g", b.Key.Columns),
			columnList("d", b.Key.References), identifier(d.Schema, d.Table), ownedBy(d, "d"), notOwned))
	}
	return strings.Join(parts, "\nUNION ALL\n") + "\nLIMIT 1"
}

// DeleteTrust is one statement that deletes the trust's rows from every
// dependent, frees its kit slots, writes the DELETED audit row, deletes
// the trust and announces it on ChangeChannel. Doing it all in one
// statement lets PostgreSQL check the foreign keys once, at its end, so
// dependents that reference each other need no particular order. It
// returns the rows deleted per dependent (a JSON array in deps' order),
// the freed slots (a JSON array of {name, number}) and the trusts deleted
// (1, or 0 when none had id $1). $1 trust id, $2 audit row id, $3 the
// admin's id (NULL from the deploy tooling), $4 now.
func DeleteTrust(deps []Dependent) string {
	var b strings.Builder
	b.WriteString("WITH ")
	counts := make([]string, 0, len(deps))
	for i, d := range deps {
		fmt.Fprintf(&b, "dep%d AS (DELETE FROM %s AS d WHERE %s RETURNING 1),\n", i, identifier(d.Schema, d.Table), ownedBy(d, "d"))
		counts = append(counts, fmt.Sprintf("(SELECT count(*) FROM dep%d)", i))
	}
	b.WriteString(`freed AS (
    UPDATE fl_kit_slot SET assigned_to_trust_id = NULL, assigned_at = NULL
    WHERE assigned_to_trust_id = $1
    RETURNING slot_name, slot_number
),
audit AS (
    INSERT INTO trusts_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date)
    SELECT $2::uuid, id, name, 'DELETED'::trustauditaction, $3::uuid, $4::timestamptz FROM trust WHERE id = $1
),
gone AS (
    DELETE FROM trust WHERE id = $1 RETURNING id
),
notified AS (
    SELECT pg_notify('` + ChangeChannel + `', id::text) FROM gone
)
SELECT json_build_array(` + strings.Join(counts, ", ") + `)::text,
       (SELECT coalesce(json_agg(json_build_object('name', slot_name, 'number', slot_number) ORDER BY slot_number, slot_name), '[]') FROM freed)::text,
       (SELECT count(*) FROM gone) + 0 * (SELECT count(*) FROM notified)`)
	return b.String()
}

// identifier is schema.table, each quoted as an SQL identifier. The names
// come from the catalog, never from a caller.
func identifier(schema, table string) string {
	return quoteIdent(schema) + "." + quoteIdent(table)
}

func columnList(alias string, cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = quoteIdent(c)
		if alias != "" {
			quoted[i] = alias + "." + quoted[i]
		}
	}
	return strings.Join(quoted, ", ")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
