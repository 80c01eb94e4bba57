package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// Issue 9's scenarios of the takeover's second design: the commit point
// (no rollback once the new qmaster answers), no orphan qmaster after a
// start that times out, resume checking its gates again, and fencing that
// must work, or be waived explicitly, before anything is copied.

const (
	cmStepQping = "wait for the new qmaster to answer qping"
	cmStepStart = "start qmaster on the shadow"
	cmStepFence = "fence the old master"
	cmStepGate  = "partition gate"
)

// cmBindMount bind-mounts src over dst in host's own mount namespace and
// registers the umount as a cleanup; it returns the umount.
func cmBindMount(t *testing.T, l *lab.Lab, host, src, dst string) func() error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, stderr, err := l.Exec(ctx, host, "mount --bind "+shell.Quote(src)+" "+shell.Quote(dst)); err != nil {
		t.Fatalf("bind-mount %s over %s on %s: %v %s", src, dst, host, err, stderr)
	}
	umount := func() error {
		uctx, ucancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ucancel()
		_, _, err := l.Exec(uctx, host, "! mountpoint -q "+shell.Quote(dst)+" || umount "+shell.Quote(dst))
		return err
	}
	t.Cleanup(func() { _ = umount() })
	return umount
}

// cmSeq returns the sequence number of the first event of type typ for
// step, or -1.
func cmSeq(events []journal.Event, typ, step string) int {
	for _, ev := range events {
		if ev.Type == typ && ev.StepName == step {
			return ev.Seq
		}
	}
	return -1
}

// TestCommitFailureAfterCommit: every execd restart fails (the execd rc
// script is /bin/false on every exec host), which is after the commit
// point. Nothing is rolled back: the run ends committed with failures
// (exit 5) with every exec host named, the remaining steps ran, the new
// qmaster keeps serving, `sgerun rollback` refuses, and once the rc script
// works again `sgerun resume` repairs forward and the jobs that spanned
// the takeover end with exit 0.
func TestCommitFailureAfterCommit(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	jobs := submitJobs(t, l, l.ExecHosts()[0], 3, 75*time.Second)
	waitRunning(t, l, l.Master(), jobs, 2*time.Minute)
	rc := filepath.Join(l.CommonDir(), "sgeexecd")
	var umounts []func() error
	for _, h := range l.ExecHosts() {
		umounts = append(umounts, cmBindMount(t, l, h, "/bin/false", rc))
	}
	partition(t, l, l.Master(), lab.NetSched)
	before := runIDs(t, l)
	r := runSgerun(t, l, 10*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	t.Logf("takeover with every execd restart failing:\n%s", formatResult(r))
	toWantCode(t, r, 5, "takeover failing after the commit point")
	runID := newRunID(t, l, before)
	events := ftEvents(t, l, runID)
	commit, execd := cmSeq(events, journal.Commit, cmStepQping), cmSeq(events, journal.StepStart, ftStepExecd)
	if commit < 0 || execd < 0 || commit > execd {
		t.Errorf("journal: commit at #%d, execd step start at #%d; want the commit first", commit, execd)
	}
	if ftFind(events, journal.RollbackStart, "", "") != nil {
		t.Errorf("journal: a rollback started after the commit point")
	}
	if end := ftFind(events, journal.StepEnd, ftStepExecd, ""); end == nil || end.Status != journal.StatusFailed || len(end.Failed) != len(l.ExecHosts()) {
		t.Errorf("journal: %q ended %+v, want failed on all %d exec hosts", ftStepExecd, end, len(l.ExecHosts()))
	}
	for _, step := range []string{"record the takeover for the anti-flap window", "release the takeover lock"} {
		if end := ftFind(events, journal.StepEnd, step, ""); end == nil || end.Status != journal.StatusOK {
			t.Errorf("journal: %q after the failure ended %+v, want ok", step, end)
		}
	}
	if st := runStatus(t, l, runID); st != journal.StatusCommittedWithFailures {
		t.Errorf("run status %q, want %q", st, journal.StatusCommittedWithFailures)
	}
	for _, h := range l.ExecHosts() {
		if !strings.Contains(r.Stdout+r.Stderr, h) {
			t.Errorf("the output does not name the failed exec host %s", h)
		}
	}
	ftAssertShadowServes(t, l)

	// A rollback would stop the only qmaster: refused, nothing changes.
	rb := runSgerun(t, l, 2*time.Minute, "rollback", runID)
	toWantCode(t, rb, 3, "rollback of a committed run")
	if !strings.Contains(rb.Stdout+rb.Stderr, "commit point") {
		t.Errorf("rollback refusal does not name the commit point:\n%s", formatResult(rb))
	}
	ftAssertShadowServes(t, l)

	// Repair forward: the rc script works again, resume restarts the execds.
	for _, u := range umounts {
		if err := u(); err != nil {
			t.Fatalf("umount: %v", err)
		}
	}
	rs := runSgerun(t, l, 5*time.Minute, "resume", runID)
	t.Logf("resume:\n%s", formatResult(rs))
	toWantCode(t, rs, 0, "resume of the committed run")
	for _, h := range l.ExecHosts() {
		if pids := pgrep(t, l, h, "sge_execd"); len(pids) != 1 {
			t.Errorf("%s runs sge_execd %v after resume, want one", h, pids)
		}
	}
	checkJobsExitZero(t, l, l.Shadow(), jobs, 3*time.Minute)
}

// TestStartTimeoutNoOrphan: the qmaster rc script starts sge_qmaster on the
// shadow and then hangs, so the start step times out. The start's undo was
// journaled before the start; the rollback finds the qmaster by its
// process and stops it: no sge_qmaster runs on the shadow afterwards, and
// bootstrap and act_qmaster are back byte for byte.
func TestStartTimeoutNoOrphan(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	inv := ftInventory(t, l, "inventory-slowstart", "qmaster_start_timeout: 15s")
	rc := filepath.Join(l.CommonDir(), "sgemaster")
	real := filepath.Join(l.StateDir(), "sgemaster.real")
	data, err := os.ReadFile(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, data, 0o755); err != nil {
		t.Fatal(err)
	}
	hang := filepath.Join(l.StateDir(), "sgemaster.hang")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\n"+shell.Quote(real)+" \"$@\"\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmBindMount(t, l, l.Shadow(), hang, rc)
	boot0, act0 := ftStat(t, bootstrapPath(l)), ftStat(t, actQmasterPath(l))
	partition(t, l, l.Master(), lab.NetSched)
	before := runIDs(t, l)
	r := runSgerun(t, l, 10*time.Minute, "takeover", "--inventory", inv, "--yes")
	t.Logf("takeover with a hanging qmaster start:\n%s", formatResult(r))
	toWantCode(t, r, 1, "takeover whose qmaster start times out")
	runID := newRunID(t, l, before)
	events := ftEvents(t, l, runID)
	prep, end := cmSeq(events, journal.UndoPrepared, cmStepStart), ftFind(events, journal.HostEnd, cmStepStart, l.Shadow())
	if prep < 0 || end == nil || prep > end.Seq || end.Status != journal.StatusFailed || !strings.Contains(end.Error, "timed out") {
		t.Errorf("journal: start undo prepared at #%d, start host_end %+v; want the undo first and the start timed out", prep, end)
	}
	if u := ftFind(events, journal.UndoEnd, cmStepStart, l.Shadow()); u == nil || u.Status != journal.StatusOK {
		t.Errorf("journal: the start's undo ended %+v, want ok", u)
	} else if u.Output != nil {
		t.Logf("start undo: %s", strings.TrimSpace(u.Output.Stdout))
	}
	if pids := pgrep(t, l, l.Shadow(), "sge_qmaster"); len(pids) > 0 {
		t.Errorf("sge_qmaster %v still runs on %s after the rollback", pids, l.Shadow())
	}
	ftSameFile(t, "bootstrap", boot0, ftStat(t, bootstrapPath(l)))
	ftSameFile(t, "act_qmaster", act0, ftStat(t, actQmasterPath(l)))
	if left := takeoverLeftovers(l); len(left) > 0 {
		t.Errorf("after the rollback, left over: %v", left)
	}
}

// TestKillDuringCopyResume: the takeover is SIGKILLed while it copies the
// spool; `sgerun resume` runs the gates and the lock check again before it
// goes on (a gate that passed before the kill proves nothing now), then
// completes the takeover.
func TestKillDuringCopyResume(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	partition(t, l, l.Master(), lab.NetSched)
	runID := ftKillTakeoverAt(t, l, l.InventoryPath(), journal.HostStart, "copy the spool")
	n := len(ftEvents(t, l, runID))
	r := runSgerun(t, l, 10*time.Minute, "resume", runID)
	t.Logf("resume after a kill during the copy:\n%s", formatResult(r))
	toWantCode(t, r, 0, "resume")
	after := ftEvents(t, l, runID)[n:]
	for _, step := range []string{"the shadow can be reached", "take the takeover lock", cmStepGate} {
		if end := ftFind(after, journal.StepEnd, step, ""); end == nil || end.Status != journal.StatusOK {
			t.Errorf("resume: %q did not run again (step_end %+v)", step, end)
		}
	}
	if ftFind(after, journal.StepStart, cmStepFence, "") != nil {
		t.Errorf("resume fenced again although the fence had ended before the kill")
	}
	gate, copyStart := cmSeq(after, journal.StepEnd, cmStepGate), cmSeq(after, journal.StepStart, "copy the spool")
	if gate < 0 || copyStart < 0 || gate > copyStart {
		t.Errorf("resume: gate under the lock ended at #%d, copy started at #%d; want the gate first", gate, copyStart)
	}
	ftAssertShadowServes(t, l)
}

// TestUnfenced: the master is cut off on both networks and the inventory
// has no fence_command, so no way to fence it works. `takeover --yes`
// refuses (exit 3) and changes nothing; `--yes --unfenced` proceeds and
// says so, and a pending fence is recorded. `sgerun watch` on the same
// outage refuses too and says why in its takeover_end event.
func TestUnfenced(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	waitSeqnums(t, l)
	partition(t, l, l.Master(), lab.NetAll)
	boot0, act0 := ftStat(t, bootstrapPath(l)), ftStat(t, actQmasterPath(l))
	spool0 := spoolTree(t, l)

	// watch, unattended: refuses, with the reason in its event.
	w := wtStartWatch(t, l, l.InventoryPath(), 2*time.Second, 4*time.Second)
	end := w.waitEvent(t, 3*time.Minute, "takeover_end", wtIs("takeover_end"))
	w.stop(t)
	if end.ExitCode == nil || *end.ExitCode != 3 || !strings.Contains(end.Error, "cannot fence") {
		t.Errorf("watch takeover_end: exit %v error %q, want 3 and \"cannot fence\"", wtCode(end.ExitCode), end.Error)
	}

	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	toWantCode(t, r, 3, "takeover --yes with no way to fence")
	if !strings.Contains(r.Stdout+r.Stderr, "cannot fence the old master") || !strings.Contains(r.Stdout+r.Stderr, "--unfenced") {
		t.Errorf("the refusal does not say the master cannot be fenced and how to go on:\n%s", formatResult(r))
	}
	ftSameFile(t, "bootstrap", boot0, ftStat(t, bootstrapPath(l)))
	ftSameFile(t, "act_qmaster", act0, ftStat(t, actQmasterPath(l)))
	checkNothingChanged(t, l, "refused unfenced takeover", spool0, spoolTree(t, l))
	if left := takeoverLeftovers(l); len(left) > 0 {
		t.Errorf("after the refusal, left over: %v", left)
	}
	if pids := pgrep(t, l, l.Shadow(), "sge_qmaster"); len(pids) > 0 {
		t.Errorf("sge_qmaster %v runs on the shadow after the refusal", pids)
	}

	before := runIDs(t, l)
	r = runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes", "--unfenced")
	t.Logf("takeover --unfenced:\n%s", formatResult(r))
	toWantCode(t, r, 0, "takeover --yes --unfenced")
	if !strings.Contains(r.Stdout, "UNFENCED") {
		t.Errorf("the unfenced takeover does not say so:\n%s", formatResult(r))
	}
	runID := newRunID(t, l, before)
	if f := ftFind(ftEvents(t, l, runID), journal.HostEnd, cmStepFence, ""); f == nil || f.Data["method"] != "unfenced" {
		t.Errorf("journal: fence host_end %+v, want method unfenced", f)
	}
	ftAssertShadowServes(t, l)
	st := runSgerun(t, l, 2*time.Minute, "status", "--inventory", l.InventoryPath())
	if !strings.Contains(st.Stdout, "pending fence") || !strings.Contains(st.Stdout, runID) {
		t.Errorf("status does not report the pending fence of run %s:\n%s", runID, formatResult(st))
	}
}

// TestExecdIgnoresSoftstop: the execd of one exec host is stopped
// (SIGSTOP) with two jobs running under it, so it ignores softstop's
// SIGTERM. The takeover SIGKILLs that execd by its own pid alone, never its
// process group, and starts a new one: the run succeeds, the host reports
// to the new qmaster, and its jobs, whose shepherds survived, end with
// exit 0.
func TestExecdIgnoresSoftstop(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	jobs := submitJobs(t, l, l.ExecHosts()[0], 4, 60*time.Second)
	hostOf := map[int]string{}
	waitUntil(t, 2*time.Minute, time.Second, "all jobs running", func() (bool, error) {
		m, err := ftRunningJobs(l, l.Master())
		if err != nil {
			return false, err
		}
		hostOf = m
		for _, j := range jobs {
			if m[j.ID] == "" {
				return false, nil
			}
		}
		return true, nil
	})
	stuck := l.ExecHosts()[0]
	old := onePID(t, l, stuck, "sge_execd")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := l.Exec(ctx, stuck, "kill -STOP "+strconv.Itoa(old)); err != nil {
		t.Fatalf("SIGSTOP sge_execd %d on %s: %v", old, stuck, err)
	}
	t.Logf("sge_execd %d on %s stopped; jobs by host: %v", old, stuck, hostOf)
	partition(t, l, l.Master(), lab.NetSched)
	before := runIDs(t, l)
	r := runSgerun(t, l, 10*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	t.Logf("takeover with a stuck execd:\n%s", formatResult(r))
	toWantCode(t, r, 0, "takeover with an execd that ignores softstop")
	runID := newRunID(t, l, before)
	he := ftFind(ftEvents(t, l, runID), journal.HostEnd, ftStepExecd, stuck)
	if he == nil || he.Output == nil || !strings.Contains(he.Output.Stdout, "ignored SIGTERM: SIGKILL "+strconv.Itoa(old)) {
		t.Errorf("journal: %q on %s: %+v, want it to say the execd ignored SIGTERM and was SIGKILLed", ftStepExecd, stuck, he)
	}
	if pids := pgrep(t, l, stuck, "sge_execd"); len(pids) != 1 || pids[0] == old {
		t.Errorf("%s runs sge_execd %v, want one new one (old %d)", stuck, pids, old)
	}
	ftAssertShadowServes(t, l)
	checkJobsExitZero(t, l, l.Shadow(), jobs, 3*time.Minute)
}
