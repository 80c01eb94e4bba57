package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// Issue 4's acceptance scenarios R5 (SIGKILL mid-takeover, then rollback
// or resume), R6 (qmaster does not start on the shadow: automatic
// rollback), R7 (an exec host is down during the takeover), shadow-setup
// (sge_shadowd takes over a hung master) and the idempotency of takeover.

// Step names of playbooks/takeover.yaml the scenarios refer to.
const (
	ftStepBootstrap  = "point bootstrap at the copy"
	ftStepActQmaster = "write act_qmaster"
	ftStepExecd      = "softstop and start every execd"
	ftStepVerifyJobs = "verify no job was lost"
)

// TestFaultR5KillRollback: the takeover is SIGKILLed right after bootstrap
// was pointed at the spool copy; `sgerun rollback` restores bootstrap and
// act_qmaster byte for byte and removes the copies and the takeover lock;
// a fresh takeover then succeeds, and a second one changes nothing.
func TestFaultR5KillRollback(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	boot0, act0 := ftStat(t, bootstrapPath(l)), ftStat(t, actQmasterPath(l))
	partition(t, l, l.Master(), lab.NetSched)

	runID := ftKillTakeoverAfterBootstrap(t, l, l.InventoryPath(), act0)

	start := time.Now()
	r := runSgerun(t, l, 5*time.Minute, "rollback", runID)
	t.Logf("sgerun rollback %s: exit %d in %s\n%s%s", runID, r.Code, time.Since(start).Round(time.Millisecond), r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("sgerun rollback: exit %d, want 0", r.Code)
	}
	ftSameFile(t, "bootstrap", boot0, ftStat(t, bootstrapPath(l)))
	ftSameFile(t, "act_qmaster", act0, ftStat(t, actQmasterPath(l)))
	if left := takeoverLeftovers(l); len(left) > 0 {
		t.Fatalf("after rollback, left over: %v", left)
	}
	events := ftEvents(t, l, runID)
	// the spool copy is one step (sge_copy_spool): one undo removes both
	// copies, which takeoverLeftovers above checks are gone
	if n := ftCountUndo(t, events); n < 3 {
		t.Errorf("rollback journaled %d successful undo(s), want at least 3 (lock, the spool copies, bootstrap)", n)
	}
	for _, kind := range []string{"unlock_file", "sge_remove_spool_copy", "restore_file"} {
		found := false
		for _, ev := range events {
			found = found || ev.Type == journal.UndoEnd && ev.Kind == kind && ev.Status == journal.StatusOK
		}
		if !found {
			t.Errorf("rollback journaled no successful %s undo", kind)
		}
	}
	if st := runStatus(t, l, runID); st != journal.StatusRolledBack {
		t.Errorf("run %s: status %q after rollback, want %q", runID, st, journal.StatusRolledBack)
	}

	// The same takeover, started afresh, now goes through.
	start = time.Now()
	r = runSgerun(t, l, 10*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	t.Logf("fresh takeover: exit %d in %s", r.Code, time.Since(start).Round(time.Millisecond))
	if r.Code != 0 {
		t.Fatalf("fresh takeover after the rollback: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	ftAssertShadowServes(t, l)
	ftAssertIdempotent(t, l, l.InventoryPath())
}

// TestFaultR5KillResume: the same SIGKILL, then `sgerun resume` completes
// the takeover: act_qmaster names the shadow, whose qmaster answers qping
// with status 0; a second takeover changes nothing.
func TestFaultR5KillResume(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	act0 := ftStat(t, actQmasterPath(l))
	partition(t, l, l.Master(), lab.NetSched)

	runID := ftKillTakeoverAfterBootstrap(t, l, l.InventoryPath(), act0)

	start := time.Now()
	r := runSgerun(t, l, 10*time.Minute, "resume", runID)
	t.Logf("sgerun resume %s: exit %d in %s\n%s%s", runID, r.Code, time.Since(start).Round(time.Millisecond), r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("sgerun resume: exit %d, want 0", r.Code)
	}
	if st := runStatus(t, l, runID); st != journal.StatusOK {
		t.Errorf("run %s: status %q after resume, want %q", runID, st, journal.StatusOK)
	}
	// The resumed run used the spool copy the killed run made.
	boot := string(ftStat(t, bootstrapPath(l)).Data)
	if d := kv(boot, "qmaster_spool_dir"); d != ftStamped(l.QmasterSpoolDir(), runID) {
		t.Errorf("bootstrap qmaster_spool_dir %q, want the killed run's copy %q", d, ftStamped(l.QmasterSpoolDir(), runID))
	}
	ftAssertShadowServes(t, l)
	ftAssertIdempotent(t, l, l.InventoryPath())
}

// TestFaultR6QmasterWontStart: sge_qmaster is /bin/false on the shadow
// only; the takeover fails (exit 1) and its automatic rollback leaves
// bootstrap and act_qmaster byte for byte as they were, removes the spool
// copies and the takeover lock, and journals every undo.
func TestFaultR6QmasterWontStart(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	inv := ftInventory(t, l, "inventory-r6", "qmaster_start_timeout: 20s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bin := ftQmasterBinary(t, l, l.Shadow())
	if _, _, err := l.Exec(ctx, l.Shadow(), "mount --bind /bin/false "+shell.Quote(bin)); err != nil {
		t.Fatalf("bind-mount /bin/false over %s on %s: %v", bin, l.Shadow(), err)
	}
	unmount := func() error {
		uctx, ucancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ucancel()
		_, _, err := l.Exec(uctx, l.Shadow(), "! mountpoint -q "+shell.Quote(bin)+" || umount "+shell.Quote(bin))
		return err
	}
	t.Cleanup(func() { _ = unmount() })
	// The bind mount must exist on the shadow only: not in the root
	// namespace (other labs), not on the master.
	falseInfo, err := os.Stat("/bin/false")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(bin); err != nil || fi.Size() == falseInfo.Size() {
		_ = unmount()
		t.Fatalf("the bind mount over %s leaked into the root mount namespace (stat %v)", bin, err)
	}
	sizeOn := func(host string) string {
		out, _, err := l.Exec(ctx, host, "stat -L -c %s "+shell.Quote(bin))
		if err != nil {
			t.Fatalf("stat %s on %s: %v", bin, host, err)
		}
		return strings.TrimSpace(out)
	}
	if s := sizeOn(l.Shadow()); s != strconv.FormatInt(falseInfo.Size(), 10) {
		t.Fatalf("on %s, %s has size %s, not that of /bin/false", l.Shadow(), bin, s)
	}
	if s := sizeOn(l.Master()); s == strconv.FormatInt(falseInfo.Size(), 10) {
		t.Fatalf("the bind mount over %s is visible on %s too", bin, l.Master())
	}
	t.Logf("sge_qmaster on %s is now /bin/false (bind mount over %s)", l.Shadow(), bin)

	boot0, act0 := ftStat(t, bootstrapPath(l)), ftStat(t, actQmasterPath(l))
	partition(t, l, l.Master(), lab.NetSched)
	before := runIDs(t, l)
	start := time.Now()
	r := runSgerun(t, l, 10*time.Minute, "takeover", "--inventory", inv, "--yes")
	took := time.Since(start)
	t.Logf("takeover with a broken qmaster: exit %d in %s\nstdout:\n%s\nstderr:\n%s", r.Code, took.Round(time.Millisecond), r.Stdout, r.Stderr)
	if r.Code != 1 {
		t.Fatalf("takeover: exit %d, want 1 (step failed, rollback completed)", r.Code)
	}
	ftSameFile(t, "bootstrap", boot0, ftStat(t, bootstrapPath(l)))
	ftSameFile(t, "act_qmaster", act0, ftStat(t, actQmasterPath(l)))
	if left := takeoverLeftovers(l); len(left) > 0 {
		t.Fatalf("after the automatic rollback, left over: %v", left)
	}
	runID := newRunID(t, l, before)
	events := ftEvents(t, l, runID)
	failed := ""
	for _, ev := range events {
		if ev.Type == journal.StepEnd && ev.Status == journal.StatusFailed {
			failed = ev.StepName
		}
	}
	t.Logf("failed step: %q", failed)
	if failed != "start qmaster on the shadow" && failed != "wait for the new qmaster to answer qping" {
		t.Errorf("failed step %q, want the qmaster start or the qping wait", failed)
	}
	if n := ftCountUndo(t, events); n < 5 {
		t.Errorf("automatic rollback journaled %d successful undo(s), want at least 5 (lock, two copies, bootstrap, act_qmaster)", n)
	}
	if st := runStatus(t, l, runID); st != journal.StatusFailed {
		t.Errorf("run %s: status %q, want %q", runID, st, journal.StatusFailed)
	}
	if out, _, err := l.Exec(ctx, l.Shadow(), "pgrep -a -x sge_qmaster"); err == nil {
		t.Errorf("a qmaster runs on %s after the rollback: %s", l.Shadow(), out)
	}
	if err := unmount(); err != nil {
		t.Errorf("umount %s on %s: %v", bin, l.Shadow(), err)
	}
	if s := sizeOn(l.Shadow()); s == strconv.FormatInt(falseInfo.Size(), 10) {
		t.Errorf("%s on %s is still /bin/false after umount", bin, l.Shadow())
	}
}

// TestFaultR7ExecHostDown: one exec host (with two running jobs) is dead
// together with the master. With the default policy (no exec host may
// fail a step) the failover still completes: the host fails only steps
// after the commit point, so nothing is rolled back, the run ends
// committed with failures (exit 5) naming the dead host, the shadow
// serves, the jobs of the other hosts end with exit 0, and the dead host's
// jobs are still accounted for.
func TestFaultR7ExecHostDown(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	inv := l.InventoryPath()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// 6 jobs fill the 2 slots of each of the 3 exec hosts.
	jobs := submitJobs(t, l, l.Shadow(), 6, 75*time.Second)
	hostOf := map[int]string{}
	waitUntil(t, 2*time.Minute, time.Second, "all jobs running", func() (bool, error) {
		m, err := ftRunningJobs(l, l.Shadow())
		if err != nil {
			return false, err
		}
		hostOf = m
		for _, j := range jobs {
			if m[j.ID] == "" {
				return false, fmt.Errorf("running: %v", m)
			}
		}
		return true, nil
	})
	dead := l.ExecHosts()[0]
	var deadJobs, liveJobs []Job
	for _, j := range jobs {
		if hostOf[j.ID] == dead {
			deadJobs = append(deadJobs, j)
		} else {
			liveJobs = append(liveJobs, j)
		}
	}
	t.Logf("jobs by host: %v; %s will die with %d job(s)", hostOf, dead, len(deadJobs))
	if len(deadJobs) == 0 || len(liveJobs) == 0 {
		t.Fatalf("want jobs on %s and on the other hosts, got %v", dead, hostOf)
	}

	if err := l.Kill(ctx, dead); err != nil {
		t.Fatalf("kill %s: %v", dead, err)
	}
	partition(t, l, l.Master(), lab.NetSched)
	before := runIDs(t, l)
	start := time.Now()
	r := runSgerun(t, l, 10*time.Minute, "takeover", "--inventory", inv, "--yes")
	t.Logf("takeover with %s down: exit %d in %s\nstdout:\n%s\nstderr:\n%s", dead, r.Code, time.Since(start).Round(time.Millisecond), r.Stdout, r.Stderr)
	if r.Code != 5 {
		t.Fatalf("takeover: exit %d, want 5 (committed with failures)", r.Code)
	}
	ftAssertShadowServes(t, l)
	if !strings.Contains(r.Stdout+r.Stderr, "committed with failures") || !strings.Contains(r.Stdout+r.Stderr, dead) {
		t.Errorf("the takeover's output does not say it committed with failures on %s:\n%s", dead, formatResult(r))
	}

	// The output names the dead host, with its error, under the execd step.
	if block := ftStepBlock(r.Stdout, ftStepExecd); !regexp.MustCompile(`✗ ` + regexp.QuoteMeta(dead) + `: \S`).MatchString(block) {
		t.Errorf("the output does not report %s with an error under %q:\n%s", dead, ftStepExecd, block)
	}
	runID := newRunID(t, l, before)
	events := ftEvents(t, l, runID)
	execdEnd := ftFind(events, journal.StepEnd, ftStepExecd, "")
	if execdEnd == nil || execdEnd.Status != journal.StatusFailed || strings.Join(execdEnd.Failed, ",") != dead {
		t.Errorf("journal: %q ended %+v, want status failed with failed [%s]", ftStepExecd, execdEnd, dead)
	}
	if ftFind(events, journal.Commit, "wait for the new qmaster to answer qping", "") == nil {
		t.Errorf("journal: no commit event at the qping wait")
	}
	if ftFind(events, journal.RollbackStart, "", "") != nil {
		t.Errorf("journal: a rollback started after the commit point")
	}
	if st := runStatus(t, l, runID); st != journal.StatusCommittedWithFailures {
		t.Errorf("run %s: status %q, want %q", runID, st, journal.StatusCommittedWithFailures)
	}
	if he := ftFind(events, journal.HostEnd, ftStepExecd, dead); he == nil || he.Status != journal.StatusFailed || he.Error == "" {
		t.Errorf("journal: %q on %s: %+v, want failed with an error", ftStepExecd, dead, he)
	} else {
		t.Logf("%s on %s: %s", ftStepExecd, dead, he.Error)
	}
	verify := ftFind(events, journal.StepEnd, ftStepVerifyJobs, "")
	if verify == nil || verify.Status != journal.StatusOK {
		t.Errorf("journal: %q ended %+v, want ok", ftStepVerifyJobs, verify)
	}
	if he := ftFind(events, journal.HostEnd, ftStepVerifyJobs, l.Shadow()); he != nil && he.Output != nil {
		t.Logf("%s: %s", ftStepVerifyJobs, strings.TrimSpace(he.Output.Stdout))
	}

	// The jobs of the live hosts end normally under the new qmaster.
	waitMarkers(t, liveJobs, 3*time.Minute)
	for _, j := range liveJobs {
		if code := jobExitStatus(t, l, l.Shadow(), j.ID, 2*time.Minute); code != 0 {
			t.Errorf("job %d on %s: exit_status %d, want 0", j.ID, hostOf[j.ID], code)
		}
	}
	// The dead host's jobs are accounted for: the new qmaster still knows
	// them, or they are in the accounting file.
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	qstat, _, err := l.Exec(qctx, l.Shadow(), "qstat -u '*'")
	if err != nil {
		t.Fatalf("qstat on %s: %v", l.Shadow(), err)
	}
	for _, j := range deadJobs {
		line := ftQstatLine(qstat, j.ID)
		acct := ""
		if line == "" {
			acct, _, _ = l.Exec(qctx, l.Shadow(), "qacct -j "+strconv.Itoa(j.ID))
		}
		switch {
		case line != "":
			t.Logf("job %d of dead %s, qstat on the new qmaster: %s", j.ID, dead, line)
		case strings.Contains(acct, "exit_status"):
			t.Logf("job %d of dead %s is in accounting:\n%s", j.ID, dead, acct)
		default:
			t.Errorf("job %d of dead %s is neither known to the new qmaster nor accounted:\nqstat:\n%s", j.ID, dead, qstat)
		}
	}
}

// TestShadowSetupTakeover: shadow-setup starts sge_shadowd on master and
// shadow with shadow_masters "master, shadow"; after the master's qmaster
// hangs, sge_shadowd starts a qmaster on the shadow, which answers qping
// with status 0. The time it took is logged as SHADOWD_TAKEOVER_SECONDS.
func TestShadowSetupTakeover(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	r := runSgerun(t, l, 5*time.Minute, "shadow-setup", "--inventory", l.InventoryPath(), "--yes")
	if r.Code != 0 {
		t.Fatalf("shadow-setup: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, h := range []string{l.Master(), l.Shadow()} {
		out, _, err := l.Exec(ctx, h, "pgrep -a -x sge_shadowd")
		if err != nil {
			t.Fatalf("sge_shadowd does not run on %s: %v", h, err)
		}
		t.Logf("%s: %s", h, strings.TrimSpace(out))
		// The timing environment shadow-setup wrote reached the daemon.
		env, _, err := l.Exec(ctx, h, `tr '\0' '\n' </proc/"$(pgrep -o -x sge_shadowd)"/environ | grep '^SGE_[A-Z_]*\(INTERVAL\|TIME\)=' | sort`)
		if want := "SGE_CHECK_INTERVAL=30\nSGE_DELAY_TIME=30\nSGE_GET_ACTIVE_INTERVAL=30"; err != nil || strings.TrimSpace(env) != want {
			t.Errorf("sge_shadowd on %s: timing environment %q (%v), want %q", h, env, err, want)
		}
	}
	sm, err := os.ReadFile(filepath.Join(l.CommonDir(), "shadow_masters"))
	if err != nil {
		t.Fatal(err)
	}
	if want := l.Master() + "\n" + l.Shadow() + "\n"; string(sm) != want {
		t.Fatalf("shadow_masters %q, want %q", sm, want)
	}
	if st := qpingStatus(l, l.Master(), l.Master()); st != 0 {
		t.Fatalf("qmaster on %s: qping status %d before the hang, want 0", l.Master(), st)
	}

	start := hang(ctx, t, l, l.Master())
	waitUntil(t, 5*time.Minute, 2*time.Second, "sge_shadowd to start a qmaster on the shadow", func() (bool, error) {
		st := qpingStatus(l, l.Shadow(), l.Shadow())
		return st == 0, fmt.Errorf("qping %s: status %d", l.Shadow(), st)
	})
	took := time.Since(start)
	act, _ := os.ReadFile(actQmasterPath(l))
	t.Logf("qmaster on %s answers with status 0, %s after the hang of %s; act_qmaster %q",
		l.Shadow(), took.Round(time.Second), l.Master(), strings.TrimSpace(string(act)))
	t.Logf("SHADOWD_TAKEOVER_SECONDS=%d", int(took.Round(time.Second)/time.Second))
	logs, _ := filepath.Glob(filepath.Join(l.QmasterSpoolDir(), "messages*"))
	for _, p := range logs {
		if b, err := os.ReadFile(p); err == nil {
			t.Logf("%s:\n%s", filepath.Base(p), tail(string(b), 15))
		}
	}
	if err := l.Resume(ctx, l.Master()); err != nil {
		t.Logf("resume %s: %v", l.Master(), err)
	}
}

// ftAssertIdempotent runs a second takeover while the shadow serves: it
// must exit 0, say "already", and change nothing in the common dir or the
// sgerun files of the shared dir.
func ftAssertIdempotent(t *testing.T, l *lab.Lab, inv string) {
	t.Helper()
	snap := func() map[string]string {
		m := hashTree(t, l.CommonDir())
		for _, d := range sharedDirs(l) {
			ents, _ := filepath.Glob(filepath.Join(d, ".sgerun-*"))
			for _, p := range ents {
				m[p] = string(ftStat(t, p).Data)
			}
		}
		return m
	}
	before := snap()
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	t.Logf("second takeover: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("second takeover: exit %d, want 0", r.Code)
	}
	if !strings.Contains(r.Stdout+r.Stderr, "already") {
		t.Errorf("second takeover: no \"already\" in its output")
	}
	if d := diffTrees(before, snap()); len(d) > 0 {
		t.Errorf("second takeover changed:\n%s", strings.Join(d, "\n"))
	}
	ftAssertShadowServes(t, l)
}

// ftAssertShadowServes checks act_qmaster names the shadow, the shadow's
// qmaster answers qping with status 0 and no takeover lock is left.
func ftAssertShadowServes(t *testing.T, l *lab.Lab) {
	t.Helper()
	if act := string(ftStat(t, actQmasterPath(l)).Data); act != l.Shadow()+"\n" {
		t.Errorf("act_qmaster %q, want %q", act, l.Shadow()+"\n")
	}
	if st := qpingStatus(l, l.Shadow(), l.Shadow()); st != 0 {
		t.Errorf("qmaster on %s: qping status %d, want 0", l.Shadow(), st)
	}
	for _, d := range sharedDirs(l) {
		if _, err := os.Stat(filepath.Join(d, takeoverLockName)); err == nil {
			t.Errorf("takeover lock %s left behind", filepath.Join(d, takeoverLockName))
		}
	}
}

// ftKillTakeoverAfterBootstrap starts "takeover --yes" with inv, SIGKILLs
// the sgerun process as soon as the host_end of "point bootstrap at the
// copy" is in the journal, and checks the run is interrupted right there:
// bootstrap points at the copy, act_qmaster (act0) is untouched. It
// returns the run id.
func ftKillTakeoverAfterBootstrap(t *testing.T, l *lab.Lab, inv string, act0 ftFile) string {
	t.Helper()
	runID := ftKillTakeoverAt(t, l, inv, journal.HostEnd, ftStepBootstrap)
	// The journal ends at the kill: bootstrap changed, act_qmaster not.
	events := ftEvents(t, l, runID)
	last := events[len(events)-1]
	t.Logf("last journal event: #%d %s step %d %q %s %s", last.Seq, last.Type, last.Step, last.StepName, last.Host, last.Status)
	// On a loaded machine the kill may land after act_qmaster was written
	// too. That is the same test, harder: the write must then have its undo
	// in the journal ahead of it (write-ahead), and rollback must restore it.
	if act := ftStat(t, actQmasterPath(l)); !bytes.Equal(act.Data, act0.Data) {
		if ftFind(events, journal.UndoPrepared, ftStepActQmaster, "") == nil {
			t.Fatalf("act_qmaster was rewritten to %q while %q ran, without a journaled undo", act.Data, ftStepActQmaster)
		}
		t.Logf("the kill landed after act_qmaster was written; its undo was journaled ahead")
	}
	if d := kv(string(ftStat(t, bootstrapPath(l)).Data), "qmaster_spool_dir"); d != ftStamped(l.QmasterSpoolDir(), runID) {
		t.Fatalf("after the kill, bootstrap qmaster_spool_dir is %q, want the copy %q", d, ftStamped(l.QmasterSpoolDir(), runID))
	}
	return runID
}

// ftKillTakeoverAt starts `sgerun takeover --yes` and SIGKILLs it as soon
// as its journal has an event of type typ for step; it returns the run id
// of the killed run, whose status must then be interrupted.
func ftKillTakeoverAt(t *testing.T, l *lab.Lab, inv, typ, step string) string {
	t.Helper()
	if sgerunBin == "" {
		t.Fatalf("sgerun binary not available: %v", sgerunBuildErr)
	}
	before := runIDs(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// exec: ip netns exec, env and bash each exec the next, so the
	// process started is sgerun itself.
	c, err := l.Command(ctx, lab.CtlHost, "", "exec "+shell.Join(sgerunBin, "--state-dir", sgerunState(l),
		"takeover", "--inventory", inv, "--yes"))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	if err := c.Start(); err != nil {
		t.Fatalf("start takeover: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	pid := c.Process.Pid
	exited := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		t.Fatalf("%s\nstdout:\n%s\nstderr:\n%s", fmt.Sprintf(format, args...), stdout.String(), stderr.String())
	}

	// The run directory appears once sgerun has taken its lock.
	var runID string
	deadline := time.Now().Add(2 * time.Minute)
	for runID == "" {
		for id := range runIDs(t, l) {
			if !before[id] {
				runID = id
			}
		}
		if runID != "" {
			break
		}
		if exited() {
			fail("takeover exited before it created a run")
		}
		if time.Now().After(deadline) {
			fail("no run directory after 2m")
		}
		time.Sleep(10 * time.Millisecond)
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if want, _ := filepath.EvalSymlinks(sgerunBin); exe != want {
		fail("process %d is %q, not sgerun (%s)", pid, exe, want)
	}
	jpath := filepath.Join(runDir(l, runID), journal.EventsFile)
	var f *os.File
	for f == nil {
		if f, err = os.Open(jpath); err != nil {
			if exited() || time.Now().After(deadline) {
				fail("no journal %s: %v", jpath, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	defer f.Close()

	// Read the journal in a tight loop: the next step (a put of
	// act_qmaster) is only milliseconds away.
	var pending []byte
	buf := make([]byte, 256<<10)
	var seen, killed time.Time
	deadline = time.Now().Add(5 * time.Minute)
	for killed.IsZero() {
		n, _ := f.Read(buf)
		if n == 0 {
			if exited() {
				fail("takeover exited before its %s of %q", typ, step)
			}
			if time.Now().After(deadline) {
				fail("no %s of %q within 5m", typ, step)
			}
			continue
		}
		pending = append(pending, buf[:n]...)
		for killed.IsZero() {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			var ev journal.Event
			err := json.Unmarshal(pending[:i], &ev)
			pending = pending[i+1:]
			if err != nil {
				continue
			}
			switch {
			case ev.Type == typ && ev.StepName == step:
				seen = time.Now()
				_ = syscall.Kill(pid, syscall.SIGKILL)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				killed = time.Now()
				if ev.Type == journal.HostEnd && ev.Status != journal.StatusOK {
					fail("%q ended %s on %s: %s", step, ev.Status, ev.Host, ev.Error)
				}
			case ev.Type == journal.RunEnd || ev.Type == journal.RollbackStart:
				fail("the run ended before %q: %s %s", step, ev.Type, ev.Status)
			}
		}
	}
	var werr error
	select {
	case werr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("sgerun (pid %d) still runs 30s after SIGKILL", pid)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("takeover ended with %v, want death by SIGKILL\nstdout:\n%s\nstderr:\n%s", werr, stdout.String(), stderr.String())
	}
	t.Logf("takeover %s (pid %d) SIGKILLed %s after its %s of %q was read", runID, pid, killed.Sub(seen), typ, step)
	if st := runStatus(t, l, runID); st != journal.StatusInterrupted {
		t.Fatalf("run %s: status %q after the kill, want %q", runID, st, journal.StatusInterrupted)
	}
	return runID
}

// ftFile is a file's content, mode and owner.
type ftFile struct {
	Data     []byte
	Mode     fs.FileMode
	UID, GID uint32
}

// ftStat reads p's content, mode and owner; the test fails when it cannot.
func ftStat(t *testing.T, p string) ftFile {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return ftFile{Data: data, Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}
}

// ftSameFile fails unless after has before's bytes, mode and owner.
func ftSameFile(t *testing.T, what string, before, after ftFile) {
	t.Helper()
	if !bytes.Equal(before.Data, after.Data) {
		t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", what, before.Data, after.Data)
	}
	if before.Mode != after.Mode || before.UID != after.UID || before.GID != after.GID {
		t.Errorf("%s: mode/owner %v %d:%d, was %v %d:%d", what, after.Mode, after.UID, after.GID,
			before.Mode, before.UID, before.GID)
	}
}

// ftStamped is the path of p's spool copy made by run runID.
func ftStamped(p, runID string) string { return p + ".sgerun-" + ftStamp(runID) }

// ftStamp turns a run id (20261125-043512-a1b2c3, UTC) into the local
// yyyymmddHHMMSS stamp of the run's copies.
func ftStamp(runID string) string {
	ts, err := time.ParseInLocation("20060102-150405", runID[:15], time.UTC)
	if err != nil {
		return "?"
	}
	return ts.Local().Format("20060102150405")
}

// ftInventory writes a copy of the lab's inventory with more policy
// settings (flow-style YAML, e.g. "qmaster_start_timeout: 20s") and
// returns its path.
func ftInventory(t *testing.T, l *lab.Lab, name, policy string) string {
	t.Helper()
	b, err := os.ReadFile(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^policy: \{(.*)\}$`)
	if n := len(re.FindAllIndex(b, -1)); n != 1 {
		t.Fatalf("inventory %s: %d flow-style policy lines, want 1:\n%s", l.InventoryPath(), n, b)
	}
	out := re.ReplaceAll(b, []byte("policy: {${1}, "+policy+"}"))
	p := filepath.Join(l.StateDir(), name+".yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ftEvents reads the journal events of a run; none fails the test.
func ftEvents(t *testing.T, l *lab.Lab, runID string) []journal.Event {
	t.Helper()
	_, events, err := journal.Read(runDir(l, runID))
	if err != nil || len(events) == 0 {
		t.Fatalf("journal of run %s: %d events, %v", runID, len(events), err)
	}
	return events
}

// ftFind returns the last event of type typ for step (and host, unless
// empty), or nil.
func ftFind(events []journal.Event, typ, step, host string) *journal.Event {
	var found *journal.Event
	for i := range events {
		ev := &events[i]
		if ev.Type == typ && ev.StepName == step && (host == "" || ev.Host == host) {
			found = ev
		}
	}
	return found
}

// ftCountUndo logs every undo of a run and returns how many succeeded; a
// failed undo fails the test.
func ftCountUndo(t *testing.T, events []journal.Event) int {
	t.Helper()
	ok := 0
	var lines []string
	for _, ev := range events {
		if ev.Type != journal.UndoEnd {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s on %s (%s): %s %s", ev.StepName, ev.Host, ev.Kind, ev.Status, ev.Error))
		if ev.Status == journal.StatusOK {
			ok++
		} else {
			t.Errorf("undo of %q on %s: %s %s", ev.StepName, ev.Host, ev.Status, ev.Error)
		}
	}
	t.Logf("undo events:\n  %s", strings.Join(lines, "\n  "))
	return ok
}

// ftQmasterBinary returns the real file the rc script runs as sge_qmaster
// on host: bootstrap's binary_path, the architecture, symlinks resolved.
func ftQmasterBinary(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	binPath := kv(string(ftStat(t, bootstrapPath(l)).Data), "binary_path")
	if binPath == "" {
		t.Fatal("bootstrap has no binary_path")
	}
	arch, _, err := l.Exec(ctx, host, shell.Quote(filepath.Join(l.SGERoot(), "util", "arch")))
	if err != nil {
		t.Fatalf("arch on %s: %v", host, err)
	}
	p := filepath.Join(binPath, strings.TrimSpace(arch), "sge_qmaster")
	real, _, err := l.Exec(ctx, host, "readlink -e "+shell.Quote(p))
	if err != nil {
		t.Fatalf("resolve %s on %s: %v", p, host, err)
	}
	return strings.TrimSpace(real)
}

// ftRunningJobs maps each running job to its exec host, from qstat on
// host.
func ftRunningJobs(l *lab.Lab, host string) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _, err := l.Exec(ctx, host, "qstat -u '*' -s r")
	if err != nil {
		return nil, err
	}
	m := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		if _, h, ok := strings.Cut(f[7], "@"); ok {
			m[id] = strings.SplitN(h, ".", 2)[0]
		}
	}
	return m, nil
}

// ftQstatLine returns the qstat line of job id, or "".
func ftQstatLine(qstat string, id int) string {
	for _, line := range strings.Split(qstat, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == strconv.Itoa(id) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// ftStepBlock returns the output of one step: the lines after the previous
// step's summary line up to and including the summary line naming step.
func ftStepBlock(out, step string) string {
	lines := strings.Split(out, "\n")
	end := -1
	for i, line := range lines {
		// the step's result line: "<mark> <status> <step> [<kind>] ..."
		if strings.Contains(line, " "+step+" [") && !strings.HasPrefix(line, " ") {
			end = i
		}
	}
	if end < 0 {
		return ""
	}
	begin := end
	for begin > 0 && (strings.HasPrefix(lines[begin-1], " ") || lines[begin-1] == "") {
		begin--
	}
	return strings.Join(lines[begin:end+1], "\n")
}
