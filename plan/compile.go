// Package plan compiles a runbook (package runbook, the language) against
// an inventory and variable overrides into a Plan, the only thing package
// engine runs.
package plan

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// Plan is a runbook compiled against an inventory and variable overrides:
// every step's hosts resolved, its kind looked up, its read-only flag set
// and its templates checked and parsed. Only Compile makes one, so a run cannot skip
// validation or repeat it; a Plan does not change after Compile, and its
// accessors return copies.
type Plan struct {
	rb        *runbook.Runbook
	inv       *inventory.Inventory
	overrides map[string]string
	vars      map[string]any
	steps     []Step
}

// Step is one compiled step: the step as written, with what Compile
// resolved.
type Step struct {
	runbook.Step
	// Def is the step's kind.
	Def steps.Kind
	// Hosts are the selected hosts; target.Controller for controller-side
	// kinds.
	Hosts []string
	// ReadOnly is true when no host is changed by this step (derived from
	// the kind and its parameters).
	ReadOnly bool
	// tmpl holds the step's templates, parsed.
	tmpl *runbook.Templates
}

// Templates returns the step's templates, parsed, for rendering.
func (st *Step) Templates() *runbook.Templates { return st.tmpl }

// Compile checks a runbook against an inventory and variable overrides
// before anything connects: hosts resolve, templates quote every value put
// into shell text and name only known values, and every step's parameters
// decode. All problems come back in one *diag.List; without problems it
// returns the plan to run.
func Compile(rb *runbook.Runbook, inv *inventory.Inventory, overrides map[string]string) (*Plan, error) {
	errs := &diag.List{File: rb.File}
	vars, err := mergeVars(rb, overrides)
	if err != nil {
		errs.AtPos(0, 0, "%v", err)
	}
	p := &Plan{rb: rb, inv: inv, overrides: maps.Clone(overrides), vars: vars}
	schema := p.Data(Run{ID: "RUN_ID", Stamp: "20060102150405"})
	reg := map[string]any{}
	schema["reg"] = reg
	registered := map[string]int{}
	for _, rst := range rb.Steps {
		st, ok := compileStep(errs, rst, inv, schema)
		if !ok {
			continue
		}
		if st.Register != "" {
			if prev, dup := registered[st.Register]; dup {
				errs.AtPos(st.Line, st.Col, "register %q already used by step %d", st.Register, prev+1)
			}
			registered[st.Register] = st.Index
			reg[st.Register] = placeholderRegistered(st.Def, st.Hosts).Map()
		}
		p.steps = append(p.steps, st)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// Runbook returns the runbook the plan was compiled from.
func (p *Plan) Runbook() *runbook.Runbook { return p.rb }

// Inventory returns the inventory the plan was compiled against.
func (p *Plan) Inventory() *inventory.Inventory { return p.inv }

// Overrides returns the --var overrides as given.
func (p *Plan) Overrides() map[string]string { return maps.Clone(p.overrides) }

// Steps returns the compiled steps in runbook order.
func (p *Plan) Steps() []Step {
	out := make([]Step, len(p.steps))
	for i, st := range p.steps {
		st.Hosts = slices.Clone(st.Hosts)
		out[i] = st
	}
	return out
}

// kindOf returns a runbook kind; undo-only kinds are not runbook kinds.
func kindOf(name string) (steps.Kind, bool) {
	k, ok := steps.Kinds()[name]
	return k, ok && !k.UndoOnly
}

// compileStep resolves and checks one step; ok is false when its kind is
// unknown (Parse reported that).
func compileStep(errs *diag.List, rst *runbook.Step, inv *inventory.Inventory, schema map[string]any) (Step, bool) {
	kind, ok := kindOf(rst.Kind)
	if !ok {
		return Step{}, false
	}
	st := Step{Step: *rst, Def: kind, tmpl: parseTemplates(rst, kind)}
	switch {
	case kind.Local && len(st.On) > 0:
		errs.AtPos(st.Line, st.Col, "step %q: %s runs on the controller and takes no `on:`", st.Name, st.Kind)
	case !kind.Local && len(st.On) == 0:
		errs.AtPos(st.Line, st.Col, "step %q needs `on:` (a role, host, range or list)", st.Name)
	case !kind.Local:
		hosts, err := inv.Select(st.On)
		if err != nil {
			errs.AtPos(st.Line, st.Col, "step %q: on: %v", st.Name, err)
		}
		st.Hosts = hosts
	}
	if kind.Local {
		st.Hosts = []string{target.Controller}
	}
	data := WithHost(schema, placeholderHost())
	if st.When != "" {
		for _, is := range runbook.CheckTemplate(runbook.CondText(st.When), false, data) {
			errs.AtPos(st.Line, st.Col, "step %q: when: %s", st.Name, is.Msg)
		}
	}
	checkSetting(errs, &st, "timeout", st.TimeoutText, data, func() error { _, err := st.HostTimeout(data); return err })
	checkSetting(errs, &st, "tolerate", st.TolerateText, data, func() error { _, err := st.Tolerance(data); return err })
	spec := checkParams(errs, st.tmpl, st.Name, kind, st.Params, data)
	st.ReadOnly = spec != nil && !spec.Mutates()
	if st.Undo != nil {
		if st.ReadOnly {
			errs.AtPos(st.Params.Line, st.Params.Column, "step %q changes nothing, so it takes no undo", st.Name)
		}
		ukind, _ := kindOf(st.Undo.Kind)
		udata := WithHost(schema, placeholderHost())
		udata["result"] = placeholderOne(kind).Map()
		checkParams(errs, st.tmpl, st.Name+" undo", ukind, st.Undo.Params, udata)
	}
	return st, true
}

// parseTemplates parses every template of a step: its condition,
// settings, parameters and undo.
func parseTemplates(st *runbook.Step, kind steps.Kind) *runbook.Templates {
	ts := &runbook.Templates{}
	if st.When != "" {
		ts.AddCond(st.Name, st.When)
	}
	ts.Add(st.Name, st.TimeoutText)
	ts.Add(st.Name, st.TolerateText)
	ts.AddParams(st.Name, kind, st.Params)
	if st.Undo != nil {
		if ukind, ok := kindOf(st.Undo.Kind); ok {
			ts.AddParams(st.Name+" undo", ukind, st.Undo.Params)
		}
	}
	return ts
}

// checkSetting checks a templated step setting (timeout, tolerate): its
// template, and its rendered value unless that depends on earlier steps'
// results, which validation has only placeholders for.
func checkSetting(errs *diag.List, st *Step, key, text string, data map[string]any, parse func() error) {
	if text == "" {
		return
	}
	for _, is := range runbook.CheckTemplate(text, false, data) {
		errs.AtPos(st.Line, st.Col, "step %q: %s: %s", st.Name, key, is.Msg)
	}
	if runtimeText(text) {
		return
	}
	if err := parse(); err != nil {
		errs.AtPos(st.Line, st.Col, "step %q: %v", st.Name, err)
	}
}

// checkParams checks templates in a kind's parameters and decodes them with
// placeholder values.
func checkParams(errs *diag.List, ts *runbook.Templates, name string, kind steps.Kind, params *yaml.Node, data map[string]any) steps.Spec {
	if a := findAlias(params); a != nil {
		// Rendering and the shell-quoting check walk the parameters as
		// written; an alias would reach the step unrendered and unchecked.
		errs.At(a, "step %q: YAML alias *%s in step parameters: write the value out (aliases are not rendered or checked)", name, a.Value)
		return nil
	}
	walkParams(kind, params, func(n *yaml.Node, shellText, cond bool) {
		text := n.Value
		if cond {
			text = runbook.CondText(text)
		}
		for _, is := range runbook.CheckTemplate(text, shellText, data) {
			errs.At(n, "step %q: %s", name, is.Msg)
		}
	})
	if errs.Len() > 0 {
		// Rendering would repeat the template errors.
		if rendered, err := ts.RenderParams(name, kind, params, data); err == nil {
			spec, _ := kind.New(rendered)
			return spec
		}
		return nil
	}
	rendered, err := ts.RenderParams(name, kind, params, data)
	if err != nil {
		addPosErr(errs, params, name, err)
		return nil
	}
	spec, err := kind.New(rendered)
	var pe *steps.PosError
	if err != nil && runtimeValues(params) && !(errors.As(err, &pe) && pe.Shape) {
		// The values come from earlier steps' results, which validation
		// only has placeholders for; the step checks them when it runs.
		return nil
	}
	if err != nil {
		addPosErr(errs, params, name, err)
		return nil
	}
	return spec
}

// findAlias returns the first alias node in n, or nil.
func findAlias(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		return n
	}
	for _, c := range n.Content {
		if a := findAlias(c); a != nil {
			return a
		}
	}
	return nil
}

// runtimeText reports whether template text uses values known only at run
// time: registered results (.reg) or an undo's result (.result).
func runtimeText(s string) bool {
	return strings.Contains(s, ".reg.") || strings.Contains(s, ".result")
}

// runtimeValues reports whether params use values known only at run time:
// registered results or an undo's result.
func runtimeValues(params *yaml.Node) bool {
	found := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || found {
			return
		}
		if n.Kind == yaml.ScalarNode && runtimeText(n.Value) {
			found = true
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(params)
	return found
}

func addPosErr(errs *diag.List, fallback *yaml.Node, name string, err error) {
	var pe *steps.PosError
	if errors.As(err, &pe) && pe.Line > 0 {
		errs.AtPos(pe.Line, pe.Col, "step %q: %s", name, pe.Msg)
		return
	}
	errs.At(fallback, "step %q: %v", name, err)
}

// walkParams calls fn for every scalar of params, saying whether it is shell
// text or a condition.
func walkParams(kind steps.Kind, params *yaml.Node, fn func(n *yaml.Node, shellText, cond bool)) {
	if params == nil {
		return
	}
	if params.Kind == yaml.ScalarNode {
		fn(params, slices.Contains(kind.ShellKeys, ""), false)
		return
	}
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.ScalarNode:
			fn(n, slices.Contains(kind.ShellKeys, key), slices.Contains(kind.CondKeys, key))
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], n.Content[i].Value)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, key)
			}
		}
	}
	if params.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(params.Content); i += 2 {
			walk(params.Content[i+1], params.Content[i].Value)
		}
	}
}

// mergeVars applies --var overrides to the declared variables. An override
// takes the type of the declared default: "false" for a boolean variable
// is false, not a non-empty (true) string.
func mergeVars(rb *runbook.Runbook, overrides map[string]string) (map[string]any, error) {
	vars := make(map[string]any, len(rb.Vars))
	for k, v := range rb.Vars {
		vars[k] = v
	}
	var undeclared, mistyped []string
	for k, v := range overrides {
		def, ok := rb.Vars[k]
		if !ok {
			undeclared = append(undeclared, k)
			continue
		}
		var err error
		switch def.(type) {
		case bool:
			vars[k], err = strconv.ParseBool(v)
		case int:
			vars[k], err = strconv.Atoi(v)
		default:
			vars[k] = v
		}
		if err != nil {
			mistyped = append(mistyped, fmt.Sprintf("%s=%q (want a %T like its default %v)", k, v, def, def))
		}
	}
	var errs []error
	if len(undeclared) > 0 {
		slices.Sort(undeclared)
		errs = append(errs, fmt.Errorf("--var %v: not declared in the runbook's vars", undeclared))
	}
	if len(mistyped) > 0 {
		slices.Sort(mistyped)
		errs = append(errs, fmt.Errorf("--var %s", strings.Join(mistyped, ", ")))
	}
	return vars, errors.Join(errs...)
}

// HostTimeout returns the step's per-host timeout (0: none), rendering a
// templated one with data.
func (st *Step) HostTimeout(data map[string]any) (time.Duration, error) {
	if st.TimeoutText == "" {
		return st.Timeout, nil
	}
	text, err := st.tmpl.Render(st.Name, st.TimeoutText, data)
	if err != nil {
		return 0, fmt.Errorf("timeout: %w", err)
	}
	d, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("timeout %q: want a positive duration like 30s or 5m", text)
	}
	return d, nil
}

// Tolerance returns the step's tolerance, rendering a templated one with
// data.
func (st *Step) Tolerance(data map[string]any) (inventory.Tolerance, error) {
	if st.TolerateText == "" {
		return st.Tolerate, nil
	}
	text, err := st.tmpl.Render(st.Name, st.TolerateText, data)
	if err != nil {
		return inventory.Tolerance{}, fmt.Errorf("tolerate: %w", err)
	}
	t, err := inventory.ParseTolerance(strings.TrimSpace(text))
	if err != nil {
		return inventory.Tolerance{}, fmt.Errorf("tolerate %q: %w", text, err)
	}
	return t, nil
}
