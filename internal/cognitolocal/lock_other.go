//go:build !unix

package cognitolocal

// lockFile does nothing where flock is unavailable: concurrent installs
// may then race, so run `npm ci` once by hand (or from .ci/run) first.
func lockFile(string) (func(), error) { return func() {}, nil }
