package runbook

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
)

// quoteFuncs are the functions whose output is safe to put into shell text.
// sgeenv builds its output from quoted values itself.
var quoteFuncs = map[string]bool{"q": true, "qjoin": true, "sgeenv": true}

// funcs returns the template functions available in runbooks.
func funcs() template.FuncMap {
	return template.FuncMap{
		// q quotes a value as one shell word.
		"q": func(v any) string { return shell.Quote(fmt.Sprint(v)) },
		// qjoin quotes each element of a list and joins them with spaces.
		"qjoin": func(v any) string {
			var words []string
			for _, s := range toStrings(v) {
				words = append(words, shell.Quote(s))
			}
			return strings.Join(words, " ")
		},
		"join":      func(sep string, v any) string { return strings.Join(toStrings(v), sep) },
		"trim":      strings.TrimSpace,
		"lines":     func(s string) []string { return strings.Fields(strings.ReplaceAll(s, "\r", "")) },
		"contains":  func(sub, s string) bool { return strings.Contains(s, sub) },
		"hasPrefix": func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
		"basename":  path.Base,
		"dirname":   path.Dir,
		"default": func(def, v any) any {
			if v == nil || fmt.Sprint(v) == "" {
				return def
			}
			return v
		},
		// kv returns the value of key in "key<spaces>value" text, such as
		// SGE's bootstrap; "" when absent.
		"kv": func(key, text string) string { return sge.ParseBootstrap(text).Value(key) },
		// spooldir is the directory holding a cell's spooled state, from
		// its bootstrap text (sge.Bootstrap.SpoolDir): spooling_params for
		// Berkeley DB, its "<common>;<spool dir>" second part for classic
		// spooling.
		"spooldir": func(text string) string { return sge.ParseBootstrap(text).SpoolDir() },
		// respool is bootstrap's spooling_params with the spool directory
		// replaced (sge.Bootstrap.Respool).
		"respool": func(text, dir string) string { return sge.ParseBootstrap(text).Respool(dir) },
		// sgeenv is a shell prelude that sets SGE_ROOT/SGE_CELL and finds the
		// cell's binaries (sge.Env); safe in shell text.
		"sgeenv": sge.Env,
		// sgerecord is the path of one of sgerun's record files ("lock",
		// "antiflap" or "pending_fence", see package sge) in shared, else
		// in the directory holding bootstrap's qmaster_spool_dir; "" for
		// another name or when neither is known.
		"sgerecord": func(name, shared, bootstrap string) string {
			file := map[string]string{"lock": sge.LockFile, "antiflap": sge.AntiflapFile, "pending_fence": sge.PendingFenceFile}[name]
			dir := sge.RecordDir(shared, sge.ParseBootstrap(bootstrap))
			if file == "" || dir == "" {
				return ""
			}
			return dir + "/" + file
		},
		// stamped turns a spool path into a fresh timestamped sibling:
		// /spool/qmaster -> /spool/qmaster.sgerun-STAMP, replacing an
		// earlier sgerun stamp instead of stacking them.
		"stamped": func(p, stamp string) string {
			p = strings.TrimRight(p, "/")
			if i := strings.LastIndex(p, ".sgerun-"); i > strings.LastIndex(p, "/") {
				p = p[:i]
			}
			return p + ".sgerun-" + stamp
		},
		"replace": func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		// fromJSON decodes a JSON object (such as a record file's content);
		// an empty map when it is not one.
		"fromJSON": func(s string) map[string]any {
			m := map[string]any{}
			_ = json.Unmarshal([]byte(s), &m)
			return m
		},
		"atoi": func(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n },
		"add":  func(a, b int) int { return a + b },
		"sub":  func(a, b int) int { return a - b },
		"toJSON": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
	}
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = fmt.Sprint(e)
		}
		return out
	case nil:
		return nil
	}
	return []string{fmt.Sprint(v)}
}

// parseTemplate parses one template string.
func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(funcs()).Parse(text)
}

// cleanTemplateErr drops text/template's internal prefix.
func cleanTemplateErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "executing "); i >= 0 {
		if j := strings.Index(msg[i:], ": "); j >= 0 {
			return fmt.Errorf("%s", msg[i+j+2:])
		}
	}
	return err
}

// TemplateIssue is a static problem found in a template.
type TemplateIssue struct {
	Msg string
}

// CheckTemplate statically checks a template: in shell text every value must
// pass through q or qjoin, and every name must be known to schema.
func CheckTemplate(text string, shellText bool, schema map[string]any) []TemplateIssue {
	if !strings.Contains(text, "{{") {
		return nil
	}
	t, err := parseTemplate("t", text)
	if err != nil {
		return []TemplateIssue{{Msg: "template: " + stripTemplatePrefix(err.Error())}}
	}
	var issues []TemplateIssue
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		if tt.Name() != "t" {
			issues = append(issues, TemplateIssue{Msg: "template definitions are not allowed"})
			continue
		}
		w := &walker{shell: shellText, schema: schema}
		w.list(tt.Tree.Root, 0)
		issues = append(issues, w.issues...)
	}
	if shellText {
		for _, a := range quotedActions(text) {
			issues = append(issues, TemplateIssue{Msg: fmt.Sprintf(
				"value %s stands inside shell quotes, where q cannot protect it (\"$(...)\" would still run); put it outside the quotes", a)})
		}
	}
	return issues
}

// quotedActions returns the output actions of a shell template that stand
// inside single or double quotes. q makes a value one safe word only where
// the shell reads it unquoted: inside "...", $(...) and backticks would
// run, and inside '...' a quote in the value ends the string.
func quotedActions(text string) []string {
	var found []string
	quote := byte(0)
	for i := 0; i < len(text); i++ {
		c := text[i]
		if strings.HasPrefix(text[i:], "{{") {
			end := strings.Index(text[i:], "}}")
			if end < 0 {
				return found
			}
			action := text[i : i+end+2]
			if quote != 0 && outputs(action) {
				found = append(found, action)
			}
			i += end + 1
			continue
		}
		switch {
		case quote == 0 && c == '\\':
			i++
		case quote == '"' && c == '\\':
			i++
		case quote == 0 && c == '#' && (i == 0 || text[i-1] == ' ' || text[i-1] == '\n' || text[i-1] == '\t'):
			// a comment runs to the end of the line
			if nl := strings.IndexByte(text[i:], '\n'); nl >= 0 {
				i += nl
			} else {
				return found
			}
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote != 0 && c == quote:
			quote = 0
		}
	}
	return found
}

// outputs reports whether a template action writes a value (not if, range,
// end, else, with, a comment or a variable declaration).
func outputs(action string) bool {
	body := strings.TrimSpace(strings.Trim(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(action, "{{"), "}}")), "-"))
	for _, kw := range []string{"if ", "else", "end", "range ", "with ", "/*", "define ", "block ", "break", "continue"} {
		if strings.HasPrefix(body, kw) {
			return false
		}
	}
	if i := strings.Index(body, ":="); i > 0 && strings.HasPrefix(body, "$") {
		return false
	}
	if i := strings.Index(body, "="); i > 0 && strings.HasPrefix(body, "$") && !strings.Contains(body[:i], " ") {
		return false
	}
	return true
}

func stripTemplatePrefix(msg string) string {
	return strings.TrimPrefix(msg, "template: t:")
}

type walker struct {
	shell  bool
	schema map[string]any
	issues []TemplateIssue
}

func (w *walker) add(format string, args ...any) {
	w.issues = append(w.issues, TemplateIssue{Msg: fmt.Sprintf(format, args...)})
}

// list walks a list; rebound is >0 inside range/with, where "." is not the
// root data.
func (w *walker) list(l *parse.ListNode, rebound int) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch x := n.(type) {
		case *parse.ActionNode:
			w.pipe(x.Pipe, rebound)
			if w.shell && len(x.Pipe.Decl) == 0 && !quoted(x.Pipe) {
				w.add("unquoted value {{%s}} in shell text: end the pipeline with q, e.g. {{ %s | q }}", x.Pipe, x.Pipe)
			}
		case *parse.IfNode:
			w.pipe(x.Pipe, rebound)
			w.list(x.List, rebound)
			w.list(x.ElseList, rebound)
		case *parse.RangeNode:
			w.pipe(x.Pipe, rebound)
			w.list(x.List, rebound+1)
			w.list(x.ElseList, rebound)
		case *parse.WithNode:
			w.pipe(x.Pipe, rebound)
			w.list(x.List, rebound+1)
			w.list(x.ElseList, rebound)
		case *parse.TemplateNode:
			w.add("{{template}} is not allowed")
		}
	}
}

func quoted(p *parse.PipeNode) bool {
	if len(p.Cmds) == 0 {
		return false
	}
	last := p.Cmds[len(p.Cmds)-1]
	if len(last.Args) == 0 {
		return false
	}
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && quoteFuncs[id.Ident]
}

func (w *walker) pipe(p *parse.PipeNode, rebound int) {
	if p == nil {
		return
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			w.arg(a, rebound)
		}
	}
}

func (w *walker) arg(a parse.Node, rebound int) {
	switch x := a.(type) {
	case *parse.FieldNode:
		if rebound == 0 {
			w.field(x.Ident)
		}
	case *parse.VariableNode:
		if len(x.Ident) > 1 && x.Ident[0] == "$" {
			w.field(x.Ident[1:])
		}
	case *parse.ChainNode:
		w.arg(x.Node, rebound)
	case *parse.PipeNode:
		w.pipe(x, rebound)
	}
}

// field checks a .a.b.c chain against the schema, as deep as the schema
// knows its keys.
func (w *walker) field(path []string) {
	var cur any = w.schema
	for i, name := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return
		}
		next, ok := m[name]
		if !ok {
			w.add("unknown name .%s (known here: %s)", strings.Join(path[:i+1], "."), knownKeys(m))
			return
		}
		cur = next
	}
}

func knownKeys(m map[string]any) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 12 {
		keys = append(keys[:12], "…")
	}
	return strings.Join(keys, ", ")
}
