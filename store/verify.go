package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/londonaicentre/flip"
)

// trustByAPIKeyHashSQL finds the trust holding an API-key hash. It is an
// equality match on trust.api_key_hash, served by the unique index
// flip_trust_api_key_hash_key that migration 2 creates (on the hub's own
// schema, without that index, it is a sequential scan in the server, still
// one round trip). LIMIT 2 lets the caller notice a hash held twice, which
// only corrupt data can produce. $1 hash.
const trustByAPIKeyHashSQL = `SELECT ` + trustColumns + `, api_key_hash
FROM trust
WHERE api_key_hash = $1
LIMIT 2`

// ErrAmbiguousAPIKeyHash is returned by APIKeyLookup when two trusts hold
// the same API-key hash. With 256-bit keys that only happens if rows were
// copied by hand; the key is refused rather than granted to either trust,
// and the hub should answer 500, not 401.
var ErrAmbiguousAPIKeyHash = errors.New("more than one trust holds this API-key hash")

// APIKeyLookup is the PostgreSQL flip.APIKeyLookup: it finds a trust by the
// hash of its API key with one indexed query on DB, usually the hub's
// connection pool (*sql.DB or *sqlx.DB). The zero value is not usable;
// create it with NewAPIKeyLookup.
type APIKeyLookup struct {
	db DBTX
}

var _ flip.APIKeyLookup = APIKeyLookup{}

// NewAPIKeyLookup returns an APIKeyLookup running on db, for
// flip.NewVerifier(store.NewAPIKeyLookup(db)).
func NewAPIKeyLookup(db DBTX) APIKeyLookup { return APIKeyLookup{db: db} }

// LookupAPIKeyHash implements flip.APIKeyLookup.
func (l APIKeyLookup) LookupAPIKeyHash(ctx context.Context, hash string) (flip.APIKeyRecord, bool, error) {
	if l.db == nil {
		return flip.APIKeyRecord{}, false, errors.New("store: APIKeyLookup has no database; create it with NewAPIKeyLookup")
	}
	return trustByAPIKeyHash(ctx, l.db, hash)
}

// trustByAPIKeyHash runs trustByAPIKeyHashSQL on db: the trust holding
// hash, found false when none does.
func trustByAPIKeyHash(ctx context.Context, db DBTX, hash string) (flip.APIKeyRecord, bool, error) {
	rows, err := db.QueryContext(ctx, trustByAPIKeyHashSQL, hash)
	if err != nil {
		return flip.APIKeyRecord{}, false, fmt.Errorf("look up trust by API-key hash: %w", err)
	}
	defer rows.Close()
	var (
		rec   flip.APIKeyRecord
		found bool
	)
	for rows.Next() {
		if found {
			return flip.APIKeyRecord{}, false, ErrAmbiguousAPIKeyHash
		}
		if err := rows.Scan(&rec.Trust.ID, &rec.Trust.Name, &rec.Trust.Code, &rec.Trust.Region, &rec.Trust.CreatedAt, &rec.APIKeyHash); err != nil {
			return flip.APIKeyRecord{}, false, fmt.Errorf("look up trust by API-key hash: %w", err)
		}
		rec.Trust.CreatedAt = rec.Trust.CreatedAt.UTC()
		found = true
	}
	if err := rows.Err(); err != nil {
		return flip.APIKeyRecord{}, false, fmt.Errorf("look up trust by API-key hash: %w", err)
	}
	return rec, found, nil
}
