package flip

import "github.com/londonaicentre/flip/internal/bridge"

// The driver adapters of this module (flippgx) reach the core the public
// methods run (registerTrust, rotateKeys, …), through internal/bridge: the public API stays
// database/sql-shaped and driver-free, and gains no executor-taking
// methods. The assignments fix each variable's dynamic type, which the
// adapters assert.
func init() {
	bridge.RegisterTrust = (*Registry).registerTrust
	bridge.RegisterTrustDB = (*Registry).registerTrustDB
	bridge.RotateKeys = (*Registry).rotateKeys
	bridge.RevokeKey = (*Registry).revokeKey
	bridge.DeleteTrust = (*Registry).deleteTrust
	bridge.NewVerifier = newVerifier
	bridge.SeedMainUsers = (*Seeder).seedMainUsers
}
