package plan

import (
	"maps"
	"strings"
)

// Outcome is one host's result of a step as later steps see it
// ({{ .reg.NAME.hosts.HOST }}, and an undo's {{ .result }}).
type Outcome struct {
	Stdout, Stderr string
	// RC is the command's exit status.
	RC      int
	OK      bool
	Changed bool
	// Data holds the kind's values (see steps.Kind.DataKeys).
	Data  map[string]any
	Error string
}

// Map is the outcome as template data: stdout, stderr, out (stdout
// trimmed), rc, ok, changed, data and error.
func (o Outcome) Map() map[string]any {
	data := map[string]any{}
	maps.Copy(data, o.Data)
	return map[string]any{
		"stdout": o.Stdout, "stderr": o.Stderr, "out": strings.TrimSpace(o.Stdout),
		"rc": o.RC, "ok": o.OK, "changed": o.Changed, "data": data, "error": o.Error,
	}
}

// Registered is a registered step result ({{ .reg.NAME }}): the first
// host's outcome at the top level, every host's under Hosts, and the
// failed and succeeded host lists.
type Registered struct {
	Outcome
	Hosts             map[string]Outcome
	Failed, Succeeded []string
	// Skipped is set when the step's when: was false.
	Skipped bool
}

// Map is the registered result as template data; it is also what the
// journal keeps (journal.Event.Registered).
func (r Registered) Map() map[string]any {
	m := r.Outcome.Map()
	per := make(map[string]any, len(r.Hosts))
	for h, o := range r.Hosts {
		per[h] = o.Map()
	}
	m["hosts"] = per
	m["failed"] = append([]string{}, r.Failed...)
	m["succeeded"] = append([]string{}, r.Succeeded...)
	m["skipped"] = r.Skipped
	return m
}

// RegisteredFromMap reads back a registered result from its Map form (a
// journal's, for resume); numbers may be JSON's float64.
func RegisteredFromMap(m map[string]any) Registered {
	r := Registered{Outcome: outcomeFromMap(m), Hosts: map[string]Outcome{}}
	if per, ok := m["hosts"].(map[string]any); ok {
		for h, v := range per {
			if hm, ok := v.(map[string]any); ok {
				r.Hosts[h] = outcomeFromMap(hm)
			}
		}
	}
	r.Failed, r.Succeeded = stringsOf(m["failed"]), stringsOf(m["succeeded"])
	r.Skipped, _ = m["skipped"].(bool)
	return r
}

func outcomeFromMap(m map[string]any) Outcome {
	o := Outcome{}
	o.Stdout, _ = m["stdout"].(string)
	o.Stderr, _ = m["stderr"].(string)
	o.Error, _ = m["error"].(string)
	o.OK, _ = m["ok"].(bool)
	o.Changed, _ = m["changed"].(bool)
	switch rc := m["rc"].(type) {
	case int:
		o.RC = rc
	case float64:
		o.RC = int(rc)
	}
	o.Data, _ = m["data"].(map[string]any)
	return o
}

func stringsOf(v any) []string {
	switch x := v.(type) {
	case []string:
		return append([]string{}, x...)
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return []string{}
}
