package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/londonaicentre/flip/fliptest"
	"github.com/londonaicentre/flip/internal/hubfixture"
)

// The exact key sets of a record: a new (or re-keyed) trust's, the same
// with --aes-key, and the skip record of an existing trust.
var (
	newKeys  = []string{"status", "trust_id", "trust_name", "trust_api_key", "trust_internal_service_key", "fl_kit_slot", "fl_kit_slot_number", "hub_shared"}
	aesKeys  = append(slices.Clone(newKeys), "trust_aes_key", "trust_aes_kid")
	skipKeys = []string{"status", "trust_id", "trust_name", "fl_kit_slot", "fl_kit_slot_number", "hub_shared"}
)

// slot returns the record's fl_kit_slot, "" when null.
func (r record) slot() string {
	if r.FLKitSlot == nil {
		return ""
	}
	return *r.FLKitSlot
}

// wantKeys fails the test unless raw has exactly the keys want.
func wantKeys(t *testing.T, raw map[string]any, want ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(raw))
	if w := slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
		t.Errorf("record keys = %q, want %q", got, w)
	}
}

// codeAndRegion returns the stored code and region of the trust with id.
func codeAndRegion(t *testing.T, db *fliptest.DB, id string) (code, region string) {
	t.Helper()
	if err := db.QueryRow(`SELECT coalesce(code, ''), coalesce(region, '') FROM trust WHERE id = $1`, id).Scan(&code, &region); err != nil {
		t.Fatal(err)
	}
	return code, region
}

// hubSchemas are the hub's own schema as the hub leaves it and with flip's
// migrations on top: the databases the deploy command meets.
var hubSchemas = map[string][]fliptest.Option{
	"hub schema":          {fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0)},
	"hub schema migrated": {fliptest.FromSQL(hubfixture.Schema)},
}

// forHubSchemas runs test on a new database of each of hubSchemas.
func forHubSchemas(t *testing.T, test func(t *testing.T, db *fliptest.DB)) {
	for name, opts := range hubSchemas {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, fliptest.NewDB(t, opts...))
		})
	}
}

// env is a getenv over a map; it records every name asked for.
type env struct {
	mu    sync.Mutex
	vars  map[string]string
	asked map[string]bool
}

func newEnv(vars map[string]string) *env { return &env{vars: vars, asked: map[string]bool{}} }

func (e *env) getenv(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.asked[name] = true
	return e.vars[name]
}

// checkAESKey checks a record's payload key and kid and that the key is
// stored nowhere and logged nowhere.
func checkAESKey(t *testing.T, db *fliptest.DB, rec record, stderr string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(rec.TrustAESKey)
	if len(rec.TrustAESKey) != 44 || err != nil || len(raw) != 32 {
		t.Errorf("trust_aes_key is %d characters (%v), %d bytes; want 44 of padded base64, 32 bytes", len(rec.TrustAESKey), err, len(raw))
	}
	if rec.TrustAESKid != "trust-"+rec.TrustID {
		t.Errorf("trust_aes_kid = %q, want trust-%s", rec.TrustAESKid, rec.TrustID)
	}
	if strings.Contains(fliptest.DumpTables(t, db), rec.TrustAESKey) {
		t.Error("the AES key is stored")
	}
	noSecrets(t, "stderr", stderr, rec.TrustAESKey)
}

func TestKitRecordKeySets(t *testing.T) {
	t.Parallel()
	forHubSchemas(t, func(t *testing.T, db *fliptest.DB) {
		fliptest.AddSlots(t, db, "Trust_001..Trust_003")

		r := register(t, db, "--name", "Plain Trust", "--code", "PLN")
		plain, raw := wantOne(t, r)
		wantKeys(t, raw, newKeys...)
		if plain.Status != "registered" || plain.slot() != "Trust_001" || *plain.FLKitSlotNumber != 1 {
			t.Errorf("record = %+v", plain)
		}

		r = register(t, db, "--name", "Sealed Trust", "--code", "SLD", "--aes-key")
		sealed, raw := wantOne(t, r)
		wantKeys(t, raw, aesKeys...)
		checkAESKey(t, db, sealed, r.stderr)
		secrets := []string{plain.TrustAPIKey, plain.TrustInternalServiceKey, sealed.TrustAPIKey, sealed.TrustInternalServiceKey, sealed.TrustAESKey}

		// Skip records are metadata only, --aes-key or not.
		for _, args := range [][]string{{"--name", "Sealed Trust", "--code", "SLD"}, {"--name", "Sealed Trust", "--code", "SLD", "--aes-key"}} {
			r = register(t, db, args...)
			skip, raw := wantOne(t, r)
			wantKeys(t, raw, skipKeys...)
			if skip.Status != "existing" || skip.TrustID != sealed.TrustID || skip.slot() != "Trust_002" || *skip.FLKitSlotNumber != 2 {
				t.Errorf("skip record = %+v", skip)
			}
			noSecrets(t, "skip record", r.stdout, secrets...)
			noSecrets(t, "stderr", r.stderr, secrets...)
		}

		// A rotation prints a full kit, with a new AES key when asked.
		r = register(t, db, "--name", "Plain Trust", "--rotate")
		rotated, raw := wantOne(t, r)
		wantKeys(t, raw, newKeys...)
		if rotated.Status != "rotated" || rotated.TrustID != plain.TrustID || rotated.slot() != "Trust_001" || rotated.TrustAPIKey == plain.TrustAPIKey {
			t.Errorf("rotated record = %+v", rotated)
		}
		r = register(t, db, "--name", "Sealed Trust", "--rotate", "--aes-key")
		resealed, raw := wantOne(t, r)
		wantKeys(t, raw, aesKeys...)
		checkAESKey(t, db, resealed, r.stderr)
		if resealed.TrustAESKey == sealed.TrustAESKey || resealed.TrustAESKid != sealed.TrustAESKid {
			t.Errorf("rotation: key reused %v, kid %q (was %q)", resealed.TrustAESKey == sealed.TrustAESKey, resealed.TrustAESKid, sealed.TrustAESKid)
		}
	})
}

// hubVars is a setting of the hub_shared variables: some set, two set to
// "" (which counts as unset), the rest unset.
var hubVars = map[string]string{
	"CENTRAL_HUB_API_URL":  "https://hub.example.com/api",
	"TRUST_API_KEY_HEADER": "X-Trust-Api-Key",
	"FL_BACKEND":           "flower",
	"DOCKER_TAG":           "v1.2.3",
	"FL_SERVER_PORT":       "8080",
	"AES_KEY_BASE64":       "c2hhcmVkLWh1Yi1hZXMta2V5LWZvci10ZXN0cy0xMjM=",
	"DOCKER_REGISTRY":      "",
	"NLB_SUBDOMAIN":        "",
}

// unrelatedVars are environment variables that must never reach a record,
// each with a value that is easy to find in one.
var unrelatedVars = map[string]string{
	"AWS_SECRET_ACCESS_KEY": "unrelated-aws-secret-9f8e7d",
	"AWS_ACCESS_KEY_ID":     "unrelated-aws-id-1a2b3c",
	"PGPASSWORD":            "unrelated-pg-password-4d5e",
	"HOME":                  "/unrelated/home/dir",
	"PATH":                  "/unrelated/bin/path",
	"SECRET_TOKEN":          "unrelated-token-6f7a",
	"AES_KEY_BASE64_OLD":    "unrelated-old-aes-8b9c",
	"docker_tag":            "unrelated-lowercase-tag",
	"HUB_SHARED":            "unrelated-hub-shared-0d1e",
	"FLIP_MAIN_USERS":       "unrelated-main-users-2f3a",
	"TRUST_AES_KEY":         "unrelated-trust-aes-4b5c",
}

func TestHubShared(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0))
	fliptest.AddSlots(t, db, "Trust_001..Trust_003")
	vars := maps.Clone(unrelatedVars)
	maps.Copy(vars, hubVars)
	// The database URL comes from the environment, with a password in it
	// the server ignores (trust authentication), so it must not show.
	const password = "unrelated-db-password-5e6f"
	vars["DATABASE_URL"] = strings.Replace(db.URL, "postgres://postgres@", "postgres://postgres:"+password+"@", 1)
	if vars["DATABASE_URL"] == db.URL {
		t.Fatalf("cannot put a password into %s", db.URL)
	}
	want := map[string]string{}
	for k, v := range hubVars {
		if v != "" {
			want[k] = v
		}
	}
	e := newEnv(vars)
	dir := t.TempDir()

	// A record without the trust's keys is safe to log: it leaves out the
	// hub-wide AES key too.
	wantPublic := maps.Clone(want)
	delete(wantPublic, "AES_KEY_BASE64")

	var outputs []string
	check := func(what string, r result, hub map[string]string) {
		t.Helper()
		if !maps.Equal(hub, want) {
			t.Errorf("%s: hub_shared = %v, want %v", what, hub, want)
		}
		outputs = append(outputs, r.stdout, r.stderr)
	}
	r := runCmd(t, e.getenv, "--name", "Env Trust", "--code", "ENV", "--aes-key")
	rec, _ := wantOne(t, r)
	check("new", r, rec.HubShared)
	r = runCmd(t, e.getenv, "--name", "Env Trust", "--code", "ENV")
	rec, _ = wantOne(t, r)
	if !maps.Equal(rec.HubShared, wantPublic) {
		t.Errorf("skip: hub_shared = %v, want %v", rec.HubShared, wantPublic)
	}
	noSecrets(t, "skip record", r.stdout+r.stderr, hubVars["AES_KEY_BASE64"])
	outputs = append(outputs, r.stdout, r.stderr)
	r = runCmd(t, e.getenv, "--name", "Env Trust", "--rotate", "--aes-key")
	rec, _ = wantOne(t, r)
	check("rotate", r, rec.HubShared)
	path := filepath.Join(dir, "kit.json")
	r = runCmd(t, e.getenv, "--name", "File Trust", "--code", "FILE", "--out-file", path)
	file, err := os.ReadFile(path)
	if r.code != exitOK || err != nil {
		t.Fatalf("--out-file: exit %d, %v\nstderr: %s", r.code, err, r.stderr)
	}
	recs, _ := records(t, result{stdout: string(file)})
	check("out-file", r, recs[0].HubShared)
	outputs = append(outputs, string(file))
	for _, name := range []string{"Planned Trust", "Env Trust"} { // would register, would skip
		r = runCmd(t, e.getenv, "--name", name, "--code", "PLAN", "--plan")
		if r.code != exitOK && name == "Planned Trust" {
			t.Fatalf("--plan: exit %d\nstderr: %s", r.code, r.stderr)
		}
		noSecrets(t, "plan", r.stdout+r.stderr, hubVars["AES_KEY_BASE64"])
		outputs = append(outputs, r.stdout, r.stderr)
	}

	for _, out := range outputs {
		for name, v := range unrelatedVars {
			if strings.Contains(out, v) {
				t.Errorf("the value of %s reached the output:\n%s", name, out)
			}
		}
		noSecrets(t, "output", out, password)
	}
	// What is never read cannot leak: the command asks for the database
	// URL, the slot-name source and hub_shared's variables, nothing else.
	allowed := append([]string{"DATABASE_URL", envSlotNames}, hubSharedVars...)
	for name := range e.asked {
		if !slices.Contains(allowed, name) {
			t.Errorf("the command read %s from the environment", name)
		}
	}
}

// Nothing set: hub_shared is an empty object, not null or absent.
func TestHubSharedEmpty(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t)
	fliptest.AddSlots(t, db, "Trust_001")
	rec, raw := wantOne(t, register(t, db, "--name", "Bare", "--code", "BARE"))
	if shared, ok := raw["hub_shared"].(map[string]any); !ok || len(shared) != 0 || len(rec.HubShared) != 0 {
		t.Errorf("hub_shared = %#v, want {}", raw["hub_shared"])
	}
}

// dirNames lists dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutFile(t *testing.T) {
	t.Parallel()
	forHubSchemas(t, func(t *testing.T, db *fliptest.DB) {
		fliptest.AddSlots(t, db, "Trust_001")
		dir := t.TempDir()
		path := filepath.Join(dir, "kit.json")

		r := register(t, db, "--name", "Filed Trust", "--code", "FILED", "--aes-key", "--out-file", path)
		if r.code != exitOK || r.stdout != path+"\n" {
			t.Fatalf("exit %d, stdout %q, want the path\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("kit file: %v, mode %v; want 0600", err, fi.Mode())
		}
		data, _ := os.ReadFile(path)
		rec, raw := wantOne(t, result{stdout: string(data)})
		wantKeys(t, raw, aesKeys...)
		if rec.Status != "registered" || rec.slot() != "Trust_001" {
			t.Errorf("record = %+v", rec)
		}
		noSecrets(t, "stderr", r.stderr, rec.TrustAPIKey, rec.TrustInternalServiceKey, rec.TrustAESKey)
		if names := dirNames(t, dir); !slices.Equal(names, []string{"kit.json"}) {
			t.Errorf("directory holds %q, want only kit.json", names)
		}

		// A re-run keeps the file: it holds the keys, and the skip record
		// holds none.
		before := data
		r = register(t, db, "--name", "Filed Trust", "--code", "FILED", "--out-file", path)
		if after, _ := os.ReadFile(path); r.code != exitOK || r.stdout != path+"\n" || string(after) != string(before) {
			t.Errorf("re-run: exit %d, stdout %q, file changed %v; want 0, the path, the kit as it was", r.code, r.stdout, string(after) != string(before))
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("kit file after re-run: %v, mode %v", err, fi.Mode())
		}

		// Another trust's kit may not go over it: refused before
		// anything is registered, the file as it was.
		r = register(t, db, "--name", "Unlucky Trust", "--code", "UNL", "--out-file", path)
		if r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, "holds the keys of the trust") {
			t.Errorf("other trust's run: exit %d, stdout %q; want 1 and nothing\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if after, _ := os.ReadFile(path); string(after) != string(before) {
			t.Error("a refused run changed the kit file")
		}
		// A run that fails after the temporary file exists (the pool is
		// empty now) leaves nothing behind.
		fresh := filepath.Join(dir, "fresh.json")
		r = register(t, db, "--name", "Unlucky Trust", "--code", "UNL", "--out-file", fresh)
		if r.code != exitFail || r.stdout != "" {
			t.Errorf("failed run: exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{"kit.json"}) {
			t.Errorf("after failed runs the directory holds %q, want only kit.json", names)
		}
	})
}

func TestOutFileRefused(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0))
	fliptest.AddSlots(t, db, "Trust_001")
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.json")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		link:                                    "symbolic link",
		dangling:                                "symbolic link",
		sub:                                     "directory",
		filepath.Join(dir, "missing", "k.json"): "cannot create",
	} {
		r := register(t, db, "--name", "Refused", "--code", "REF", "--out-file", path)
		if r.code != exitFail || r.stdout != "" || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stdout %q, stderr lacks %q:\n%s", path, r.code, r.stdout, want, r.stderr)
		}
	}
	if n := countTrusts(t, db); n != 0 {
		t.Errorf("%d trusts registered, want 0: the path was checked too late", n)
	}
	if data, _ := os.ReadFile(target); string(data) != "keep me" {
		t.Errorf("the symlink's target now holds %q", data)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"dangling.json", "link.json", "sub", "target"}) {
		t.Errorf("directory holds %q", names)
	}
}

// Before the commit (stage), a write that fails halfway or a path that
// became a directory leaves no file at the path, no temporary file, and an
// old file as it was: nothing has been committed.
func TestKitFileStageFailure(t *testing.T) {
	t.Parallel()
	errDiskFull := errors.New("disk full")
	for name, tc := range map[string]struct {
		old    bool // a kit file is there already
		breaks func(k *kitFile)
	}{
		"write fails halfway": {breaks: func(k *kitFile) {
			k.write = func(f *os.File, p []byte) (int, error) {
				n, _ := f.Write(p[:len(p)/2])
				return n, errDiskFull
			}
		}},
		"write fails over an old file": {old: true, breaks: func(k *kitFile) {
			k.write = func(f *os.File, p []byte) (int, error) { return 0, errDiskFull }
		}},
		"directory sync fails": {breaks: func(k *kitFile) {
			k.syncDir = func(string) error { return errDiskFull }
		}},
		"path becomes a directory": {breaks: func(k *kitFile) {
			if err := os.Mkdir(k.path, 0o700); err != nil {
				panic(err)
			}
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "kit.json")
			if tc.old {
				if err := os.WriteFile(path, []byte("old kit"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			k, err := openKitFile(path, "Trust")
			if err != nil {
				t.Fatal(err)
			}
			tc.breaks(k)
			if err := k.stage([]byte(`[{"trust_api_key":"flip_ak_secret"}]`)); err == nil {
				t.Fatal("stage succeeded")
			}
			k.discard() // as run's deferred call does; must be harmless
			names := dirNames(t, dir)
			switch {
			case tc.old:
				if data, _ := os.ReadFile(path); string(data) != "old kit" || !slices.Equal(names, []string{"kit.json"}) {
					t.Errorf("directory %q, kit.json %q; want the old kit only", names, data)
				}
			case name == "path becomes a directory":
				if !slices.Equal(names, []string{"kit.json"}) {
					t.Errorf("directory holds %q, want the directory kit.json only", names)
				}
			default:
				if len(names) != 0 {
					t.Errorf("directory holds %q, want nothing", names)
				}
			}
		})
	}
}

// After the commit (install), a kit that cannot be put in place, or whose
// rename cannot be synced, is never removed, and install says where it is.
func TestKitFileInstallFailure(t *testing.T) {
	t.Parallel()
	const kit = `[{"trust_api_key":"flip_ak_secret"}]`
	for name, tc := range map[string]struct {
		breaks func(k *kitFile)
		atPath bool // the kit ends up at the path all the same
	}{
		"path becomes a directory": {breaks: func(k *kitFile) {
			if err := os.MkdirAll(filepath.Join(k.path, "in-the-way"), 0o700); err != nil {
				panic(err)
			}
		}},
		"directory sync fails": {atPath: true, breaks: func(k *kitFile) {
			k.syncDir = func(string) error { return errors.New("I/O error") }
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "kit.json")
			k, err := openKitFile(path, "Trust")
			if err != nil {
				t.Fatal(err)
			}
			if err := k.stage([]byte(kit)); err != nil {
				t.Fatal(err)
			}
			k.keep() // committed
			tc.breaks(k)
			at, err := k.install()
			if err == nil {
				t.Fatal("install succeeded")
			}
			k.discard() // as run's deferred call does; must leave the kit
			want := path
			if !tc.atPath {
				want = k.tmpName
			}
			if data, _ := os.ReadFile(at); at != want || string(data) != kit {
				t.Errorf("install says the kit is at %s, holding %q; want it at %s", at, data, want)
			}
		})
	}
}

// planOf decodes a --plan answer, refusing any field a plan does not have
// (a key, say).
func planOf(t *testing.T, r result) plan {
	t.Helper()
	var p plan
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("stdout %q is not a plan: %v\nstderr: %s", r.stdout, err, r.stderr)
	}
	return p
}

func TestPlan(t *testing.T) {
	t.Parallel()
	forHubSchemas(t, func(t *testing.T, db *fliptest.DB) {
		fliptest.AddSlots(t, db, "Trust_002..Trust_003")
		existing, _ := wantOne(t, register(t, db, "--name", "Standing Trust", "--code", "STAND", "--aes-key"))
		secrets := []string{existing.TrustAPIKey, existing.TrustInternalServiceKey, existing.TrustAESKey}

		// plan runs --plan with args, checks that it wrote nothing and
		// exited with want, and returns the plan.
		plan := func(want int, args ...string) plan {
			t.Helper()
			before := fliptest.DumpTables(t, db)
			r := register(t, db, append(args, "--plan")...)
			if fliptest.DumpTables(t, db) != before {
				t.Errorf("--plan %q changed the database", args)
			}
			if r.code != want {
				t.Errorf("--plan %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, want, r.stdout, r.stderr)
			}
			noSecrets(t, "plan", r.stdout, secrets...)
			noSecrets(t, "stderr", r.stderr, secrets...)
			return planOf(t, r)
		}

		p := plan(exitOK, "--name", " New  Trust ", "--code", "NEW", "--aes-key")
		if p.Action != "register" || p.TrustName != "New Trust" || p.TrustExists || p.TrustID != "" ||
			p.FLKitSlot == nil || *p.FLKitSlot != "Trust_003" || *p.FLKitSlotNumber != 3 || p.SlotsFree != 1 || p.SlotsTotal != 2 {
			t.Errorf("would-register plan = %+v", p)
		}
		p = plan(exitOK, "--name", "Another Trust", "--code", "ANO", "--add-slots", "Trust_001..Trust_004")
		if p.Action != "register" || *p.FLKitSlot != "Trust_001" || p.SlotsAdded != 2 || p.SlotsFree != 3 || p.SlotsTotal != 4 {
			t.Errorf("plan with --add-slots = %+v", p)
		}
		p = plan(exitOK, "--name", "Standing Trust", "--code", "STAND")
		if p.Action != "skip" || !p.TrustExists || p.TrustID != existing.TrustID || *p.FLKitSlot != "Trust_002" {
			t.Errorf("would-skip plan = %+v", p)
		}
		p = plan(exitOK, "--name", "Standing Trust", "--rotate", "--aes-key")
		if p.Action != "rotate" || p.TrustID != existing.TrustID || *p.FLKitSlot != "Trust_002" {
			t.Errorf("would-rotate plan = %+v", p)
		}
		p = plan(exitFail, "--name", "Standing Trust", "--code", "OTHER", "--rotate")
		if p.Action != "fail" || !p.TrustExists || !strings.Contains(p.Error, "nothing rotated") {
			t.Errorf("would-fail rotation plan = %+v", p)
		}
		p = plan(exitFail, "--name", "Nowhere", "--code", "NOW", "--require-existing")
		if p.Action != "fail" || p.TrustExists || !strings.Contains(p.Error, "require-existing") {
			t.Errorf("would-fail plan = %+v", p)
		}

		// Fill the pool, then a registration would fail.
		wantOne(t, register(t, db, "--name", "Last Trust", "--code", "LAST"))
		p = plan(exitFail, "--name", "New Trust", "--code", "NEW")
		if p.Action != "fail" || p.SlotsFree != 0 || p.FLKitSlot != nil || !strings.Contains(p.Error, "no FL kit slots") {
			t.Errorf("would-fail plan = %+v", p)
		}
	})
}

func TestPlanUsage(t *testing.T) {
	t.Parallel()
	const noDB = "postgres://postgres@127.0.0.1:1/none?sslmode=disable"
	for name, args := range map[string][]string{
		"plan without name":     {"--plan", "--add-slots", "Trust_001"},
		"plan with migrate":     {"--plan", "--migrate", "--name", "A", "--code", "A"},
		"plan with out-file":    {"--plan", "--out-file", "k.json", "--name", "A", "--code", "A"},
		"out-file without name": {"--out-file", "k.json", "--migrate"},
		"aes-key without name":  {"--aes-key", "--migrate"},
		"print and plan":        {"--print-migrations", "--plan"},
	} {
		r := runCmd(t, noEnv, append(args, "--database-url", noDB)...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want 2 and nothing", name, r.code, r.stdout)
		}
	}
	// A database that does not answer: the plan says the run would fail.
	r := runCmd(t, noEnv, "--plan", "--name", "A", "--code", "A", "--database-url", noDB)
	if p := planOf(t, r); r.code != exitFail || p.Action != "fail" || !strings.Contains(p.Error, "connection refused") {
		t.Errorf("exit %d, plan %+v", r.code, p)
	}
}

// The built command, in a real environment: the kit goes to the file,
// stdout carries only its path, and only hub_shared's variables reach it.
func TestBinaryKitFile(t *testing.T) {
	t.Parallel()
	db := fliptest.NewDB(t, fliptest.FromSQL(hubfixture.Schema), fliptest.AtVersion(0))
	var environ []string
	for k, v := range unrelatedVars {
		if k != "PATH" && k != "HOME" { // the go tool and the test still need theirs
			environ = append(environ, k+"="+v)
		}
	}
	for k, v := range hubVars {
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, "DATABASE_URL="+db.URL, envSlotNames+`=["Trust_001"]`)
	path := filepath.Join(t.TempDir(), "kit.json")

	r := execBinary(t, environ, "--name", "Binary Kit", "--code", "BKIT", "--aes-key", "--out-file", path)
	if r.code != exitOK || r.stdout != path+"\n" {
		t.Fatalf("exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kit file: %v, mode %v", err, fi.Mode())
	}
	data, _ := os.ReadFile(path)
	rec, raw := wantOne(t, result{stdout: string(data)})
	wantKeys(t, raw, aesKeys...)
	if rec.slot() != "Trust_001" || rec.HubShared["DOCKER_TAG"] != "v1.2.3" || len(rec.HubShared) != 6 {
		t.Errorf("record = %+v", rec)
	}
	noSecrets(t, "stderr", r.stderr, rec.TrustAPIKey, rec.TrustInternalServiceKey, rec.TrustAESKey)
	for name, v := range unrelatedVars {
		if strings.Contains(string(data), v) {
			t.Errorf("the value of %s reached the kit", name)
		}
	}
}
