package runbook

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/yamlx"
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

// runbookFile is the schema of a runbook file: its fields and yaml tags
// are the keys a runbook may have.
type runbookFile struct {
	Name        string               `yaml:"name"`
	Description string               `yaml:"description"`
	Vars        yamlx.Map[yaml.Node] `yaml:"vars"`
	Steps       *yaml.Node           `yaml:"steps"`
}

// stepFile is the schema of one step: these keys and exactly one kind,
// whose key is the kind's name and whose value its parameters. Values
// with a syntax of their own (durations that may be templates, counts,
// tolerances, host lists, undo) are read from their nodes.
type stepFile struct {
	Name       string     `yaml:"name"`
	On         *yaml.Node `yaml:"on"`
	When       string     `yaml:"when"`
	Timeout    *yaml.Node `yaml:"timeout"`
	Retries    *yaml.Node `yaml:"retries"`
	RetryDelay *yaml.Node `yaml:"retry_delay"`
	Parallel   *yaml.Node `yaml:"parallel"`
	Tolerate   *yaml.Node `yaml:"tolerate"`
	Register   string     `yaml:"register"`
	Undo       *yaml.Node `yaml:"undo"`
	Commit     bool       `yaml:"commit"`
	// Kind collects every other key: the step's kind, or unknown keys.
	Kind yamlx.Map[yaml.Node] `yaml:",inline"`
}

// Parse parses runbook text. Every structural problem is reported with its
// position in one *diag.List.
func Parse(file string, data []byte) (*Runbook, error) {
	rb := &Runbook{File: file, Source: data, Vars: map[string]any{}}
	errs := &diag.List{File: file}
	root, ok := yamlx.Document(errs, data)
	if !ok {
		return nil, errs.Err()
	}
	if root == nil {
		errs.AtPos(1, 1, "runbook is empty")
		return nil, errs.Err()
	}
	if root.Kind != yaml.MappingNode {
		errs.At(root, "runbook must be a mapping with name, description, vars and steps")
		return nil, errs.Err()
	}
	var f runbookFile
	yamlx.Decoder{List: errs, Root: "runbook"}.Decode(root, &f)
	rb.Name, rb.Description = f.Name, f.Description
	parseVars(errs, f.Vars, rb)
	if rb.Name == "" {
		errs.At(root, "runbook needs a name")
	}
	switch {
	case f.Steps == nil:
		errs.At(root, "runbook needs steps")
	case f.Steps.Kind != yaml.SequenceNode:
		errs.At(f.Steps, "steps must be a list")
	case len(f.Steps.Content) == 0:
		errs.At(f.Steps, "steps is empty")
	default:
		for i, n := range f.Steps.Content {
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

func parseVars(errs *diag.List, vars yamlx.Map[yaml.Node], rb *Runbook) {
	for _, v := range vars {
		k, val := v.Key, v.Node
		if !identRE.MatchString(k.Value) {
			errs.At(k, "variable name %q must be an identifier", k.Value)
			continue
		}
		var x any
		if err := val.Decode(&x); err != nil {
			errs.At(val, "variable %s: %v", k.Value, err)
			continue
		}
		rb.Vars[k.Value] = x
		rb.VarOrder = append(rb.VarOrder, k.Value)
	}
}

func parseStep(errs *diag.List, n *yaml.Node, i int) *Step {
	if n.Kind != yaml.MappingNode {
		errs.At(n, "step %d must be a mapping", i+1)
		return nil
	}
	st := &Step{Index: i, Line: n.Line, Col: n.Column, RetryDelay: 2 * time.Second}
	var f stepFile
	fields, _ := yamlx.Decoder{List: errs, Root: fmt.Sprintf("step %d", i+1)}.Decode(n, &f)
	st.Name, st.When, st.Register, st.Commit = f.Name, f.When, f.Register, f.Commit
	var kindKeys []*yaml.Node
	for _, k := range f.Kind {
		if _, ok := kindOf(k.Key.Value); !ok {
			errs.At(k.Key, "unknown step key %q (kinds: %s)", k.Key.Value, kindList())
			continue
		}
		kindKeys = append(kindKeys, k.Key)
		st.Kind, st.Params = k.Key.Value, k.Node
	}
	if v := f.On; v != nil {
		st.On = stringList(errs, v, "on")
	}
	switch v := f.Timeout; {
	case v == nil:
	case v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "{{"):
		st.TimeoutText = v.Value
	default:
		st.Timeout = duration(errs, v, "timeout")
	}
	if v := f.RetryDelay; v != nil {
		st.RetryDelay = duration(errs, v, "retry_delay")
	}
	if v := f.Retries; v != nil {
		st.Retries = intIn(errs, v, "retries", 0, 100)
	}
	if v := f.Parallel; v != nil {
		st.Parallel = intIn(errs, v, "parallel", 1, 100000)
	}
	switch v := f.Tolerate; {
	case v == nil:
	case v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "{{"):
		st.TolerateText = v.Value
	default:
		t, err := inventory.ParseTolerance(v.Value)
		if err != nil || v.Kind != yaml.ScalarNode {
			errs.At(v, "tolerate %q: want a host count like 2 or a percentage like 10%%", v.Value)
		}
		st.Tolerate = t
	}
	if st.Register != "" && !identRE.MatchString(st.Register) {
		errs.At(fields.Value("register"), "register name %q must be an identifier", st.Register)
	}
	if v := f.Undo; v != nil {
		st.Undo = parseUndo(errs, v)
	}
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
