package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
)

// TestGateSlowMaster: the master's qmaster is stopped (SIGSTOP) when a
// takeover starts and continued 6 s later, past the gate's first qping
// time-out (3 s) and within its second (9 s). The master is slow, not
// dead: the gate must find it alive (a retried qping got status 0) and
// refuse, and nothing may change: act_qmaster, bootstrap and the spool as
// before, no qmaster on the shadow, the master's own qmaster (same pid)
// answering qping afterwards.
func TestGateSlowMaster(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	probe := l.ExecHosts()[0]
	waitQping(t, l, probe, l.Master(), time.Minute)
	// the fresh qmaster's own first jobseqnum/arseqnum must not show up
	// as a change the refused takeover made
	waitSeqnums(t, l)
	pid := onePID(t, l, l.Master(), "sge_qmaster")
	boot := bootstrap(t, l)
	before := spoolTree(t, l)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hang(ctx, t, l, l.Master())
	// The qmaster resumes 7 s after the gate starts: after its first qping
	// (3 s) timed out, well inside the second (9 s), whatever the load of
	// the machine does to the steps before the gate.
	ids := runIDs(t, l)
	gateStarted := func() bool {
		dirs, _ := filepath.Glob(filepath.Join(sgerunState(l), "runs", "*"))
		for _, dir := range dirs {
			if ids[filepath.Base(dir)] {
				continue
			}
			_, events, _ := journal.Read(dir)
			for _, ev := range events {
				if ev.Type == journal.StepStart && ev.StepName == "partition gate" {
					return true
				}
			}
		}
		return false
	}
	resumed := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		for !gateStarted() {
			select {
			case <-ctx.Done():
				resumed <- ctx.Err()
				return
			case <-ended:
				resumed <- fmt.Errorf("the takeover ended before its gate started")
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		select {
		case <-time.After(7 * time.Second):
			resumed <- l.Resume(ctx, l.Master())
		case <-ctx.Done():
			resumed <- ctx.Err()
		}
	}()
	start := time.Now()
	r := runSgerun(t, l, 3*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	took := time.Since(start)
	close(ended)
	if err := <-resumed; err != nil {
		_ = l.Resume(context.Background(), l.Master())
		t.Fatalf("resume the master's qmaster: %v", err)
	}
	t.Logf("takeover of a slow master: exit %d after %s", r.Code, took.Round(100*time.Millisecond))
	toWantCode(t, r, 3, "takeover of a slow master")

	waitQping(t, l, probe, l.Master(), time.Minute)
	after := spoolTree(t, l)
	checkNothingChanged(t, l, "refused takeover of a slow master", before, after)
	if got := bootstrap(t, l); got["qmaster_spool_dir"] != boot["qmaster_spool_dir"] || got["spooling_params"] != boot["spooling_params"] {
		t.Errorf("bootstrap changed: qmaster_spool_dir %q spooling_params %q, was %q %q",
			got["qmaster_spool_dir"], got["spooling_params"], boot["qmaster_spool_dir"], boot["spooling_params"])
	}
	if got := onePID(t, l, l.Master(), "sge_qmaster"); got != pid {
		t.Errorf("qmaster on the master is pid %d, was %d: it was restarted or fenced", got, pid)
	}

	run := toLastRun(t, l, sgerunState(l))
	ev := toGateEvidence(t, run.Dir, "partition gate")
	t.Logf("gate: %v: %v", ev["verdict"], ev["reason"])
	if ev["verdict"] != "master_reachable" || ev["decision"] != "refused" || ev["forced"] != false {
		t.Errorf("gate evidence: verdict %v decision %v forced %v, want master_reachable/refused/false", ev["verdict"], ev["decision"], ev["forced"])
	}
	if v, _ := ev["vetoes"].([]any); len(v) == 0 {
		t.Errorf("gate evidence names no vetoing voter: %v", ev["vetoes"])
	}
	// The proof of life came from a retried qping: the first attempt
	// timed out without a reply, the longer second one got status 0.
	retried := ""
	voters, _ := ev["voters"].(map[string]any)
	for h, vv := range voters {
		v, _ := vv.(map[string]any)
		atts, _ := v["attempts"].([]any)
		t.Logf("voter %s: vote %v (%v), tcp %v, attempts %v", h, v["vote"], v["cause"], v["tcp"], atts)
		if len(atts) != 2 || v["vote"] != "up" || v["qping_status"] != float64(0) {
			continue
		}
		a1, _ := atts[0].(map[string]any)
		a2, _ := atts[1].(map[string]any)
		if a1["status"] == float64(-1) && a1["timed_out"] == true && a2["status"] == float64(0) {
			retried = h
		}
	}
	if retried == "" {
		t.Errorf("no voter shows a timed-out first qping and a second one with status 0: %v", voters)
	}
}

// TestGateWitnessVeto: a partial partition. The shadow and one witness
// cannot reach the master (a blackhole route to its scheduler address in
// their namespaces), the other witness still can. Two of three voters see
// the master unreachable, which is the quorum, but the witness that gets
// qping status 0 vetoes: the takeover refuses (exit 3), its evidence names
// that witness, and nothing changes.
func TestGateWitnessVeto(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 2)
	cutOff, sees := []string{l.Shadow(), l.ExecHosts()[0]}, l.ExecHosts()[1]
	waitQping(t, l, sees, l.Master(), time.Minute)
	m, err := l.Host(l.Master())
	if err != nil {
		t.Fatal(err)
	}
	before := spoolTree(t, l)
	route := "blackhole " + m.SchedAddr + "/32"
	for _, h := range cutOff {
		t.Cleanup(func() { blackhole(l, h, "del", route) })
		if err := blackhole(l, h, "add", route); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range cutOff {
		if st := qpingStatus(l, h, l.Master()); st >= 0 {
			t.Fatalf("qping from %s to the master: status %d through the blackhole route", h, st)
		}
	}
	start := time.Now()
	r := runSgerun(t, l, 3*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	t.Logf("takeover with one witness reaching the master: exit %d after %s", r.Code, time.Since(start).Round(100*time.Millisecond))
	after := spoolTree(t, l)
	for _, h := range cutOff {
		if err := blackhole(l, h, "del", route); err != nil {
			t.Error(err)
		}
	}
	toWantCode(t, r, 3, "takeover with one witness reaching the master")
	checkNothingChanged(t, l, "refused takeover (witness veto)", before, after)

	run := toLastRun(t, l, sgerunState(l))
	ev := toGateEvidence(t, run.Dir, "partition gate")
	t.Logf("gate: %v: %v", ev["verdict"], ev["reason"])
	if ev["verdict"] != "master_reachable" || ev["decision"] != "refused" {
		t.Errorf("gate evidence: verdict %v decision %v, want master_reachable/refused", ev["verdict"], ev["decision"])
	}
	if reason, _ := ev["reason"].(string); !strings.Contains(reason, sees) {
		t.Errorf("gate reason %q does not name the vetoing witness %s", reason, sees)
	}
	if v, _ := ev["vetoes"].([]any); len(v) != 1 || v[0] != sees {
		t.Errorf("gate vetoes %v, want [%s]", ev["vetoes"], sees)
	}
	voters, _ := ev["voters"].(map[string]any)
	for _, h := range cutOff {
		v, _ := voters[h].(map[string]any)
		if v["vote"] != "down" || v["cause"] != "unreachable" || v["qping_status"] != float64(-1) {
			t.Errorf("voter %s: %v, want a down vote (unreachable)", h, v)
		}
	}
	if v, _ := voters[sees].(map[string]any); v["vote"] != "up" || v["qping_status"] != float64(0) {
		t.Errorf("voter %s: %v, want up with status 0", sees, v)
	}
	if down, _ := ev["votes_down"].(float64); down != 2 || ev["quorum"] != float64(2) {
		t.Errorf("votes_down %v quorum %v, want 2 and 2 (the quorum was reached and still vetoed)", ev["votes_down"], ev["quorum"])
	}
	waitQping(t, l, l.Shadow(), l.Master(), time.Minute)
}

// blackhole adds or deletes (op) a route in host's network namespace.
func blackhole(l *lab.Lab, host, op, route string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := l.Exec(ctx, host, "ip route "+op+" "+route); err != nil && op == "add" {
		return fmt.Errorf("ip route %s %s on %s: %w", op, route, host, err)
	}
	return nil
}
