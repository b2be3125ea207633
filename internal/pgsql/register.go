package pgsql

// The statements of a registration, in the order flip.Registry sends them.

// LockTrustIdentity takes two transaction-scoped advisory locks: one on the
// name's key (FoldName) and one on the lower-cased code, in that order
// everywhere, so concurrent registrations of one name or one code queue
// behind each other until the first transaction ends. It is needed only
// where flip's unique indexes are missing (the hub's bare schema; see Register's gate), and is
// a statement of its own because, at READ COMMITTED, the next statement's
// snapshot is taken after it returns and so sees every rival that
// committed while this one waited. $1 name key, $2 code.
const LockTrustIdentity = `SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('flip.trust.name:' OPERATOR(pg_catalog.||) $1::pg_catalog.text, 0::pg_catalog.int8)),
       pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('flip.trust.code:' OPERATOR(pg_catalog.||) pg_catalog.lower($2::pg_catalog.text), 0::pg_catalog.int8))`

// Register is the duplicate check and the three writes of a registration
// in one statement:
//   - gate is open when the caller holds LockTrustIdentity ($9), or when
//     flip's unique indexes on the canonical name and code exist: then a
//     concurrent duplicate that this statement's snapshot cannot see still
//     fails its insert (SQLSTATE 23505), and no lock is needed. When the
//     gate is closed nothing is written and needs_lock asks the caller to
//     take the lock and send the statement again;
//   - dup finds a trust whose name has the key $10 (NameKey: the canonical
//     form, case-folded), else one whose code has the canonical form $2
//     compared case-insensitively (legacy rows with invisible characters,
//     decomposed accents or other letter case still collide; flip's
//     indexes are built on the same expressions);
//   - new_trust inserts the trust unless there is a duplicate. It runs
//     before the slot is picked (free reads it), so that at REPEATABLE READ
//     a rival that committed after the snapshot meets flip's unique index
//     first (a duplicate) rather than the slot it took (a serialization
//     failure);
//   - free picks the lowest-numbered free slot (ties by name), skipping
//     slots that concurrent registrations hold; READ COMMITTED re-checks
//     the row after the lock, so a slot taken meanwhile is never handed
//     out twice; claimed assigns it, audit writes the REGISTERED row. The
//     slot's foreign key to the new trust is checked at the end of the
//     statement, when the trust row exists.
//
// It returns one row: the duplicate (dup_*; same_name says which field
// matched, and a duplicate is an answer even with the gate closed), else
// needs_lock, else the claimed slot, else busy: whether free slots exist that
// other transactions hold (a busy pool, retry) rather than none (an empty
// pool); busy is computed on that path only. A duplicate writes nothing; a
// trust without a slot has been written and must be undone (rolled back)
// by the caller.
//
// $1 name, $2 code, $3 trust id, $4 region (empty: NULL), $5 API-key
// hash, $6 now, $7 audit row id, $8 the admin's id (NULL from the deploy
// path), $9 whether the caller holds LockTrustIdentity, $10 the name's key
// (FoldName($1)).
var Register = registerTrust + `,
free AS (
    SELECT slot_name FROM fl_kit_slot
    WHERE assigned_to_trust_id IS NULL AND EXISTS (SELECT FROM new_trust)
    ORDER BY slot_number, slot_name
    LIMIT 1
    FOR UPDATE SKIP LOCKED
),
claimed AS (
    UPDATE fl_kit_slot AS s
    SET assigned_to_trust_id = $3::pg_catalog.uuid, assigned_at = $6::pg_catalog.timestamptz
    FROM free
    WHERE s.slot_name::pg_catalog.text OPERATOR(pg_catalog.=) free.slot_name::pg_catalog.text
    RETURNING s.slot_name, s.slot_number
)
SELECT ` + registerOutcomeColumns + `, claimed.slot_name, claimed.slot_number,
       CASE WHEN gate.open AND dup.id IS NULL AND claimed.slot_name IS NULL
            THEN (` + AnyFreeSlot + `) END AS busy
FROM gate
LEFT JOIN dup ON true
LEFT JOIN claimed ON true`

// RegisterWithoutSlot is Register for a Registry that claims slots through
// a SlotStore of the caller's own: the duplicate check, the trust and the
// audit row, with the claim left to the next statement. It returns the
// dup_* and needs_lock columns of Register; the trust was written when
// both say no. Parameters as Register.
var RegisterWithoutSlot = registerTrust + `
SELECT ` + registerOutcomeColumns + `
FROM gate
LEFT JOIN dup ON true`

// registerTrust is the part Register and RegisterWithoutSlot share: the
// duplicate check, the trust and its audit row.
var registerTrust = `WITH gate AS (
    SELECT $9::pg_catalog.bool OR (
        SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 2 FROM pg_catalog.pg_index
        WHERE indrelid OPERATOR(pg_catalog.=) 'trust'::pg_catalog.regclass
          AND indexrelid OPERATOR(pg_catalog.=) ANY (ARRAY[pg_catalog.to_regclass('flip_trust_folded_name_key'), pg_catalog.to_regclass('flip_trust_code_key')])
          AND indisunique AND indisvalid AND indimmediate
    ) AS open
),
dup AS (
    SELECT t.id, t.name, COALESCE(t.code, '') AS code, COALESCE(t.region, '') AS region, t.created_at,
           k.name_key OPERATOR(pg_catalog.=) $10::pg_catalog.text AS same_name
    FROM trust AS t
    CROSS JOIN LATERAL (SELECT ` + NameKey("t.name") + ` AS name_key) AS k
    WHERE k.name_key OPERATOR(pg_catalog.=) $10::pg_catalog.text
       OR ` + CanonicalCode("t.code") + ` OPERATOR(pg_catalog.=) pg_catalog.lower($2::pg_catalog.text)
    ORDER BY same_name DESC, t.created_at
    LIMIT 1
),
new_trust AS (
    INSERT INTO trust (id, name, code, region, api_key_hash, created_at)
    SELECT $3::pg_catalog.uuid, $1::pg_catalog.text, $2::pg_catalog.text,
           CASE WHEN $4::pg_catalog.text OPERATOR(pg_catalog.=) '' THEN NULL ELSE $4::pg_catalog.text END,
           $5::pg_catalog.text, $6::pg_catalog.timestamptz
    WHERE NOT EXISTS (SELECT FROM dup) AND (SELECT open FROM gate)
    RETURNING id
),
audit AS (
    INSERT INTO trusts_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date)
    SELECT $7::pg_catalog.uuid, id, $1::pg_catalog.text, 'REGISTERED'::trustauditaction, $8::pg_catalog.uuid, $6::pg_catalog.timestamptz FROM new_trust
)`

const registerOutcomeColumns = `dup.id, dup.name, dup.code, dup.region, dup.created_at, dup.same_name, NOT gate.open AS needs_lock`

// ByCanonicalCode is the condition "code has the canonical form of $1",
// built once: the expression is long.
var ByCanonicalCode = CanonicalCode("code") + ` OPERATOR(pg_catalog.=) pg_catalog.lower($1::pg_catalog.text)`

// TrustsByName selects the trusts whose name has the key $2 (FoldName of
// the canonical name $1), those spelt exactly $1 first, then oldest first.
var TrustsByName = `SELECT ` + TrustColumns + ` FROM trust
WHERE ` + NameKey("name") + ` OPERATOR(pg_catalog.=) $2::pg_catalog.text
ORDER BY name::pg_catalog.text OPERATOR(pg_catalog.=) $1::pg_catalog.text DESC, created_at, id`

// ClaimSlot assigns the lowest-numbered free slot to a trust on its own,
// for store.Store's SlotStore. $1 trust id, $2 assigned_at.
const ClaimSlot = `WITH free AS (
    SELECT slot_name FROM fl_kit_slot
    WHERE assigned_to_trust_id IS NULL
    ORDER BY slot_number, slot_name
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE fl_kit_slot AS s
SET assigned_to_trust_id = $1::pg_catalog.uuid, assigned_at = $2::pg_catalog.timestamptz
FROM free
WHERE s.slot_name::pg_catalog.text OPERATOR(pg_catalog.=) free.slot_name::pg_catalog.text
RETURNING s.slot_name, s.slot_number`

// AnyFreeSlot asks, after a claim found nothing, whether the pool still
// has free slots that concurrent transactions hold locked: a plain read
// neither waits for nor skips row locks. Register asks it within itself;
// store.Store's ClaimSlot sends it on its own.
const AnyFreeSlot = `SELECT EXISTS (SELECT FROM fl_kit_slot WHERE assigned_to_trust_id IS NULL)`

// The savepoint flip works under inside the caller's transaction.
const (
	Savepoint           = `SAVEPOINT flip_trust`
	ReleaseSavepoint    = `RELEASE SAVEPOINT flip_trust`
	RollbackToSavepoint = `ROLLBACK TO SAVEPOINT flip_trust`
)

// AbortTransaction raises an error inside the caller's transaction, which
// puts it in the aborted state: every later statement fails and COMMIT
// rolls back. flip sends it when it cannot undo its own work.
const AbortTransaction = `DO $$ BEGIN RAISE EXCEPTION 'flip: a failed operation could not be undone; roll this transaction back'; END $$`

// Builtin is implemented only by types that embed Mark, which this
// module's packages alone can name: store.Store. A Registry given one
// claims the slot within Register instead of calling its ClaimSlot.
type Builtin interface{ builtin() }

// Mark makes the type embedding it a Builtin.
type Mark struct{}

func (Mark) builtin() {}
