package plan

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestRegisteredRoundTrip: a registered result read back from its
// journaled (JSON) form gives templates the same data.
func TestRegisteredRoundTrip(t *testing.T) {
	r := Registered{
		Outcome: Outcome{Stdout: " a\n", RC: 3, OK: true, Data: map[string]any{"k": "v"}},
		Hosts: map[string]Outcome{
			"m": {Stdout: " a\n", RC: 3, OK: true, Data: map[string]any{"k": "v"}},
			"s": {Stderr: "boom", RC: 1, Error: "exit 1"},
		},
		Failed: []string{"s"}, Succeeded: []string{"m"},
	}
	b, err := json.Marshal(r.Map())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if got, want := RegisteredFromMap(m).Map(), r.Map(); !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%v\nwant\n%v", got, want)
	}
	if out := r.Map()["out"]; out != "a" {
		t.Errorf(".out = %q, want stdout trimmed", out)
	}
	if skipped := (Registered{Skipped: true}).Map(); skipped["skipped"] != true || len(skipped["failed"].([]string)) != 0 {
		t.Errorf("skipped = %v", skipped)
	}
}
