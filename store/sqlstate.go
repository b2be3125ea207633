package store

// PostgreSQL error codes the store reacts to.
const (
	codeDeadlockDetected = "40P01"
	codeLockNotAvailable = "55P03" // what lock_timeout raises
)
