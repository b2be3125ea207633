# Measurement and audit targets. The tests themselves run with scripts/test
# (or .ci/run, as CI does); none of these targets is part of CI.

DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
export DATABASE_URL

.PHONY: bench reliability soak fuzz supplychain

# Performance only: writes BENCHMARKS.md with registration throughput (flip
# on lib/pq, pgx via database/sql and pgx native against pgbench running
# flip's statements and the reference hub's, with the ratios and goals of
# issues 12 and 15), key verification
# (indexed lookup against a full scan) and main-user seeding against the
# Cognito emulator (needs pgbench, node and npm; about six minutes).
# BENCH_FLAGS passes options, e.g.
# make bench BENCH_FLAGS="-only registration -rounds 3".
bench:
	go run ./bench $(BENCH_FLAGS)

# The reliability suite in its short form, as CI runs it, then a summary of
# the RELIABILITY line each test logs.
reliability:
	bash scripts/reliability -race -count=1

# The reliability suite's long soak, with the same summary.
soak:
	FLIP_SOAK=1 bash scripts/reliability -count=1 -timeout 120m

# Every fuzz target for FUZZTIME each (default 30s); CI only replays their
# seed corpora.
fuzz:
	bash scripts/fuzz

# The direct dependencies and why each is needed, then govulncheck against a
# vulnerability database built locally from golang.org/x/vulndb.
supplychain:
	bash scripts/supplychain
