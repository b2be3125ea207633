// Command bench measures flip's performance on this machine and writes the
// figures, with the machine they came from and the command that reproduces
// them, to BENCHMARKS.md. It measures performance only: the reliability
// suite, fuzzing and the supply-chain scan have scripts of their own
// (make reliability, make fuzz, make supplychain).
//
// Run it from the repository root:
//
//	go run ./bench                       # everything (about six minutes)
//	go run ./bench -only registration    # one section; the others in the file are kept
//	make bench
//
// It needs PostgreSQL at DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) with a role that
// may create databases, pgbench on PATH, and for the seeding section node
// and npm (it installs and starts the cognito-local emulator as the tests
// do; COGNITO_LOCAL_URL names one already running instead). Every database
// it creates is named flip_bench_* and dropped before it exits, even on
// Ctrl-C; the emulator it starts exits with it.
//
// # Sections
//
// Each section measures one thing and renders a Markdown block between
// <!-- bench:KEY --> markers, so that a run with -only replaces its own
// blocks and keeps the others. To add one, write a func(context.Context,
// *env) (string, error) in a file of its own and add a line to sections
// below.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// section is one part of BENCHMARKS.md.
type section struct {
	key   string // for -only and the markers
	title string // the Markdown heading
	run   func(ctx context.Context, e *env) (string, error)
}

// sections run in this order and appear in BENCHMARKS.md in this order.
var sections = []section{
	{"registration", "Registration throughput", runRegistration},
	{"verify", "Key verification", runVerify},
	{"seeding", "Seeding", runSeeding},
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	cfg := defaultConfig()
	flag.StringVar(&cfg.out, "out", "BENCHMARKS.md", "file to write")
	flag.StringVar(&cfg.only, "only", "", "comma-separated sections to run ("+sectionKeys()+"); the file keeps the others")
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "how long each throughput run lasts (whole seconds: pgbench -T)")
	flag.StringVar(&cfg.levelsFlag, "callers", "1,4,16", "concurrent callers per throughput level")
	flag.IntVar(&cfg.rounds, "rounds", cfg.rounds, "throughput rounds per level; the median is reported")
	flag.IntVar(&cfg.trusts, "trusts", cfg.trusts, "trusts already registered in the registration template")
	flag.IntVar(&cfg.seedUsers, "seed-users", cfg.seedUsers, "main users per seeding run")
	flag.DurationVar(&cfg.seedLatency, "seed-latency", cfg.seedLatency, "latency the fault proxy adds to every Cognito request while seeding")
	flag.IntVar(&cfg.seedRounds, "seed-rounds", cfg.seedRounds, "seeding rounds per concurrency level; the median is reported")
	flag.Parse()
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

func run(cfg config) error {
	chosen, err := cfg.check()
	if err != nil {
		return err
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run it from the repository root (where go.mod is): go run ./bench")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()

	blocks := map[string]string{}
	var failed []string
	for _, s := range chosen {
		log.Printf("section %s", s.key)
		start := time.Now()
		body, err := s.run(ctx, e)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failed = append(failed, s.key)
			log.Printf("section %s failed: %v", s.key, err)
			body += fmt.Sprintf("\n**This section failed:** `%s`\n", oneLine(err.Error()))
		}
		blocks[s.key] = fmt.Sprintf("## %s\n\n_Measured %s with `%s` (%s)._\n\n%s",
			s.title, start.UTC().Format("2006-01-02 15:04 MST"), e.command, time.Since(start).Round(time.Second), strings.TrimSpace(body))
	}
	if err := writeReport(cfg.out, e.header(), blocks); err != nil {
		return err
	}
	log.Printf("wrote %s", cfg.out)
	if len(failed) > 0 {
		return fmt.Errorf("sections failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

var blockRE = regexp.MustCompile(`(?s)<!-- bench:([a-z0-9_-]+) -->\n(.*?)\n<!-- /bench:([a-z0-9_-]+) -->`)

// writeReport writes the header and every section: the new blocks, and for
// sections not run this time the blocks already in the file. Blocks of
// sections this command no longer has are dropped, so that no stale figure
// outlives its section.
func writeReport(path, header string, blocks map[string]string) error {
	if prev, err := os.ReadFile(path); err == nil {
		for _, m := range blockRE.FindAllStringSubmatch(string(prev), -1) {
			if _, ok := blocks[m[1]]; !ok && m[1] == m[3] {
				blocks[m[1]] = m[2]
			}
		}
	}
	var b strings.Builder
	b.WriteString(header)
	for _, s := range sections {
		if body, ok := blocks[s.key]; ok {
			fmt.Fprintf(&b, "\n<!-- bench:%s -->\n%s\n<!-- /bench:%s -->\n", s.key, strings.TrimSpace(body), s.key)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// check validates the flags and returns the sections to run.
func (c *config) check() ([]section, error) {
	for _, f := range strings.Split(c.levelsFlag, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 1 || n > 64 {
			return nil, fmt.Errorf("-callers %q: want numbers from 1 to 64", c.levelsFlag)
		}
		c.callers = append(c.callers, n)
	}
	if c.seedUsers < 1 || c.seedUsers > 1000 || c.seedRounds < 1 || c.rounds < 1 || c.seedLatency < 0 || c.trusts < 0 {
		return nil, errors.New("-seed-users wants 1 to 1000; -seed-rounds and -rounds at least 1; -seed-latency and -trusts not negative")
	}
	if c.duration < time.Second || c.duration%time.Second != 0 {
		return nil, fmt.Errorf("-duration %v: want whole seconds, at least one", c.duration)
	}
	if c.only == "" {
		return sections, nil
	}
	var chosen []section
	for _, k := range strings.Split(c.only, ",") {
		i := slices.IndexFunc(sections, func(s section) bool { return s.key == strings.TrimSpace(k) })
		if i < 0 {
			return nil, fmt.Errorf("-only %q: no such section (have %s)", k, sectionKeys())
		}
		chosen = append(chosen, sections[i])
	}
	return chosen, nil
}

func sectionKeys() string {
	keys := make([]string, len(sections))
	for i, s := range sections {
		keys[i] = s.key
	}
	return strings.Join(keys, ", ")
}
