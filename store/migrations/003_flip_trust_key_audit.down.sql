-- Drops flip_trust_key_audit only while it is empty: an audit trail is
-- not flip's to destroy. With rows in it, the table stays (and migrating
-- up again keeps them); a development database that wants it gone drops
-- it by hand.
DO $$
BEGIN
    IF pg_catalog.to_regclass('flip_trust_key_audit') IS NOT NULL THEN
        IF EXISTS (SELECT FROM flip_trust_key_audit) THEN
            RAISE NOTICE 'flip: flip_trust_key_audit holds rows; it is kept';
        ELSE
            DROP TABLE flip_trust_key_audit;
        END IF;
    END IF;
END
$$;
