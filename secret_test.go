package flip_test

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/londonaicentre/flip"
)

// The tests below print a result with freshly minted keys every way a
// hub's code might, and search each output for the keys in every encoding
// a leak would take (see leakSearch). A key must reach the caller's code
// through Reveal and nowhere else.

// secretResult returns a result holding two freshly minted keys.
func secretResult(t *testing.T) flip.RegistrationResult {
	t.Helper()
	var keys [2]string
	for i, kind := range []flip.KeyKind{flip.TrustAPIKey, flip.InternalServiceKey} {
		k, err := flip.RandomKeyMinter{}.MintKey(kind)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	return flip.RegistrationResult{
		Trust:              flip.Trust{ID: uuid.New(), Name: "Secret Trust", Code: "ST"},
		KitSlot:            flip.KitSlot{Name: "Trust_001", Number: 1},
		APIKey:             flip.NewSecret(keys[0]),
		InternalServiceKey: flip.NewSecret(keys[1]),
		AddedKitSlots:      []string{"Trust_001"},
	}
}

// leakSearch finds a result's keys in printed text, whole or in part:
// any 12 consecutive characters of a key, as text, as hex (%x, %X, % x)
// or as the numbers of their bytes (%d, %o, %O, %b, %U, %c of a []byte).
type leakSearch struct{ pieces []string }

func newLeakSearch(res flip.RegistrationResult) leakSearch {
	encodings := []func(string) string{
		func(w string) string { return w },
		func(w string) string { return hex.EncodeToString([]byte(w)) },
		func(w string) string { return strings.ToUpper(hex.EncodeToString([]byte(w))) },
	}
	for _, verb := range []string{"% x", "% X", "%d", "%o", "%O", "%b", "%U", "%c"} {
		encodings = append(encodings, func(w string) string { return strings.Trim(fmt.Sprintf(verb, []byte(w)), "[]") })
	}
	var s leakSearch
	for _, key := range []string{res.APIKey.Reveal(), res.InternalServiceKey.Reveal()} {
		for i := 0; i+12 <= len(key); i++ {
			for _, enc := range encodings {
				s.pieces = append(s.pieces, enc(key[i:i+12]))
			}
		}
	}
	return s
}

// find returns the first piece of a key in out, or "".
func (s leakSearch) find(out string) string {
	for _, p := range s.pieces {
		if strings.Contains(out, p) {
			return p
		}
	}
	return ""
}

// check fails t if out holds a piece of a key.
func (s leakSearch) check(t *testing.T, what, out string) {
	t.Helper()
	if p := s.find(out); p != "" {
		t.Errorf("%s prints a key (%q…):\n%s", what, p[:4], out)
	}
}

// Holders of a result where fmt cannot call its methods: unexported
// fields, which fmt (and slog's text handler) print by reflection.
type (
	resultHolder struct {
		name string
		res  flip.RegistrationResult
	}
	nestedHolder struct{ inner *resultHolder }
	sliceHolder  struct{ list []flip.RegistrationResult }
	mapHolder    struct {
		m map[string]flip.RegistrationResult
	}
	anyHolder    struct{ v any }
	secretHolder struct{ key flip.Secret }
)

// printedValues are the values holding res that the tests print.
func printedValues(res flip.RegistrationResult) []struct {
	name string
	v    any
} {
	h := resultHolder{name: "h", res: res}
	return []struct {
		name string
		v    any
	}{
		{"result", res},
		{"pointer to result", &res},
		{"secret", res.APIKey},
		{"pointer to secret", &res.InternalServiceKey},
		{"result in an unexported field", h},
		{"pointer to a struct with the result unexported", &h},
		{"pointer to it in an unexported field", nestedHolder{inner: &h}},
		{"slice of results in an unexported field", sliceHolder{list: []flip.RegistrationResult{res, res}}},
		{"map of results in an unexported field", mapHolder{m: map[string]flip.RegistrationResult{"a": res}}},
		{"result in an unexported interface field", anyHolder{v: res}},
		{"secret in an unexported field", secretHolder{key: res.APIKey}},
		{"slice of results", []flip.RegistrationResult{res}},
		{"array of results", [1]flip.RegistrationResult{res}},
		{"map of results", map[string]flip.RegistrationResult{"a": res}},
		{"map of pointers to holders", map[string]*resultHolder{"a": &h}},
		{"slice of secrets", []flip.Secret{res.APIKey, res.InternalServiceKey}},
		{"reflect.Value of a holder", reflect.ValueOf(h)},
	}
}

// formats are every fmt verb, with the flags that change how fmt walks or
// encodes a value.
var formats = []string{
	"%v", "%+v", "%#v", "%s", "%q", "%+q", "%#q", "%x", "%X", "% x", "%#x", "%d", "%+d", "%t", "%o", "%O",
	"%b", "%e", "%E", "%f", "%F", "%g", "%G", "%c", "%U", "%#U", "%p", "%T", "%w", "%.8s", "%-80v", "%080d",
}

func TestSecret_NoFmtVerbPrintsAKey(t *testing.T) {
	t.Parallel()
	res := secretResult(t)
	leaks := newLeakSearch(res)
	for _, pv := range printedValues(res) {
		for _, f := range formats {
			leaks.check(t, fmt.Sprintf("Sprintf(%q) of a %s", f, pv.name), fmt.Sprintf(f, pv.v))
		}
		leaks.check(t, "Sprint of a "+pv.name, fmt.Sprint(pv.v))
		leaks.check(t, "Sprintln of a "+pv.name, fmt.Sprintln(pv.v, pv.v))
	}
	// The search sees a key where fmt would print one: a string in an
	// unexported field, under verbs that do not print strings.
	for _, f := range []string{"%v", "%d", "%x", "%X", "%U", "%.20s"} {
		if out := fmt.Sprintf(f, struct{ k string }{res.APIKey.Reveal()}); leaks.find(out) == "" {
			t.Errorf("the search misses a key printed with %s: %s", f, out)
		}
	}
}

func TestSecret_ErrorsDoNotCarryAKey(t *testing.T) {
	t.Parallel()
	res := secretResult(t)
	leaks := newLeakSearch(res)
	cause := errors.New("cause")
	wrap := "%w" // a variable: vet refuses %w of a value that is no error, fmt prints it
	for _, pv := range printedValues(res) {
		for _, err := range []error{
			fmt.Errorf("registered %v: %w", pv.v, cause),
			fmt.Errorf(wrap, pv.v),
			fmt.Errorf("%+v %#v %d: %w", pv.v, pv.v, pv.v, cause),
			errors.Join(cause, fmt.Errorf("%x", pv.v)),
		} {
			leaks.check(t, "an error made with a "+pv.name, err.Error())
			leaks.check(t, "%+v of an error made with a "+pv.name, fmt.Sprintf("%+v", err))
		}
	}
}

func TestSecret_SlogPrintsNoKey(t *testing.T) {
	t.Parallel()
	res := secretResult(t)
	leaks := newLeakSearch(res)
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		for _, pv := range printedValues(res) {
			var buf bytes.Buffer
			log := slog.New(newHandler(&buf))
			log.Info("registered", "v", pv.v)
			log.Info("registered", slog.Any("v", pv.v), slog.Group("g", slog.Any("v", pv.v)))
			log.With("v", pv.v).Info(fmt.Sprintf("registered %+v", pv.v))
			leaks.check(t, fmt.Sprintf("slog's %s handler with a %s", name, pv.name), buf.String())
		}
	}
}

func TestSecret_EncodersCarryNoKey(t *testing.T) {
	t.Parallel()
	res := secretResult(t)
	leaks := newLeakSearch(res)
	exported := struct {
		Res     flip.RegistrationResult
		Key     flip.Secret
		Keys    []flip.Secret
		ByName  map[string]flip.Secret
		Pointer *flip.Secret
	}{res, res.APIKey, []flip.Secret{res.APIKey, res.InternalServiceKey}, map[string]flip.Secret{"k": res.APIKey}, &res.InternalServiceKey}

	for _, pv := range append(printedValues(res), struct {
		name string
		v    any
	}{"struct with exported secrets", exported}) {
		if _, ok := pv.v.(reflect.Value); ok {
			continue // encoders do not take one
		}
		js, err := json.Marshal(pv.v)
		if err != nil {
			t.Errorf("json.Marshal of a %s: %v", pv.name, err)
		}
		leaks.check(t, "json.Marshal of a "+pv.name, string(js))
	}
	js, _ := json.Marshal(exported)
	if !strings.Contains(string(js), `"Key":"[REDACTED]"`) {
		t.Errorf("a Secret in JSON is not shown redacted: %s", js)
	}

	x, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"r"`
		Key     flip.Secret
		Res     flip.RegistrationResult
	}{Key: res.APIKey, Res: res})
	if err != nil || !strings.Contains(string(x), "<Key>[REDACTED]</Key>") {
		t.Errorf("xml.Marshal: %v, %s; want the key redacted", err, x)
	}
	leaks.check(t, "xml.Marshal", string(x))

	var g bytes.Buffer
	if err := gob.NewEncoder(&g).Encode(exported); err != nil {
		t.Errorf("gob: %v", err)
	}
	leaks.check(t, "gob", g.String())
}

// A deep printer (go-spew, a debugger's pretty-printer) reads unexported
// fields and follows pointers: no string it can reach may be a key.
func TestSecret_ReflectionCannotReachTheKey(t *testing.T) {
	t.Parallel()
	res := secretResult(t)
	leaks := newLeakSearch(res)
	for _, pv := range printedValues(res) {
		var reached []string
		walkStrings(reflect.ValueOf(pv.v), map[uintptr]bool{}, &reached)
		leaks.check(t, "reflection over a "+pv.name, strings.Join(reached, "\n"))
	}
}

// walkStrings appends every string value reachable from v, through
// unexported fields, pointers, interfaces, slices, arrays and maps.
func walkStrings(v reflect.Value, seen map[uintptr]bool, out *[]string) {
	switch v.Kind() {
	case reflect.String:
		*out = append(*out, v.String())
	case reflect.Pointer, reflect.Interface:
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			if seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
		}
		walkStrings(v.Elem(), seen, out)
	case reflect.Struct:
		for i := range v.NumField() {
			walkStrings(v.Field(i), seen, out)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			walkStrings(v.Index(i), seen, out)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			walkStrings(it.Key(), seen, out)
			walkStrings(it.Value(), seen, out)
		}
	}
}

func TestSecret_RevealReturnsTheKey(t *testing.T) {
	t.Parallel()
	if got := flip.NewSecret("flip_ak_example").Reveal(); got != "flip_ak_example" {
		t.Errorf("Reveal = %q, want the key given to NewSecret", got)
	}
	var zero flip.Secret
	if got := zero.Reveal(); got != "" {
		t.Errorf("the zero Secret reveals %q, want \"\"", got)
	}
	if s := flip.NewSecret("flip_ak_example"); fmt.Sprint(s) != "[REDACTED]" || fmt.Sprintf("%#v", s) != "flip.Secret([REDACTED])" {
		t.Errorf("a Secret prints %q and %q", fmt.Sprint(s), fmt.Sprintf("%#v", s))
	}
}

// An unrecovered panic is printed by the runtime, not by fmt: with a
// Secret or a result it uses their String method; with a struct holding
// one, only the struct's type and address.
func TestSecret_PanicPrintsNoKey(t *testing.T) {
	t.Parallel()
	if os.Getenv("FLIP_TEST_PANIC_KEY") != "" {
		res := flip.RegistrationResult{APIKey: flip.NewSecret(os.Getenv("FLIP_TEST_PANIC_KEY"))}
		switch os.Getenv("FLIP_TEST_PANIC_WITH") {
		case "secret":
			panic(res.APIKey)
		case "result":
			panic(res)
		case "holder":
			panic(resultHolder{res: res})
		}
		return
	}
	res := secretResult(t)
	leaks := newLeakSearch(res)
	for _, with := range []string{"secret", "result", "holder"} {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSecret_PanicPrintsNoKey$")
		cmd.Env = append(os.Environ(), "FLIP_TEST_PANIC_KEY="+res.APIKey.Reveal(), "FLIP_TEST_PANIC_WITH="+with)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "panic: ") {
			t.Fatalf("panic with a %s: %v, want the child to panic:\n%s", with, err, out)
		}
		leaks.check(t, "a panic with a "+with, string(out))
	}
}
