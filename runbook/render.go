package runbook

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"github.com/sgerun/sgerun/steps"
	"go.yaml.in/yaml/v3"
)

// Templates holds a runbook's templates parsed, so that a run parses each
// one once (plan.Compile fills a set; the engine renders with it). Filled,
// it is read-only and safe for concurrent use. A nil *Templates parses
// each template when it renders it.
type Templates struct {
	parsed map[templateKey]*template.Template
}

// templateKey names a parsed template: its name is part of its errors.
type templateKey struct{ name, text string }

// Add parses text, when it holds a template, and keeps it. Text that does
// not parse is not kept: CheckTemplate reports it, and rendering it fails
// again.
func (ts *Templates) Add(name, text string) {
	if !strings.Contains(text, "{{") {
		return
	}
	k := templateKey{name, text}
	if _, ok := ts.parsed[k]; ok {
		return
	}
	t, err := parseTemplate(name, text)
	if err != nil {
		return
	}
	if ts.parsed == nil {
		ts.parsed = map[templateKey]*template.Template{}
	}
	ts.parsed[k] = t
}

// AddCond adds a condition's template (see CondText).
func (ts *Templates) AddCond(name, expr string) { ts.Add(name, CondText(expr)) }

// AddParams adds every template in a kind's parameters, as RenderParams
// renders them.
func (ts *Templates) AddParams(name string, kind steps.Kind, params *yaml.Node) {
	var walk func(n *yaml.Node, cond bool)
	walk = func(n *yaml.Node, cond bool) {
		if n == nil {
			return
		}
		if n.Kind == yaml.ScalarNode {
			ts.Add(name, n.Value)
			if cond {
				ts.AddCond(name, n.Value)
			}
			return
		}
		for i, c := range n.Content {
			walk(c, n.Kind == yaml.MappingNode && i%2 == 1 && slices.Contains(kind.CondKeys, n.Content[i-1].Value))
		}
	}
	walk(params, false)
}

func (ts *Templates) lookup(name, text string) (*template.Template, error) {
	if ts != nil {
		if t, ok := ts.parsed[templateKey{name, text}]; ok {
			return t, nil
		}
	}
	return parseTemplate(name, text)
}

// Render executes text against data, parsing it on the way. Text without
// "{{" is returned as is.
func Render(name, text string, data map[string]any) (string, error) {
	return (*Templates)(nil).Render(name, text, data)
}

// Render executes text against data. Text without "{{" is returned as is.
func (ts *Templates) Render(name, text string, data map[string]any) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := ts.lookup(name, text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", cleanTemplateErr(err)
	}
	return b.String(), nil
}

// RenderCond renders a condition: a bare expression ("eq .reg.x.rc 0") or
// a template; the result must be true or false.
func (ts *Templates) RenderCond(name, expr string, data map[string]any) (bool, error) {
	out, err := ts.Render(name, CondText(expr), data)
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(out) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("condition rendered %q, want true or false", strings.TrimSpace(out))
}

// CondText is the template of a condition: a bare expression is wrapped
// in {{ }}.
func CondText(expr string) string {
	if strings.Contains(expr, "{{") {
		return expr
	}
	return "{{ " + expr + " }}"
}

// RenderNode returns a deep copy of n with every scalar rendered.
func (ts *Templates) RenderNode(name string, n *yaml.Node, data map[string]any) (*yaml.Node, error) {
	if n == nil {
		return nil, nil
	}
	c := *n
	if n.Kind == yaml.ScalarNode {
		out, err := ts.Render(name, n.Value, data)
		if err != nil {
			return nil, posErrf(n, "%v", err)
		}
		if out != n.Value {
			// A rendered value is resolved by its content, so that
			// "{{ .vars.force }}" can fill a boolean and "{{ .x }}" a number;
			// string fields still get the text as is.
			c.Value, c.Tag, c.Style = out, "", 0
		}
		return &c, nil
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, ch := range n.Content {
		r, err := ts.RenderNode(name, ch, data)
		if err != nil {
			return nil, err
		}
		c.Content[i] = r
	}
	return &c, nil
}

// RenderParams renders a kind's parameters, wrapping bare conditions.
func (ts *Templates) RenderParams(name string, kind steps.Kind, params *yaml.Node, data map[string]any) (*yaml.Node, error) {
	if len(kind.CondKeys) > 0 && params != nil && params.Kind == yaml.MappingNode {
		c := *params
		c.Content = append([]*yaml.Node(nil), params.Content...)
		for i := 0; i+1 < len(c.Content); i += 2 {
			if slices.Contains(kind.CondKeys, c.Content[i].Value) && c.Content[i+1].Kind == yaml.ScalarNode {
				v := *c.Content[i+1]
				ok, err := ts.RenderCond(name, v.Value, data)
				if err != nil {
					return nil, posErrf(&v, "%v", err)
				}
				v.Value = fmt.Sprint(ok)
				c.Content[i+1] = &v
			}
		}
		params = &c
	}
	return ts.RenderNode(name, params, data)
}

func posErrf(n *yaml.Node, format string, args ...any) error {
	return &steps.PosError{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}
