-- Drops version 4's index and function (flip's own, nothing of the hub's)
-- and puts back version 2's name index, on the canonical form without case
-- folding, unique where the rows allow it, as version 2 made it.

LOCK TABLE trust IN SHARE MODE;
SET LOCAL standard_conforming_strings = on;

DROP INDEX IF EXISTS flip_trust_folded_name_key;
DROP INDEX IF EXISTS flip_trust_folded_name_idx;
DROP INDEX IF EXISTS flip_trust_name_key;
DROP INDEX IF EXISTS flip_trust_name_idx;

DO $migration$
DECLARE
    trust_schema CONSTANT pg_catalog.text := (
        SELECT n.nspname FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
        WHERE c.oid OPERATOR(pg_catalog.=) 'trust'::pg_catalog.regclass::pg_catalog.oid);
    shared pg_catalog.bool;
BEGIN
    EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %I.flip_fold_trust_name(pg_catalog.text)', trust_schema);
    IF EXISTS (SELECT FROM trust GROUP BY pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(name::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F]', '', 'g'), '[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]+', ' ', 'g')), 'NFC') HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) THEN
        CREATE INDEX flip_trust_name_idx ON trust ((pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(name::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F]', '', 'g'), '[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]+', ' ', 'g')), 'NFC')));
    ELSE
        CREATE UNIQUE INDEX flip_trust_name_key ON trust ((pg_catalog.normalize(pg_catalog.btrim(pg_catalog.regexp_replace(pg_catalog.regexp_replace(name::pg_catalog.text, '[\u00AD\u0600\u0601-\u0605\u061C\u06DD\u070F\u0890\u0891\u08E2\u180E\u200B\u200C-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9\uFFFA-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020\U000E0021-\U000E007F]', '', 'g'), '[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028-\u2029\u202F\u205F\u3000]+', ' ', 'g')), 'NFC')));
    END IF;
END
$migration$;
