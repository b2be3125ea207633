// Package store is flip's PostgreSQL implementation: the statements behind
// flip.Registry, the embedded schema migrations, and administration of the
// FL kit slot pool.
//
// It works with any database/sql driver for PostgreSQL (lib/pq is the one
// this module is tested with first; pgx's stdlib works too) and on a
// database created by the FLIP hub's own schema: flip's extra indexes
// (migration 2) make it faster but are not needed for correctness.
package store

import (
	"github.com/londonaicentre/flip"
)

// DBTX is flip.DBTX: *sql.Tx, *sqlx.Tx, *sql.Conn, or for the read-only
// and pool helpers also *sql.DB and *sqlx.DB.
type DBTX = flip.DBTX

// Store is the PostgreSQL flip.Store. It has no state; the zero value and
// New() are ready to use, and one value may be shared by all goroutines.
type Store struct{}

// New returns a Store, for flip.NewRegistry(store.New()).
func New() *Store { return &Store{} }

var (
	_ flip.Store      = (*Store)(nil)
	_ flip.TrustStore = (*Store)(nil)
	_ flip.SlotStore  = (*Store)(nil)
)
