-- Drops what version 2 creates: flip's own indexes, nothing of the hub's.
DROP INDEX IF EXISTS flip_trust_code_key;
DROP INDEX IF EXISTS flip_trust_code_idx;
DROP INDEX IF EXISTS flip_trust_name_key;
DROP INDEX IF EXISTS flip_trust_name_idx;
DROP INDEX IF EXISTS flip_trust_api_key_hash_key;
DROP INDEX IF EXISTS flip_trust_api_key_hash_idx;
DROP INDEX IF EXISTS flip_fl_kit_slot_assigned_key;
DROP INDEX IF EXISTS flip_fl_kit_slot_assigned_idx;
DROP INDEX IF EXISTS flip_fl_kit_slot_free_idx;
