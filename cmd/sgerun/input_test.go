package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badFixture is one runbook of runbook/testdata/bad with its header.
type badFixture struct {
	path      string
	line, col int
	substr    string
	vars      []string
}

func badFixtures(t *testing.T) []badFixture {
	t.Helper()
	paths, _ := filepath.Glob("../../runbook/testdata/bad/*.yaml")
	if len(paths) < 30 {
		t.Fatalf("found %d fixtures", len(paths))
	}
	var out []badFixture
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fx := badFixture{path: p}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "# want: "); ok {
				parts := strings.SplitN(rest, ":", 3)
				fmt.Sscan(parts[0], &fx.line)
				fmt.Sscan(parts[1], &fx.col)
				fx.substr = strings.TrimPrefix(parts[2], " ")
			} else if rest, ok := strings.CutPrefix(line, "# vars: "); ok {
				fx.vars = strings.Fields(rest)
			} else {
				break
			}
		}
		f.Close()
		out = append(out, fx)
	}
	return out
}

// TestBadRunbooksExecuteNothing: `validate` and `run` (also --dry-run) on
// every bad fixture exit 2 with file:line:col, and no host is contacted.
func TestBadRunbooksExecuteNothing(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 3})
	for _, fx := range badFixtures(t) {
		prefix := fmt.Sprintf("%s:%d:%d: ", fx.path, fx.line, fx.col)
		if fx.line == 0 {
			prefix = fx.path + ": "
		}
		var vars []string
		for _, v := range fx.vars {
			vars = append(vars, "--var", v)
		}
		for _, cmd := range [][]string{{"validate"}, {"run"}, {"run", "--dry-run"}} {
			args := append(append(append([]string{}, cmd...), fx.path, "-i", e.inv), vars...)
			r := e.sgerun(args...)
			if r.code != 2 {
				t.Errorf("%v: %v", args, r)
				continue
			}
			found := false
			for _, line := range strings.Split(r.stderr, "\n") {
				if i := strings.Index(line, prefix); i >= 0 && strings.Contains(line[i:], fx.substr) {
					found = true
				}
			}
			if !found {
				t.Errorf("%v: stderr lacks %q…%q:\n%s", args, prefix, fx.substr, r.stderr)
			}
		}
	}
	if n := e.handshakes(); n != 0 {
		t.Errorf("%d SSH handshakes for invalid runbooks", n)
	}
	for _, h := range e.srv.Hosts() {
		if n := h.Sessions(); n != 0 {
			t.Errorf("%s: %d sessions", h.Name, n)
		}
	}
	if runs, _ := filepath.Glob(filepath.Join(e.state, "runs", "*")); len(runs) != 0 {
		t.Errorf("invalid runbooks made runs: %v", runs)
	}
}

func TestInjection(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	data := t.TempDir()
	rb := e.file("inject.yaml", `name: inject
vars: {dir: "", a: "", b: "", c: "", d: ""}
steps:
  - name: write
    on: [host0, host1]
    run: |
      printf '%s' {{ .vars.a | q }} > {{ .vars.dir | q }}/{{ .host.name | q }}.a
      printf '%s' {{ .vars.b | q }} > {{ .vars.dir | q }}/{{ .host.name | q }}.b
      printf '%s' {{ .vars.c | q }} > {{ .vars.dir | q }}/{{ .host.name | q }}.c
      printf '%s' {{ .vars.d | q }} > {{ .vars.dir | q }}/{{ .host.name | q }}.d
`)
	vals := map[string]string{
		"a": "a; touch " + data + "/pwned-$RANDOM",
		"b": "$(touch " + data + "/pwned-subst)",
		"c": "`touch " + data + "/pwned-tick` it's \"x\"",
		"d": "line1\ntouch " + data + "/pwned-newline\n && touch " + data + "/pwned-and",
	}
	args := []string{"run", rb, "-i", e.inv, "--var", "dir=" + data}
	for k, v := range vals {
		args = append(args, "--var", k+"="+v)
	}
	if r := e.sgerun(args...); r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	if pwned, _ := filepath.Glob(filepath.Join(data, "pwned*")); len(pwned) != 0 {
		t.Errorf("a value was run by a shell: %v", pwned)
	}
	for _, h := range []string{"host0", "host1"} {
		for k, v := range vals {
			if got := readString(t, filepath.Join(data, h+"."+k)); got != v {
				t.Errorf("%s.%s = %q, want %q", h, k, got, v)
			}
		}
	}
}

func TestHostileHostNamesRejected(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	marker := filepath.Join(t.TempDir(), "pwned")
	rb := e.file("rb.yaml", "name: x\nsteps: [{name: a, on: all, run: \"echo {{ .host.name | q }}\"}]\n")
	names := []string{
		`"a;touch ` + marker + `"`, `"$(touch ` + marker + `)"`, "\"`touch " + marker + "`\"",
		`"a b"`, `"a\nb"`, `"a'b"`, `"a|b"`, `"-oProxyCommand=touch"`,
	}
	for _, name := range names {
		port := e.srv.Hosts()[0].Port
		inv := e.file("bad-inv.yaml", strings.Replace(e.invText, "hosts:\n",
			fmt.Sprintf("hosts:\n  %s: {address: 127.0.0.1, port: %d}\n", name, port), 1))
		for _, cmd := range []string{"validate", "run"} {
			r := e.sgerun(cmd, rb, "-i", inv)
			if r.code != 2 || !strings.Contains(r.stderr, inv+":") {
				t.Errorf("%s with host %s: %v", cmd, name, r)
			}
		}
		r := e.sgerun("exec", "-i", inv, "--on", "all", "--", "true")
		if r.code != 2 {
			t.Errorf("exec with host %s: %v", name, r)
		}
	}
	if exists(marker) {
		t.Error("a host name was run by a shell")
	}
	if n := e.handshakes(); n != 0 {
		t.Errorf("%d handshakes with an invalid inventory", n)
	}
}

func TestUndeclaredVarExit2(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	rb := e.file("rb.yaml", "name: x\nvars: {a: 1}\nsteps: [{name: a, on: all, run: \"echo {{ .vars.a | q }}\"}]\n")
	for _, cmd := range []string{"validate", "run"} {
		r := e.sgerun(cmd, rb, "-i", e.inv, "--var", "nope=1")
		if r.code != 2 || !strings.Contains(r.stderr, "nope") || !strings.Contains(r.stderr, "not declared") {
			t.Errorf("%s: %v", cmd, r)
		}
		if r := e.sgerun(cmd, rb, "-i", e.inv, "--var", "novalue"); r.code != 2 {
			t.Errorf("%s --var without =: %v", cmd, r)
		}
	}
	if n := e.handshakes(); n != 0 {
		t.Errorf("%d handshakes", n)
	}
}
