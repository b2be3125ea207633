package pgsql

// TrustByAPIKeyHash finds the trust holding an API-key hash, for
// flip.Verifier. It is an equality match on trust.api_key_hash, served by
// the unique index flip_trust_api_key_hash_key that migration 2 creates (on
// the hub's own schema, without that index, a sequential scan in the
// server, still one round trip). LIMIT 2 lets the caller notice a hash
// held twice, which only corrupt data can produce. $1 hash.
const TrustByAPIKeyHash = `SELECT ` + TrustColumns + `, api_key_hash
FROM trust
WHERE api_key_hash::pg_catalog.text OPERATOR(pg_catalog.=) $1::pg_catalog.text
LIMIT 2`

// TrustColumns are a trust row's columns as flip.Trust holds them (a NULL
// code or region reads as ""), in the order the lookups scan them.
const TrustColumns = `id, name, COALESCE(code, ''), COALESCE(region, ''), created_at`

// APIKeyHashOf reads the api_key_hash of one trust, NULL when it holds no
// key (revoked, or a legacy row never given one). $1 id.
const APIKeyHashOf = `SELECT api_key_hash FROM trust WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid`
