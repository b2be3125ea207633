// Package hubfixture holds the FLIP hub's database as the hub itself
// leaves it, for tests that must prove flip is a well-behaved guest there:
// Schema is the hub's tables, indexes, types and roles, written from the
// hub's facts (../shared/DESIGN.md, "Tables") and deliberately not from
// flip's migration 1, so that a difference between the two shows; Legacy
// is rows a hub can hold that flip would never write.
//
//	hub := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0)) // the hub as it is
//	old := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema, hubfixture.Legacy))     // legacy rows, flip migrated
package hubfixture

import _ "embed" // the fixtures are embedded SQL files

// Schema creates the hub's schema in an empty database: the tables flip
// uses with the hub's own constraint and index names, the trustauditaction
// enum, alembic_version, the hub's four roles (the per-trust one under its
// first name, "Trust Owner"), and the hub's other tables that reference
// trust(id) with their real columns, indexes and enum types: fl_job_trust
// (keyed by fl_job_id and trust_id), fl_metrics and fl_logs (whose column
// is named trust), model_trust_intersect, project_trust_intersect,
// query_result, trust_task, xnat_project_status and cohort_snapshot_status,
// plus the parents they reference (projects, model, fl_job, queries). No
// foreign key has ON DELETE, as on the hub. It holds no trust, slot,
// profile or grant rows.
//
//go:embed hub_schema.sql
var Schema string

// Legacy adds rows a hub database can hold from before flip, on top of
// Schema: a trust holding two kit slots, two trusts sharing an empty-string
// placeholder api_key_hash (and others with NULL), three trusts sharing one
// canonical name (two spelt the same, one with a no-break space), trusts
// with NULL codes, odd spellings (a code with a zero-width space, a name in
// NFD), a per-trust grant of the Trust Owner role, and three free slots
// (Legacy_005, Legacy_006, Legacy_spare). It also holds a project, a
// model, an fl_job and a query, and rows in every table that references
// trust(id): the two-slot trust (…0001) has at least one in each (besides
// its slots and its grant), so deleting it fails until they are all gone;
// two other trusts (…0005, …0008) have a few; one fl_logs row has no trust.
//
//go:embed legacy_rows.sql
var Legacy string
