package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// runReliability runs the reliability suite (./reliability) and quotes the
// RELIABILITY lines its tests log.
func runReliability(ctx context.Context, e *env) (string, error) {
	timeout := "20m"
	mode := "the short form CI runs"
	env := append(os.Environ(), "DATABASE_URL="+e.serverURL)
	if e.cfg.soak {
		timeout, mode = "120m", "the soak (FLIP_SOAK=1)"
		env = append(env, "FLIP_SOAK=1")
	}
	args := []string{"test", "-count=1", "-v", "-timeout", timeout, "./reliability/"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = env
	start := time.Now()
	out, runErr := cmd.CombinedOutput()
	elapsed := time.Since(start).Round(time.Second)

	lines := parseReliability(string(out))
	var b strings.Builder
	command := "go " + strings.Join(args, " ")
	if e.cfg.soak {
		command = "FLIP_SOAK=1 " + command
	}
	fmt.Fprintf(&b, "`%s` (%s) took %s and %s. Every row below is one test on one schema and driver, from the line the test logged; ",
		command, mode, elapsed,
		map[bool]string{true: "passed", false: "**failed**"}[runErr == nil])
	b.WriteString("the package documentation (`go doc ./reliability`) says what each checks.\n\n")

	totals := map[string]int{}
	for _, what := range []string{"faults", "races", "kills", "secrets"} {
		rows := filter(lines, what)
		sort.Slice(rows, func(i, j int) bool { return rows[i]["variant"] < rows[j]["variant"] })
		if len(rows) == 0 {
			continue
		}
		switch what {
		case "faults":
			b.WriteString("**Fault injection at every statement of RegisterTrust** (error in the client, error from the server, error after the statement ran, context cancelled before it, cancelled transaction context, cancelled while the statement waits on a lock, backend terminated before it; then kill or server error on each statement of the undo):\n\n")
			b.WriteString("| schema / driver | statements | undo statements | fault points tried | outcomes | violations |\n|---|---:|---:|---:|---|---:|\n")
			for _, r := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r["variant"], r["statements"], r["undo_statements"], r["points"], outcomes(r["outcomes"]), r["violations"])
				totals["fault points"] += atoi(r["points"])
				totals["violations"] += atoi(r["violations"])
			}
		case "races":
			fmt.Fprintf(&b, "\n**Races, round after round**: %s goroutines on a pool of %s connections register at once the same name (exactly one must win), the same code in three letter cases (exactly one), more trusts than the %s free slots (exactly %s), and a mix of shared names and codes (only duplicates may lose); invariants after every round:\n\n",
				rows[0]["callers"], rows[0]["connections"], rows[0]["exhaustion_slots"], rows[0]["exhaustion_slots"])
			b.WriteString("| schema / driver | rounds | violations |\n|---|---:|---:|\n")
			for _, r := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", r["variant"], r["rounds"], r["violations"])
				totals["race rounds"] += atoi(r["rounds"])
				totals["violations"] += atoi(r["violations"])
			}
		case "kills":
			b.WriteString("\n**Backend killed at a random moment of RegisterTrustDB** (before, during or after the commit):\n\n")
			b.WriteString("| schema / driver | tries | outcomes | violations |\n|---|---:|---|---:|\n")
			for _, r := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r["variant"], r["tries"], outcomes(r["outcomes"]), r["violations"])
				totals["kills"] += atoi(r["tries"])
				totals["violations"] += atoi(r["violations"])
			}
		case "secrets":
			b.WriteString("\n**Secrets over a full register → seed → verify cycle** (five trusts registered, three refused, one rolled back by its caller and, on flip's schema, one refused for an API key another trust holds; four main users seeded twice, one unknown to the identity provider and one it cannot answer for; trust API keys verified with the cache on: hits, cached hits, keys of no trust, internal-service keys, malformed keys derived from real ones; the registry, the seeder and the hub's own lines logging at debug level into one buffer). Searched: every row of every table as text and the whole log, for every key minted or presented and every 16-character piece of one, and the log for every key's hash:\n\n")
			b.WriteString("| schema / driver | keys searched | pieces searched | verifications | tables / rows dumped | log records (bytes) | violations |\n|---|---:|---:|---:|---:|---:|---:|\n")
			for _, r := range rows {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s | %s (%s) | %s |\n", r["variant"], r["keys"], r["pieces"], r["verifications"], r["tables"], r["rows"], r["log_records"], thousands(float64(atoi(r["log_bytes"]))), r["violations"])
				totals["secret cycles"]++
				totals["violations"] += atoi(r["violations"])
			}
		}
	}
	fmt.Fprintf(&b, "\nIn all: **%d fault points, %d race rounds, %d kills, %d full secret cycles; %d violations.** In the secrets rows a violation is a key, a piece of one or a hash found where it must not be (or a stored hash not found).\n",
		totals["fault points"], totals["race rounds"], totals["kills"], totals["secret cycles"], totals["violations"])
	b.WriteString("\nOutcomes: _usable_ — the call failed and the caller's transaction went on and committed its own work with nothing from the call; ")
	b.WriteString("_failed cleanly_ — the connection or the transaction was gone (killed backend, cancelled transaction context, a driver that closes the connection on cancel), and nothing of the transaction is in the database; ")
	b.WriteString("_registered_ — the fault came too late to stop the registration, which completed whole (a cancel racing an instant statement; a kill after the commit); ")
	b.WriteString("_committed but reported failed_ — the backend died after the commit was done but before its answer arrived, the one outcome no client can tell apart from failure (the trust is whole in the database; a deploy re-run reports it as existing).\n")
	if runErr != nil {
		fmt.Fprintf(&b, "\nThe run failed:\n\n```\n%s\n```\n", failures(string(out)))
		return b.String(), fmt.Errorf("reliability suite: %w", runErr)
	}
	if len(lines) == 0 {
		return b.String(), fmt.Errorf("the reliability suite logged no RELIABILITY line (skipped? is PostgreSQL reachable?)")
	}
	return b.String(), nil
}

var reliabilityRE = regexp.MustCompile(`RELIABILITY (\S+) (.*)$`)

// parseReliability returns one map per RELIABILITY line: "what" and its
// key=value pairs.
func parseReliability(out string) []map[string]string {
	var rows []map[string]string
	for _, line := range strings.Split(out, "\n") {
		m := reliabilityRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		row := map[string]string{"what": m[1]}
		for _, kv := range strings.Fields(m[2]) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				row[k] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func filter(rows []map[string]string, what string) []map[string]string {
	var out []map[string]string
	for _, r := range rows {
		if r["what"] == what {
			out = append(out, r)
		}
	}
	return out
}

// outcomes turns "failed_cleanly:46,usable:27" into "failed cleanly 46, usable 27".
func outcomes(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		k, v, _ := strings.Cut(p, ":")
		parts[i] = strings.ReplaceAll(k, "_", " ") + " " + v
	}
	return strings.Join(parts, ", ")
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// failures keeps the lines of go test output that say what failed.
func failures(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--- FAIL") || strings.Contains(t, "_test.go:") && !strings.Contains(t, "RELIABILITY") || strings.HasPrefix(t, "FAIL") || strings.HasPrefix(t, "panic") {
			keep = append(keep, line)
		}
	}
	if len(keep) > 60 {
		keep = append(keep[:60], fmt.Sprintf("… %d more lines", len(keep)-60))
	}
	return strings.Join(keep, "\n")
}

// fuzzTargets are run for -fuzztime each.
var fuzzTargets = []struct{ name, pkg, what string }{
	{"FuzzTrustParamsNormalize", ".", "validation of a trust's name, code and region"},
	{"FuzzCheckKey", ".", "key parsing (format, prefix, checksum) before any lookup"},
}

var (
	fuzzProgressRE = regexp.MustCompile(`fuzz: elapsed: (\d+)s, execs: (\d+) \((\d+)/sec\), new interesting: (\d+) \(total: (\d+)\)`)
	fuzzWorkersRE  = regexp.MustCompile(`now fuzzing with (\d+) workers`)
	fuzzFailRE     = regexp.MustCompile(`(?m)^\s*(Failing input written to .*)$`)
)

// fuzzMinimize bounds the minimisation of each new interesting input (and
// of a failing one; it is written to testdata/fuzz whether minimised or
// not).
const fuzzMinimize = "5s"

// runFuzz runs each fuzz target for the budget and reports what it did.
func runFuzz(ctx context.Context, e *env) (string, error) {
	var b strings.Builder
	budget := e.cfg.fuzzTime
	fmt.Fprintf(&b, "Each target ran `go test -run '^$' -fuzz '^<target>$' -fuzztime %s -fuzzminimizetime %s <package>` (the CI run only replays their seed corpora). ", budget, fuzzMinimize)
	b.WriteString("The short minimisation time keeps the budget for fuzzing: with the default 60 s, minimising one new interesting input can take the rest of a 30 s budget, at 0 execs/s. ")
	b.WriteString("A finding is an input that fails the target; `go test` writes it to the package's `testdata/fuzz/`.\n\n")
	b.WriteString("| target | checks | budget | workers | execs | execs/s | new interesting inputs | corpus after (seeds, cached, new) | findings |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	var failed []string
	for _, ft := range fuzzTargets {
		args := []string{"test", "-run", "^$", "-fuzz", "^" + ft.name + "$", "-fuzztime", budget.String(), "-fuzzminimizetime", fuzzMinimize, ft.pkg}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+e.serverURL)
		out, err := cmd.CombinedOutput()
		text := string(out)
		all := fuzzProgressRE.FindAllStringSubmatch(text, -1)
		workers := "?"
		if m := fuzzWorkersRE.FindStringSubmatch(text); m != nil {
			workers = m[1]
		}
		findings := "none"
		if err != nil {
			failed = append(failed, ft.name)
			findings = "**" + oneLine(err.Error())
			if m := fuzzFailRE.FindStringSubmatch(text); m != nil {
				findings += ": " + oneLine(m[1])
			}
			findings += "**"
		}
		if len(all) == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | – | – | – | – | %s |\n", ft.name, ft.what, budget, workers, findings)
			if err == nil {
				failed = append(failed, ft.name)
			}
			continue
		}
		last := all[len(all)-1]
		execs, _ := strconv.ParseFloat(last[2], 64)
		secs, _ := strconv.ParseFloat(last[1], 64)
		rate := "–"
		if secs > 0 {
			rate = thousands(execs / secs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", ft.name, ft.what, budget, workers, thousands(execs), rate, last[4], last[5], findings)
	}
	if len(failed) > 0 {
		return b.String(), fmt.Errorf("fuzzing failed or found something: %s", strings.Join(failed, ", "))
	}
	return b.String(), nil
}
