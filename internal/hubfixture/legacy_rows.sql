-- Rows a hub database can hold from before flip, that flip would never
-- write itself. Load after hub_schema.sql. Ids end in the row's number,
-- for a reader of a failing test.

INSERT INTO trust (id, name, code, region, api_key_hash, last_heartbeat, created_at) VALUES
    -- Holds two kit slots (registered twice half-way, before flip).
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'Two Slot Trust', 'TST', 'London',
     'a3f1c0de9b7e4d2c8a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a190', '2024-05-01 12:00:00+00', '2024-04-01 10:00:00+00'),
    -- Two placeholders: the hub once stored '' until a key was issued.
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000002', 'Placeholder North', 'PHN', NULL, '', NULL, '2024-04-02 10:00:00+00'),
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000003', 'Placeholder South', 'PHS', NULL, '', NULL, '2024-04-03 10:00:00+00'),
    -- No key and no code at all.
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000004', 'Keyless Trust', NULL, NULL, NULL, NULL, '2024-04-04 10:00:00+00'),
    -- Three trusts with one canonical name: two spelt alike (the old
    -- duplicate-check race) and one with a no-break space.
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000005', 'Twin Hospital', 'TW1', 'North East', NULL, NULL, '2024-04-05 10:00:00+00'),
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000006', 'Twin Hospital', NULL, 'North East', NULL, NULL, '2024-04-05 10:00:01+00'),
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000007', U&'Twin\00A0Hospital', 'TW3', NULL, NULL, NULL, '2024-04-05 10:00:02+00'),
    -- Odd spellings: a zero-width space inside the code (canonically
    -- "gstt") and a name in NFD (canonically "Café Hospital").
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000008', 'Guy''s and St Thomas''', U&'GS\200BTT', 'London',
     'f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f', NULL, '2024-04-08 10:00:00+00'),
    ('0b7d3f1e-2a44-4c1a-9a0e-1f0000000009', U&'Cafe\0301 Hospital', 'CAFE', NULL, NULL, NULL, '2024-04-09 10:00:00+00');

INSERT INTO fl_kit_slot (slot_name, slot_number, assigned_to_trust_id, assigned_at) VALUES
    ('Legacy_001', 1, '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', '2024-04-01 10:00:00+00'),
    ('Legacy_002', 2, '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', '2024-04-01 10:00:05+00'),
    ('Legacy_003', 3, '0b7d3f1e-2a44-4c1a-9a0e-1f0000000005', '2024-04-05 10:00:00+00'),
    ('Legacy_004', 4, '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008', '2024-04-08 10:00:00+00'),
    ('Legacy_005', 5, NULL, NULL),
    ('Legacy_006', 6, NULL, NULL),
    ('Legacy_spare', 10000, NULL, NULL);

INSERT INTO trusts_audit (id, trust_id, trust_name, action, modified_by_user_id, audit_date, subject_user_id) VALUES
    ('7c2e5b90-1d3a-4e6f-9b8c-3a0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'Two Slot Trust', 'REGISTERED', NULL, '2024-04-01 10:00:00+00', NULL),
    ('7c2e5b90-1d3a-4e6f-9b8c-3a0000000002', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'Two Slot Trust', 'OWNER_ADDED',
     '5e1c9a70-3b2d-4f8e-8c61-2a0000000002', '2024-04-10 10:00:00+00', '5e1c9a70-3b2d-4f8e-8c61-2a0000000001'),
    -- A trust deleted long ago: its audit rows outlive it (no foreign key).
    ('7c2e5b90-1d3a-4e6f-9b8c-3a0000000003', '0b7d3f1e-2a44-4c1a-9a0e-1f00000000ff', 'Closed Trust', 'DELETED', NULL, '2024-03-15 10:00:00+00', NULL);

INSERT INTO user_profile (user_id, name, organisation, created_at, updated_at) VALUES
    ('5e1c9a70-3b2d-4f8e-8c61-2a0000000001', 'Olive Owner', 'Two Slot Trust', '2024-04-10 09:00:00+00', '2024-04-10 09:00:00+00'),
    ('5e1c9a70-3b2d-4f8e-8c61-2a0000000002', 'Adam Admin', 'Example Hub', '2024-03-01 09:00:00+00', '2024-03-01 09:00:00+00');

INSERT INTO user_role (id, user_id, role_id, trust_id) VALUES
    -- The per-trust role, granted as the hub grants it: with a trust.
    ('9d4f2a61-7e3b-4c5d-8a9f-4b0000000001', '5e1c9a70-3b2d-4f8e-8c61-2a0000000001', '8a3d6f14-9b52-4e07-a6c8-1d4f7b2e9053', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001'),
    ('9d4f2a61-7e3b-4c5d-8a9f-4b0000000002', '5e1c9a70-3b2d-4f8e-8c61-2a0000000002', '64d3145b-034c-4328-b637-8eb54313b7c5', NULL);

-- The hub's own business around the trusts: one project with one model,
-- its federated job and one cohort query (ids 6f0a1b2c-…-6d, numbered
-- across the four tables), then rows in every table that references
-- trust(id) (ids 3a6b9c0d-…-5c, numbered across the tables). Two Slot
-- Trust has at least one row in each, so deleting it must empty them all
-- first; Twin Hospital (…05) and Guy's and St Thomas' (…08) have a few.
INSERT INTO projects (id, name, description, owner_id, deleted, creation_timestamp, status, dicom_to_nifti, has_imaging) VALUES
    ('6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', 'Chest X-ray triage', 'Federated triage of chest radiographs', '5e1c9a70-3b2d-4f8e-8c61-2a0000000002',
     false, '2024-04-20 09:00:00+00', 'APPROVED', true, true);
INSERT INTO model (id, name, description, status, deleted, project_id, owner_id, creation_timestamp) VALUES
    ('6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002', 'cxr-densenet', 'DenseNet-121 baseline', 'RESULTS_UPLOADED', false,
     '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '5e1c9a70-3b2d-4f8e-8c61-2a0000000002', '2024-04-21 09:00:00+00');
-- From before the GPU request columns: num_gpus and mem_per_gpu_gib NULL.
INSERT INTO fl_job (id, model_id, status, created, started, completed, fl_backend_job_id, num_gpus, mem_per_gpu_gib) VALUES
    ('6f0a1b2c-3d4e-4f5a-9b6c-6d0000000003', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002', 'COMPLETED',
     '2024-05-01 11:55:00+00', '2024-05-01 12:00:00+00', '2024-05-01 14:30:00+00', 'cxr-densenet-run-1', NULL, NULL);
INSERT INTO queries (id, name, query, created, created_by, project_id, queried_trust_ids) VALUES
    ('6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', 'Adult chest X-rays 2023', 'SELECT accession_id FROM radiology WHERE modality = ''CR''',
     '2024-04-22 09:00:00+00', '5e1c9a70-3b2d-4f8e-8c61-2a0000000002', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001',
     '{0b7d3f1e-2a44-4c1a-9a0e-1f0000000001,0b7d3f1e-2a44-4c1a-9a0e-1f0000000005,0b7d3f1e-2a44-4c1a-9a0e-1f0000000008}');

INSERT INTO fl_job_trust (fl_job_id, trust_id) VALUES
    ('6f0a1b2c-3d4e-4f5a-9b6c-6d0000000003', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001'),
    ('6f0a1b2c-3d4e-4f5a-9b6c-6d0000000003', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008');
INSERT INTO fl_metrics (id, trust, fl_client_name, model_id, global_round, "timestamp", label, result, x_label, x_value) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000004', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'Legacy_001', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002',
     1, '2024-05-01 13:00:00+00', 'val_auc', 0.81, 'Global Round', 1),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000005', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008', 'Legacy_004', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002',
     1, '2024-05-01 13:00:02+00', 'val_auc', 0.78, 'Global Round', 1);
-- A client's line (trust set) and one of the server's own (trust NULL).
INSERT INTO fl_logs (id, model_id, log_date, success, trust, fl_client_name, log, event_type, global_round, details) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000001', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002', '2024-05-01 12:00:00+00', true,
     '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'Legacy_001', 'client connected', NULL, NULL, NULL),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000006', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002', '2024-05-01 12:00:10+00', true,
     NULL, NULL, NULL, 'ROUND_STARTED', 1, '{"clients": 2}');
INSERT INTO model_trust_intersect (id, status, model_id, trust_id, fl_client_endpoint) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000007', 'INITIALISED', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002',
     '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'https://fl.two-slot.example.nhs.uk:8002'),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000008', 'REQUEST_SENT', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000002',
     '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008', NULL);
-- Row 3 predates per-trust decisions: approved = true became APPROVED
-- with no decider. Row 9 was decided by the trust's owner, on site.
INSERT INTO project_trust_intersect (id, project_id, trust_id, decided_at, status, decided_by, decided_as) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000003', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000005',
     '2024-04-25 10:00:00+00', 'APPROVED', NULL, NULL),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000009', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001',
     '2024-04-26 10:00:00+00', 'APPROVED', '5e1c9a70-3b2d-4f8e-8c61-2a0000000001', 'SITE'),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000010', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008',
     NULL, 'PENDING', NULL, NULL);
-- data is a JSON document in a varchar.
INSERT INTO query_result (id, query_id, trust_id, data) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000011', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001',
     '{"record_count": 42, "fields": {"sex": {"F": 23, "M": 19}}}'),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000012', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008',
     '{"record_count": 17, "fields": {"sex": {"F": 9, "M": 8}}}');
INSERT INTO trust_task (id, trust_id, task_type, payload, query_id, status, result, needs_post_processing, retry_count, created_at, updated_at) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000002', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008', 'COHORT_QUERY',
     '{"query_id": "6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004"}', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', 'COMPLETED',
     '{"record_count": 17}', true, 0, '2024-05-02 12:00:00+00', '2024-05-02 12:01:00+00'),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000013', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'CREATE_IMAGING',
     '{"project_id": "6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001"}', NULL, 'FAILED',
     '{"error": "XNAT unreachable"}', false, 3, '2024-05-02 12:00:00+00', '2024-05-02 12:15:00+00');
INSERT INTO xnat_project_status (id, xnat_project_id, project_id, trust_id, retrieve_image_status, query_at_creation, last_reimport, reimport_count) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000014', 'c7e4a2d9-5b1f-4e3a-9d8c-7e0000000014', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001',
     '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'RETRIEVE_COMPLETED', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', '2024-05-03 09:00:00+00', 1);
-- Times without time zone, as the hub's table has them.
INSERT INTO cohort_snapshot_status (id, project_id, trust_id, query_id, row_count, approved_record_count, has_accessions, query_hash, snapshot_at, created_at) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000015', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001',
     '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', 42, 40, true, '9f2c4e1a7b3d5f60', '2024-05-03 10:00:00', '2024-05-03 10:00:01'),
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000016', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008',
     '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000004', 17, NULL, false, '9f2c4e1a7b3d5f60', '2024-05-03 10:00:00', '2024-05-03 10:00:02');
