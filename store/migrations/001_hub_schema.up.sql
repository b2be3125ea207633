-- The tables flip reads and writes, with exactly the FLIP hub's names for
-- tables, constraints, indexes and types, for a database the hub has not
-- created (tests, development).
--
-- A guest's rule: on a database that already has one of these tables,
-- nothing of it is added, altered or dropped. Each table is created
-- together with its own indexes only when the table is absent, and the enum
-- only when no type of that name exists; an existing table is left exactly
-- as the hub made it, even where it differs from what is written here. On a
-- hub database this whole version is therefore a no-op. to_regclass and
-- to_regtype look the names up on the search_path without taking a lock.

DO $$
BEGIN
    IF pg_catalog.to_regtype('trustauditaction') IS NULL THEN
        CREATE TYPE trustauditaction AS ENUM (
            'REGISTERED', 'DELETED', 'OWNER_ADDED', 'OWNER_REMOVED', 'ADMIN_ADDED', 'ADMIN_REMOVED'
        );
    END IF;

    IF pg_catalog.to_regclass('trust') IS NULL THEN
        CREATE TABLE trust (
            id             uuid NOT NULL,
            name           varchar NOT NULL,
            code           varchar,
            region         varchar,
            api_key_hash   varchar,
            last_heartbeat timestamptz,
            created_at     timestamptz NOT NULL,
            CONSTRAINT trust_pkey PRIMARY KEY (id)
        );
    END IF;

    IF pg_catalog.to_regclass('fl_kit_slot') IS NULL THEN
        CREATE TABLE fl_kit_slot (
            slot_name            varchar NOT NULL,
            slot_number          integer NOT NULL,
            assigned_to_trust_id uuid,
            assigned_at          timestamptz,
            CONSTRAINT fl_kit_slot_pkey PRIMARY KEY (slot_name),
            CONSTRAINT fl_kit_slot_assigned_to_trust_id_fkey
                FOREIGN KEY (assigned_to_trust_id) REFERENCES trust (id)
        );
        CREATE INDEX ix_fl_kit_slot_assigned_to_trust_id ON fl_kit_slot (assigned_to_trust_id);
    END IF;

    -- trust_id deliberately has no foreign key: the audit trail outlives
    -- the trust it describes.
    IF pg_catalog.to_regclass('trusts_audit') IS NULL THEN
        CREATE TABLE trusts_audit (
            id                  uuid NOT NULL,
            trust_id            uuid NOT NULL,
            trust_name          varchar NOT NULL,
            action              trustauditaction NOT NULL,
            modified_by_user_id uuid,
            audit_date          timestamptz NOT NULL,
            subject_user_id     uuid,
            CONSTRAINT trusts_audit_pkey PRIMARY KEY (id)
        );
        CREATE INDEX ix_trusts_audit_trust_id ON trusts_audit (trust_id);
    END IF;

    IF pg_catalog.to_regclass('roles') IS NULL THEN
        CREATE TABLE roles (
            id          uuid NOT NULL,
            name        varchar NOT NULL,
            description varchar NOT NULL,
            created_at  timestamptz NOT NULL,
            updated_at  timestamptz NOT NULL,
            CONSTRAINT roles_pkey PRIMARY KEY (id),
            CONSTRAINT roles_name_key UNIQUE (name)
        );
    END IF;

    -- user_id is the identity provider's sub; no foreign key, the user
    -- lives in the identity provider.
    IF pg_catalog.to_regclass('user_profile') IS NULL THEN
        CREATE TABLE user_profile (
            user_id      uuid NOT NULL,
            name         varchar(255) NOT NULL,
            organisation varchar(255) NOT NULL,
            created_at   timestamptz NOT NULL,
            updated_at   timestamptz NOT NULL,
            CONSTRAINT user_profile_pkey PRIMARY KEY (user_id)
        );
    END IF;

    IF pg_catalog.to_regclass('user_role') IS NULL THEN
        CREATE TABLE user_role (
            id       uuid NOT NULL,
            user_id  uuid NOT NULL,
            role_id  uuid NOT NULL,
            trust_id uuid,
            CONSTRAINT user_role_pkey PRIMARY KEY (id),
            CONSTRAINT user_role_role_id_fkey FOREIGN KEY (role_id) REFERENCES roles (id),
            CONSTRAINT user_role_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
        );
        CREATE INDEX ix_user_role_user_id ON user_role (user_id);
        CREATE INDEX ix_user_role_trust_id ON user_role (trust_id);
        CREATE UNIQUE INDEX uq_user_role_global
            ON user_role (user_id, role_id) WHERE trust_id IS NULL;
        CREATE UNIQUE INDEX uq_user_role_per_trust
            ON user_role (user_id, role_id, trust_id) WHERE trust_id IS NOT NULL;
    END IF;
END
$$;
