package steps

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/sge"

	"github.com/sgerun/sgerun/target"
)

// voterFake is a voter that answers the reachability check and the probe
// with probe, and the heartbeat with "12 00042".
func voterFake(t *testing.T, name, probe string) *fakeTarget {
	return newFake(t, name).
		on(gateMark, target.Output{Stdout: probe}).
		on("/heartbeat", target.Output{Stdout: "12 00042\n"}).
		onRE(`^true$`, target.Output{})
}

// CollectGate over fake voters: what it asks each voter, where it reads
// the shared state, and that it never changes a host. DecideGate's table
// is in gate_test.go.
func TestCollectGate(t *testing.T) {
	cfg := GateConfig{Master: "m", Shadow: "s", Witnesses: []string{"w1", "m", "s"}, SGERoot: "/sge", SGECell: "c",
		Port: 6445, Timeout: 2 * time.Second, Policy: GatePolicy{}}
	const boot = "qmaster_spool_dir /export/spool q/qmaster\nspooling_params /export/spool q/db\n"
	record := `{"time":"2026-01-02T03:04:05Z","run_id":"r0","from":"m","to":"s"}`
	tests := []struct {
		name       string
		probes     map[string]string // voter -> probe; absent: SSH fails
		sharedDir  string
		reach      error
		noReach    bool
		sharedVia  string
		antiflap   string // AntiflapFile
		antiflapEr string // substring of AntiflapError
	}{
		{name: "through the shadow, record beside the spool", probes: map[string]string{"s": probeCut, "w1": probeCut},
			sharedVia: "s", antiflap: "/export/spool q/.sgerun-last-takeover.json"},
		{name: "shared_dir holds the record", probes: map[string]string{"s": probeCut, "w1": probeCut}, sharedDir: "/shared",
			sharedVia: "s", antiflap: "/shared/.sgerun-last-takeover.json"},
		{name: "through a witness when the shadow is cut off", probes: map[string]string{"w1": probeAlive},
			sharedVia: "w1", antiflap: "/export/spool q/.sgerun-last-takeover.json", reach: errors.New("ssh dial m: i/o timeout")},
		{name: "a garbled probe does not read the shared state", probes: map[string]string{"s": "Welcome\n", "w1": probeCut},
			sharedVia: "w1", antiflap: "/export/spool q/.sgerun-last-takeover.json", noReach: true},
		{name: "nobody answers", probes: map[string]string{}, antiflapEr: "no voter could read the shared state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			voters := map[string]*fakeTarget{}
			for name, probe := range tt.probes {
				f := voterFake(t, name, probe).
					put("/sge/c/common/bootstrap", boot, target.File{}).
					put("/sge/c/common/act_qmaster", "m\n", target.File{}).
					put("/export/spool q/.sgerun-last-takeover.json", record, target.File{}).
					put("/shared/.sgerun-last-takeover.json", record, target.File{})
				voters[name] = f
			}
			env := Runtime{Connect: func(_ context.Context, host, address string) (target.Target, error) {
				if address != "" {
					t.Errorf("the gate dialled %s at %s", host, address)
				}
				if f, ok := voters[host]; ok {
					return f, nil
				}
				return nil, errors.New("ssh dial " + host + ": no route to host")
			}}
			if !tt.noReach {
				env.Reach = func(context.Context, string) error { return tt.reach }
			}
			c := cfg
			c.SharedDir = tt.sharedDir
			ev, err := CollectGate(context.Background(), c, env)
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Voters) != 2 || ev.Voters[0].Host != "s" || ev.Voters[1].Host != "w1" {
				t.Fatalf("voters %+v, want s then w1 (the master never votes)", ev.Voters)
			}
			for _, v := range ev.Voters {
				_, reached := voters[v.Host]
				if !reached && !strings.Contains(v.SSHError, "no route to host") {
					t.Errorf("voter %s: SSH error %q", v.Host, v.SSHError)
				}
				// a probe that ran has its times; one never sent has none
				if reached != !v.ProbeStart.IsZero() || v.ProbeEnd.Before(v.ProbeStart) || v.ProbeStart.IsZero() != v.ProbeEnd.IsZero() {
					t.Errorf("voter %s: probe times %v .. %v (reached %v)", v.Host, v.ProbeStart, v.ProbeEnd, reached)
				}
			}
			for name, f := range voters {
				if len(f.cmds("exec")) != 0 || len(f.cmds("write")) != 0 {
					t.Errorf("the gate changed %s: %+v", name, f.calls)
				}
				q := f.cmds("query")
				if len(q) < 2 || q[0] != "true" || !strings.Contains(q[1], "m=m; p=6445; t1=2; t2=6; tc=1.5") {
					t.Errorf("%s was asked %q", name, q)
				}
				heartbeat := slicesContain(q, `f='/export/spool q/qmaster/heartbeat';`)
				if heartbeat != (name == tt.sharedVia) {
					t.Errorf("%s read the heartbeat: %v, want only %q to", name, heartbeat, tt.sharedVia)
				}
			}
			if ev.SharedVia != tt.sharedVia || ev.AntiflapFile != tt.antiflap {
				t.Errorf("shared via %q file %q, want %q %q", ev.SharedVia, ev.AntiflapFile, tt.sharedVia, tt.antiflap)
			}
			if tt.antiflapEr != "" {
				if !strings.Contains(ev.AntiflapError, tt.antiflapEr) {
					t.Errorf("antiflap error %q, want %q", ev.AntiflapError, tt.antiflapEr)
				}
				return
			}
			if ev.QmasterSpoolDir != "/export/spool q/qmaster" || ev.HeartbeatAgeSeconds != 12 || ev.Heartbeat != "00042" || ev.ActQmaster != "m" {
				t.Errorf("shared state %+v", ev)
			}
			if ev.Antiflap == nil || ev.Antiflap.RunID != "r0" || ev.AntiflapError != "" {
				t.Errorf("anti-flap record %+v (%s)", ev.Antiflap, ev.AntiflapError)
			}
			if ev.SSHMasterChecked == tt.noReach || tt.reach != nil && !strings.Contains(ev.SSHMasterError, "i/o timeout") {
				t.Errorf("ssh to the master: checked %v error %q", ev.SSHMasterChecked, ev.SSHMasterError)
			}
		})
	}
}

// Without bootstrap's spool dir and without shared_dir the record's place
// is unknown, which the gate reports (and DecideGate refuses on).
func TestCollectGateNoRecordDir(t *testing.T) {
	s := voterFake(t, "s", probeCut)
	env := Runtime{Connect: func(context.Context, string, string) (target.Target, error) { return s, nil }}
	ev, err := CollectGate(context.Background(), GateConfig{Master: "m", Shadow: "s", SGERoot: "/sge", SGECell: "c", Port: 6444, Timeout: time.Second}, env)
	if err != nil {
		t.Fatal(err)
	}
	if ev.AntiflapFile != "" || !strings.Contains(ev.AntiflapError, "directory is unknown") || ev.HeartbeatAgeSeconds != -1 {
		t.Errorf("evidence %+v", ev)
	}
	if _, err := CollectGate(context.Background(), GateConfig{Master: "m", Shadow: "s"}, Runtime{}); err == nil {
		t.Error("a gate without connections collected")
	}
}

func slicesContain(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// The probe script is valid sh and uses package sge's test for a qping
// reply, so that the host and ParseQping agree on what a reply is.
func TestGateProbeScriptSyntax(t *testing.T) {
	script := GateProbeScript(GateConfig{Master: "m", SGERoot: "/sge", SGECell: "c", Port: 6444, Timeout: time.Second})
	if !strings.Contains(script, sge.QpingRepliedSh) || !strings.Contains(script, `qping_replied "$d/$1.q1"`) || strings.Contains(script, "grep -q '^[[:space:]]*status:'") {
		t.Errorf("the probe decides on its own what a qping reply is")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v: %s", err, out)
	}
}

// TestDownWindow: the window spans the down voters' probes only; an up
// vote, an abstention (a slow unreachable witness) and a down vote with no
// times do not widen it.
func TestDownWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ev := GateEvidence{Voters: []VoterEvidence{
		{Host: "s", ProbeStart: at(0.2), ProbeEnd: at(1.8)},
		{Host: "w1", ProbeStart: at(0.4), ProbeEnd: at(2.1)},
		{Host: "w2", ProbeStart: at(0.1), ProbeEnd: at(9.5)}, // abstained after a long wait
		{Host: "w3", ProbeStart: at(0), ProbeEnd: at(0.3)},   // voted up
		{Host: "w4"}, // down, but never timed
	}}
	d := GateDecision{Votes: []VoterVote{
		{Host: "s", Vote: VoteDown}, {Host: "w1", Vote: VoteDown}, {Host: "w2", Vote: VoteAbstain},
		{Host: "w3", Vote: VoteUp}, {Host: "w4", Vote: VoteDown},
	}}
	from, until, ok := ev.DownWindow(d)
	if !ok || !from.Equal(at(0.2)) || !until.Equal(at(2.1)) {
		t.Fatalf("DownWindow = %v .. %v (%v), want 0.2 s .. 2.1 s", from.Sub(t0), until.Sub(t0), ok)
	}
	if _, _, ok := ev.DownWindow(GateDecision{Votes: []VoterVote{{Host: "w3", Vote: VoteUp}}}); ok {
		t.Error("a window with no down vote")
	}
}
