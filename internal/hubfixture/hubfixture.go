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
// first name, "Trust Owner") and the hub's other tables that reference
// trust(id). It holds no trust, slot, profile or grant rows.
//
//go:embed hub_schema.sql
var Schema string

// Legacy adds rows a hub database can hold from before flip, on top of
// Schema: a trust holding two kit slots, two trusts sharing an empty-string
// placeholder api_key_hash (and others with NULL), three trusts sharing one
// canonical name (two spelt the same, one with a no-break space), trusts
// with NULL codes, odd spellings (a code with a zero-width space, a name in
// NFD), a per-trust grant of the Trust Owner role, rows in dependent
// tables, and three free slots (Legacy_005, Legacy_006, Legacy_spare).
//
//go:embed legacy_rows.sql
var Legacy string
