-- Indexes the hub's schema lacks. Registration is correct without them
-- (advisory locks serialise same-name and same-code registrations); they
-- make it fast as the tables grow and add a second line of defence.

-- The slot claim reads free slots in (slot_number, slot_name) order; without
-- this it sorts every free slot on each registration.
CREATE INDEX IF NOT EXISTS flip_fl_kit_slot_free_idx
    ON fl_kit_slot (slot_number, slot_name) WHERE assigned_to_trust_id IS NULL;

-- A trust holds at most one slot.
CREATE UNIQUE INDEX IF NOT EXISTS flip_fl_kit_slot_assigned_key
    ON fl_kit_slot (assigned_to_trust_id) WHERE assigned_to_trust_id IS NOT NULL;

-- API-key verification looks trusts up by hash.
CREATE UNIQUE INDEX IF NOT EXISTS flip_trust_api_key_hash_key
    ON trust (api_key_hash) WHERE api_key_hash IS NOT NULL;

-- The duplicate checks look trusts up by name and by lower(code). They are
-- unique where the existing rows allow it; a hub database that already holds
-- duplicates (registered before flip closed the race) gets plain indexes, so
-- that this migration never fails on old data.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM trust GROUP BY name HAVING count(*) > 1) THEN
        CREATE INDEX IF NOT EXISTS flip_trust_name_idx ON trust (name);
    ELSE
        CREATE UNIQUE INDEX IF NOT EXISTS flip_trust_name_key ON trust (name);
    END IF;
    IF EXISTS (SELECT 1 FROM trust WHERE code IS NOT NULL GROUP BY lower(code) HAVING count(*) > 1) THEN
        CREATE INDEX IF NOT EXISTS flip_trust_code_idx ON trust (lower(code));
    ELSE
        CREATE UNIQUE INDEX IF NOT EXISTS flip_trust_code_key ON trust (lower(code));
    END IF;
END
$$;
