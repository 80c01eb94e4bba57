package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
)

// commitRunbook changes a file, then has a commit point and a step that
// fails on both hosts (commitFirst: in that order), then a step that logs.
func commitRunbook(commitFirst bool) string {
	commit := `
  - name: commit here
    on: host0
    commit: true
    run: {cmd: "true", readonly: true}`
	breaks := `
  - name: breaks
    on: [host0, host1]
    run: "echo broken on {{ .host.name | q }} >&2; exit 3"`
	middle := commit + breaks
	if !commitFirst {
		middle = breaks + commit
	}
	return `
name: commit
vars: {dir: ""}
steps:
  - name: change
    on: host0
    run: "echo change >> {{ .vars.dir | q }}/log"
    undo: "echo undone >> {{ .vars.dir | q }}/log"` + middle + `
  - name: after
    on: host0
    run: "echo after >> {{ .vars.dir | q }}/log"
`
}

// TestCommitPointNoRollback: a failure after the commit point is not rolled
// back; the remaining steps run, and the run ends committed with failures
// naming every failed host.
func TestCommitPointNoRollback(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	r := c.run(t, c.session(t, commitRunbook(true), map[string]string{"dir": dir}))
	if !errors.Is(r.err, ErrCommittedWithFailures) {
		t.Fatalf("err = %v, want ErrCommittedWithFailures", r.err)
	}
	for _, want := range []string{`"breaks"`, "host0: exit status 3: broken on host0", "host1: exit status 3: broken on host1"} {
		if !strings.Contains(r.err.Error(), want) {
			t.Errorf("err = %v, want it to name %q", r.err, want)
		}
	}
	if got := readFile(t, filepath.Join(dir, "log")); got != "change\nafter\n" {
		t.Errorf("log = %q, want the change kept and the last step run", got)
	}
	if n := len(r.of(journal.RollbackStart)); n != 0 {
		t.Errorf("%d rollback(s) after the commit point, want none", n)
	}
	commits := r.of(journal.Commit)
	if len(commits) != 1 || commits[0].StepName != "commit here" || commits[0].Seq > r.step(t, 2).Seq {
		t.Errorf("commit events %+v, want one, for \"commit here\", before the failing step ended", commits)
	}
	if r.out.Status != journal.StatusCommittedWithFailures {
		t.Errorf("status %q, want %q", r.out.Status, journal.StatusCommittedWithFailures)
	}
	if StatusOf(r.err, false) != journal.StatusCommittedWithFailures {
		t.Errorf("StatusOf = %q", StatusOf(r.err, false))
	}
}

// TestFailureBeforeCommitRollsBack: the same failure before the commit
// point rolls back as always.
func TestFailureBeforeCommitRollsBack(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	r := c.run(t, c.session(t, commitRunbook(false), map[string]string{"dir": dir}))
	if !errors.Is(r.err, ErrStepFailed) || errors.Is(r.err, ErrCommittedWithFailures) {
		t.Fatalf("err = %v, want ErrStepFailed", r.err)
	}
	if got := readFile(t, filepath.Join(dir, "log")); got != "change\nundone\n" {
		t.Errorf("log = %q, want the change undone", got)
	}
	if n := len(r.of(journal.Commit)); n != 0 {
		t.Errorf("%d commit event(s), want none", n)
	}
}

// TestExplicitUndoJournaledAhead: a step that starts something and then
// times out (a qmaster start whose rc script hangs) still has its undo:
// it was journaled before the step ran, and the rollback runs it.
func TestExplicitUndoJournaledAhead(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	src := `
name: hang
vars: {dir: ""}
steps:
  - name: start and hang
    on: host0
    timeout: 500ms
    run: "echo started >> {{ .vars.dir | q }}/log; sleep 5"
    undo: "echo stopped >> {{ .vars.dir | q }}/log"
`
	r := c.run(t, c.session(t, src, map[string]string{"dir": dir}))
	if !errors.Is(r.err, ErrStepFailed) || !strings.Contains(r.err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timed-out step failure", r.err)
	}
	prepared := r.of(journal.UndoPrepared)
	ends := r.of(journal.HostEnd)
	if len(prepared) != 1 || len(ends) != 1 || prepared[0].Seq > ends[0].Seq {
		t.Fatalf("undo_prepared %+v, host_end %+v: want the undo journaled before the step ended", prepared, ends)
	}
	if got := readFile(t, filepath.Join(dir, "log")); got != "started\nstopped\n" {
		t.Errorf("log = %q, want the start undone by the rollback", got)
	}
}

// lockRunbook takes a lock, then waits at a step until a file exists.
const lockRunbook = `
name: locked
vars: {dir: ""}
steps:
  - name: lock
    on: host0
    lock_file: {path: "{{ .vars.dir }}/lock", holder: "run {{ .run.id }}"}
  - name: waits
    on: host0
    run: "i=0; while [ ! -e {{ .vars.dir | q }}/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; echo waited >> {{ .vars.dir | q }}/log"
`

// interruptAt starts s and cancels it once host_start of step is seen; it
// returns the run's directory.
func interruptAt(t *testing.T, s *Session, step string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Observe = func(ev journal.Event) {
		if ev.Type == journal.HostStart && ev.StepName == step {
			cancel()
		}
	}
	out, err := s.Start(ctx)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	return out.Dir
}

// TestResumeRechecks: resume runs a lock (like gates and asserts, a step
// that decides whether the run may go on) again: it passes while the run
// still holds its lock, and a resume refuses once another run holds it.
func TestResumeRechecks(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	runDir := interruptAt(t, c.session(t, lockRunbook, map[string]string{"dir": dir}), "waits")
	writeFile(t, filepath.Join(dir, "go"), "", 0o644)

	// Another holder now: the resume checks again and refuses.
	writeFile(t, filepath.Join(dir, "lock"), "someone else\n", 0o644)
	s := c.session(t, lockRunbook, nil)
	s.Plan = resumePlan(t, c.inv, runDir)
	_, err := s.Resume(context.Background(), runDir)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("resume with the lock taken by another: err = %v, want ErrRefused", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Errorf("the step after the lock ran although the re-check refused")
	}
	if got := readFile(t, filepath.Join(dir, "lock")); got != "someone else\n" {
		t.Errorf("the refused resume's rollback touched another run's lock: %q", got)
	}

	// The run's own lock: the re-check passes and the run completes.
	runDir = interruptAt(t, c.session(t, lockRunbook, map[string]string{"dir": t.TempDir()}), "waits")
	_, events, _ := journal.Read(runDir)
	n := len(events)
	s = c.session(t, lockRunbook, nil)
	s.Plan = resumePlan(t, c.inv, runDir)
	lockDir := lockDirOf(t, events)
	writeFile(t, filepath.Join(lockDir, "go"), "", 0o644)
	if _, err := s.Resume(context.Background(), runDir); err != nil {
		t.Fatalf("resume holding its own lock: %v", err)
	}
	_, events, _ = journal.Read(runDir)
	rechecked := false
	for _, ev := range events[n:] {
		if ev.Type == journal.StepEnd && ev.StepName == "lock" && ev.Status == journal.StatusOK {
			rechecked = true
		}
	}
	if !rechecked {
		t.Errorf("resume did not run the lock step again")
	}
	if got := readFile(t, filepath.Join(lockDir, "log")); got != "waited\n" {
		t.Errorf("log = %q", got)
	}
}

// lockDirOf finds the directory of the lock a run took, from its journal.
func lockDirOf(t *testing.T, events []journal.Event) string {
	t.Helper()
	for _, ev := range events {
		if ev.Type == journal.HostStart && ev.StepName == "lock" {
			if p, ok := ev.Data["params"].(map[string]any); ok {
				if path, ok := p["path"].(string); ok {
					return filepath.Dir(path)
				}
			}
		}
	}
	t.Fatal("no lock step in the journal")
	return ""
}

// resumePlan compiles the runbook saved in a run directory with the run's
// overrides, as `sgerun resume` does.
func resumePlan(t *testing.T, inv *inventory.Inventory, runDir string) *plan.Plan {
	t.Helper()
	rb, err := runbook.Load(filepath.Join(runDir, journal.RunbookFile))
	if err != nil {
		t.Fatal(err)
	}
	meta, _, err := journal.Read(runDir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(rb, inv, meta.Vars)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRollbackOfCommittedRunRefused: once a run passed its commit point,
// `sgerun rollback` refuses, unless forced.
func TestRollbackOfCommittedRunRefused(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	src := `
name: committed
vars: {dir: ""}
steps:
  - name: change
    on: host0
    run: "echo change >> {{ .vars.dir | q }}/log"
    undo: "echo undone >> {{ .vars.dir | q }}/log"
  - name: serves
    on: host0
    commit: true
    run: {cmd: "true", readonly: true}
  - name: slow
    on: host0
    run: "sleep 5"
`
	s := c.session(t, src, map[string]string{"dir": dir})
	runDir := interruptAt(t, s, "slow")
	s = c.session(t, src, nil)
	if _, err := s.Rollback(context.Background(), runDir); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrCommitted) {
		t.Fatalf("rollback of a committed run: err = %v, want ErrRefused and ErrCommitted", err)
	}
	if got := readFile(t, filepath.Join(dir, "log")); got != "change\n" {
		t.Errorf("log = %q after the refused rollback", got)
	}
	s.Force = true
	if _, err := s.Rollback(context.Background(), runDir); err != nil {
		t.Fatalf("forced rollback: %v", err)
	}
	if got := readFile(t, filepath.Join(dir, "log")); got != "change\nundone\n" {
		t.Errorf("log = %q after the forced rollback", got)
	}
}

// TestStepWarnings: a command's "sgerun-warning: " lines are carried to the
// step's result in the journal, so that the output shows them.
func TestStepWarnings(t *testing.T) {
	c := newCluster(t, 2)
	src := `
name: warn
steps:
  - name: reports
    on: [host0, host1]
    run: {cmd: "echo ok; echo 'sgerun-warning: job 4 is in transfer'", readonly: true}
`
	r := c.run(t, c.session(t, src, nil))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if w := r.step(t, 0).Warnings; len(w) != 2 || w[0] != "job 4 is in transfer" {
		t.Errorf("step warnings %q, want the line once per host", w)
	}
}

// TestStopUndoesWhatTheRunDid: a run that finds nothing to do after it
// took a lock (the takeover's gate under its lock finds the shadow already
// serving) releases the lock and ends successfully.
func TestStopUndoesWhatTheRunDid(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	src := `
name: stops
vars: {dir: ""}
steps:
  - name: lock
    on: host0
    lock_file: {path: "{{ .vars.dir }}/lock", holder: "run {{ .run.id }}"}
  - name: nothing to do
    stop: {if: "true", msg: already there}
  - name: never
    on: host0
    run: "echo never >> {{ .vars.dir | q }}/log"
`
	r := c.run(t, c.session(t, src, map[string]string{"dir": dir}))
	if r.err != nil || r.out.Status != journal.StatusOK {
		t.Fatalf("err = %v, status %q; want a successful run", r.err, r.out.Status)
	}
	if _, err := os.Stat(filepath.Join(dir, "lock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock is left after a stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "log")); err == nil {
		t.Errorf("a step after the stop ran")
	}
	if n := len(r.of(journal.UndoEnd)); n != 1 {
		t.Errorf("%d undo(s) journaled, want 1 (the lock)", n)
	}
}
