-- Drops everything version 1 creates. On a database the hub owns this
-- destroys the hub's data: it exists for test databases only.
DROP TABLE IF EXISTS user_role;
DROP TABLE IF EXISTS user_profile;
DROP TABLE IF EXISTS roles;
DROP TABLE IF EXISTS trusts_audit;
DROP TABLE IF EXISTS fl_kit_slot;
DROP TABLE IF EXISTS trust;
DROP TYPE IF EXISTS trustauditaction;
