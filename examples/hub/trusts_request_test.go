package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// A body whose keys a person, a proxy's filter or another JSON parser
// reads one way must not register another trust: a repeated key (which
// encoding/json resolves to its last value) and a key that is only a case
// variant of a field (which encoding/json matches) are refused with 400,
// in either order, and nothing is written. Each case registers a trust
// without the check (there is a free slot).
func TestRegisterTrust_RepeatedOrCaseVariantKeysAre400(t *testing.T) {
	t.Parallel()
	h := newHub(t, "Trust_001")
	t.Run("cases", func(t *testing.T) {
		for name, c := range map[string]struct{ body, msg string }{
			"name twice":                 {`{"name":"A","name":"B","code":"C"}`, `key "name" appears more than once`},
			"code twice":                 {`{"name":"A","code":"C","code":"D"}`, `key "code" appears more than once`},
			"region twice":               {`{"name":"A","code":"C","region":"R","region":"S"}`, `key "region" appears more than once`},
			"name twice, same value":     {`{"name":"A","code":"C","name":"A"}`, `key "name" appears more than once`},
			"name twice, once escaped":   {`{"name":"A","code":"C","n\u0061me":"B"}`, `key "name" appears more than once`},
			"name twice, null last":      {`{"name":"A","code":"C","name":null}`, `key "name" appears more than once`},
			"NAME":                       {`{"NAME":"A","code":"C"}`, `unknown field "NAME"`},
			"Name":                       {`{"Name":"A","code":"C"}`, `unknown field "Name"`},
			"nAmE":                       {`{"nAmE":"A","code":"C"}`, `unknown field "nAmE"`},
			"CODE":                       {`{"name":"A","CODE":"C"}`, `unknown field "CODE"`},
			"Region":                     {`{"name":"A","code":"C","Region":"R"}`, `unknown field "Region"`},
			"NAME escaped":               {`{"\u004eAME":"A","code":"C"}`, `unknown field "NAME"`},
			"name then NAME":             {`{"name":"A","NAME":"B","code":"C"}`, `unknown field "NAME"`},
			"NAME then name":             {`{"NAME":"B","name":"A","code":"C"}`, `unknown field "NAME"`},
			"code then Code, then name":  {`{"code":"C","Code":"D","name":"A"}`, `unknown field "Code"`},
			"region, REGION, same value": {`{"name":"A","code":"C","region":"R","REGION":"R"}`, `unknown field "REGION"`},
		} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := postTrust(t, h.srv.URL, c.body)
				wantStatus(t, r, http.StatusBadRequest)
				if msg, _ := r.body["error"].(string); !strings.Contains(msg, c.msg) {
					t.Errorf("error message = %q, want it to say %s", msg, c.msg)
				}
			})
		}
	})
	wantNothingWritten(t, h.db)
}

// checkKeys at every depth, and for field names that Unicode case folding
// matches with a character outside ASCII: encoding/json matches the
// Kelvin sign K (U+212A) to k and the long s ſ (U+017F) to s. None of
// POST /admin/trusts' fields has a k or an s, so this runs the check on
// fields that do.
func TestCheckKeys(t *testing.T) {
	t.Parallel()
	fields := []string{"kind", "status"}
	var folded struct {
		Kind   string `json:"kind"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(`{"\u212aind":"K","\u017ftatus":"S"}`), &folded); err != nil || folded.Kind != "K" || folded.Status != "S" {
		t.Fatalf("encoding/json no longer folds the Kelvin sign and the long s (%v, %+v): this test's premise is gone", err, folded)
	}
	for body, want := range map[string]string{
		`{"kind":"a","status":"b"}`:                           "",
		`{"k\u0069nd":"a"}`:                                   "", // kind, escaped
		`{"kind":{"x":1,"y":[{"x":1},{"x":2}]}}`:              "", // the same key in different objects
		`{"\u212aind":"a"}`:                                   `unknown field "\u212aind"`,
		`{"kind":"a","\u212aind":"b"}`:                        `unknown field "\u212aind"`,
		`{"\u212aind":"b","kind":"a"}`:                        `unknown field "\u212aind"`,
		`{"\u017ftatus":"a"}`:                                 `unknown field "\u017ftatus"`,
		`{"status":"a","\u017ftatus":"b"}`:                    `unknown field "\u017ftatus"`,
		`{"STATUS":"a"}`:                                      `unknown field "STATUS"`,
		`{"kind":"a","kind":"b"}`:                             `key "kind" appears more than once`,
		`{"kind":{"x":1,"x":2}}`:                              `key "x" appears more than once`,
		`{"kind":[{"x":1},{"y":{"z":[],"z":null}}]}`:          `key "z" appears more than once`,
		`{"status":"a","kind":{"X":1,"x":2,"x":3},"kind":""}`: `key "x" appears more than once`,
	} {
		err := checkKeys([]byte(body), fields)
		switch {
		case want == "" && err != nil:
			t.Errorf("checkKeys(%s) = %v, want nil", body, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("checkKeys(%s) = %v, want %s", body, err, want)
		}
	}
}
