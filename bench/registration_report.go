package main

import (
	"fmt"
	"strings"
	"time"
)

// report renders the registration section: the goals first, then the
// figures they come from, then how they were measured.
func (rb *regBench) report() string {
	cfg := rb.e.cfg
	var b strings.Builder
	b.WriteString(rb.headline())
	fmt.Fprintf(&b, "Registrations per second, each in its own transaction, with %s concurrent callers on as many connections, %s per run, %s. "+
		"The runs of a round are interleaved, the order turning by one at each level and round, and each ratio is taken within a round (the median of the per-round ratios). "+
		"Every run starts from a fresh copy of one template database after a CHECKPOINT, and is checked afterwards: as many new trusts as reported, every trust with one slot and one audit row, the pool not dry.\n\n",
		joinInts(cfg.callers, ", "), cfg.duration, map[bool]string{true: "one round", false: fmt.Sprintf("%d rounds, median shown", cfg.rounds)}[cfg.rounds == 1])
	fmt.Fprintf(&b, "The template holds flip's schema at the latest migration, %s free kit slots `Bench_000001`…, %d trusts already registered by `RegisterTrustDB` (each with its slot and audit row), and `%s`; then `VACUUM ANALYZE`.\n\n",
		thousands(float64(rb.slots)), cfg.trusts, referenceIndexSQL)
	b.WriteString("Why the trusts: plans must be chosen against a table like the one the run works on. A connection keeps for the whole run the plans it chose at its start: always those of the foreign-key check on the slot's `assigned_to_trust_id`, and every statement's for a client that prepares (pgx's statement cache, pgbench -M prepared). Analysed empty, or with 200 trusts (4 pages), the trust table is small enough that a sequential scan is the cheaper plan, and those plans then scan the whole table at every registration while the run adds thousands of rows, which says nothing about a hub: in trial runs on a template with 200 trusts, runs made up to a few thousand sequential scans of trust each (the reference's the most, its exact-name check being one of those plans); with 300 or more trusts, no run made any. ")
	fmt.Fprintf(&b, "The default of 500 trusts (`-trusts`; %d in this run) is the order of a national hub's (England has about 210 NHS trusts) with a margin above that threshold; from there on every plan is an index lookup whose cost barely depends on the table's size. Sequential scans of trust in this run's measurements (`pg_stat_user_tables` after each run): %s.\n\n", cfg.trusts, rb.seqScanSummary())
	b.WriteString("Why the index: flip's migrations index the canonical name and code flip's duplicate check compares, not the raw `name` the reference compares; without an index of its own the reference would scan a table that grows through the run. It gives the reference its best case; flip's runs maintain it too (one more index entry per insert), which can only lower flip's ratios.\n\n")
	b.WriteString(rb.ratioTable())
	b.WriteString("\nRegistrations per second (mean latency of one registration in brackets: pgbench's own figure; for flip, callers × elapsed / registrations):\n\n")
	b.WriteString(rb.runnerTable(func(rs []runResult) string {
		return fmt.Sprintf("%s/s (%.2f ms)", thousands(medianOf(rs, func(r runResult) float64 { return r.rate })),
			medianOf(rs, func(r runResult) float64 { return float64(r.latency) })/float64(time.Millisecond))
	}))
	b.WriteString("\n(c) Client CPU per registration: user + system time of the measuring process, or of pgbench, over the run, divided by the registrations; the server's CPU comes on top and competes for the same two cores:\n\n")
	b.WriteString(rb.runnerTable(func(rs []runResult) string {
		return fmtSeconds(medianOf(rs, func(r runResult) float64 { return r.cpu.Seconds() }))
	}))
	b.WriteString("\n" + rb.roundTrips() + rb.howMeasured() + rb.allocSection())
	for _, s := range []struct{ name, title string }{{"flip", "flip's statements, generated"}, {"reference", "the reference hub's statements"}} {
		fmt.Fprintf(&b, "\n<details><summary>The pgbench script: %s</summary>\n\n```sql\n%s```\n\n</details>\n", s.title, rb.scripts[s.name])
	}
	return b.String()
}

// headline states every goal with its ratios and whether it was met.
func (rb *regBench) headline() string {
	var parts []string
	for _, r := range regRatios {
		if r.goal != nil {
			vals, goal, verdict := rb.ratioCells(r)
			parts = append(parts, fmt.Sprintf("%s %s (goal %s: %s)", r.label, strings.Join(vals, " / "), goal, verdict))
		}
	}
	return fmt.Sprintf("**At %s callers: %s.**\n\n", joinInts(rb.e.cfg.callers, " / "), strings.Join(parts, "; "))
}

// ratioTable lists every ratio at every level, with its goal.
func (rb *regBench) ratioTable() string {
	head := []string{"ratio (registrations per second)", "goal"}
	for _, c := range rb.e.cfg.callers {
		head = append(head, fmt.Sprintf("%d caller%s", c, plural(c)))
	}
	var rows [][]string
	for _, r := range regRatios {
		vals, goal, verdict := rb.ratioCells(r)
		for i := range vals {
			vals[i] = "**" + vals[i] + "**"
		}
		rows = append(rows, append(append([]string{r.label, goal}, vals...), verdict))
	}
	return mdTable("ll"+strings.Repeat("r", len(rb.e.cfg.callers))+"l", append(head, "goal met"), rows)
}

// ratioCells formats a ratio at each level, its goal and the verdict.
func (rb *regBench) ratioCells(r ratio) (vals []string, goal, verdict string) {
	var goals, missed []string
	for li, c := range rb.e.cfg.callers {
		v := rb.ratioAt(r.num, r.den, li)
		vals = append(vals, fmt.Sprintf("%.2f", v))
		if g, ok := r.goal[c]; ok {
			goals = append(goals, fmt.Sprintf("≥ %.1f", g))
			if v < g {
				missed = append(missed, fmt.Sprint(c))
			}
		} else {
			goals = append(goals, "–")
		}
	}
	switch {
	case r.goal == nil:
		return vals, "–", "–"
	case len(missed) > 0:
		return vals, strings.Join(goals, " / "), "missed at " + strings.Join(missed, ", ") + " callers"
	}
	return vals, strings.Join(goals, " / "), "met"
}

// runnerTable has a row per runner and a column per level.
func (rb *regBench) runnerTable(cell func([]runResult) string) string {
	head := []string{"runner"}
	for _, c := range rb.e.cfg.callers {
		head = append(head, fmt.Sprintf("%d caller%s", c, plural(c)))
	}
	var rows [][]string
	for ri, r := range rb.runners {
		row := []string{r.name}
		for li := range rb.e.cfg.callers {
			row = append(row, cell(rb.results[ri][li]))
		}
		rows = append(rows, row)
	}
	return mdTable("l"+strings.Repeat("r", len(rb.e.cfg.callers)), head, rows)
}

// roundTrips counts what a registration sends, from the recording.
func (rb *regBench) roundTrips() string {
	n, p := len(rb.recorded)+2, 0 // BEGIN and COMMIT around the registration's statements
	for _, st := range rb.recorded {
		if len(st.args) > 0 {
			p++
		}
	}
	return fmt.Sprintf("Per registration, `RegisterTrustDB` sends %d statements: BEGIN, the %d of the registration (%d with parameters; `RegisterTrust` in a caller's transaction adds SAVEPOINT and RELEASE around them), COMMIT; the reference sequence is %d with BEGIN and COMMIT. "+
		"Round trips per registration: lib/pq %d (statements without parameters go as simple queries, one round trip each; each with parameters takes two), lib/pq with `binary_parameters=yes` %d, pgx %d once each statement is prepared on its connection, pgbench one per statement in every mode. "+
		"What separates pgbench -M extended from -M prepared is the server parsing and planning every statement at every call, which pgx's statement cache saves; across a network, where a round trip costs more, fewer round trips save more than over loopback.\n\n",
		n, len(rb.recorded), p, len(referenceStatements(probe{}))+2, n+p, n, n)
}

func (rb *regBench) howMeasured() string {
	var b strings.Builder
	b.WriteString("How it is measured:\n\n")
	b.WriteString("- **flip**: `RegisterTrustDB` (BEGIN, `RegisterTrust`, COMMIT) in a loop from each of N goroutines sharing a `database/sql` pool of exactly N connections, all opened before the clock starts (as pgbench excludes its connection time). Default `store.New()` and key minter, a distinct name and code per call, audited as an admin. Registrations per second = completed registrations / time until the last caller finished.\n")
	for _, fd := range flipDrivers {
		fmt.Fprintf(&b, "  - %s: %s.\n", fd.label, fd.note)
	}
	fmt.Fprintf(&b, "- **pgbench**: `pgbench -n -M <mode> -c N -j N -T %d -f <script> <database>` with N = callers, on the same kind of fresh database. The arguments that differ per registration (name, code, trust id, key hash, audit id, times) are expressions over pgbench's `:client_id` and a random number, computed by the server, the same in both scripts.\n", int(rb.e.cfg.duration/time.Second))
	b.WriteString("  - flip's statements: generated at every run from the statements one real `RegisterTrust` sent, wrapped in BEGIN … COMMIT: the server's share of a flip registration.\n")
	b.WriteString("  - the reference hub's statements, in one transaction: the duplicate check by exact name, the slot claim (`SELECT slot_name, slot_number … FOR UPDATE SKIP LOCKED`, its row kept with `\\gset`), `INSERT` into trust, `UPDATE` of the slot, `INSERT` into trusts_audit. Goals (a) and (b) are set against it in -M prepared, each statement parsed once per connection: the reference sequence at its cheapest for the server.\n")
	b.WriteString("- Every side runs on this machine's two cores together with the server; flip's side also pays for Go, `database/sql`, the driver, key minting (crypto/rand, SHA-256) and the garbage collector.\n\n")
	return b.String()
}

func (rb *regBench) allocSection() string {
	return "Allocations per registration (Go heap, `runtime.MemStats` over 1,000 sequential registrations after 100 untimed ones; for RegisterTrust's own work over 2,000 calls):\n\n" +
		mdTable("lrr", []string{"what", "allocations", "bytes"}, rb.allocs) +
		fmt.Sprintf("\nRegisterTrust's own work (validation, two keys minted from crypto/rand and encoded, one SHA-256, two ids) costs %s of CPU per registration; the rest of the client CPU above is `database/sql`, the driver, the network and the runtime.\n", fmtSeconds(rb.libCPU.Seconds()))
}

// seqScanSummary totals the sequential scans of trust per runner.
func (rb *regBench) seqScanSummary() string {
	var parts []string
	for ri, r := range rb.runners {
		var n int64
		for _, rs := range rb.results[ri] {
			for _, x := range rs {
				n += x.seqScans
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", r.name, thousands(float64(n))))
		}
	}
	if len(parts) == 0 {
		return "none in any run"
	}
	return strings.Join(parts, "; ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, sep)
}
