package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// Issue 12: roles that follow the cluster. The inventory names two heads
// instead of a fixed master and shadow, and may take its exec hosts from
// SGE (qconf -sel). The tests use one inventory file, never edited.

// hdInventory writes the lab's inventory with roles.heads [master, shadow]
// in place of roles.master/shadow and, with fromSGE, roles.execd taken
// from SGE. The exec hosts stay in hosts: (they give SSH their
// addresses).
func hdInventory(t *testing.T, l *lab.Lab, name string, fromSGE bool) string {
	t.Helper()
	b, err := os.ReadFile(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	re := regexp.MustCompile(`master: ` + regexp.QuoteMeta(l.Master()) + `,\s*shadow: ` + regexp.QuoteMeta(l.Shadow()))
	if !re.MatchString(s) {
		t.Fatalf("lab inventory has no roles master/shadow to rewrite:\n%s", s)
	}
	s = re.ReplaceAllString(s, "heads: ["+l.Master()+", "+l.Shadow()+"]")
	if fromSGE {
		ex := regexp.MustCompile(`execd: \[[^\]]*\]`)
		if !ex.MatchString(s) {
			t.Fatalf("lab inventory has no execd list to rewrite:\n%s", s)
		}
		s = ex.ReplaceAllString(s, "execd: {from_sge: true}")
	}
	p := filepath.Join(l.StateDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("inventory %s:\n%s", p, s)
	return p
}

// hdSplitBrain samples, until stop is closed, which heads run a qmaster
// process (in their own PID namespace, whatever their network), and
// records every sample where both do.
type hdSplitBrain struct {
	mu   sync.Mutex
	both []string
	n    int
	stop chan struct{}
	done chan struct{}
}

func hdWatchSplitBrain(l *lab.Lab) *hdSplitBrain {
	s := &hdSplitBrain{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(time.Second):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var running []string
			for _, h := range []string{l.Master(), l.Shadow()} {
				out, _, err := l.Exec(ctx, h, "pgrep -x sge_qmaster || true")
				if err == nil && strings.TrimSpace(out) != "" {
					running = append(running, h)
				}
			}
			cancel()
			s.mu.Lock()
			s.n++
			if len(running) == 2 {
				s.both = append(s.both, time.Now().Format(time.TimeOnly))
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *hdSplitBrain) check(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("split-brain sampler: %d samples", s.n)
	if len(s.both) > 0 {
		t.Errorf("a qmaster ran on both heads at %v", s.both)
	}
	if s.n < 10 {
		t.Errorf("only %d split-brain samples", s.n)
	}
}

// hdCheckJobs waits for every job to end and checks it ended with exit 0.
func hdCheckJobs(t *testing.T, l *lab.Lab, host string, jobs []Job) {
	t.Helper()
	waitMarkers(t, jobs, 6*time.Minute)
	for _, j := range jobs {
		if st := jobExitStatus(t, l, host, j.ID, 2*time.Minute); st != 0 {
			t.Errorf("job %d: exit status %d, want 0", j.ID, st)
		}
	}
}

// hdNote returns the run's note that starts with prefix.
func hdNote(t *testing.T, stateDir, runID, prefix string) string {
	t.Helper()
	_, events, err := journal.Read(filepath.Join(stateDir, "runs", runID))
	if err != nil {
		t.Fatalf("journal of run %s: %v", runID, err)
	}
	for _, ev := range events {
		if ev.Type == journal.Note && strings.HasPrefix(ev.Message, prefix) {
			return ev.Message
		}
	}
	t.Errorf("run %s has no note %q", runID, prefix)
	return ""
}

// TestHeadsSecondFailover: A -> B takeover with A cut off; A comes back
// (fenced); then B is cut off. A person's takeover is refused by the
// anti-flap window until sgerun ack; then takeover, with the same
// inventory file, makes A serve again. Jobs that ran across both moves end
// with exit 0, and at no sample do both heads run a qmaster.
func TestHeadsSecondFailover(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	inv := hdInventory(t, l, "heads", false)
	before, _ := os.ReadFile(inv)
	a, b := l.Master(), l.Shadow()
	t.Cleanup(func() { healQuiet(l, a); healQuiet(l, b) })
	jobs := submitJobs(t, l, l.ExecHosts()[0], 4, 300*time.Second)
	waitRunning(t, l, a, jobs, 2*time.Minute)
	sb := hdWatchSplitBrain(l)

	// First failure: A's scheduler network.
	partition(t, l, a, lab.NetSched)
	ids := runIDs(t, l)
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeover A -> B")
	id1 := newRunID(t, l, ids)
	if n := hdNote(t, sgerunState(l), id1, "heads: "); !strings.HasPrefix(n, "heads: from "+a+" to "+b+";") {
		t.Errorf("first takeover's note %q, want from %s to %s", n, a, b)
	}
	if got := actQmaster(t, l); got != b {
		t.Fatalf("act_qmaster %q after the first takeover, want %s", got, b)
	}
	waitQping(t, l, l.ExecHosts()[1], b, time.Minute)
	heal(t, l, a)
	st := runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	if !regexp.MustCompile(`heads\s+preferred ` + regexp.QuoteMeta(a) + `, active ` + regexp.QuoteMeta(b) + `.*not the preferred head`).MatchString(st.Stdout) {
		t.Errorf("status after A -> B does not show preferred %s, active %s:\n%s", a, b, st.Stdout)
	}

	// Second failure: B's scheduler network. The anti-flap window holds
	// until a person acknowledges the first takeover.
	partition(t, l, b, lab.NetSched)
	r = runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 3, "takeover B -> A inside the anti-flap window")
	if out := r.Stdout + r.Stderr; !strings.Contains(out, "anti-flap") && !strings.Contains(out, "antiflap") {
		t.Errorf("refused takeover does not name the anti-flap window:\n%s", formatResult(r))
	}
	if got := actQmaster(t, l); got != b {
		t.Fatalf("act_qmaster %q after the refused takeover, want %s", got, b)
	}
	r = runSgerun(t, l, 2*time.Minute, "ack", "--inventory", inv)
	toWantCode(t, r, 0, "ack")
	ids = runIDs(t, l)
	r = runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeover B -> A after ack")
	id2 := newRunID(t, l, ids)
	if n := hdNote(t, sgerunState(l), id2, "heads: "); !strings.HasPrefix(n, "heads: from "+b+" to "+a+";") {
		t.Errorf("second takeover's note %q, want from %s to %s", n, b, a)
	}
	if got := actQmaster(t, l); got != a {
		t.Fatalf("act_qmaster %q after the second takeover, want %s", got, a)
	}
	waitQping(t, l, l.ExecHosts()[1], a, time.Minute)
	heal(t, l, b)
	if p := qmasterPIDs(t, l, b); len(p) != 0 {
		t.Errorf("qmaster still runs on %s after it was fenced: %v", b, p)
	}
	hdCheckJobs(t, l, a, jobs)
	sb.check(t)
	st = runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	if !regexp.MustCompile(`heads\s+preferred ` + regexp.QuoteMeta(a) + `, active ` + regexp.QuoteMeta(a) + `\n`).MatchString(st.Stdout) {
		t.Errorf("status after B -> A does not show preferred and active %s:\n%s", a, st.Stdout)
	}
	if after, _ := os.ReadFile(inv); string(after) != string(before) {
		t.Errorf("the inventory file changed")
	}
}

// hdStartWatch starts sgerun watch --on head with its own state dir, as
// if it ran on that head. It reuses watch_test.go's wtWatch.
func hdStartWatch(t *testing.T, l *lab.Lab, inv, head, stateDir string, interval, confirm time.Duration) *wtWatch {
	t.Helper()
	return wtStartWatchAt(t, l, stateDir, filepath.Join(stateDir, "events.jsonl"), "watch on "+head,
		"--inventory", inv, "--on", head, "--interval", interval.String(), "--confirm", confirm.String())
}

// TestHeadsWatchBoth: watch runs on both heads, with one inventory. On the
// active head it only reports; the standby's watch takes over when the
// active head is cut off. After the second failure the anti-flap window
// keeps the other watch from acting until sgerun ack; then it takes the
// role back, without a restart or a new inventory.
func TestHeadsWatchBoth(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	inv := hdInventory(t, l, "heads", false)
	a, b := l.Master(), l.Shadow()
	t.Cleanup(func() { healQuiet(l, a); healQuiet(l, b) })
	const interval, confirm = 5 * time.Second, 15 * time.Second
	wa := hdStartWatch(t, l, inv, a, filepath.Join(l.StateDir(), "state-"+a), interval, confirm)
	wb := hdStartWatch(t, l, inv, b, filepath.Join(l.StateDir(), "state-"+b), interval, confirm)
	h := wa.waitEvent(t, 90*time.Second, "healthy on the active head", wtIs(wtEvHealthy))
	if !strings.Contains(h.Reason, "is the active head (this host)") {
		t.Errorf("watch on the active head %s: %q, want it to say it is the active head", a, h.Reason)
	}
	wb.waitEvent(t, 90*time.Second, "healthy on the standby", wtIs(wtEvHealthy))
	jobs := submitJobs(t, l, l.ExecHosts()[0], 4, 300*time.Second)
	waitRunning(t, l, a, jobs, 2*time.Minute)
	sb := hdWatchSplitBrain(l)

	// A is cut off: B's watch takes over.
	ma, mb := wa.mark(), wb.mark()
	partition(t, l, a, lab.NetSched)
	end := wb.takeoverEnd(t, mb, 4*time.Minute)
	if got := actQmaster(t, l); got != b {
		t.Fatalf("act_qmaster %q after B's watch took over, want %s", got, b)
	}
	waitQping(t, l, l.ExecHosts()[1], b, time.Minute)
	t.Logf("B's watch took over in run %s", end.RunID)
	heal(t, l, a)
	// A's watch now watches B, and finds it healthy.
	wa.waitEventFrom(t, ma, 2*time.Minute, "A's watch healthy, watching B", func(e wtEvent) bool {
		hd, _ := e.Evidence["heads"].(map[string]any)
		return e.Event == wtEvHealthy && hd != nil && hd["active"] == b && hd["to"] == a
	})

	// B is cut off: the anti-flap window holds A's watch back.
	ma = wa.mark()
	partition(t, l, b, lab.NetSched)
	wa.waitEventFrom(t, ma, 3*time.Minute, "A's watch refuses inside the anti-flap window", func(e wtEvent) bool {
		return e.Event == wtEvNoTakeover && e.Verdict == "antiflap"
	})
	if n := wtCount(wa.since(0), wtEvTakeoverStart); n != 0 {
		t.Fatalf("A's watch started %d takeovers inside the anti-flap window", n)
	}
	ma = wa.mark()
	r := runSgerun(t, l, 2*time.Minute, "ack", "--inventory", inv)
	toWantCode(t, r, 0, "ack")
	end = wa.takeoverEnd(t, ma, 5*time.Minute)
	if got := actQmaster(t, l); got != a {
		t.Fatalf("act_qmaster %q after A's watch took over, want %s", got, a)
	}
	waitQping(t, l, l.ExecHosts()[1], a, time.Minute)
	if n := hdNote(t, filepath.Join(l.StateDir(), "state-"+a), end.RunID, "heads: "); !strings.HasPrefix(n, "heads: from "+b+" to "+a+";") {
		t.Errorf("A's watch's takeover note %q, want from %s to %s", n, b, a)
	}
	heal(t, l, b)
	hdCheckJobs(t, l, a, jobs)
	sb.check(t)
	if n := wtCount(wb.since(0), wtEvTakeoverStart); n != 1 {
		t.Errorf("B's watch started %d takeovers, want 1", n)
	}
	if n := wtCount(wa.since(0), wtEvTakeoverStart); n != 1 {
		t.Errorf("A's watch started %d takeovers, want 1", n)
	}
	wa.stop(t)
	wb.stop(t)
}

// TestHeadsExecFromSGE: the exec hosts come only from SGE. status reads
// and caches qconf -sel; a change of SGE's list after the cache gives a
// warning; a takeover with the master cut off (no qmaster answers) uses
// the cache, restarts every execd and says how many.
func TestHeadsExecFromSGE(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	inv := hdInventory(t, l, "fromsge", true)
	a, b := l.Master(), l.Shadow()
	t.Cleanup(func() { healQuiet(l, a) })
	execs := l.ExecHosts()

	st := runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	if !strings.Contains(st.Stdout, fmt.Sprintf("exec host list     %d from SGE: qconf -sel on %s", len(execs), a)) ||
		!strings.Contains(st.Stdout, fmt.Sprintf("exec hosts         %d of %d reporting", len(execs), len(execs))) {
		t.Fatalf("status does not show %d exec hosts from SGE:\n%s", len(execs), formatResult(st))
	}
	cache, _ := filepath.Glob(filepath.Join(sgerunState(l), "exec-hosts-*.json"))
	if len(cache) != 1 {
		t.Fatalf("exec host cache files %v, want one", cache)
	}

	// SGE's list changes after the cache was written: status warns.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmpl := filepath.Join(l.StateDir(), "exec-"+b+".conf")
	if err := os.WriteFile(tmpl, []byte("hostname "+b+"\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := l.Exec(ctx, a, "qconf -Ae "+shell.Quote(tmpl)); err != nil {
		t.Fatalf("qconf -Ae %s: %v\n%s%s", b, err, out, errOut)
	}
	// The first status or check after the change sees it (and refreshes
	// the cache).
	ck := runSgerun(t, l, 2*time.Minute, "check", "--inventory", inv)
	if ck.Code != 1 || !regexp.MustCompile(`WARNING: exec host cache of .* was out of date: SGE's list changed since \(new: `+regexp.QuoteMeta(b)).MatchString(ck.Stdout) {
		t.Errorf("check after qconf -Ae: exit %d, want WARNING (1) for the stale cache:\n%s", ck.Code, formatResult(ck))
	}
	if out, errOut, err := l.Exec(ctx, a, "qconf -de "+shell.Quote(b)); err != nil {
		t.Fatalf("qconf -de %s: %v\n%s%s", b, err, out, errOut)
	}
	st = runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	if !regexp.MustCompile(`exec host cache of .* was out of date: SGE's list changed since \(new: -; gone: ` + regexp.QuoteMeta(b)).MatchString(st.Stdout) {
		t.Errorf("status after qconf -de does not warn of the stale cache:\n%s", formatResult(st))
	}
	st = runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	if strings.Contains(st.Stdout, "out of date") {
		t.Errorf("status warns again after the cache was refreshed:\n%s", formatResult(st))
	}

	// No qmaster answers during the takeover: the cached list is used.
	pids := map[string][]int{}
	for _, h := range execs {
		pids[h] = pgrep(t, l, h, "sge_execd")
	}
	partition(t, l, a, lab.NetSched)
	ids := runIDs(t, l)
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeover with exec hosts from the cache")
	id := newRunID(t, l, ids)
	n := hdNote(t, sgerunState(l), id, "exec hosts: ")
	if !strings.HasPrefix(n, fmt.Sprintf("exec hosts: %d from the cache of", len(execs))) {
		t.Errorf("takeover's exec host note %q, want %d from the cache", n, len(execs))
	}
	if !strings.Contains(r.Stdout, n) {
		t.Errorf("takeover output does not show the note %q:\n%s", n, formatResult(r))
	}
	_, events, err := journal.Read(filepath.Join(sgerunState(l), "runs", id))
	if err != nil {
		t.Fatal(err)
	}
	restarted := map[string]bool{}
	for _, ev := range events {
		if ev.Type == journal.HostEnd && ev.StepName == "softstop and start every execd" && ev.Status == journal.StatusOK {
			restarted[ev.Host] = true
		}
	}
	if len(restarted) != len(execs) {
		t.Errorf("execd restarted on %v, want all %d of %v", restarted, len(execs), execs)
	}
	t.Logf("takeover:\n%s", toSummary(r.Stdout))
	if !regexp.MustCompile(fmt.Sprintf(`softstop and start every execd \[[^\]]*\] %d host\(s\)`, len(execs))).MatchString(r.Stdout) {
		t.Errorf("takeover output does not report %d execd hosts restarted:\n%s", len(execs), toSummary(r.Stdout))
	}
	for _, h := range execs {
		now := pgrep(t, l, h, "sge_execd")
		if len(now) != 1 || len(pids[h]) == 1 && now[0] == pids[h][0] {
			t.Errorf("sge_execd on %s: pids %v before, %v after; want one new execd", h, pids[h], now)
		}
	}
	if got := actQmaster(t, l); got != b {
		t.Errorf("act_qmaster %q, want %s", got, b)
	}
}
