package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
)

// writeFile writes a file with an exact mode (umask does not apply).
func writeFile(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

const bootstrap = "# Version: 6.2u5\n# comment\nadmin_user             sgeadmin\nspooling_params        /var/spool/sge\n\tindented line\n"

// rollbackRunbook changes files on host0 and host1 with every kind that
// has an undo, then fails on host1.
const rollbackRunbook = `
name: rollback
vars: {dir: ""}
steps:
  - name: put
    on: [host0, host1]
    put: {path: "{{ .vars.dir }}/{{ .host.name }}/motd", content: "new\n", mode: "0600"}
  - name: edit
    on: [host0, host1]
    edit_kv: {path: "{{ .vars.dir }}/{{ .host.name }}/bootstrap", set: {spooling_params: /new/spool}}
  - name: copy
    on: [host0, host1]
    copy_dir: {src: "{{ .vars.dir }}/{{ .host.name }}/common", dst: "{{ .vars.dir }}/{{ .host.name }}/common.bak"}
  - name: first log
    on: [host0, host1]
    run: "echo step3 >> {{ .vars.dir | q }}/{{ .host.name | q }}/log"
    undo: "echo undo3 >> {{ .vars.dir | q }}/{{ .host.name | q }}/log"
  - name: read only
    on: [host0, host1]
    run: {cmd: "cat {{ .vars.dir | q }}/{{ .host.name | q }}/log", readonly: true}
  - name: second log
    on: [host0, host1]
    run: "echo step5 >> {{ .vars.dir | q }}/{{ .host.name | q }}/log"
    undo: {script: "echo undo5 >> {{ .vars.dir | q }}/{{ .host.name | q }}/log"}
  - name: breaks
    on: host1
    run: "echo broken >&2; exit 3"
  - name: never
    on: [host0, host1]
    run: "echo never >> {{ .vars.dir | q }}/{{ .host.name | q }}/log"
`

func TestFailureRollsBackInReverse(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	for _, h := range []string{"host0", "host1"} {
		writeFile(t, filepath.Join(dir, h, "motd"), "old motd\n", 0o640)
		writeFile(t, filepath.Join(dir, h, "bootstrap"), bootstrap, 0o644)
		writeFile(t, filepath.Join(dir, h, "common", "act_qmaster"), "host0\n", 0o644)
		writeFile(t, filepath.Join(dir, h, "common", "sub", "settings.sh"), "export X=1\n", 0o755)
	}
	r := c.run(t, c.session(t, rollbackRunbook, map[string]string{"dir": dir}))
	if !errors.Is(r.err, ErrStepFailed) {
		t.Fatalf("err = %v, want ErrStepFailed", r.err)
	}
	if errors.Is(r.err, ErrRollbackIncomplete) {
		t.Fatalf("rollback incomplete: %v", r.err)
	}
	if !strings.Contains(r.err.Error(), "exit status 3: broken") {
		t.Errorf("err = %v, want the failing host's exit status and stderr", r.err)
	}
	if st := r.step(t, 6); st.Status != journal.StatusFailed || !slices.Equal(st.Failed, []string{"host1"}) {
		t.Errorf("step 6 = %s failed %v", st.Status, st.Failed)
	}

	// undo_start: every completed mutating step, newest step first, both
	// hosts each; the read-only step and the failed step have none.
	var order []int
	perStep := map[int][]string{}
	for _, ev := range r.of(journal.UndoStart) {
		if len(order) == 0 || order[len(order)-1] != ev.Step {
			order = append(order, ev.Step)
		}
		perStep[ev.Step] = append(perStep[ev.Step], ev.Host)
	}
	if want := []int{5, 3, 2, 1, 0}; !slices.Equal(order, want) {
		t.Errorf("undo order by step = %v, want %v", order, want)
	}
	for s, hosts := range perStep {
		slices.Sort(hosts)
		if !slices.Equal(hosts, []string{"host0", "host1"}) {
			t.Errorf("step %d undone on %v, want both hosts", s, hosts)
		}
	}
	for _, ev := range r.of(journal.UndoEnd) {
		if ev.Status != journal.StatusOK {
			t.Errorf("undo of step %d on %s: %s %s", ev.Step, ev.Host, ev.Status, ev.Error)
		}
	}
	if rb := r.of(journal.RollbackEnd); len(rb) != 1 || rb[0].Status != journal.StatusRolledBack {
		t.Errorf("rollback_end = %+v", rb)
	}
	if end := r.of(journal.RunEnd); len(end) != 1 || end[0].Status != journal.StatusFailed {
		t.Errorf("run_end = %+v", end)
	}

	for _, h := range []string{"host0", "host1"} {
		base := filepath.Join(dir, h)
		if got := readFile(t, filepath.Join(base, "motd")); got != "old motd\n" {
			t.Errorf("%s motd = %q", h, got)
		}
		if m := modeOf(t, filepath.Join(base, "motd")); m != 0o640 {
			t.Errorf("%s motd mode = %#o, want 0640", h, m)
		}
		if got := readFile(t, filepath.Join(base, "bootstrap")); got != bootstrap {
			t.Errorf("%s bootstrap = %q", h, got)
		}
		if m := modeOf(t, filepath.Join(base, "bootstrap")); m != 0o644 {
			t.Errorf("%s bootstrap mode = %#o", h, m)
		}
		if _, err := os.Lstat(filepath.Join(base, "common.bak")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s common.bak still there: %v", h, err)
		}
		if got := readFile(t, filepath.Join(base, "common", "sub", "settings.sh")); got != "export X=1\n" {
			t.Errorf("%s source tree changed: %q", h, got)
		}
		// Explicit undos ran newest first; the step after the failure
		// never ran.
		if got, want := readFile(t, filepath.Join(base, "log")), "step3\nstep5\nundo5\nundo3\n"; got != want {
			t.Errorf("%s log = %q, want %q", h, got, want)
		}
		leftovers, _ := filepath.Glob(filepath.Join(base, ".*sgerun-tmp*"))
		if len(leftovers) > 0 {
			t.Errorf("temp files left: %v", leftovers)
		}
	}
}

// TestRollbackAfterRollbackIsNoop runs `rollback` on a run that already
// rolled back: nothing is pending, nothing runs twice.
func TestRollbackAfterRollbackIsNoop(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	for _, h := range []string{"host0", "host1"} {
		writeFile(t, filepath.Join(dir, h, "motd"), "old motd\n", 0o640)
		writeFile(t, filepath.Join(dir, h, "bootstrap"), bootstrap, 0o644)
		writeFile(t, filepath.Join(dir, h, "common", "f"), "x", 0o644)
	}
	r := c.run(t, c.session(t, rollbackRunbook, map[string]string{"dir": dir}))
	if !errors.Is(r.err, ErrStepFailed) {
		t.Fatalf("err = %v", r.err)
	}
	if items := PendingUndo(r.events); len(items) != 0 {
		t.Fatalf("pending after rollback: %+v", items)
	}
	s := c.session(t, rollbackRunbook, nil)
	if _, err := s.Rollback(context.Background(), r.out.Dir); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"host0", "host1"} {
		if got := readFile(t, filepath.Join(dir, h, "log")); got != "step3\nstep5\nundo5\nundo3\n" {
			t.Errorf("%s log = %q: an undo ran twice", h, got)
		}
	}
}

// toleranceRunbook puts a file everywhere, then runs a step that fails on
// the hosts matching .vars.bad, then marks the hosts that went on.
const toleranceRunbook = `
name: tolerate
vars: {dir: "", bad: "none"}
steps:
  - name: put
    on: all
    put: {path: "{{ .vars.dir }}/{{ .host.name }}.conf", content: "new\n"}
  - name: flaky
    on: all
    tolerate: 10%
    run: "echo {{ .host.name | q }} | grep -qvxE {{ .vars.bad | q }}"
  - name: after
    on: all
    run: "touch {{ .vars.dir | q }}/{{ .host.name | q }}.after"
`

func TestTolerate(t *testing.T) {
	c := newCluster(t, 20)
	t.Run("two of twenty fail", func(t *testing.T) {
		dir := t.TempDir()
		r := c.run(t, c.session(t, toleranceRunbook, map[string]string{"dir": dir, "bad": "host3|host17"}))
		if r.err != nil {
			t.Fatalf("run failed: %v", r.err)
		}
		st := r.step(t, 1)
		if st.Status != journal.StatusTolerated || !slices.Equal(st.Failed, []string{"host3", "host17"}) {
			t.Errorf("flaky step: status %s failed %v", st.Status, st.Failed)
		}
		if after := r.step(t, 2); after.Status != journal.StatusOK || len(after.Hosts) != 20 {
			t.Errorf("after step: %s on %d hosts", after.Status, len(after.Hosts))
		}
		for i := range 20 {
			if _, err := os.Stat(filepath.Join(dir, c.srv.Hosts()[i].Name+".after")); err != nil {
				t.Errorf("run did not go on: %v", err)
			}
		}
		if n := len(r.of(journal.RollbackStart)); n != 0 {
			t.Errorf("%d rollbacks", n)
		}
	})
	t.Run("three of twenty fail", func(t *testing.T) {
		dir := t.TempDir()
		r := c.run(t, c.session(t, toleranceRunbook, map[string]string{"dir": dir, "bad": "host3|host7|host17"}))
		if !errors.Is(r.err, ErrStepFailed) {
			t.Fatalf("err = %v, want ErrStepFailed", r.err)
		}
		if !strings.Contains(r.err.Error(), "failed on 3 of 20 host(s)") || !strings.Contains(r.err.Error(), "tolerated 2") {
			t.Errorf("err = %v", r.err)
		}
		if st := r.step(t, 1); st.Status != journal.StatusFailed || len(st.Failed) != 3 {
			t.Errorf("flaky: %s %v", st.Status, st.Failed)
		}
		if n := len(r.of(journal.UndoEnd)); n != 20 {
			t.Errorf("%d undos, want the put undone on 20 hosts", n)
		}
		left, _ := filepath.Glob(filepath.Join(dir, "*"))
		if len(left) != 0 {
			t.Errorf("rollback left %v", left)
		}
	})
}

func TestRetriesWhenTimeoutRegister(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	src := `
name: knobs
vars: {dir: "", flag: "no"}
steps:
  - name: flaky
    on: host0
    retries: 2
    retry_delay: 10ms
    run: 'n=$(cat {{ .vars.dir | q }}/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ .vars.dir | q }}/count; test $n -ge 3'
  - name: skipped
    on: host0
    when: eq .vars.flag "yes"
    run: "touch {{ .vars.dir | q }}/skipped"
  - name: taken
    on: host0
    when: '{{ if eq .vars.flag "no" }}true{{ else }}false{{ end }}'
    run: "touch {{ .vars.dir | q }}/taken"
  - name: hostile output
    on: host1
    run: {cmd: "printf '%s' \"a b; \\$(touch \"{{ .vars.dir | q }}\"/pwned) \\` + "`" + `touch \"{{ .vars.dir | q }}\"/pwned2\\` + "`" + ` 'q'\"", readonly: true}
    register: hostile
  - name: use it
    on: host0
    run: "printf '%s' {{ .reg.hostile.stdout | q }} > {{ .vars.dir | q }}/out"
`
	r := c.run(t, c.session(t, src, map[string]string{"dir": dir}))
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var attempts []int
	for _, ev := range r.of(journal.HostEnd) {
		if ev.Step == 0 {
			attempts = append(attempts, ev.Attempt)
		}
	}
	if !slices.Equal(attempts, []int{3}) || readFile(t, filepath.Join(dir, "count")) != "3\n" {
		t.Errorf("retries: attempts %v, count %q; want success on the 3rd try", attempts, readFile(t, filepath.Join(dir, "count")))
	}
	if st := r.step(t, 1); st.Type != journal.StepSkip || st.Status != journal.StatusSkipped {
		t.Errorf("when false: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "skipped")); err == nil {
		t.Error("a step whose when: is false ran")
	}
	if _, err := os.Stat(filepath.Join(dir, "taken")); err != nil {
		t.Errorf("a step whose when: is true did not run: %v", err)
	}
	want := "a b; $(touch " + dir + "/pwned) `touch " + dir + "/pwned2` 'q'"
	if got := readFile(t, filepath.Join(dir, "out")); got != want {
		t.Errorf("registered stdout came through as %q, want %q", got, want)
	}
	for _, p := range []string{"pwned", "pwned2"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("registered output was run by a shell: %s exists", p)
		}
	}
}

func TestTimeoutFailsFast(t *testing.T) {
	c := newCluster(t, 2)
	// A literal timeout, and one templated from a variable (as the
	// playbooks take theirs from the inventory's policy).
	for _, tc := range []struct{ name, timeout string }{
		{"literal", "300ms"},
		{"templated", `"{{ .vars.limit }}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := `
name: slow
vars: {limit: 1h}
steps:
  - name: sleeps
    on: host0
    timeout: ` + tc.timeout + `
    run: "sleep 5"
`
			start := time.Now()
			r := c.run(t, c.session(t, src, map[string]string{"limit": "300ms"}))
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("timeout of 300ms took %s", took)
			}
			if !errors.Is(r.err, ErrStepFailed) || !strings.Contains(r.err.Error(), "timed out after 300ms") {
				t.Errorf("err = %v, want a step failure that says it timed out", r.err)
			}
		})
	}
}

// TestSkippedStepRegisters: a step skipped by when: still registers, with
// skipped true and empty output, so that a later step can pick whichever
// of two alternatives ran; resume rebuilds it from the journal.
func TestSkippedStepRegisters(t *testing.T) {
	c := newCluster(t, 2)
	src := `
name: alternatives
steps:
  - name: not this way
    on: host0
    when: "false"
    run: "echo a"
    register: a
  - name: this way
    on: host0
    run: "echo b"
    register: b
  - name: whichever ran
    on: host0
    run: 'echo {{ .reg.a.skipped | q }} {{ .reg.b.skipped | q }} {{ default .reg.b.stdout .reg.a.stdout | trim | q }}'
    register: pick
`
	r := c.run(t, c.session(t, src, nil))
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	var got string
	for _, ev := range r.of(journal.StepEnd) {
		if ev.StepName == "whichever ran" {
			got = strings.TrimSpace(fmt.Sprint(ev.Registered["pick"].(map[string]any)["stdout"]))
		}
	}
	if got != "true false b" {
		t.Errorf("later step saw %q, want \"true false b\"", got)
	}
	st := StateFromJournal(r.events)
	if reg, ok := st.Registered["a"]; !ok || !reg.Skipped {
		t.Errorf("resume state: registered a = %v, want skipped true", st.Registered["a"])
	}
}

// TestBoolVarOverride: --var flag=false on a boolean variable is false in
// templates, also inside and/or (where the string "false" would be true).
func TestBoolVarOverride(t *testing.T) {
	c := newCluster(t, 2)
	src := `
name: flags
vars: {flag: true}
steps:
  - name: only with the flag
    on: host0
    when: "{{ and .vars.flag true }}"
    run: "true"
`
	r := c.run(t, c.session(t, src, map[string]string{"flag": "false"}))
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	if len(r.of(journal.StepSkip)) != 1 || len(r.of(journal.StepEnd)) != 0 {
		t.Errorf("with --var flag=false the step ran (skips %d, ends %d)", len(r.of(journal.StepSkip)), len(r.of(journal.StepEnd)))
	}
}
