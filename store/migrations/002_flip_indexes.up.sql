-- flip's own indexes, all named flip_…, beside the hub's (which this
-- version never touches). Registration is correct without them (advisory
-- locks serialise same-name and same-code registrations); they make it fast
-- as the tables grow and add a second line of defence.
--
-- Each unique index is created only where the rows allow it, otherwise as
-- a plain index named …_idx, so that this version migrates any hub
-- database whatever legacy rows it holds; Migrate logs each fallback with
-- the number of offending rows. The check and the creation are atomic: the
-- SHARE locks below block the tables' writers (not their readers) until
-- this transaction ends, so no duplicate can slip in between the check and
-- CREATE UNIQUE INDEX. Migrate runs this in one transaction under SET LOCAL
-- lock_timeout and retries it when the locks are not granted in time, so
-- the hub's writers never queue behind it for long. Applying it by hand:
-- one transaction (psql -1), with a short lock_timeout set first.

LOCK TABLE trust, fl_kit_slot IN SHARE MODE;

-- The regular expressions below are written for standard_conforming_strings
-- (PostgreSQL's default since 9.1); the DO block is parsed when it runs, so
-- this setting applies to it even where a server is configured otherwise.
SET LOCAL standard_conforming_strings = on;

-- Objects an earlier edition of this version may have left; re-creating
-- from nothing keeps the outcome a function of the rows alone.
DROP INDEX IF EXISTS flip_fl_kit_slot_free_idx;
DROP INDEX IF EXISTS flip_fl_kit_slot_assigned_key;
DROP INDEX IF EXISTS flip_fl_kit_slot_assigned_idx;
DROP INDEX IF EXISTS flip_trust_api_key_hash_key;
DROP INDEX IF EXISTS flip_trust_api_key_hash_idx;
DROP INDEX IF EXISTS flip_trust_name_key;
DROP INDEX IF EXISTS flip_trust_name_idx;
DROP INDEX IF EXISTS flip_trust_code_key;
DROP INDEX IF EXISTS flip_trust_code_idx;

-- The slot claim reads free slots in (slot_number, slot_name) order;
-- without this it sorts every free slot on each registration.
CREATE INDEX flip_fl_kit_slot_free_idx
    ON fl_kit_slot (slot_number, slot_name) WHERE assigned_to_trust_id IS NULL;

DO $$
BEGIN
    -- A trust holds at most one slot (a legacy trust may hold two).
    IF EXISTS (SELECT FROM fl_kit_slot WHERE assigned_to_trust_id IS NOT NULL
               GROUP BY assigned_to_trust_id HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) THEN
        CREATE INDEX flip_fl_kit_slot_assigned_idx
            ON fl_kit_slot (assigned_to_trust_id) WHERE assigned_to_trust_id IS NOT NULL;
    ELSE
        CREATE UNIQUE INDEX flip_fl_kit_slot_assigned_key
            ON fl_kit_slot (assigned_to_trust_id) WHERE assigned_to_trust_id IS NOT NULL;
    END IF;

    -- API-key verification looks trusts up by hash (legacy rows may share
    -- a placeholder such as '').
    IF EXISTS (SELECT FROM trust WHERE api_key_hash IS NOT NULL
               GROUP BY api_key_hash HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) THEN
        CREATE INDEX flip_trust_api_key_hash_idx
            ON trust (api_key_hash) WHERE api_key_hash IS NOT NULL;
    ELSE
        CREATE UNIQUE INDEX flip_trust_api_key_hash_key
            ON trust (api_key_hash) WHERE api_key_hash IS NOT NULL;
    END IF;

    -- The duplicate checks compare canonical forms (store/canonical.go:
    -- NFC, format characters removed, whitespace collapsed; a code also
    -- lower-cased with no whitespace). The expressions are pasted from
    -- canonicalNameSQL("name") and canonicalCodeSQL("code") verbatim, so
    -- that the planner serves the store's queries from these indexes; a
    -- test in store keeps them identical.
    IF EXISTS (SELECT FROM trust
               GROUP BY pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(name::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F]', '', 'g'), '[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]+', ' ', 'g')), 'NFC') HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) THEN
        CREATE INDEX flip_trust_name_idx ON trust ((pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(name::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F]', '', 'g'), '[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]+', ' ', 'g')), 'NFC')));
    ELSE
        CREATE UNIQUE INDEX flip_trust_name_key ON trust ((pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(name::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F]', '', 'g'), '[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]+', ' ', 'g')), 'NFC')));
    END IF;

    -- NULL codes never conflict.
    IF EXISTS (SELECT FROM trust WHERE code IS NOT NULL
               GROUP BY pg_catalog.lower(pg_catalog.normalize(pg_catalog.regexp_replace(code::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]', '', 'g'), 'NFC')) HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) THEN
        CREATE INDEX flip_trust_code_idx ON trust ((pg_catalog.lower(pg_catalog.normalize(pg_catalog.regexp_replace(code::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]', '', 'g'), 'NFC'))));
    ELSE
        CREATE UNIQUE INDEX flip_trust_code_key ON trust ((pg_catalog.lower(pg_catalog.normalize(pg_catalog.regexp_replace(code::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]', '', 'g'), 'NFC'))));
    END IF;
END
$$;
