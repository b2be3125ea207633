-- The FLIP hub's database as the hub's own (alembic) migrations leave it,
-- written from the hub's facts in DESIGN.md ("Tables") and not from flip's
-- migration 1: names are the hub's (constraints as PostgreSQL names them by
-- default, indexes as the hub's models name them). Load it into an empty
-- database; it holds no trust, slot, profile or grant rows, only the roles
-- the hub creates.

CREATE TYPE trustauditaction AS ENUM (
    'REGISTERED', 'DELETED', 'OWNER_ADDED', 'OWNER_REMOVED', 'ADMIN_ADDED', 'ADMIN_REMOVED'
);

CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
-- A revision id of the hub's; flip never reads it.
INSERT INTO alembic_version (version_num) VALUES ('c41f7a9e2d08');

CREATE TABLE trust (
    id             uuid NOT NULL,
    name           varchar NOT NULL,
    code           varchar,
    region         varchar,
    api_key_hash   varchar,
    last_heartbeat timestamp with time zone,
    created_at     timestamp with time zone NOT NULL,
    CONSTRAINT trust_pkey PRIMARY KEY (id)
);

CREATE TABLE fl_kit_slot (
    slot_name            varchar NOT NULL,
    slot_number          integer NOT NULL,
    assigned_to_trust_id uuid,
    assigned_at          timestamp with time zone,
    CONSTRAINT fl_kit_slot_pkey PRIMARY KEY (slot_name),
    CONSTRAINT fl_kit_slot_assigned_to_trust_id_fkey FOREIGN KEY (assigned_to_trust_id) REFERENCES trust (id)
);
-- Not unique: the hub never promised one slot per trust.
CREATE INDEX ix_fl_kit_slot_assigned_to_trust_id ON fl_kit_slot USING btree (assigned_to_trust_id);

-- No foreign key on trust_id: the audit trail outlives the trust.
CREATE TABLE trusts_audit (
    id                  uuid NOT NULL,
    trust_id            uuid NOT NULL,
    trust_name          varchar NOT NULL,
    action              trustauditaction NOT NULL,
    modified_by_user_id uuid,
    audit_date          timestamp with time zone NOT NULL,
    subject_user_id     uuid,
    CONSTRAINT trusts_audit_pkey PRIMARY KEY (id)
);
CREATE INDEX ix_trusts_audit_trust_id ON trusts_audit USING btree (trust_id);

CREATE TABLE roles (
    id          uuid NOT NULL,
    name        varchar NOT NULL,
    description varchar NOT NULL,
    created_at  timestamp with time zone NOT NULL,
    updated_at  timestamp with time zone NOT NULL,
    CONSTRAINT roles_pkey PRIMARY KEY (id),
    CONSTRAINT roles_name_key UNIQUE (name)
);

CREATE TABLE user_profile (
    user_id      uuid NOT NULL,
    name         varchar(255) NOT NULL,
    organisation varchar(255) NOT NULL,
    created_at   timestamp with time zone NOT NULL,
    updated_at   timestamp with time zone NOT NULL,
    CONSTRAINT user_profile_pkey PRIMARY KEY (user_id)
);

CREATE TABLE user_role (
    id       uuid NOT NULL,
    user_id  uuid NOT NULL,
    role_id  uuid NOT NULL,
    trust_id uuid,
    CONSTRAINT user_role_pkey PRIMARY KEY (id),
    CONSTRAINT user_role_role_id_fkey FOREIGN KEY (role_id) REFERENCES roles (id),
    CONSTRAINT user_role_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);
CREATE INDEX ix_user_role_user_id ON user_role USING btree (user_id);
CREATE INDEX ix_user_role_trust_id ON user_role USING btree (trust_id);
CREATE UNIQUE INDEX uq_user_role_global ON user_role USING btree (user_id, role_id) WHERE trust_id IS NULL;
CREATE UNIQUE INDEX uq_user_role_per_trust ON user_role USING btree (user_id, role_id, trust_id) WHERE trust_id IS NOT NULL;

-- The roles as an older hub created them: the per-trust role (always
-- granted with a trust_id) was first called "Trust Owner"; the newest hub
-- renames it "Trust Admin".
INSERT INTO roles (id, name, description, created_at, updated_at) VALUES
    ('64d3145b-034c-4328-b637-8eb54313b7c5', 'Admin', 'Full access to the platform', '2024-03-01 09:00:00+00', '2024-03-01 09:00:00+00'),
    ('10b64ed0-bc90-4c01-9cc3-933c704905c1', 'Researcher', 'Create projects and run models', '2024-03-01 09:00:00+00', '2024-03-01 09:00:00+00'),
    ('cdee79c9-a5e1-4b9e-a315-1ec2f3d29efe', 'Viewer', 'Read-only access', '2024-03-01 09:00:00+00', '2024-03-01 09:00:00+00'),
    ('8a3d6f14-9b52-4e07-a6c8-1d4f7b2e9053', 'Trust Owner', 'Owns a trust and manages its users', '2024-03-01 09:00:00+00', '2024-03-01 09:00:00+00');

-- The hub's other tables that reference trust(id), without ON DELETE.
-- Only id and trust_id matter to flip; the other columns are plausible
-- stand-ins for the hub's own.
CREATE TABLE fl_job_trust (
    id       uuid NOT NULL,
    job_id   uuid NOT NULL,
    trust_id uuid NOT NULL,
    status   varchar NOT NULL,
    CONSTRAINT fl_job_trust_pkey PRIMARY KEY (id),
    CONSTRAINT fl_job_trust_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE fl_metrics (
    id          uuid NOT NULL,
    trust_id    uuid NOT NULL,
    label       varchar NOT NULL,
    value       double precision NOT NULL,
    recorded_at timestamp with time zone NOT NULL,
    CONSTRAINT fl_metrics_pkey PRIMARY KEY (id),
    CONSTRAINT fl_metrics_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE fl_logs (
    id         uuid NOT NULL,
    trust_id   uuid NOT NULL,
    message    text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT fl_logs_pkey PRIMARY KEY (id),
    CONSTRAINT fl_logs_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE model_trust_intersect (
    id       uuid NOT NULL,
    model_id uuid NOT NULL,
    trust_id uuid NOT NULL,
    CONSTRAINT model_trust_intersect_pkey PRIMARY KEY (id),
    CONSTRAINT model_trust_intersect_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE project_trust_intersect (
    id         uuid NOT NULL,
    project_id uuid NOT NULL,
    trust_id   uuid NOT NULL,
    approved   boolean NOT NULL DEFAULT false,
    CONSTRAINT project_trust_intersect_pkey PRIMARY KEY (id),
    CONSTRAINT project_trust_intersect_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE query_result (
    id       uuid NOT NULL,
    query_id uuid NOT NULL,
    trust_id uuid NOT NULL,
    data     jsonb,
    CONSTRAINT query_result_pkey PRIMARY KEY (id),
    CONSTRAINT query_result_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE trust_task (
    id         uuid NOT NULL,
    trust_id   uuid NOT NULL,
    task_type  varchar NOT NULL,
    status     varchar NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT trust_task_pkey PRIMARY KEY (id),
    CONSTRAINT trust_task_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

CREATE TABLE xnat_project_status (
    id              uuid NOT NULL,
    trust_id        uuid NOT NULL,
    xnat_project_id varchar NOT NULL,
    status          varchar NOT NULL,
    CONSTRAINT xnat_project_status_pkey PRIMARY KEY (id),
    CONSTRAINT xnat_project_status_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);
