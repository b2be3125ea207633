// Package store is flip's PostgreSQL side: the embedded schema migrations,
// administration of the FL kit slot pool, the lookups the deploy tooling
// needs, and Store, the kit-slot pool a flip.Registry claims from.
//
// It works with any database/sql driver for PostgreSQL, and registers
// none: import one (lib/pq is the one this module is tested with first;
// pgx's stdlib works too). It works on a database created by the FLIP
// hub's own schema: flip's extra indexes (migration 2) make it faster but
// are not needed for correctness.
package store

import (
	"github.com/londonaicentre/flip"
	"github.com/londonaicentre/flip/internal/pgsql"
)

// DBTX is flip.DBTX: *sql.Tx, *sqlx.Tx, *sql.Conn, or for the read-only
// and pool helpers also *sql.DB and *sqlx.DB.
type DBTX = flip.DBTX

// Store is flip's PostgreSQL kit-slot pool, for
// flip.NewRegistry(store.New()): the Registry then claims the slot within
// its registration statement. It has no state; one value may be shared by
// all goroutines.
type Store struct {
	builtin //lint:ignore U1000 its method set is what marks Store (pgsql.Builtin)
}

// builtin marks Store for flip.Registry: see pgsql.Builtin.
type builtin = pgsql.Mark //lint:ignore U1000 see Store

// New returns a Store.
func New() *Store { return &Store{} }

var (
	_ flip.SlotStore = (*Store)(nil)
	_ pgsql.Builtin  = (*Store)(nil)
)
