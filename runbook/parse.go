package runbook

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/inventory"
	"go.yaml.in/yaml/v3"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Load reads and parses a runbook file. It checks structure only; Validate
// checks it against an inventory.
func Load(path string) (*Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook: %w", err)
	}
	return Parse(path, data)
}

// Parse parses runbook text. Every structural problem is reported with its
// position in one *diag.List.
func Parse(file string, data []byte) (*Runbook, error) {
	rb := &Runbook{File: file, Source: data, Vars: map[string]any{}}
	errs := &diag.List{File: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			errs.AtPos(1, 1, "runbook is empty")
			return nil, errs.Err()
		}
		return nil, diag.FromYAML(file, data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		errs.At(root, "runbook must be a mapping with name, description, vars and steps")
		return nil, errs.Err()
	}
	var stepsNode *yaml.Node
	dupKeys(errs, root)
	eachKey(root, func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			rb.Name = scalar(errs, v, "name")
		case "description":
			rb.Description = scalar(errs, v, "description")
		case "vars":
			parseVars(errs, v, rb)
		case "steps":
			stepsNode = v
		default:
			errs.At(k, "unknown key %q (want name, description, vars, steps)", k.Value)
		}
	})
	if rb.Name == "" {
		errs.At(root, "runbook needs a name")
	}
	switch {
	case stepsNode == nil:
		errs.At(root, "runbook needs steps")
	case stepsNode.Kind != yaml.SequenceNode:
		errs.At(stepsNode, "steps must be a list")
	case len(stepsNode.Content) == 0:
		errs.At(stepsNode, "steps is empty")
	default:
		for i, n := range stepsNode.Content {
			if st := parseStep(errs, n, i); st != nil {
				rb.Steps = append(rb.Steps, st)
			}
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return rb, nil
}

func eachKey(m *yaml.Node, fn func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		fn(m.Content[i], m.Content[i+1])
	}
}

// dupKeys reports keys given twice in mapping m: the YAML decoder keeps the
// last silently, so a second `steps:` would replace the first.
func dupKeys(errs *diag.List, m *yaml.Node) {
	seen := map[string]int{}
	eachKey(m, func(k, _ *yaml.Node) {
		if line, dup := seen[k.Value]; dup {
			errs.At(k, "key %q already given on line %d", k.Value, line)
			return
		}
		seen[k.Value] = k.Line
	})
}

func scalar(errs *diag.List, v *yaml.Node, key string) string {
	if v.Kind != yaml.ScalarNode {
		errs.At(v, "%s must be a string", key)
		return ""
	}
	return v.Value
}

func parseVars(errs *diag.List, v *yaml.Node, rb *Runbook) {
	if v.Kind != yaml.MappingNode {
		errs.At(v, "vars must be a mapping of name: value")
		return
	}
	eachKey(v, func(k, val *yaml.Node) {
		if !identRE.MatchString(k.Value) {
			errs.At(k, "variable name %q must be an identifier", k.Value)
			return
		}
		if _, dup := rb.Vars[k.Value]; dup {
			errs.At(k, "variable %q defined twice", k.Value)
			return
		}
		var x any
		if err := val.Decode(&x); err != nil {
			errs.At(val, "variable %s: %v", k.Value, err)
			return
		}
		rb.Vars[k.Value] = x
		rb.VarOrder = append(rb.VarOrder, k.Value)
	})
}

// stepKeys are the keys every step may have besides its kind.
var stepKeys = map[string]bool{
	"name": true, "on": true, "when": true, "timeout": true, "retries": true, "retry_delay": true,
	"parallel": true, "tolerate": true, "register": true, "undo": true, "commit": true,
}

func parseStep(errs *diag.List, n *yaml.Node, i int) *Step {
	if n.Kind != yaml.MappingNode {
		errs.At(n, "step %d must be a mapping", i+1)
		return nil
	}
	st := &Step{Index: i, Line: n.Line, Col: n.Column, RetryDelay: 2 * time.Second}
	var kindKeys []*yaml.Node
	dupKeys(errs, n)
	eachKey(n, func(k, v *yaml.Node) {
		if !stepKeys[k.Value] {
			if _, ok := kindOf(k.Value); ok {
				kindKeys = append(kindKeys, k)
				st.Kind, st.Params = k.Value, v
				return
			}
			errs.At(k, "unknown step key %q (kinds: %s)", k.Value, kindList())
			return
		}
		switch k.Value {
		case "name":
			st.Name = scalar(errs, v, "name")
		case "on":
			st.On = stringList(errs, v, "on")
		case "when":
			st.When = scalar(errs, v, "when")
		case "timeout":
			if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "{{") {
				st.TimeoutText = v.Value
				return
			}
			st.Timeout = duration(errs, v, "timeout")
		case "retry_delay":
			st.RetryDelay = duration(errs, v, "retry_delay")
		case "retries":
			st.Retries = intIn(errs, v, "retries", 0, 100)
		case "parallel":
			st.Parallel = intIn(errs, v, "parallel", 1, 100000)
		case "tolerate":
			if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "{{") {
				st.TolerateText = v.Value
				return
			}
			t, err := inventory.ParseTolerance(v.Value)
			if err != nil || v.Kind != yaml.ScalarNode {
				errs.At(v, "tolerate %q: want a host count like 2 or a percentage like 10%%", v.Value)
			}
			st.Tolerate = t
		case "register":
			st.Register = scalar(errs, v, "register")
			if st.Register != "" && !identRE.MatchString(st.Register) {
				errs.At(v, "register name %q must be an identifier", st.Register)
			}
		case "undo":
			st.Undo = parseUndo(errs, v)
		case "commit":
			if v.Kind != yaml.ScalarNode || (v.Value != "true" && v.Value != "false") {
				errs.At(v, "commit %q: want true or false", v.Value)
				return
			}
			st.Commit = v.Value == "true"
		}
	})
	if st.Name == "" {
		errs.At(n, "step %d needs a name", i+1)
	}
	switch len(kindKeys) {
	case 0:
		errs.At(n, "step %q has no kind (one of: %s)", st.Name, kindList())
	case 1:
	default:
		errs.At(kindKeys[1], "step %q has more than one kind (%s and %s)", st.Name, kindKeys[0].Value, kindKeys[1].Value)
	}
	return st
}

func parseUndo(errs *diag.List, v *yaml.Node) *Undo {
	if v.Kind == yaml.ScalarNode {
		return &Undo{Kind: "run", Params: v}
	}
	if v.Kind != yaml.MappingNode || len(v.Content) != 2 {
		errs.At(v, "undo must be a command or a mapping with exactly one kind, e.g. {run: ...}")
		return nil
	}
	k := v.Content[0]
	kind, ok := kindOf(k.Value)
	if !ok {
		errs.At(k, "unknown undo kind %q (kinds: %s)", k.Value, kindList())
		return nil
	}
	if kind.Name == "assert" || kind.Name == "wait" || kind.Name == "probe" {
		errs.At(k, "undo kind %q changes nothing; use run, script, local or put", k.Value)
		return nil
	}
	return &Undo{Kind: k.Value, Params: v.Content[1]}
}

func stringList(errs *diag.List, v *yaml.Node, key string) []string {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Value == "" {
			errs.At(v, "%s is empty", key)
			return nil
		}
		return []string{v.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range v.Content {
			if c.Kind != yaml.ScalarNode || c.Value == "" {
				errs.At(c, "%s entries must be non-empty strings", key)
				continue
			}
			out = append(out, c.Value)
		}
		if len(out) == 0 {
			errs.At(v, "%s is empty", key)
		}
		return out
	}
	errs.At(v, "%s must be a string or a list of strings", key)
	return nil
}

func duration(errs *diag.List, v *yaml.Node, key string) time.Duration {
	d, err := time.ParseDuration(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || d <= 0 {
		errs.At(v, "%s %q: want a positive duration like 30s or 5m", key, v.Value)
		return 0
	}
	return d
}

func intIn(errs *diag.List, v *yaml.Node, key string, lo, hi int) int {
	n, err := strconv.Atoi(v.Value)
	if v.Kind != yaml.ScalarNode || err != nil || n < lo || n > hi {
		errs.At(v, "%s %q: want a whole number from %d to %d", key, v.Value, lo, hi)
		return lo
	}
	return n
}
