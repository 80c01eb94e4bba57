package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
)

// crashRunbook counts its first step per host, changes a file in its
// second, waits in its third for DIR/go to exist, then marks the hosts.
const crashRunbook = `name: crash
vars: {dir: ""}
steps:
  - name: count
    on: [host0, host1]
    run: "echo x >> {{ .vars.dir | q }}/{{ .host.name | q }}.count"
    undo: "echo undo >> {{ .vars.dir | q }}/{{ .host.name | q }}.undo"
  - name: conf
    on: [host0, host1]
    put: {path: "{{ .vars.dir }}/{{ .host.name }}.conf", content: "new\n", mode: "0600"}
  - name: wait for go
    on: [host0, host1]
    wait: {cmd: "test -e {{ .vars.dir | q }}/go", interval: 50ms, deadline: 2m}
  - name: after
    on: [host0, host1]
    run: "echo y >> {{ .vars.dir | q }}/{{ .host.name | q }}.after"
`

// startBlocked starts `sgerun run` in the background and waits until it is
// in the wait step; it returns the process and the run's directory.
func (e *env) startBlocked(rb, data string) (*os.Process, string, func() result) {
	e.t.Helper()
	cmd, stdout, stderr := e.command("run", rb, "-i", e.inv, "--var", "dir="+data)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		err := cmd.Wait()
		r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
		if err != nil && r.code == 0 {
			r.code = -1
		}
		done <- r
	}()
	var runDir string
	waitFor(e.t, "the run to reach the wait step", 30*time.Second, func() bool {
		dirs, _ := filepath.Glob(filepath.Join(e.state, "runs", "*"))
		if len(dirs) != 1 {
			return false
		}
		runDir = dirs[0]
		_, events, _ := journal.Read(runDir)
		for _, ev := range events {
			if ev.Type == journal.HostStart && ev.Step == 2 {
				return true
			}
		}
		return false
	})
	return cmd.Process, runDir, func() result { return <-done }
}

func setupCrashData(t *testing.T) string {
	data := t.TempDir()
	for _, h := range []string{"host0", "host1"} {
		p := filepath.Join(data, h+".conf")
		os.WriteFile(p, []byte("old\n"), 0o640)
		os.Chmod(p, 0o640)
	}
	return data
}

func TestKillThenResume(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	rb := e.file("crash.yaml", crashRunbook)
	data := setupCrashData(t)
	proc, runDir, wait := e.startBlocked(rb, data)
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if r := wait(); r.code != -1 {
		t.Fatalf("killed run exited %v", r)
	}
	runID := filepath.Base(runDir)

	_, events, err := journal.Read(runDir)
	if err != nil {
		t.Fatal(err)
	}
	ended, started := map[int]string{}, map[int]bool{}
	for _, ev := range events {
		switch ev.Type {
		case journal.StepEnd:
			ended[ev.Step] = ev.Status
		case journal.StepStart:
			started[ev.Step] = true
		case journal.RunEnd:
			t.Fatal("a killed run has a run_end")
		}
	}
	if ended[0] != journal.StatusOK || ended[1] != journal.StatusOK || !started[2] || ended[2] != "" {
		t.Fatalf("journal after SIGKILL: ended %v, started %v", ended, started)
	}
	if sh := e.sgerun("show", runID); sh.code != 0 || !strings.Contains(sh.stdout, "sgerun resume "+runID) {
		t.Errorf("show of a killed run: %v", sh)
	}

	// The dead run still holds the lock: another run sees it as stale, is
	// told why and how to take it over, and does not run.
	other := t.TempDir()
	r := e.sgerun("run", rb, "-i", e.inv, "--var", "dir="+other)
	if r.code != 3 || !strings.Contains(r.stderr, "stale lock") || !strings.Contains(r.stderr, "is not running") ||
		!strings.Contains(r.stderr, "--force") || !strings.Contains(r.stderr, runID) {
		t.Fatalf("new run against a dead run's lock: %v", r)
	}
	if left, _ := filepath.Glob(filepath.Join(other, "*")); len(left) != 0 {
		t.Fatalf("a refused run changed %v", left)
	}

	if err := os.WriteFile(filepath.Join(data, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Resuming the run that left the lock takes it over without --force.
	r = e.sgerun("resume", runID)
	if r.code != 0 {
		t.Fatalf("resume: %v", r)
	}
	for _, h := range []string{"host0", "host1"} {
		if got := readString(t, filepath.Join(data, h+".count")); got != "x\n" {
			t.Errorf("%s: step 1 ran again on resume: %q", h, got)
		}
		if got := readString(t, filepath.Join(data, h+".after")); got != "y\n" {
			t.Errorf("%s: last step: %q", h, got)
		}
		if got := readString(t, filepath.Join(data, h+".conf")); got != "new\n" {
			t.Errorf("%s conf = %q", h, got)
		}
	}
	_, events, _ = journal.Read(runDir)
	if last := events[len(events)-1]; last.Type != journal.RunEnd || last.Status != journal.StatusOK {
		t.Errorf("last event after resume: %+v", last)
	}
	starts := map[int]int{}
	for _, ev := range events {
		if ev.Type == journal.StepStart {
			starts[ev.Step]++
		}
	}
	if starts[0] != 1 || starts[1] != 1 || starts[3] != 1 {
		t.Errorf("step starts %v: steps 1-2 must start once, before the kill", starts)
	}
	if exists(journal.LockPath(e.state, e.inv)) {
		t.Error("resume left the lock behind")
	}
	if r := e.sgerun("resume", runID); r.code != 2 || !strings.Contains(r.stderr, "already ended") {
		t.Errorf("second resume: %v", r)
	}
}

func TestKillThenRollback(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	rb := e.file("crash.yaml", crashRunbook)
	data := setupCrashData(t)
	proc, runDir, wait := e.startBlocked(rb, data)
	proc.Signal(syscall.SIGKILL)
	wait()
	runID := filepath.Base(runDir)

	// --force takes a dead run's lock over for a new run.
	noop := e.file("noop.yaml", "name: noop\nsteps: [{name: a, on: host0, run: \"true\"}]\n")
	if r := e.sgerun("run", noop, "-i", e.inv); r.code != 3 || !strings.Contains(r.stderr, "stale lock") {
		t.Fatalf("run without --force: %v", r)
	}
	if r := e.sgerun("run", noop, "-i", e.inv, "--force"); r.code != 0 {
		t.Fatalf("run --force over a stale lock: %v", r)
	}
	if exists(journal.LockPath(e.state, e.inv)) {
		t.Fatal("lock left after the forced run")
	}

	if r := e.sgerun("rollback", runID); r.code != 0 {
		t.Fatalf("rollback: %v", r)
	}
	for _, h := range []string{"host0", "host1"} {
		p := filepath.Join(data, h+".conf")
		if got := readString(t, p); got != "old\n" {
			t.Errorf("%s conf = %q after rollback", h, got)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
			t.Errorf("%s conf mode %v after rollback", h, fi.Mode())
		}
		if got := readString(t, filepath.Join(data, h+".undo")); got != "undo\n" {
			t.Errorf("%s explicit undo: %q", h, got)
		}
	}
	// Rolling back again undoes nothing twice.
	if r := e.sgerun("rollback", runID); r.code != 0 {
		t.Fatalf("second rollback: %v", r)
	}
	for _, h := range []string{"host0", "host1"} {
		if got := readString(t, filepath.Join(data, h+".undo")); got != "undo\n" {
			t.Errorf("%s undone twice: %q", h, got)
		}
	}
	_, events, _ := journal.Read(runDir)
	if last := events[len(events)-1]; last.Type != journal.RunEnd || last.Status != journal.StatusRolledBack {
		t.Errorf("last event: %+v", last)
	}
}

func TestConcurrentRunsLocked(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 2})
	rb := e.file("crash.yaml", crashRunbook)
	data := setupCrashData(t)
	_, _, wait := e.startBlocked(rb, data)

	r := e.sgerun("run", rb, "-i", e.inv, "--var", "dir="+t.TempDir())
	if r.code != 3 || !strings.Contains(r.stderr, "another run holds") {
		t.Errorf("second run: %v", r)
	}
	// --force does not take over a live run's lock.
	if r := e.sgerun("run", rb, "-i", e.inv, "--force", "--var", "dir="+t.TempDir()); r.code != 3 {
		t.Errorf("second run with --force: %v", r)
	}
	os.WriteFile(filepath.Join(data, "go"), nil, 0o644)
	if r := wait(); r.code != 0 {
		t.Fatalf("first run: %v", r)
	}
	if exists(journal.LockPath(e.state, e.inv)) {
		t.Error("lock left after the run")
	}
}
