-- The FLIP hub's database as the hub's own (alembic) migrations leave it,
-- written from the hub's facts in DESIGN.md ("Tables") and the hub's
-- models and migrations, not from flip's migration 1: names are the hub's
-- (constraints as PostgreSQL names them by default, indexes as the hub's
-- models name them). Besides the tables flip uses it holds every other
-- hub table that references trust(id), with their real columns, and the
-- parents those need (projects, model, fl_job, queries). Load it into an
-- empty database; it holds no trust, slot, profile or grant rows, only the
-- roles the hub creates.

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

-- The hub's other tables that reference trust(id), as the hub's models
-- and migrations leave them (up to f5ad2a562fad), with the parent tables
-- and enum types they need. No foreign key declares ON DELETE, so every
-- one is NO ACTION; constraints have PostgreSQL's default names. flip
-- reads none of these tables: they are here so that a test proves flip
-- leaves them (and their rows) alone, and so that deleting a trust that
-- still has rows in them fails as it does on the hub. Enums store the
-- Python members' names, in upper case.
CREATE TYPE projectstatus AS ENUM ('UNSTAGED', 'STAGED', 'APPROVED');
-- RUNNING was TRAINING_STARTED (renamed in place, 8c41d0f2ab5e).
CREATE TYPE modelstatus AS ENUM (
    'ERROR', 'STOPPED', 'PENDING', 'INITIATED', 'PREPARED', 'RUNNING', 'RESULTS_UPLOADED', 'RESULTS_UPLOAD_FAILED'
);
CREATE TYPE jobstatus AS ENUM ('QUEUED', 'IN_PROGRESS', 'COMPLETED', 'DELETED');
CREATE TYPE trustintersectstatus AS ENUM ('PENDING', 'REQUEST_SENT', 'INITIALISED');
CREATE TYPE trustapprovalstatus AS ENUM ('PENDING', 'APPROVED', 'DECLINED');
CREATE TYPE decisionmaker AS ENUM ('HUB', 'SITE');
-- PERSIST_COHORT added by b3f1c857a001.
CREATE TYPE tasktype AS ENUM (
    'COHORT_QUERY', 'CREATE_IMAGING', 'DELETE_IMAGING', 'GET_IMAGING_STATUS', 'REIMPORT_STUDIES', 'UPDATE_USER_PROFILE', 'PERSIST_COHORT'
);
CREATE TYPE taskstatus AS ENUM ('PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED');
CREATE TYPE xnatimagestatus AS ENUM (
    'RETRIEVE_STARTED', 'RETRIEVE_COMPLETED', 'RETRIEVE_IN_PROGRESS', 'RETRIEVE_ERROR', 'CREATED', 'DELETED'
);

-- The parents, with the hub's columns; their other referrers (audits,
-- uploads, schedulers, query stats) are left out.
CREATE TABLE projects (
    id                 uuid NOT NULL,
    name               varchar NOT NULL,
    description        varchar NOT NULL,
    owner_id           uuid NOT NULL,
    deleted            boolean NOT NULL,
    creation_timestamp timestamp with time zone NOT NULL,
    status             projectstatus NOT NULL,
    dicom_to_nifti     boolean NOT NULL,
    has_imaging        boolean NOT NULL DEFAULT true,
    CONSTRAINT projects_pkey PRIMARY KEY (id)
);

CREATE TABLE model (
    id                 uuid NOT NULL,
    name               varchar NOT NULL,
    description        varchar NOT NULL,
    status             modelstatus NOT NULL,
    deleted            boolean NOT NULL,
    project_id         uuid,
    owner_id           uuid NOT NULL,
    creation_timestamp timestamp with time zone NOT NULL,
    CONSTRAINT model_pkey PRIMARY KEY (id),
    CONSTRAINT model_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id)
);

CREATE TABLE fl_job (
    id                uuid NOT NULL,
    model_id          uuid NOT NULL,
    status            jobstatus NOT NULL,
    created           timestamp with time zone NOT NULL,
    started           timestamp with time zone,
    completed         timestamp with time zone,
    fl_backend_job_id varchar,
    num_gpus          integer,
    mem_per_gpu_gib   integer,
    CONSTRAINT fl_job_pkey PRIMARY KEY (id),
    CONSTRAINT fl_job_model_id_fkey FOREIGN KEY (model_id) REFERENCES model (id)
);

-- queried_trust_ids names trusts without a foreign key.
CREATE TABLE queries (
    id                uuid NOT NULL,
    name              varchar NOT NULL,
    query             varchar NOT NULL,
    created           timestamp with time zone NOT NULL,
    created_by        uuid NOT NULL,
    project_id        uuid,
    queried_trust_ids uuid[] NOT NULL,
    CONSTRAINT queries_pkey PRIMARY KEY (id),
    CONSTRAINT queries_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id)
);
CREATE INDEX ix_queries_created_by ON queries USING btree (created_by);
CREATE INDEX ix_queries_project_id ON queries USING btree (project_id);

-- The tables that reference trust(id), in the order the hub's
-- delete_trust.py empties them, then cohort_snapshot_status (which that
-- script does not empty). Nothing references any of them.

-- A link table: no id, the pair is the key.
CREATE TABLE fl_job_trust (
    fl_job_id uuid NOT NULL,
    trust_id  uuid NOT NULL,
    CONSTRAINT fl_job_trust_pkey PRIMARY KEY (fl_job_id, trust_id),
    CONSTRAINT fl_job_trust_fl_job_id_fkey FOREIGN KEY (fl_job_id) REFERENCES fl_job (id),
    CONSTRAINT fl_job_trust_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

-- The trust column is named trust, not trust_id.
CREATE TABLE fl_metrics (
    id             uuid NOT NULL,
    trust          uuid NOT NULL,
    fl_client_name varchar NOT NULL,
    model_id       uuid NOT NULL,
    global_round   integer NOT NULL,
    "timestamp"    timestamp with time zone,
    label          varchar NOT NULL,
    result         double precision NOT NULL,
    x_label        varchar NOT NULL DEFAULT 'Global Round',
    x_value        double precision NOT NULL,
    CONSTRAINT fl_metrics_pkey PRIMARY KEY (id),
    CONSTRAINT fl_metrics_trust_fkey FOREIGN KEY (trust) REFERENCES trust (id),
    CONSTRAINT fl_metrics_model_id_fkey FOREIGN KEY (model_id) REFERENCES model (id)
);

-- trust (so named) is nullable: the hub logs server-side events too. log
-- became nullable, and event_type, global_round and details were added,
-- with 8c4f2b9d31e7.
CREATE TABLE fl_logs (
    id             uuid NOT NULL,
    model_id       uuid NOT NULL,
    log_date       timestamp with time zone,
    success        boolean NOT NULL,
    trust          uuid,
    fl_client_name varchar,
    log            varchar,
    event_type     varchar,
    global_round   integer,
    details        jsonb,
    CONSTRAINT fl_logs_pkey PRIMARY KEY (id),
    CONSTRAINT fl_logs_model_id_fkey FOREIGN KEY (model_id) REFERENCES model (id),
    CONSTRAINT fl_logs_trust_fkey FOREIGN KEY (trust) REFERENCES trust (id)
);

CREATE TABLE model_trust_intersect (
    id                 uuid NOT NULL,
    status             trustintersectstatus NOT NULL,
    model_id           uuid,
    trust_id           uuid,
    fl_client_endpoint varchar,
    CONSTRAINT model_trust_intersect_pkey PRIMARY KEY (id),
    CONSTRAINT model_trust_intersect_model_id_fkey FOREIGN KEY (model_id) REFERENCES model (id),
    CONSTRAINT model_trust_intersect_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

-- As b7e3a1c95d20 and e8c4a2f71b36 leave it: approved (boolean) gave way
-- to status, approved_at was renamed decided_at, and decided_by and
-- decided_as were added.
CREATE TABLE project_trust_intersect (
    id         uuid NOT NULL,
    project_id uuid,
    trust_id   uuid,
    decided_at timestamp with time zone,
    status     trustapprovalstatus NOT NULL,
    decided_by uuid,
    decided_as decisionmaker,
    CONSTRAINT project_trust_intersect_pkey PRIMARY KEY (id),
    CONSTRAINT project_trust_intersect_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id),
    CONSTRAINT project_trust_intersect_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);
CREATE INDEX ix_project_trust_intersect_project_id ON project_trust_intersect USING btree (project_id);
CREATE INDEX ix_project_trust_intersect_trust_id ON project_trust_intersect USING btree (trust_id);

-- data is a JSON document stored as varchar, not jsonb.
CREATE TABLE query_result (
    id       uuid NOT NULL,
    query_id uuid NOT NULL,
    trust_id uuid,
    data     varchar NOT NULL,
    CONSTRAINT query_result_pkey PRIMARY KEY (id),
    CONSTRAINT query_result_query_id_fkey FOREIGN KEY (query_id) REFERENCES queries (id),
    CONSTRAINT query_result_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

-- payload and result are JSON documents stored as varchar; query_id has
-- no foreign key.
CREATE TABLE trust_task (
    id                    uuid NOT NULL,
    trust_id              uuid NOT NULL,
    task_type             tasktype NOT NULL,
    payload               varchar NOT NULL,
    query_id              uuid,
    status                taskstatus NOT NULL,
    result                varchar,
    needs_post_processing boolean NOT NULL,
    retry_count           integer NOT NULL,
    created_at            timestamp with time zone NOT NULL,
    updated_at            timestamp with time zone,
    CONSTRAINT trust_task_pkey PRIMARY KEY (id),
    CONSTRAINT trust_task_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);
CREATE INDEX ix_trust_task_trust_id ON trust_task USING btree (trust_id);
CREATE INDEX ix_trust_task_query_id ON trust_task USING btree (query_id);

-- xnat_project_id (XNAT's own id) and query_at_creation have no foreign key.
CREATE TABLE xnat_project_status (
    id                    uuid NOT NULL,
    xnat_project_id       uuid NOT NULL,
    project_id            uuid,
    trust_id              uuid,
    retrieve_image_status xnatimagestatus NOT NULL,
    query_at_creation     uuid,
    last_reimport         timestamp with time zone NOT NULL,
    reimport_count        integer NOT NULL,
    CONSTRAINT xnat_project_status_pkey PRIMARY KEY (id),
    CONSTRAINT xnat_project_status_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id),
    CONSTRAINT xnat_project_status_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);

-- Added by b3f1c857a001, after the timestamptz migration, so its times are
-- without time zone. query_id has no foreign key. The hub's code upserts
-- on COHORT_SNAPSHOT_STATUS_UNIQUE; its columns, (project_id, trust_id),
-- are inferred from that code, not read from DDL.
CREATE TABLE cohort_snapshot_status (
    id                    uuid NOT NULL,
    project_id            uuid,
    trust_id              uuid,
    query_id              uuid,
    row_count             integer NOT NULL,
    approved_record_count integer,
    has_accessions        boolean NOT NULL,
    query_hash            varchar,
    snapshot_at           timestamp without time zone NOT NULL,
    created_at            timestamp without time zone NOT NULL,
    CONSTRAINT cohort_snapshot_status_pkey PRIMARY KEY (id),
    CONSTRAINT "COHORT_SNAPSHOT_STATUS_UNIQUE" UNIQUE (project_id, trust_id),
    CONSTRAINT cohort_snapshot_status_project_id_fkey FOREIGN KEY (project_id) REFERENCES projects (id),
    CONSTRAINT cohort_snapshot_status_trust_id_fkey FOREIGN KEY (trust_id) REFERENCES trust (id)
);
