# Measurement targets. The tests themselves run with scripts/test (or
# .ci/run, as CI does).

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export DATABASE_URL

.PHONY: bench reliability soak supplychain

# Writes BENCHMARKS.md: registration throughput against pgbench, key
# verification (indexed lookup against a full scan), main-user seeding
# against the Cognito emulator (needs node and npm), the reliability
# suite's counts, fuzzing budgets and the supply-chain scan (about six
# minutes). BENCH_FLAGS passes options, e.g.
# make bench BENCH_FLAGS="-only registration -rounds 3".
bench:
	go run ./bench $(BENCH_FLAGS)

# The reliability suite in its short form, as CI runs it.
reliability:
	go test -race -count=1 -v ./reliability/

# The reliability suite's long soak.
soak:
	FLIP_SOAK=1 go test -count=1 -timeout 120m -v ./reliability/

# Only the supply-chain section of BENCHMARKS.md (govulncheck against a
# local vulnerability database, and the dependency list).
supplychain:
	go run ./bench -only supplychain
