package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
)

// Events watch logs for signals during a takeover (watch/watch.go).
const (
	wtEvStopDeferred  = "stop_deferred"
	wtEvSignalIgnored = "signal_ignored"
)

// TestWatchSIGTERMDuringTakeover: systemd stops watch (SIGTERM) while the
// takeover it started runs. The run is not abandoned: watch logs that it
// will stop after the run, ignores (and logs) a second signal, lets the run
// end (run_end ok, not interrupted), then exits 0 with the run's outcome in
// watch_stop. The shadow serves, and the jobs that ran through it all end
// with exit status 0.
func TestWatchSIGTERMDuringTakeover(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	waitSeqnums(t, l)
	jobs := submitJobs(t, l, l.ExecHosts()[0], 3, 60*time.Second)
	waitRunning(t, l, l.Master(), jobs, 2*time.Minute)

	w := wtStartWatch(t, l, l.InventoryPath(), 5*time.Second, 10*time.Second)
	w.waitEvent(t, 90*time.Second, "first healthy decision", wtIs(wtEvHealthy))
	mark := w.mark()
	partition(t, l, l.Master(), lab.NetSched)
	w.waitEventFrom(t, mark, 3*time.Minute, "takeover_start", wtIs(wtEvTakeoverStart))
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM watch: %v", err)
	}
	w.waitEventFrom(t, mark, 30*time.Second, "stop_deferred after SIGTERM", wtIs(wtEvStopDeferred))
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT watch: %v", err)
	}
	w.waitEventFrom(t, mark, 30*time.Second, "signal_ignored after a second signal", wtIs(wtEvSignalIgnored))

	select {
	case <-w.done:
	case <-time.After(6 * time.Minute):
		t.Fatalf("watch did not exit within 6 min of SIGTERM during a takeover; events:\n%s", wtFormat(w.since(mark)))
	}
	w.mu.Lock()
	werr := w.waitErr
	w.mu.Unlock()
	if werr != nil {
		t.Errorf("watch after SIGTERM during a takeover: %v, want exit 0; stderr:\n%s", werr, w.stderrTail(40))
	}
	evs := w.since(mark)
	t.Logf("events from the cut:\n%s", wtFormat(evs))
	end, ok := wtFirst(evs, wtEvTakeoverEnd)
	if !ok {
		t.Fatalf("no takeover_end before watch exited")
	}
	if end.ExitCode == nil || *end.ExitCode != 0 {
		t.Errorf("takeover_end: exit %v (%s), want 0", wtCode(end.ExitCode), end.Error)
	}
	last := evs[len(evs)-1]
	if last.Event != wtEvStop || last.RunID != end.RunID || last.ExitCode == nil || *last.ExitCode != 0 {
		t.Errorf("last event %s run=%s exit=%v, want %s naming run %s with exit 0",
			last.Event, last.RunID, wtCode(last.ExitCode), wtEvStop, end.RunID)
	}
	// The journal shows a finished run, not an abandoned one.
	_, events, err := journal.Read(runDir(l, end.RunID))
	if err != nil {
		t.Fatalf("journal of run %s: %v", end.RunID, err)
	}
	if n := len(events); n == 0 {
		t.Fatalf("run %s: empty journal", end.RunID)
	} else if ev := events[n-1]; ev.Type != journal.RunEnd || ev.Status != journal.StatusOK {
		t.Fatalf("run %s does not end with run_end ok: last event %s %s", end.RunID, ev.Type, ev.Status)
	}
	wtCheckRun(t, l, end.RunID, journal.StatusOK)
	if a := actQmaster(t, l); a != l.Shadow() {
		t.Errorf("act_qmaster %q, want %s", a, l.Shadow())
	}
	if s := qpingStatus(l, l.ExecHosts()[1], l.Shadow()); s != 0 {
		t.Errorf("qping of the shadow's qmaster: status %d, want 0", s)
	}
	checkJobsExitZero(t, l, l.Shadow(), jobs, 3*time.Minute)
}
