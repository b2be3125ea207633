-- The tables flip reads and writes, exactly as the FLIP hub's own schema
-- defines them. Every statement is IF NOT EXISTS (or tolerates an existing
-- type), so this version is a no-op on a database the hub already created.

DO $$
BEGIN
    CREATE TYPE trustauditaction AS ENUM (
        'REGISTERED', 'DELETED', 'OWNER_ADDED', 'OWNER_REMOVED', 'ADMIN_ADDED', 'ADMIN_REMOVED'
    );
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS trust (
    id             uuid PRIMARY KEY,
    name           varchar NOT NULL,
    code           varchar,
    region         varchar,
    api_key_hash   varchar,
    last_heartbeat timestamptz,
    created_at     timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS fl_kit_slot (
    slot_name            varchar PRIMARY KEY,
    slot_number          integer NOT NULL,
    assigned_to_trust_id uuid NULL REFERENCES trust (id),
    assigned_at          timestamptz
);

-- trust_id deliberately has no foreign key: the audit trail outlives the
-- trust it describes.
CREATE TABLE IF NOT EXISTS trusts_audit (
    id                  uuid PRIMARY KEY,
    trust_id            uuid NOT NULL,
    trust_name          varchar NOT NULL,
    action              trustauditaction NOT NULL,
    modified_by_user_id uuid NULL,
    audit_date          timestamptz NOT NULL,
    subject_user_id     uuid NULL
);
CREATE INDEX IF NOT EXISTS ix_trusts_audit_trust_id ON trusts_audit (trust_id);

CREATE TABLE IF NOT EXISTS roles (
    id          uuid PRIMARY KEY,
    name        varchar NOT NULL UNIQUE,
    description varchar NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- user_id is the identity provider's sub; no foreign key, the user lives in
-- the identity provider.
CREATE TABLE IF NOT EXISTS user_profile (
    user_id      uuid PRIMARY KEY,
    name         varchar(255) NOT NULL,
    organisation varchar(255) NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS user_role (
    id       uuid PRIMARY KEY,
    user_id  uuid NOT NULL,
    role_id  uuid NOT NULL REFERENCES roles (id),
    trust_id uuid NULL REFERENCES trust (id)
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_user_role_global
    ON user_role (user_id, role_id) WHERE trust_id IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS uq_user_role_trust
    ON user_role (user_id, role_id, trust_id) WHERE trust_id IS NOT NULL;
