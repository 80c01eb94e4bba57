package runbook

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// Validate checks a runbook against an inventory and variable overrides
// before anything connects: hosts resolve, templates quote every value put
// into shell text and name only known values, and every step's parameters
// decode. It fills each step's Hosts and ReadOnly. All problems come back
// in one *diag.List.
func Validate(rb *Runbook, inv *inventory.Inventory, overrides map[string]string) error {
	errs := &diag.List{File: rb.File}
	vars, err := mergeVars(rb, overrides)
	if err != nil {
		errs.AtPos(0, 0, "%v", err)
	}
	schema := baseData(inv, vars, Run{ID: "RUN_ID", Stamp: "20060102150405"})
	reg := map[string]any{}
	schema["reg"] = reg
	registered := map[string]int{}
	for _, st := range rb.Steps {
		validateStep(errs, st, inv, schema, registered)
		if st.Register != "" {
			if prev, dup := registered[st.Register]; dup {
				errs.AtPos(st.Line, st.Col, "register %q already used by step %d", st.Register, prev+1)
			}
			registered[st.Register] = st.Index
			kind, _ := kindOf(st.Kind)
			reg[st.Register] = placeholderRegistered(kind, st.Hosts)
		}
	}
	return errs.Err()
}

func validateStep(errs *diag.List, st *Step, inv *inventory.Inventory, schema map[string]any, registered map[string]int) {
	kind, ok := kindOf(st.Kind)
	if !ok {
		return // reported by Parse
	}
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
	data := withHost(schema, placeholderHost())
	if st.When != "" {
		for _, is := range checkTemplate(condText(st.When), false, data) {
			errs.AtPos(st.Line, st.Col, "step %q: when: %s", st.Name, is.msg)
		}
	}
	checkSetting(errs, st, "timeout", st.TimeoutText, data, func() error { _, err := st.timeout(data); return err })
	checkSetting(errs, st, "tolerate", st.TolerateText, data, func() error { _, err := st.tolerance(data); return err })
	spec := checkParams(errs, st.Name, kind, st.Params, data)
	st.ReadOnly = spec != nil && !spec.Mutates()
	if st.Undo != nil {
		if st.ReadOnly {
			errs.AtPos(st.Params.Line, st.Params.Column, "step %q changes nothing, so it takes no undo", st.Name)
		}
		ukind, _ := kindOf(st.Undo.Kind)
		udata := withHost(schema, placeholderHost())
		udata["result"] = placeholderOne(kind)
		checkParams(errs, st.Name+" undo", ukind, st.Undo.Params, udata)
	}
}

// checkSetting checks a templated step setting (timeout, tolerate): its
// template, and its rendered value unless that depends on earlier steps'
// results, which validation has only placeholders for.
func checkSetting(errs *diag.List, st *Step, key, text string, data map[string]any, parse func() error) {
	if text == "" {
		return
	}
	for _, is := range checkTemplate(text, false, data) {
		errs.AtPos(st.Line, st.Col, "step %q: %s: %s", st.Name, key, is.msg)
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
func checkParams(errs *diag.List, name string, kind steps.Kind, params *yaml.Node, data map[string]any) steps.Spec {
	walkParams(kind, params, func(n *yaml.Node, shellText, cond bool) {
		text := n.Value
		if cond {
			text = condText(text)
		}
		for _, is := range checkTemplate(text, shellText, data) {
			errs.At(n, "step %q: %s", name, is.msg)
		}
	})
	if errs.Len() > 0 {
		// Rendering would repeat the template errors.
		if rendered, err := renderParams(name, kind, params, data); err == nil {
			spec, _ := kind.New(rendered)
			return spec
		}
		return nil
	}
	rendered, err := renderParams(name, kind, params, data)
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

// renderParams renders a kind's parameters, wrapping bare conditions.
func renderParams(name string, kind steps.Kind, params *yaml.Node, data map[string]any) (*yaml.Node, error) {
	if len(kind.CondKeys) > 0 && params != nil && params.Kind == yaml.MappingNode {
		c := *params
		c.Content = append([]*yaml.Node(nil), params.Content...)
		for i := 0; i+1 < len(c.Content); i += 2 {
			if slices.Contains(kind.CondKeys, c.Content[i].Value) && c.Content[i+1].Kind == yaml.ScalarNode {
				v := *c.Content[i+1]
				ok, err := renderCond(name, v.Value, data)
				if err != nil {
					return nil, posErrf(&v, "%v", err)
				}
				v.Value = fmt.Sprint(ok)
				c.Content[i+1] = &v
			}
		}
		params = &c
	}
	return renderNode(name, params, data)
}

func posErrf(n *yaml.Node, format string, args ...any) error {
	return &steps.PosError{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// mergeVars applies --var overrides to the declared variables. An override
// takes the type of the declared default: "false" for a boolean variable
// is false, not a non-empty (true) string.
func mergeVars(rb *Runbook, overrides map[string]string) (map[string]any, error) {
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
