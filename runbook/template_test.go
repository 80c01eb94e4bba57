package runbook

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/shell"
)

var hostile = []string{
	"", "plain", "a b", "a; touch /tmp/pwned", "$(touch X)", "`touch X`", "it's", `"dq"`, "\\", "a\nb", "\t",
	"-n", "*", "~root", "${HOME}", "'''", "x'$(id)'y", "\x01\x7f", "ünï", "!", "#c", "a|b&c>d<e",
}

// TestQuoteRoundTrip: every value passed through shell.Quote, q and qjoin
// reaches a real sh as exactly one literal word.
func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range hostile {
		out, err := exec.Command("sh", "-c", "printf %s "+shell.Quote(v)).Output()
		if err != nil || string(out) != v {
			t.Errorf("Quote(%q) through sh = %q, %v", v, out, err)
		}
		text, err := Render("t", "printf %s {{ .v | q }}", map[string]any{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		out, err = exec.Command("sh", "-c", text).Output()
		if err != nil || string(out) != v {
			t.Errorf("q(%q) through sh = %q, %v", v, out, err)
		}
	}
	text, err := Render("t", `for w in {{ .v | qjoin }}; do printf '%s|' "$w"; done`, map[string]any{"v": hostile})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", text).Output()
	if want := strings.Join(hostile, "|") + "|"; err != nil || string(out) != want {
		t.Errorf("qjoin through sh = %q, want %q (%v)", out, want, err)
	}
}

func TestCheckTemplate(t *testing.T) {
	schema := map[string]any{"vars": map[string]any{"x": "1", "l": []any{"a"}}, "host": map[string]any{"name": "HOST", "address": "ADDRESS", "fence_address": "FENCE_ADDRESS"}}
	tests := []struct {
		text  string
		shell bool
		want  string // "" for no issue
	}{
		{"echo {{ .vars.x | q }}", true, ""},
		{"echo {{ .vars.l | qjoin }}", true, ""},
		{"echo {{ .vars.x }}", true, "unquoted value"},
		{"echo {{ q .vars.x }}", true, ""},
		{"echo {{ .vars.x | q | trim }}", true, "unquoted value"},
		{"echo {{ printf \"%s\" .vars.x }}", true, "unquoted value"},
		{"{{ if eq .vars.x \"1\" }}echo yes{{ end }}", true, ""},
		{"{{ range .vars.l }}echo {{ . | q }}{{ end }}", true, ""},
		{"{{ range .vars.l }}echo {{ . }}{{ end }}", true, "unquoted value"},
		{"{{ $v := .vars.x }}echo {{ $v | q }}", true, ""},
		{"{{ $v := .vars.x }}echo {{ $v }}", true, "unquoted value"},
		{"echo {{ .vars.y | q }}", true, "unknown name .vars.y"},
		{"{{ .vars.x }}", false, ""},
		{"{{ .nope }}", false, "unknown name .nope"},
		{"{{ .host.nope }}", false, "unknown name .host.nope"},
		{"{{ template \"x\" }}", false, "not allowed"},
		{"{{ .vars.x", false, "template:"},
	}
	for _, tc := range tests {
		issues := CheckTemplate(tc.text, tc.shell, schema)
		switch {
		case tc.want == "" && len(issues) > 0:
			t.Errorf("%q: unexpected %v", tc.text, issues)
		case tc.want != "" && (len(issues) == 0 || !strings.Contains(issues[0].Msg, tc.want)):
			t.Errorf("%q: issues %v, want %q", tc.text, issues, tc.want)
		}
	}
}

// TestTemplatesParsedOnce: a filled set renders from its parsed templates,
// as a fresh parse would, and keeps nothing that does not parse.
func TestTemplatesParsedOnce(t *testing.T) {
	ts := &Templates{}
	ts.Add("s", "echo {{ .v | q }}")
	ts.Add("s", "plain text")
	ts.Add("s", "{{ .v ")
	ts.AddCond("s", "eq .v \"a b\"")
	if len(ts.parsed) != 2 {
		t.Fatalf("parsed %d templates, want 2", len(ts.parsed))
	}
	data := map[string]any{"v": "a b"}
	got, err := ts.Render("s", "echo {{ .v | q }}", data)
	want, _ := Render("s", "echo {{ .v | q }}", data)
	if err != nil || got != want {
		t.Errorf("Render = %q, %v; want %q", got, err, want)
	}
	if ok, err := ts.RenderCond("s", "eq .v \"a b\"", data); err != nil || !ok {
		t.Errorf("RenderCond = %v, %v", ok, err)
	}
	if _, err := ts.Render("s", "{{ .v ", data); err == nil {
		t.Errorf("a template that does not parse rendered")
	}
}
