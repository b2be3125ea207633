package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// whyDependency says why each direct dependency is in go.mod. A direct
// dependency missing here is reported as such: add its reason when adding
// it.
var whyDependency = map[string]string{
	"github.com/lib/pq":                                            "PostgreSQL driver the store is tested with first; `fliptest.NewDB`, the examples and this command open databases with it (the store itself takes any `database/sql` driver)",
	"github.com/jackc/pgx/v5":                                      "second PostgreSQL driver (`pgx/v5/stdlib`): the store and the reliability suite run on it to prove driver independence; measured here too",
	"github.com/jmoiron/sqlx":                                      "named by the design card: `fliptest.DB` embeds `*sqlx.DB`, and `*sqlx.Tx` / `*sqlx.Conn` are accepted callers' transactions",
	"github.com/google/uuid":                                       "ids of trusts, audit rows and user roles (the hub's schema keys everything by uuid)",
	"github.com/aws/smithy-go":                                     "`smithy.APIError`: the error codes the Cognito adapter classifies (throttling, user not found)",
	"github.com/aws/aws-sdk-go-v2":                                 "the AWS SDK core: the Cognito client's configuration, bounded retryer and `awshttp.ResponseError` (HTTP status of a failure)",
	"github.com/aws/aws-sdk-go-v2/credentials":                     "static credentials for the Cognito client against the emulator and in the examples",
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider": "Cognito `ListUsers`: the identity provider seeding looks the main users up in",
	"github.com/aws/aws-sdk-go-v2/config":                          "loads the AWS configuration (region, credentials chain) for the hub example's Cognito client",
}

type goModule struct {
	Path     string
	Version  string
	Main     bool
	Indirect bool
	Replace  *goModule
}

func runSupplyChain(ctx context.Context, e *env) (string, error) {
	var b strings.Builder
	var errs []error

	// Dependencies.
	mods, err := listModules(ctx)
	if err != nil {
		return "", err
	}
	users, err := importersByModule(ctx, mods)
	if err != nil {
		return "", err
	}
	b.WriteString("### Dependencies\n\n")
	b.WriteString("Direct dependencies, at the versions `go list -m all` resolves (go.mod pins them):\n\n")
	b.WriteString("| module | version | why | imported by |\n|---|---|---|---|\n")
	var direct, indirect []goModule
	for _, m := range mods {
		switch {
		case m.Main:
		case m.Indirect:
			indirect = append(indirect, m)
		default:
			direct = append(direct, m)
		}
	}
	for _, m := range direct {
		why := whyDependency[m.Path]
		if why == "" {
			why = "**no reason recorded** (add one to `whyDependency` in bench/supplychain.go)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.Path, version(m), why, users[m.Path])
	}
	fmt.Fprintf(&b, "\nIndirect, in the module graph through the above (%d; most are only their tests' dependencies and never built here): ", len(indirect))
	var parts []string
	for _, m := range indirect {
		parts = append(parts, fmt.Sprintf("`%s` %s", m.Path, version(m)))
	}
	b.WriteString(strings.Join(parts, ", "))
	b.WriteString(".\n\n")

	// Vulnerabilities.
	b.WriteString("### govulncheck\n\n")
	report, err := govulncheck(ctx, e)
	b.WriteString(report)
	if err != nil {
		errs = append(errs, err)
		fmt.Fprintf(&b, "\n**govulncheck could not run:** %s\n", oneLine(err.Error()))
	}
	return b.String(), errors.Join(errs...)
}

func version(m goModule) string {
	if m.Replace != nil {
		return fmt.Sprintf("%s ⇒ %s %s", m.Version, m.Replace.Path, m.Replace.Version)
	}
	return m.Version
}

func listModules(ctx context.Context) ([]goModule, error) {
	out, err := goCmd(ctx, "", nil, "list", "-m", "-json", "all")
	if err != nil {
		return nil, err
	}
	var mods []goModule
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m goModule
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list -m: %w", err)
		}
		mods = append(mods, m)
	}
	return mods, nil
}

// importersByModule says, per module, which of this module's packages
// import it (tests included, marked).
func importersByModule(ctx context.Context, mods []goModule) (map[string]string, error) {
	out, err := goCmd(ctx, "", nil, "list", "-f", `{{.ImportPath}}|{{join .Imports ","}}|{{join .TestImports ","}},{{join .XTestImports ","}}`, "./...")
	if err != nil {
		return nil, err
	}
	mainPath := ""
	for _, m := range mods {
		if m.Main {
			mainPath = m.Path
		}
	}
	// The longest module path that prefixes an import wins.
	var paths []string
	for _, m := range mods {
		if !m.Main {
			paths = append(paths, m.Path)
		}
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	owner := func(imp string) string {
		for _, p := range paths {
			if imp == p || strings.HasPrefix(imp, p+"/") {
				return p
			}
		}
		return ""
	}
	type use struct{ code, tests map[string]bool }
	uses := map[string]*use{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 3)
		if len(f) != 3 {
			continue
		}
		pkg := strings.TrimPrefix(strings.TrimPrefix(f[0], mainPath), "/")
		if pkg == "" {
			pkg = "flip"
		}
		mark := func(list string, test bool) {
			for _, imp := range strings.Split(list, ",") {
				o := owner(imp)
				if o == "" {
					continue
				}
				u := uses[o]
				if u == nil {
					u = &use{map[string]bool{}, map[string]bool{}}
					uses[o] = u
				}
				if test {
					u.tests[pkg] = true
				} else {
					u.code[pkg] = true
				}
			}
		}
		mark(f[1], false)
		mark(f[2], true)
	}
	res := map[string]string{}
	for mod, u := range uses {
		var parts []string
		for pkg := range u.code {
			parts = append(parts, "`"+pkg+"`")
		}
		for pkg := range u.tests {
			if !u.code[pkg] {
				parts = append(parts, "`"+pkg+"` (tests)")
			}
		}
		slices.Sort(parts)
		res[mod] = strings.Join(parts, ", ")
	}
	return res, nil
}

// govulncheck builds a local vulnerability database from the vulndb
// module's data/osv (the online database is not reachable from here) and
// scans the module with it.
func govulncheck(ctx context.Context, e *env) (string, error) {
	var b strings.Builder
	vulndb := "golang.org/x/vulndb@" + e.cfg.vulndbVersion
	scanner := "golang.org/x/vuln/cmd/govulncheck@" + e.cfg.govulncheckVersion
	tmp, err := os.MkdirTemp("", "flip-vulndb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// Outside this module (a temporary directory with no go.mod), so
	// nothing is added to go.mod.
	clean := []string{"GOFLAGS=-mod=mod", "GOWORK=off"}

	out, err := goCmd(ctx, tmp, clean, "mod", "download", "-json", vulndb)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", vulndb, err)
	}
	var dl struct{ Dir, Error string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		return "", fmt.Errorf("download %s: %v %s", vulndb, err, dl.Error)
	}
	osvDir := filepath.Join(dl.Dir, "data", "osv")
	entries, err := os.ReadDir(osvDir)
	if err != nil {
		return "", fmt.Errorf("%s has no data/osv: %w", vulndb, err)
	}
	dbDir := filepath.Join(tmp, "db")
	if _, err := goCmd(ctx, tmp, clean, "run", "golang.org/x/vulndb/cmd/indexdb@"+e.cfg.vulndbVersion, "-vulns", osvDir, "-out", dbDir); err != nil {
		return "", fmt.Errorf("build the database with indexdb: %w", err)
	}
	// In the repository, with its own flags: govulncheck only reads it.
	out, err = goCmd(ctx, "", nil, "run", scanner, "-db", "file://"+dbDir, "-format", "json", "./...")
	if err != nil {
		return "", fmt.Errorf("govulncheck: %w", err)
	}
	res, err := parseGovulncheck(out)
	if err != nil {
		return "", err
	}

	fmt.Fprintf(&b, "`govulncheck %s` (`go run %s`) with `-db file://<dir>`, where `<dir>` was built by `go run golang.org/x/vulndb/cmd/indexdb@%s` from the %d OSV reports in `%s`'s `data/osv` (data as of %s). ",
		res.scannerVersion, scanner, e.cfg.vulndbVersion, len(entries), vulndb, pseudoVersionTime(e.cfg.vulndbVersion))
	fmt.Fprintf(&b, "Scan level %s, %s, with the toolchain `go` resolves in this module (%s). Neither tool is added to go.mod.\n\n", res.scanLevel, "source mode, tests excluded", res.goVersion)
	levels := []string{"called", "imported", "required"}
	counts := map[string]int{}
	for _, v := range res.vulns {
		counts[v.level]++
	}
	fmt.Fprintf(&b, "Result: **%d vulnerabilities reachable from the code (called)**, %d in imported packages but not called, %d in required modules only.\n\n",
		counts["called"], counts["imported"], counts["required"])
	if len(res.vulns) > 0 {
		b.WriteString("| id | module | version | fixed in | found | summary |\n|---|---|---|---|---|---|\n")
		slices.SortFunc(res.vulns, func(x, y vuln) int {
			if c := slices.Index(levels, x.level) - slices.Index(levels, y.level); c != 0 {
				return c
			}
			return strings.Compare(x.id, y.id)
		})
		for _, v := range res.vulns {
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", v.id, v.module, v.version, v.fixed, v.level, strings.ReplaceAll(v.summary, "|", "\\|"))
		}
		if counts["called"] > 0 && onlyStdlib(res.vulns, "called") {
			b.WriteString("\nEvery vulnerability reachable from the code is in the standard library of the Go toolchain that ran the scan; they are fixed by building with the patched toolchain (a `toolchain` line in go.mod at the highest \"fixed in\" above, which the go command fetches through the module proxy), not by changing a dependency.")
			b.WriteString(toolchainNote(ctx, res))
			b.WriteString("\n")
		}
	}
	return b.String(), nil
}

// toolchainNote says whether go.mod's toolchain line already covers the
// standard library's fixes, and why the scan ran another toolchain.
func toolchainNote(ctx context.Context, res govulnResult) string {
	out, err := goCmd(ctx, "", nil, "mod", "edit", "-json")
	if err != nil {
		return ""
	}
	var mod struct{ Toolchain string }
	if json.Unmarshal(out, &mod) != nil || mod.Toolchain == "" || mod.Toolchain == res.goVersion {
		return ""
	}
	covers := true
	for _, v := range res.vulns {
		if v.module == "stdlib" && v.fixed != "" && compareGoVersions(strings.TrimPrefix(mod.Toolchain, "go"), strings.TrimPrefix(v.fixed, "v")) < 0 {
			covers = false
		}
	}
	gotoolchain := "unknown"
	if out, err := goCmd(ctx, "", nil, "env", "GOTOOLCHAIN"); err == nil {
		gotoolchain = strings.TrimSpace(string(out))
	}
	note := fmt.Sprintf(" go.mod already has `toolchain %s`, which %s; the scan ran %s because GOTOOLCHAIN is `%s` on this machine, so the go command uses the installed toolchain instead of fetching the one go.mod names.",
		mod.Toolchain, map[bool]string{true: "is at or above every \"fixed in\" of the standard library above", false: "is below some \"fixed in\" above"}[covers], res.goVersion, gotoolchain)
	return note
}

// compareGoVersions compares dotted release numbers ("1.26.9" < "1.26.11").
func compareGoVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

type vuln struct {
	id, module, version, fixed, level, summary string
}

type govulnResult struct {
	scannerVersion, goVersion, scanLevel string
	vulns                                []vuln
}

// parseGovulncheck reads govulncheck's JSON stream: one vulnerability per
// OSV id, at the deepest level any finding reached (called > imported >
// required).
func parseGovulncheck(out []byte) (govulnResult, error) {
	type frame struct{ Module, Version, Package, Function string }
	type msg struct {
		Config *struct {
			ScannerVersion string `json:"scanner_version"`
			GoVersion      string `json:"go_version"`
			ScanLevel      string `json:"scan_level"`
		} `json:"config"`
		OSV *struct {
			ID      string `json:"id"`
			Summary string `json:"summary"`
		} `json:"osv"`
		Finding *struct {
			OSV          string  `json:"osv"`
			FixedVersion string  `json:"fixed_version"`
			Trace        []frame `json:"trace"`
		} `json:"finding"`
	}
	var res govulnResult
	summaries := map[string]string{}
	byID := map[string]*vuln{}
	rank := map[string]int{"required": 0, "imported": 1, "called": 2}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m msg
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return res, fmt.Errorf("read govulncheck output: %w", err)
		}
		switch {
		case m.Config != nil:
			res.scannerVersion, res.goVersion, res.scanLevel = m.Config.ScannerVersion, m.Config.GoVersion, m.Config.ScanLevel
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			top := f.Trace[0]
			level := "required"
			switch {
			case top.Function != "":
				level = "called"
			case top.Package != "":
				level = "imported"
			}
			v := byID[f.OSV]
			if v == nil {
				v = &vuln{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion, level: level}
				byID[f.OSV] = v
			}
			if rank[level] > rank[v.level] {
				v.level = level
			}
		}
	}
	for id, v := range byID {
		v.summary = summaries[id]
		res.vulns = append(res.vulns, *v)
	}
	return res, nil
}

func onlyStdlib(vs []vuln, level string) bool {
	for _, v := range vs {
		if v.level == level && v.module != "stdlib" && v.module != "toolchain" {
			return false
		}
	}
	return true
}

var pseudoRE = regexp.MustCompile(`-(\d{14})-[0-9a-f]{12}$`)

// pseudoVersionTime returns the commit time in a pseudo-version.
func pseudoVersionTime(v string) string {
	m := pseudoRE.FindStringSubmatch(v)
	if m == nil {
		return "the version's release"
	}
	t, err := time.Parse("20060102150405", m[1])
	if err != nil {
		return "the version's release"
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// goCmd runs the go command in dir (the repository when "") with extra
// environment, returning its standard output.
func goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, tail(stderr.String(), 10))
	}
	return out, nil
}
