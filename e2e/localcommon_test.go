package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// TestTakebackLocalCommon: every SGE host has its own common/, as Debian
// installs it (lab LocalCommon; the inventory says common_shared: auto).
// With jobs running and the master cut off, takeover moves the role to the
// shadow; once the master is back, takeback reads the bootstrap the
// shadow's qmaster used, gives its spool to the master's own bootstrap
// (which still named the spool from before the takeover), writes
// act_qmaster on every host, and proves the shadow's qmaster gone by a
// process lookup there. The master serves, and the jobs end well.
func TestTakebackLocalCommon(t *testing.T) {
	parallelLab(t)
	l := upLabWith(t, lab.Config{ExecHosts: 2, LocalCommon: true})
	inv := l.InventoryPath()
	hosts := append([]string{l.Master(), l.Shadow()}, l.ExecHosts()...)
	stat := func(h string) string {
		return lcRead(t, l, h, `stat -c "%i %Y %s" `+shell.Quote(filepath.Join(l.CommonDir(), "act_qmaster")))
	}
	if a, b := stat(l.Master()), stat(l.ExecHosts()[0]); a == b {
		t.Fatalf("common/ is not local: act_qmaster is %q on both %s and %s", a, l.Master(), l.ExecHosts()[0])
	}
	waitSeqnums(t, l)
	jobs := submitJobs(t, l, l.ExecHosts()[0], 3, 200*time.Second)
	waitRunning(t, l, l.Master(), jobs, 2*time.Minute)

	partition(t, l, l.Master(), lab.NetSched)
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeover with local common/")
	shadowBoot := lcRead(t, l, l.Shadow(), "cat "+shell.Quote(filepath.Join(l.CommonDir(), "bootstrap")))
	copyDir := kv(shadowBoot, "qmaster_spool_dir")
	if !strings.Contains(copyDir, ".sgerun-") {
		t.Fatalf("the shadow's bootstrap names %q, want the takeover's copy", copyDir)
	}
	if b := lcRead(t, l, l.Master(), "cat "+shell.Quote(filepath.Join(l.CommonDir(), "bootstrap"))); kv(b, "qmaster_spool_dir") != l.QmasterSpoolDir() {
		t.Fatalf("the master's own bootstrap names %q after the takeover, want still %s", kv(b, "qmaster_spool_dir"), l.QmasterSpoolDir())
	}
	waitQping(t, l, l.ExecHosts()[1], l.Shadow(), 30*time.Second)

	heal(t, l, l.Master())
	r = runSgerun(t, l, 5*time.Minute, "takeback", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeback with local common/")
	run := toLastRun(t, l, sgerunState(l))

	// The master's qmaster reads the spool the shadow's used.
	mb := lcRead(t, l, l.Master(), "cat "+shell.Quote(filepath.Join(l.CommonDir(), "bootstrap")))
	for _, k := range []string{"qmaster_spool_dir", "spooling_params"} {
		if kv(mb, k) != kv(shadowBoot, k) {
			t.Errorf("the master's bootstrap %s %q, want the shadow's %q", k, kv(mb, k), kv(shadowBoot, k))
		}
	}
	if ev := classicStep(t, l, run.RunID, "point the master's bootstrap at the spool it will use"); ev.Type != journal.StepEnd || ev.Status != journal.StatusOK {
		t.Errorf("master bootstrap step: %s %s, want done", ev.Type, ev.Status)
	}
	for _, h := range hosts {
		if a := strings.TrimSpace(lcRead(t, l, h, "cat "+shell.Quote(filepath.Join(l.CommonDir(), "act_qmaster")))); a != l.Master() {
			t.Errorf("act_qmaster on %s: %q, want %s", h, a, l.Master())
		}
	}
	if ev := classicStep(t, l, run.RunID, "write act_qmaster where common/ is not shared"); ev.Type != journal.StepEnd || ev.Status != journal.StatusOK {
		t.Errorf("exec act_qmaster step: %s %s, want done on every exec host", ev.Type, ev.Status)
	}
	// The proof that the shadow's qmaster is gone is a process lookup on
	// the shadow, and the journal holds it.
	if out := lcHostOut(t, l, run.RunID, "stop the qmaster on the shadow (qconf -km)", l.Shadow()); !strings.Contains(out, "no sge_qmaster process on "+l.Shadow()) {
		t.Errorf("process-lookup proof: the journal shows %q", out)
	}
	if st := qpingStatus(l, l.ExecHosts()[0], l.Master()); st != 0 {
		t.Errorf("qping of the master after takeback: status %d, want 0", st)
	}
	if pids := qmasterPIDs(t, l, l.Shadow()); len(pids) > 0 {
		t.Errorf("qmaster %v still runs on the shadow after takeback", pids)
	}
	checkJobsExitZero(t, l, l.Master(), jobs, 4*time.Minute)
}

// lcRead runs a read-only command on a lab host and returns its stdout.
func lcRead(t *testing.T, l *lab.Lab, host, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := l.Exec(ctx, host, cmd)
	if err != nil {
		t.Fatalf("%s on %s: %v", cmd, host, err)
	}
	return out
}

// lcHostOut returns what a run's step printed on host.
func lcHostOut(t *testing.T, l *lab.Lab, runID, step, host string) string {
	t.Helper()
	_, events, err := journal.Read(runDir(l, runID))
	if err != nil {
		t.Fatalf("journal of run %s: %v", runID, err)
	}
	for _, ev := range events {
		if ev.StepName == step && ev.Type == journal.HostEnd && ev.Host == host && ev.Output != nil {
			return ev.Output.Stdout
		}
	}
	return ""
}
