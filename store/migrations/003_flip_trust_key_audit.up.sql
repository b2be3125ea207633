-- flip's record of what the hub's trusts_audit cannot hold: a trust's API
-- key rotated or revoked. The hub's trustauditaction enum has REGISTERED
-- and DELETED and no value for either, and flip never adds one (the hub's
-- ORM fails on enum values it does not know), so Registry.RotateKeys and
-- RevokeKey write here instead, in the caller's transaction. Like
-- trusts_audit, trust_id has no foreign key: the record outlives the
-- trust. A new table of flip's own; nothing of the hub's is touched.

CREATE TABLE IF NOT EXISTS flip_trust_key_audit (
    id                  uuid NOT NULL,
    trust_id            uuid NOT NULL,
    trust_name          varchar NOT NULL,
    action              varchar NOT NULL,
    modified_by_user_id uuid,
    audit_date          timestamptz NOT NULL,
    CONSTRAINT flip_trust_key_audit_pkey PRIMARY KEY (id),
    CONSTRAINT flip_trust_key_audit_action_check
        CHECK (action::pg_catalog.text OPERATOR(pg_catalog.=) ANY (ARRAY['ROTATED', 'REVOKED']::pg_catalog.text[]))
);
CREATE INDEX IF NOT EXISTS flip_trust_key_audit_trust_id_idx ON flip_trust_key_audit (trust_id);
