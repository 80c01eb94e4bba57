package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	sgerun "github.com/sgerun/sgerun"
)

func TestRoffLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a: b\n", "a: b"},
		{".hidden\n'quoted\n", `\&.hidden` + "\n" + `\&'quoted`},
		{`path: C:\x -f`, `path: C:\ex \-f`},
		{"a\n\nb\n", "a\n\nb"},
	}
	for _, tt := range tests {
		if got := roffLiteral(tt.in); got != tt.want {
			t.Errorf("roffLiteral(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The package's man pages and completions come from `sgerun __gen`: one
// page per command, sgerun-inventory(5) with the whole example inventory,
// and man(1) renders every page without a warning.
func TestGenManAndCompletions(t *testing.T) {
	e := &env{t: t, state: t.TempDir(), home: t.TempDir()}
	dir := t.TempDir()
	if r := e.sgerun("__gen", "man", filepath.Join(dir, "man")); r.code != 0 {
		t.Fatalf("__gen man: %v", r)
	}
	if r := e.sgerun("__gen", "completions", filepath.Join(dir, "completions")); r.code != 0 {
		t.Fatalf("__gen completions: %v", r)
	}
	root := newApp(nil, nil, nil).rootCmd()
	var want []string
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() && !c.IsAdditionalHelpTopicCommand() {
			want = append(want, "sgerun-"+c.Name()+".8")
		}
	}
	want = append(want, "sgerun.8", "sgerun-inventory.5")
	for _, f := range want {
		if _, err := os.Stat(filepath.Join(dir, "man", f)); err != nil {
			t.Errorf("man page %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "man", "sgerun-__gen.8")); err == nil {
		t.Errorf("the hidden __gen command has a man page")
	}
	inv := readString(t, filepath.Join(dir, "man", "sgerun-inventory.5"))
	for _, ph := range []string{"@VERSION@", "@DATE@", "@EXAMPLE@"} {
		if strings.Contains(inv, ph) {
			t.Errorf("sgerun-inventory(5) has the unfilled placeholder %s", ph)
		}
	}
	for _, l := range strings.Split(sgerun.InventoryExample, "\n") {
		if !strings.Contains(inv, roffLiteral(l)) {
			t.Errorf("sgerun-inventory(5) lacks the example's line %q", l)
			break
		}
	}
	for _, f := range []string{"sgerun", "_sgerun", "sgerun.fish"} {
		if b, err := os.ReadFile(filepath.Join(dir, "completions", f)); err != nil || !strings.Contains(string(b), "sgerun") {
			t.Errorf("completion %s: %v", f, err)
		}
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed: pages not rendered")
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "man", "*.[58]"))
	for _, p := range pages {
		c := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", p)
		c.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
		var stderr strings.Builder
		c.Stderr = &stderr
		if err := c.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("man %s: %v\n%s", filepath.Base(p), err, stderr.String())
		}
	}
}
