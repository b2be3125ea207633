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

INSERT INTO fl_logs (id, trust_id, message, created_at) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000001', 'client connected', '2024-05-01 12:00:00+00');
INSERT INTO trust_task (id, trust_id, task_type, status, created_at) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000002', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000008', 'cohort_query', 'done', '2024-05-02 12:00:00+00');
INSERT INTO project_trust_intersect (id, project_id, trust_id, approved) VALUES
    ('3a6b9c0d-4e5f-4a1b-8c2d-5c0000000003', '6f0a1b2c-3d4e-4f5a-9b6c-6d0000000001', '0b7d3f1e-2a44-4c1a-9a0e-1f0000000005', true);
