package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// golden compares got with testdata/golden/NAME; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

var (
	runIDRE    = regexp.MustCompile(`\d{8}-\d{6}-[0-9a-f]{6}`)
	durationRE = regexp.MustCompile(`(host\(s\)(, \d+ failed)?) [0-9.]+(ns|µs|ms|s|m[0-9.]*s?)`)
	ownerRE    = regexp.MustCompile(`uid \d+, gid \d+`)
	startedRE  = regexp.MustCompile(`started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d by \S+ \(pid \d+\)`)
)

// mask makes output deterministic: paths, run ids, durations, owners.
func (e *env) mask(s string, paths map[string]string) string {
	for p, name := range paths {
		s = strings.ReplaceAll(s, p, name)
	}
	s = strings.ReplaceAll(s, e.inv, "$INV")
	s = runIDRE.ReplaceAllString(s, "RUN_ID")
	s = durationRE.ReplaceAllString(s, "$1 DUR")
	s = ownerRE.ReplaceAllString(s, "uid U, gid G")
	return startedRE.ReplaceAllString(s, "started TIME by USER@HOST (pid PID)")
}

const goldenRunbook = `name: golden
vars: {dir: ""}
steps:
  - name: read
    on: [host0, host1]
    run: {cmd: "cat {{ .vars.dir | q }}/bootstrap", readonly: true}
    register: boot
  - name: skip me
    on: host0
    when: eq .reg.boot.rc 1
    run: "false"
  - name: edit
    on: host0
    edit_kv: {path: "{{ .vars.dir }}/bootstrap", set: {spooling_params: /new/spool}}
  - name: put
    on: [host0, host1]
    put: {path: "{{ .vars.dir }}/motd", content: "hello\n", mode: "0644"}
  - name: copy
    on: host1
    copy_dir: {src: "{{ .vars.dir }}/common", dst: "{{ .vars.dir }}/common.bak"}
  - name: restart
    on: [host0, host1]
    run: "echo restart {{ kv \"spooling_params\" .reg.boot.stdout | q }}"
`

func TestGoldenDryRunAndShow(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "bootstrap"), []byte("# Version: 6.2u5\nadmin_user     sgeadmin\nspooling_params     /var/spool\n"), 0o644)
	os.WriteFile(filepath.Join(data, "motd"), []byte("old\n"), 0o600)
	os.Chmod(filepath.Join(data, "motd"), 0o600)
	os.MkdirAll(filepath.Join(data, "common"), 0o755)
	rb := e.file("golden.yaml", goldenRunbook)
	paths := map[string]string{data: "$DATA", rb: "$RUNBOOK"}

	r := e.sgerun("run", rb, "-i", e.inv, "--dry-run", "--var", "dir="+data)
	if r.code != 0 {
		t.Fatalf("dry run: %v", r)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("escape sequences in non-TTY output: %q", r.stdout)
	}
	golden(t, "dry-run.txt", e.mask(r.stdout, paths))

	runs, _ := filepath.Glob(filepath.Join(e.state, "runs", "*"))
	if len(runs) != 1 {
		t.Fatalf("runs: %v", runs)
	}
	s := e.sgerun("show", filepath.Base(runs[0]))
	if s.code != 0 {
		t.Fatalf("show: %v", s)
	}
	golden(t, "show.txt", e.mask(s.stdout, paths))

	h := e.sgerun("history")
	if h.code != 0 || !strings.Contains(h.stdout, filepath.Base(runs[0])) || !strings.Contains(h.stdout, "planned") {
		t.Errorf("history: %v", h)
	}
}
