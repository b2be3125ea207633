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
    SELECT id, api_key_hash FROM trust WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid FOR UPDATE
),
updated AS (
    UPDATE trust AS t SET api_key_hash = $2::pg_catalog.text
    FROM old
    WHERE t.id OPERATOR(pg_catalog.=) old.id
    RETURNING ` + qualifiedTrustColumns + `, old.api_key_hash IS NOT NULL AS had_key
),
notified AS (
    SELECT pg_catalog.pg_notify('` + ChangeChannel + `', id::pg_catalog.text) FROM updated
)
SELECT u.*, s.slot_name, s.slot_number, pg_catalog.to_regclass('flip_trust_key_audit') IS NOT NULL
FROM updated AS u
LEFT JOIN LATERAL (
    SELECT slot_name, slot_number FROM fl_kit_slot
    WHERE assigned_to_trust_id OPERATOR(pg_catalog.=) u.id
    ORDER BY slot_number, slot_name
    LIMIT 1
) AS s ON true
CROSS JOIN (SELECT pg_catalog.count(*) FROM notified) AS n`

// InsertKeyAudit records a rotation or revocation in flip_trust_key_audit:
// the hub's trustauditaction enum has no value for either, and flip never
// adds one. $1 row id, $2 trust id, $3 trust name, $4 action ("ROTATED"
// or "REVOKED"), $5 the admin's id (NULL from the deploy tooling), $6 now.
const InsertKeyAudit = `INSERT INTO flip_trust_key_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date)
VALUES ($1::pg_catalog.uuid, $2::pg_catalog.uuid, $3::pg_catalog.text, $4::pg_catalog.text, $5::pg_catalog.uuid, $6::pg_catalog.timestamptz)`

const qualifiedTrustColumns = `t.id, t.name, COALESCE(t.code, '') AS code, COALESCE(t.region, '') AS region, t.created_at`

// LockTrustForDelete locks the trust row (which also keeps new rows that
// reference it out until the transaction ends: their foreign-key check
// needs a lock this one excludes) and reads, from the catalog, every
// foreign key that points at trust or at a table that does, as JSON (see
// ForeignKey), after the trust's columns, the oid of trust and that of
// fl_kit_slot, whose rows a deletion frees instead of deleting. It returns
// no row when no trust has id $1. $1 trust id.
const LockTrustForDelete = `SELECT ` + qualifiedTrustColumns + `,
       'trust'::pg_catalog.regclass::pg_catalog.oid::pg_catalog.int8,
       pg_catalog.to_regclass('fl_kit_slot')::pg_catalog.oid::pg_catalog.int8,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
                   'from', c.conrelid::pg_catalog.int8,
                   'to', c.confrelid::pg_catalog.int8,
                   'schema', n.nspname,
                   'table', r.relname,
                   'label', CASE WHEN pg_catalog.pg_table_is_visible(r.oid) THEN pg_catalog.quote_ident(r.relname::pg_catalog.text)
                                 ELSE pg_catalog.quote_ident(n.nspname::pg_catalog.text) OPERATOR(pg_catalog.||) '.'
                                      OPERATOR(pg_catalog.||) pg_catalog.quote_ident(r.relname::pg_catalog.text) END,
                   'columns', ARRAY(SELECT a.attname FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k(num, ord)
                                    JOIN pg_catalog.pg_attribute AS a
                                      ON a.attrelid OPERATOR(pg_catalog.=) c.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.num
                                    ORDER BY k.ord),
                   'references', ARRAY(SELECT a.attname FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY AS k(num, ord)
                                       JOIN pg_catalog.pg_attribute AS a
                                         ON a.attrelid OPERATOR(pg_catalog.=) c.confrelid AND a.attnum OPERATOR(pg_catalog.=) k.num
                                       ORDER BY k.ord),
                   'operators', ARRAY(SELECT pg_catalog.format('OPERATOR(%I.%s)', opn.nspname, o.oprname)
                                      FROM pg_catalog.unnest(c.conpfeqop) WITH ORDINALITY AS e(op, ord)
                                      JOIN pg_catalog.pg_operator AS o ON o.oid OPERATOR(pg_catalog.=) e.op
                                      JOIN pg_catalog.pg_namespace AS opn ON opn.oid OPERATOR(pg_catalog.=) o.oprnamespace
                                      ORDER BY e.ord)
               ) ORDER BY n.nspname, r.relname, c.conname), '[]')::pg_catalog.text
        FROM pg_catalog.pg_constraint AS c
        JOIN pg_catalog.pg_class AS r ON r.oid OPERATOR(pg_catalog.=) c.conrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace
        WHERE c.contype OPERATOR(pg_catalog.=) 'f'::pg_catalog."char" AND c.conparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
          AND (c.confrelid OPERATOR(pg_catalog.=) 'trust'::pg_catalog.regclass::pg_catalog.oid
               OR c.confrelid OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT conrelid FROM pg_catalog.pg_constraint
                   WHERE contype OPERATOR(pg_catalog.=) 'f'::pg_catalog."char" AND conparentid OPERATOR(pg_catalog.=) 0::pg_catalog.oid
                     AND confrelid OPERATOR(pg_catalog.=) 'trust'::pg_catalog.regclass::pg_catalog.oid))))
FROM trust AS t
WHERE t.id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid
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
	// Operators are the equality operators the key compares a referenced
	// column with its referencing column by, schema-qualified
	// ("OPERATOR(pg_catalog.=)"): the ones PostgreSQL's own check uses,
	// never an operator found on the search_path.
	Operators []string `json:"operators"`
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
		conds = append(conds, "EXISTS (SELECT FROM trust AS o WHERE o.id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid AND "+
			references(k, "o", alias)+")")
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// references is the condition "the row of alias from references the row
// of alias to through k": each referenced column equal to its referencing
// column, by the key's own operator.
func references(k ForeignKey, to, from string) string {
	conds := make([]string, len(k.Columns))
	for i := range k.Columns {
		conds[i] = to + "." + quoteIdent(k.References[i]) + " " + k.Operators[i] + " " + from + "." + quoteIdent(k.Columns[i])
	}
	return strings.Join(conds, " AND ")
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
			"SELECT %d WHERE EXISTS (SELECT FROM %s AS g WHERE EXISTS (SELECT FROM %s AS d WHERE %s AND %s) AND %s)",
			i, identifier(b.Key.Schema, b.Key.Table), identifier(d.Schema, d.Table), references(b.Key, "d", "g"), ownedBy(d, "d"), notOwned))
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
		counts = append(counts, fmt.Sprintf("(SELECT pg_catalog.count(*) FROM dep%d)", i))
	}
	b.WriteString(`freed AS (
    UPDATE fl_kit_slot SET assigned_to_trust_id = NULL, assigned_at = NULL
    WHERE assigned_to_trust_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid
    RETURNING slot_name, slot_number
),
audit AS (
    INSERT INTO trusts_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date)
    SELECT $2::pg_catalog.uuid, id, name, 'DELETED'::trustauditaction, $3::pg_catalog.uuid, $4::pg_catalog.timestamptz
    FROM trust WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid
),
gone AS (
    DELETE FROM trust WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid RETURNING id
),
notified AS (
    SELECT pg_catalog.pg_notify('` + ChangeChannel + `', id::pg_catalog.text) FROM gone
)
SELECT pg_catalog.json_build_array(` + strings.Join(counts, ", ") + `)::pg_catalog.text,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object('name', slot_name, 'number', slot_number)
                                            ORDER BY slot_number, slot_name), '[]') FROM freed)::pg_catalog.text,
       (SELECT pg_catalog.count(*) FROM gone)
FROM (SELECT pg_catalog.count(*) FROM notified) AS n`)
	return b.String()
}

// identifier is schema.table, each quoted as an SQL identifier. The names
// come from the catalog, never from a caller.
func identifier(schema, table string) string {
	return quoteIdent(schema) + "." + quoteIdent(table)
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
