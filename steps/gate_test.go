package steps

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/target"
)

// Evidence builders for DecideGate's table. Hosts: m (master), s (shadow),
// w1..w4 (witnesses).

var allTools = GateTools{Qping: true, Timeout: true, Bash: true}

func att(timeout float64, exit, status int) QpingAttempt {
	a := QpingAttempt{TimeoutSeconds: timeout, Exit: exit, Status: status, TimedOut: exit == 124 || exit == 137, Seconds: 0.1}
	switch {
	case status >= 0:
		a.Output = "status:                   " + string(rune('0'+status))
	case exit == 1:
		a.Output = "endpoint m/qmaster/1 at port 6444: can't find connection"
	}
	return a
}

func voter(host, tcp string, attempts ...QpingAttempt) VoterEvidence {
	return VoterEvidence{Host: host, Tools: allTools, ActQmaster: "m",
		Master: HostProbe{Host: "m", TCP: tcp, Attempts: attempts}}
}

func alive(host string) VoterEvidence { return voter(host, TCPOpen, att(3, 0, 0)) }

func unhealthy(host string, st int) VoterEvidence { return voter(host, TCPOpen, att(3, 1, st)) }

// slow: the first qping timed out on an open port, the second got status 0.
func slow(host string) VoterEvidence { return voter(host, TCPOpen, att(3, 124, -1), att(9, 0, 0)) }

func refused(host string) VoterEvidence { return voter(host, TCPRefused, att(3, 1, -1)) }

func cut(host string) VoterEvidence { return voter(host, TCPTimeout, att(3, 124, -1)) }

func blackholed(host string) VoterEvidence {
	v := voter(host, TCPUnreachable, att(3, 1, -1))
	v.Master.TCPDetail = "connect: Invalid argument"
	return v
}

func hung(host string) VoterEvidence { return voter(host, TCPOpen, att(3, 124, -1), att(9, 124, -1)) }

func sshDown(host string) VoterEvidence {
	return VoterEvidence{Host: host, SSHError: "ssh dial " + host + ": i/o timeout", Master: HostProbe{Host: "m", TCP: TCPUnknown}}
}

func with(v VoterEvidence, f func(*VoterEvidence)) VoterEvidence { f(&v); return v }

func gev(voters ...VoterEvidence) GateEvidence {
	return GateEvidence{Time: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Master: "m", Shadow: "s", Voters: voters,
		ActQmaster: "m", HeartbeatAgeSeconds: 20, AntiflapFile: "/shared/.sgerun-last-takeover.json"}
}

func withEv(ev GateEvidence, f func(*GateEvidence)) GateEvidence { f(&ev); return ev }

func TestDecideGate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	recent := &TakeoverRecord{Time: now.Add(-5 * time.Minute), RunID: "r1", From: "m", To: "s"}
	pol := GatePolicy{HeartbeatStale: 90 * time.Second, Antiflap: 30 * time.Minute}
	force := pol
	force.Force = true
	q := func(n int) GatePolicy { p := pol; p.Quorum = n; return p }
	noFlap := pol
	noFlap.Antiflap = 0

	cases := []struct {
		name     string
		ev       GateEvidence
		pol      GatePolicy
		verdict  string
		decision string
		reason   []string          // substrings of the reason
		causes   map[string]string // host -> vote cause
		counts   *[3]int           // down, up, abstain
		check    func(*testing.T, GateDecision)
	}{
		{name: "all refused: master down", ev: gev(refused("s"), refused("w1"), refused("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, counts: &[3]int{3, 0, 0},
			causes: map[string]string{"s": "refused", "w1": "refused"}},
		{name: "scheduler network cut: tcp timeouts", ev: gev(cut("s"), cut("w1"), cut("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w2": "tcp_timeout"}},
		{name: "hung everywhere, stale heartbeat", ev: withEv(gev(hung("s"), hung("w1"), hung("w2")), func(e *GateEvidence) { e.HeartbeatAgeSeconds = 200 }),
			pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"s": "hung"},
			check: func(t *testing.T, d GateDecision) {
				if !d.Hung {
					t.Errorf("hung not set")
				}
			}},
		{name: "hung, fresh heartbeat: still down, not flagged hung", ev: gev(hung("s"), hung("w1"), hung("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown,
			check: func(t *testing.T, d GateDecision) {
				if d.Hung {
					t.Errorf("hung set with a fresh heartbeat")
				}
			}},
		{name: "blackholed everywhere: unreachable is positive evidence", ev: gev(blackholed("s"), blackholed("w1"), refused("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"s": "unreachable", "w2": "refused"}},
		{name: "healthy master: every voter vetoes", ev: gev(alive("s"), alive("w1"), alive("w2")), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused, reason: []string{"s, w1, w2 got qping status 0", "--force"},
			counts: &[3]int{0, 3, 0}, causes: map[string]string{"s": "status_0"}},
		{name: "slow master answers the longer qping of one voter", ev: gev(hung("s"), slow("w1"), hung("w2")), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused, reason: []string{"w1 got qping status 0"},
			check: func(t *testing.T, d GateDecision) {
				if len(d.Vetoes) != 1 || d.Vetoes[0] != "w1" {
					t.Errorf("vetoes %v, want [w1]", d.Vetoes)
				}
			}},
		{name: "slow master answers every second qping", ev: gev(slow("s"), slow("w1"), slow("w2")), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused, counts: &[3]int{0, 3, 0}},
		{name: "partial partition: one witness still reaches the master", ev: gev(blackholed("s"), blackholed("w1"), alive("w2")), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused, reason: []string{"w2 got qping status 0", "proof of life"},
			counts: &[3]int{2, 1, 0}},
		{name: "proof of life from a minority of 5 still vetoes", ev: gev(cut("s"), cut("w1"), cut("w2"), cut("w3"), alive("w4")), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused, reason: []string{"w4"}},
		{name: "shadow alone cut from the master: shadow_cut_off", ev: gev(blackholed("s"), alive("w1"), alive("w2")), pol: pol,
			verdict: VerdictShadowCutOff, decision: GateRefused, reason: []string{"shadow s is the one cut off", "w1, w2"}},
		{name: "shadow alone cut, forced: still refused", ev: gev(blackholed("s"), alive("w1"), alive("w2")), pol: force,
			verdict: VerdictShadowCutOff, decision: GateRefused},
		{name: "shadow unreachable by ssh", ev: gev(sshDown("s"), alive("w1"), alive("w2")), pol: pol,
			verdict: VerdictShadowCutOff, decision: GateRefused, reason: []string{"shadow s cannot be reached", CauseSSHUnreachable},
			causes: map[string]string{"s": CauseSSHUnreachable}},
		{name: "shadow unreachable, forced: still refused", ev: gev(sshDown("s"), cut("w1"), cut("w2")), pol: force,
			verdict: VerdictShadowCutOff, decision: GateRefused},
		{name: "shadow probe channel failed", ev: gev(with(refused("s"), func(v *VoterEvidence) { v.ProbeError = "probe channel: EOF" }), refused("w1"), refused("w2")),
			pol: pol, verdict: VerdictShadowCutOff, decision: GateRefused, causes: map[string]string{"s": CauseProbeFailed}},
		{name: "shadow without qping", ev: gev(with(sshDown("s"), func(v *VoterEvidence) { v.SSHError = ""; v.Tools = GateTools{Timeout: true, Bash: true} }), refused("w1"), refused("w2")),
			pol: pol, verdict: VerdictShadowCutOff, decision: GateRefused, reason: []string{CauseQpingMissing},
			causes: map[string]string{"s": CauseQpingMissing}},
		{name: "isolated shadow: witnesses unreachable", ev: gev(cut("s"), sshDown("w1"), sshDown("w2")), pol: pol,
			verdict: VerdictNoQuorum, decision: GateRefused, reason: []string{"only 1 of 3", "w1 ssh_unreachable", "w2 ssh_unreachable"},
			counts: &[3]int{1, 0, 2}},
		{name: "isolated shadow, forced: proceeds, journaled", ev: gev(cut("s"), sshDown("w1"), sshDown("w2")), pol: force,
			verdict: VerdictNoQuorum, decision: GateForced, reason: []string{"forced"},
			check: func(t *testing.T, d GateDecision) {
				if !d.Forced {
					t.Errorf("not forced")
				}
			}},
		{name: "witnesses abstain (no qping): no quorum", ev: gev(cut("s"), with(cut("w1"), func(v *VoterEvidence) { v.Tools.Qping = false; v.Master.Attempts = nil }),
			with(cut("w2"), func(v *VoterEvidence) { v.Tools.Qping = false; v.Master.Attempts = nil })),
			pol: pol, verdict: VerdictNoQuorum, decision: GateRefused, causes: map[string]string{"w1": CauseQpingMissing, "w2": CauseQpingMissing}},
		{name: "one witness without timeout(1): the other two decide", ev: gev(cut("s"), with(sshDown("w1"), func(v *VoterEvidence) { v.SSHError = ""; v.Tools = GateTools{Qping: true, Bash: true} }), cut("w2")),
			pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown, counts: &[3]int{2, 0, 1},
			causes: map[string]string{"w1": CauseTimeoutMissing}},
		{name: "quorum edge: 5 voters, 3 down, 2 abstain", ev: gev(cut("s"), cut("w1"), cut("w2"), sshDown("w3"), sshDown("w4")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, check: func(t *testing.T, d GateDecision) {
				if d.Quorum != 3 || d.Majority != 3 {
					t.Errorf("quorum %d majority %d, want 3/3", d.Quorum, d.Majority)
				}
			}},
		{name: "quorum edge: 5 voters, 2 down, 3 abstain", ev: gev(cut("s"), cut("w1"), sshDown("w2"), sshDown("w3"), sshDown("w4")), pol: pol,
			verdict: VerdictNoQuorum, decision: GateRefused, reason: []string{"only 2 of 5", "majority, 3"}},
		{name: "quorum edge: 4 voters, 2 down, 2 abstain", ev: gev(cut("s"), cut("w1"), sshDown("w2"), sshDown("w3")), pol: pol,
			verdict: VerdictNoQuorum, decision: GateRefused},
		{name: "explicit quorum 1 still needs a majority voting", ev: gev(cut("s"), sshDown("w1"), sshDown("w2")), pol: q(1),
			verdict: VerdictNoQuorum, decision: GateRefused},
		{name: "explicit quorum 1 with a majority voting", ev: gev(cut("s"), unhealthy("w1", 2), sshDown("w2")), pol: q(1),
			verdict: VerdictMasterDown, decision: GateMasterDown},
		{name: "explicit quorum 4 of 5 missed: not confirmed", ev: gev(cut("s"), cut("w1"), cut("w2"), unhealthy("w3", 1), unhealthy("w4", 2)), pol: q(4),
			verdict: VerdictHealthy, decision: GateRefused, reason: []string{"not confirmed down", "2 voter(s) reach it, 3 do not"}},
		{name: "status 3 is alive but no veto; the down votes reach the quorum", ev: gev(cut("s"), cut("w1"), unhealthy("w2", 3)), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w2": "status_3"}, counts: &[3]int{2, 1, 0}},
		{name: "status 2 from two voters: not confirmed", ev: gev(cut("s"), unhealthy("w1", 2), unhealthy("w2", 2)), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused},
		{name: "not confirmed, forced", ev: gev(cut("s"), unhealthy("w1", 2), unhealthy("w2", 2)), pol: force,
			verdict: VerdictHealthy, decision: GateForced},
		{name: "alive master, forced: journaled override", ev: gev(alive("s"), alive("w1"), alive("w2")), pol: force,
			verdict: VerdictHealthy, decision: GateForced, reason: []string{"forced: the master m is alive"}},
		{name: "port open, one qping only: abstains (not retried)", ev: gev(cut("s"), voter("w1", TCPOpen, att(3, 124, -1)), cut("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w1": CauseNotRetried}, counts: &[3]int{2, 0, 1}},
		{name: "no bash for the tcp connect: abstains", ev: gev(cut("s"), with(voter("w1", TCPUnknown, att(3, 124, -1), att(9, 124, -1)), func(v *VoterEvidence) { v.Tools.Bash = false }), cut("w2")),
			pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w1": CauseTCPUnavailable}},
		{name: "tcp result unknown (name unresolved): abstains", ev: gev(cut("s"), with(voter("w1", TCPUnknown, att(3, 1, -1), att(9, 1, -1)), func(v *VoterEvidence) { v.Master.TCPDetail = "exit 1 Name or service not known" }), sshDown("w2")),
			pol: pol, verdict: VerdictNoQuorum, decision: GateRefused, causes: map[string]string{"w1": CauseTCPUnavailable}},
		{name: "qping: not found (exit 127) abstains", ev: gev(cut("s"), voter("w1", TCPTimeout, att(3, 127, -1)), voter("w2", TCPTimeout, att(3, 127, -1))), pol: pol,
			verdict: VerdictNoQuorum, decision: GateRefused, causes: map[string]string{"w1": CauseQpingMissing}},
		{name: "qping not executable (exit 126) abstains", ev: gev(cut("s"), voter("w1", TCPRefused, att(3, 126, -1)), cut("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w1": CauseQpingError}},
		{name: "qping fails fast on an open port (access denied): abstains, not hung", ev: gev(cut("s"),
			voter("w1", TCPOpen, QpingAttempt{TimeoutSeconds: 3, Exit: 1, Status: -1, Output: "error: commlib error: access denied (client IP resolved to host name \"x\". This is not identical to clients host name \"w1\")"},
				QpingAttempt{TimeoutSeconds: 9, Exit: 1, Status: -1, Output: "error: commlib error: access denied"}), cut("w2")),
			pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w1": CauseQpingError}, counts: &[3]int{2, 0, 1}},
		{name: "qping exit 0 without a status line abstains", ev: gev(cut("s"), voter("w1", TCPOpen, att(3, 0, -1)), cut("w2")), pol: pol,
			verdict: VerdictMasterDown, decision: GateMasterDown, causes: map[string]string{"w1": CauseQpingError}},
		{name: "act_qmaster names another live qmaster", ev: gev(with(cut("s"), func(v *VoterEvidence) {
			v.ActQmaster = "x"
			v.Act = &HostProbe{Host: "x", TCP: TCPOpen, Attempts: []QpingAttempt{att(3, 0, 0)}}
		}), cut("w1"), cut("w2")), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused, reason: []string{"act_qmaster names x", "answers qping status 0 from s"}},
		{name: "act_qmaster names another host that is dead: no effect", ev: gev(with(cut("s"), func(v *VoterEvidence) {
			v.ActQmaster = "x"
			v.Act = &HostProbe{Host: "x", TCP: TCPRefused, Attempts: []QpingAttempt{att(3, 1, -1)}}
		}), cut("w1"), cut("w2")), pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown},
		{name: "the shadow is act_qmaster and answers: already master", ev: gev(with(cut("s"), func(v *VoterEvidence) {
			v.ActQmaster = "s"
			v.Act = &HostProbe{Host: "s", TCP: TCPOpen, Attempts: []QpingAttempt{att(3, 0, 0)}}
		}), cut("w1"), cut("w2")), pol: pol, verdict: VerdictAlreadyMaster, decision: GateAlreadyMaster,
			check: func(t *testing.T, d GateDecision) {
				if err := d.Err(); !errors.Is(err, ErrStopRun) {
					t.Errorf("Err() = %v, want ErrStopRun", err)
				}
			}},
		{name: "anti-flap window open", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) { e.Antiflap = recent }), pol: pol,
			verdict: VerdictAntiflap, decision: GateRefused, reason: []string{"run r1", "sgerun ack"},
			check: func(t *testing.T, d GateDecision) {
				if d.EvidenceVerdict != VerdictMasterDown || d.AntiflapLast == nil {
					t.Errorf("evidence verdict %q antiflap_last %v", d.EvidenceVerdict, d.AntiflapLast)
				}
			}},
		{name: "anti-flap window open, forced", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) { e.Antiflap = recent }), pol: force,
			verdict: VerdictMasterDown, decision: GateForced, check: func(t *testing.T, d GateDecision) {
				if !d.Forced || d.AntiflapLast == nil {
					t.Errorf("forced %v antiflap_last %v", d.Forced, d.AntiflapLast)
				}
			}},
		{name: "anti-flap record acknowledged", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) {
			r := *recent
			r.Acked = true
			e.Antiflap = &r
		}), pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown},
		{name: "anti-flap record older than the window", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) {
			r := *recent
			r.Time = now.Add(-31 * time.Minute)
			e.Antiflap = &r
		}), pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown},
		{name: "anti-flap record corrupt: refuses, names the file", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) {
			e.AntiflapError = "/shared/.sgerun-last-takeover.json: corrupt anti-flap record: unexpected end of JSON input"
		}), pol: pol, verdict: VerdictAntiflapUnreadable, decision: GateRefused, reason: []string{"/shared/.sgerun-last-takeover.json", "corrupt"},
			check: func(t *testing.T, d GateDecision) {
				if d.EvidenceVerdict != VerdictMasterDown {
					t.Errorf("evidence verdict %q", d.EvidenceVerdict)
				}
			}},
		{name: "anti-flap record corrupt, forced", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) { e.AntiflapError = "x: corrupt" }), pol: force,
			verdict: VerdictMasterDown, decision: GateForced, reason: []string{"unreadable anti-flap record"}},
		{name: "anti-flap off: a corrupt record does not matter", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) { e.AntiflapError = "x: corrupt" }), pol: noFlap,
			verdict: VerdictMasterDown, decision: GateMasterDown},
		{name: "a refusal never reaches the anti-flap check", ev: withEv(gev(alive("s"), alive("w1"), alive("w2")), func(e *GateEvidence) { e.AntiflapError = "x: corrupt" }), pol: pol,
			verdict: VerdictHealthy, decision: GateRefused},
		{name: "ssh to the master and a fresh heartbeat decide nothing", ev: withEv(gev(cut("s"), cut("w1"), cut("w2")), func(e *GateEvidence) {
			e.SSHMasterChecked, e.HeartbeatAgeSeconds = true, 1
		}), pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown},
		{name: "shadow not among the voters", ev: withEv(gev(cut("w1"), cut("w2")), func(e *GateEvidence) {}), pol: pol,
			verdict: VerdictShadowCutOff, decision: GateRefused},
		{name: "single voter (no witnesses) down", ev: gev(cut("s")), pol: pol, verdict: VerdictMasterDown, decision: GateMasterDown},
	}
	if len(cases) < 30 {
		t.Fatalf("%d cases, want at least 30", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := DecideGate(c.ev, c.pol)
			if d.Verdict != c.verdict || d.Decision != c.decision {
				t.Fatalf("verdict %q decision %q, want %q %q; reason %q", d.Verdict, d.Decision, c.verdict, c.decision, d.Reason)
			}
			for _, r := range c.reason {
				if !strings.Contains(d.Reason, r) {
					t.Errorf("reason %q lacks %q", d.Reason, r)
				}
			}
			for host, cause := range c.causes {
				found := false
				for _, v := range d.Votes {
					if v.Host == host {
						found = true
						if v.Cause != cause {
							t.Errorf("voter %s: cause %q (%s: %s), want %q", host, v.Cause, v.Vote, v.Detail, cause)
						}
					}
				}
				if !found {
					t.Errorf("no vote of %s", host)
				}
			}
			if c.counts != nil && (d.Down != c.counts[0] || d.Up != c.counts[1] || d.Abstain != c.counts[2]) {
				t.Errorf("down/up/abstain %d/%d/%d, want %v", d.Down, d.Up, d.Abstain, *c.counts)
			}
			err := d.Err()
			switch d.Decision {
			case GateMasterDown, GateForced:
				if err != nil {
					t.Errorf("Err() = %v for %s", err, d.Decision)
				}
			case GateRefused:
				if !errors.Is(err, ErrRefused) {
					t.Errorf("Err() = %v, want ErrRefused", err)
				}
			}
			if c.check != nil {
				c.check(t, d)
			}
		})
	}
}

// Outputs of GateProbeScript seen on the lab (SGE 8.1.9).
const (
	probeAlive = `@sgerun-gate tools qping=1 timeout=1 bash=1
@sgerun-gate act gq-master
@sgerun-gate target m gq-master
@sgerun-gate tcp 0 
@sgerun-gate qping 0 3 1796160842693979784 1796160842822174207
| 12/01/2026 21:34:02:
| SIRM version:             0.1
| SIRM message id:          1
| start time:               12/01/2026 21:31:44 (1796160704)
| run time [s]:             138
| messages in read buffer:  0
| messages in write buffer: 0
| no. of connected clients: 3
| status:                   0
| info:                     MAIN: R (137.95) | signaler000: R (137.84) | OK
| Monitor:                  disabled
| 
| 
@sgerun-gate end
`
	probeHung = `@sgerun-gate tools qping=1 timeout=1 bash=1
@sgerun-gate act gq-master
@sgerun-gate target m gq-master
@sgerun-gate tcp 0 
@sgerun-gate qping 124 3 1796160846645900282 1796160849759960888
| endpoint gq-master/qmaster/1 at port 6444: can't find connection
@sgerun-gate qping 124 9 1796160849765369277 1796160858785093857
| endpoint gq-master/qmaster/1 at port 6444: can't find connection
@sgerun-gate end
`
	probeCut = `@sgerun-gate tools qping=1 timeout=1 bash=1
@sgerun-gate act gq-master
@sgerun-gate target m gq-master
@sgerun-gate tcp 124 
@sgerun-gate qping 124 3 1796160858856087816 1796160862868997200
| endpoint gq-master/qmaster/1 at port 6444: can't find connection
@sgerun-gate end
`
	probeBlackhole = `@sgerun-gate tools qping=1 timeout=1 bash=1
@sgerun-gate act gq-master
@sgerun-gate target m gq-master
@sgerun-gate tcp 1 gq-master: connect: Invalid argument gq-master: line 1: /dev/tcp/gq-master/6444: Invalid argument 
@sgerun-gate qping 1 3 1796160862949813080 1796160862958212201
| can't connect to service: Invalid argument
| endpoint gq-master/qmaster/1 at port 6444: can't connect to service
@sgerun-gate end
`
	probeRefused = `@sgerun-gate tools qping=1 timeout=1 bash=1
@sgerun-gate act gq-master
@sgerun-gate target m gq-master
@sgerun-gate tcp 1 gq-master: connect: Connection refused gq-master: line 1: /dev/tcp/gq-master/6444: Connection refused 
@sgerun-gate qping 1 3 1796160862949813080 1796160862958212201
| got select error: Connection refused
| got select error: closing "gq-master/qmaster/1"
| endpoint gq-master/qmaster/1 at port 6444: can't find connection
@sgerun-gate end
`
	// a slow master: the second, longer qping got the reply; the act
	// host (the shadow) answers too; a motd line before the output.
	probeSlowAct = `Welcome to node s
@sgerun-gate tools qping=1 timeout=1 bash=1
@sgerun-gate act s
@sgerun-gate target m m
@sgerun-gate tcp 0 
@sgerun-gate qping 124 3 100 3000000100
| endpoint m/qmaster/1 at port 6444: can't find connection
@sgerun-gate qping 0 9 3000000200 5500000200
|    status:   0
@sgerun-gate target a s
@sgerun-gate tcp 0 
@sgerun-gate qping 1 3 x y
| status: 3
@sgerun-gate end
`
	probeNoTools = `@sgerun-gate tools qping=0 timeout=1 bash=0
@sgerun-gate act 
@sgerun-gate end
`
)

func TestParseGateProbe(t *testing.T) {
	type want struct {
		tools    GateTools
		act      string
		tcp      string
		statuses []int
		timedOut []bool
		actSt    *int
	}
	three := 3
	cases := []struct {
		name string
		out  string
		want want
		err  string
	}{
		{"alive", probeAlive, want{tools: allTools, act: "gq-master", tcp: TCPOpen, statuses: []int{0}, timedOut: []bool{false}}, ""},
		{"hung: retried", probeHung, want{tools: allTools, act: "gq-master", tcp: TCPOpen, statuses: []int{-1, -1}, timedOut: []bool{true, true}}, ""},
		{"scheduler network cut", probeCut, want{tools: allTools, act: "gq-master", tcp: TCPTimeout, statuses: []int{-1}, timedOut: []bool{true}}, ""},
		{"blackhole route", probeBlackhole, want{tools: allTools, act: "gq-master", tcp: TCPUnreachable, statuses: []int{-1}, timedOut: []bool{false}}, ""},
		{"refused", probeRefused, want{tools: allTools, act: "gq-master", tcp: TCPRefused, statuses: []int{-1}, timedOut: []bool{false}}, ""},
		{"slow, indented status, act host", probeSlowAct, want{tools: allTools, act: "s", tcp: TCPOpen, statuses: []int{-1, 0}, timedOut: []bool{true, false}, actSt: &three}, ""},
		{"tools missing", probeNoTools, want{tools: GateTools{Timeout: true}}, ""},
		{"truncated", probeHung[:200], want{}, "incomplete"},
		{"empty", "", want{}, "incomplete"},
		{"shell error", "@sgerun-gate tools qping=1 timeout=1 bash=1\n@sgerun-gate error mktemp failed\n@sgerun-gate end\n", want{}, "mktemp"},
		{"no master result", "@sgerun-gate tools qping=1 timeout=1 bash=1\n@sgerun-gate end\n", want{}, "no result for the master"},
		{"bad qping line", "@sgerun-gate tools qping=1 timeout=1 bash=1\n@sgerun-gate target m m\n@sgerun-gate qping x 3\n@sgerun-gate end\n", want{}, "bad qping exit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseGateProbe(c.out)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Tools != c.want.tools || p.Act != c.want.act {
				t.Errorf("tools %+v act %q, want %+v %q", p.Tools, p.Act, c.want.tools, c.want.act)
			}
			if c.want.statuses == nil {
				return
			}
			m := p.Targets["m"]
			if m.TCP != c.want.tcp {
				t.Errorf("tcp %q (%s), want %q", m.TCP, m.TCPDetail, c.want.tcp)
			}
			if len(m.Attempts) != len(c.want.statuses) {
				t.Fatalf("%d attempts, want %d: %+v", len(m.Attempts), len(c.want.statuses), m.Attempts)
			}
			for i, a := range m.Attempts {
				if a.Status != c.want.statuses[i] || a.TimedOut != c.want.timedOut[i] {
					t.Errorf("attempt %d: status %d timed out %v, want %d %v", i+1, a.Status, a.TimedOut, c.want.statuses[i], c.want.timedOut[i])
				}
			}
			if c.want.actSt != nil {
				a, ok := p.Targets["a"]
				if !ok || a.Status() != *c.want.actSt {
					t.Errorf("act probe %+v, want status %d", a, *c.want.actSt)
				}
			}
		})
	}
	// The slow probe's timings: 3 s and 2.5 s; an unparseable clock is -1.
	p, _ := ParseGateProbe(probeSlowAct)
	if a := p.Targets["m"].Attempts; a[0].Seconds != 3 || a[1].Seconds != 2.5 || a[1].TimeoutSeconds != 9 {
		t.Errorf("attempt timings %+v", a)
	}
	if a := p.Targets["a"].Attempts; a[0].Seconds != -1 {
		t.Errorf("act attempt seconds %v, want -1", a[0].Seconds)
	}
}

// The parsed probes vote as the rules say.
func TestVoteOfParsedProbes(t *testing.T) {
	for _, c := range []struct {
		out, vote, cause string
	}{
		{probeAlive, VoteUp, "status_0"},
		{probeHung, VoteDown, "hung"},
		{probeCut, VoteDown, "tcp_timeout"},
		{probeBlackhole, VoteDown, "unreachable"},
		{probeRefused, VoteDown, "refused"},
		{probeSlowAct, VoteUp, "status_0"},
		{probeNoTools, VoteAbstain, CauseQpingMissing},
	} {
		p, err := ParseGateProbe(c.out)
		if err != nil {
			t.Fatal(err)
		}
		v := VoterEvidence{Host: "v", Tools: p.Tools, Master: p.Targets["m"]}
		if got := VoteOf(v); got.Vote != c.vote || got.Cause != c.cause {
			t.Errorf("%.60q: vote %s/%s (%s), want %s/%s", c.out, got.Vote, got.Cause, got.Detail, c.vote, c.cause)
		}
	}
}

func TestClassifyTCP(t *testing.T) {
	for _, c := range []struct{ code, detail, want string }{
		{"0", "", TCPOpen},
		{"124", "", TCPTimeout},
		{"137", "", TCPTimeout},
		{"1", "bash: connect: Connection refused", TCPRefused},
		{"1", "bash: connect: No route to host", TCPUnreachable},
		{"1", "bash: connect: Network is unreachable", TCPUnreachable},
		{"1", "m: connect: Invalid argument", TCPUnreachable},
		{"1", "bash: connect: Connection timed out", TCPTimeout},
		{"1", "bash: m: Name or service not known", TCPUnknown},
		{"x", "", TCPUnknown},
	} {
		if got, _ := classifyTCP(c.code, c.detail); got != c.want {
			t.Errorf("classifyTCP(%q, %q) = %q, want %q", c.code, c.detail, got, c.want)
		}
	}
}

func TestParseTakeoverRecord(t *testing.T) {
	if _, err := ParseTakeoverRecord([]byte(`{"time":"2026-12-01T12:00:00Z","run_id":"r","from":"m","to":"s","acked":false}`)); err != nil {
		t.Errorf("good record: %v", err)
	}
	for _, bad := range []string{"", "  \n", `{"time":`, `{"run_id":"r"}`, `[]`} {
		if _, err := ParseTakeoverRecord([]byte(bad)); err == nil {
			t.Errorf("record %q parsed", bad)
		}
	}
}

// The step's registered data keeps the keys the journal, templates and
// e2e tests read.
func TestGateDataKeys(t *testing.T) {
	ev := gev(cut("s"), cut("w1"), sshDown("w2"))
	d := DecideGate(ev, GatePolicy{})
	data := GateData(ev, d)
	for _, k := range gateKind().DataKeys {
		switch k {
		case "note", "antiflap_last", "evidence_verdict", "act_alive":
			continue // only when there is something to say
		}
		if _, ok := data[k]; !ok {
			t.Errorf("data lacks %q", k)
		}
	}
	for k := range data {
		found := false
		for _, dk := range gateKind().DataKeys {
			found = found || dk == k
		}
		if !found {
			t.Errorf("data key %q is not in DataKeys", k)
		}
	}
	v := data["voters"].(map[string]any)["s"].(map[string]any)
	if v["reachable"] != true || v["qping_status"] != -1 || v["master_up"] != false || v["vote"] != VoteDown || v["tcp"] != TCPTimeout {
		t.Errorf("voter s: %v", v)
	}
	w := data["voters"].(map[string]any)["w2"].(map[string]any)
	if w["reachable"] != false || w["cause"] != CauseSSHUnreachable {
		t.Errorf("voter w2: %v", w)
	}
}

func gateStep(t *testing.T, params string) Spec {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(params), &doc); err != nil {
		t.Fatal(err)
	}
	s, err := gateKind().New(doc.Content[0])
	if err != nil {
		t.Fatalf("sge_gate %s: %v", params, err)
	}
	return s
}

// The sge_gate step end to end over fake voters: the collector, the
// decision and the data, with the anti-flap record read through the shadow.
func TestGateStep(t *testing.T) {
	const base = "{master: m, shadow: s, witnesses: 'w1,w2,m', sge_root: /sge, sge_cell: c}"
	spool := "/spool/qmaster"
	record := func(content string) map[string]string {
		return map[string]string{
			"/sge/c/common/bootstrap":               "qmaster_spool_dir " + spool + "\n",
			"/sge/c/common/act_qmaster":             "m\n",
			"/spool/.sgerun-last-takeover.json":     content,
			"/other/.sgerun-last-takeover.json":     content,
			"/unrelated/.sgerun-last-takeover.json": "",
		}
	}
	recent := `{"time":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `","run_id":"r1","from":"m","to":"s","acked":false}`
	cases := []struct {
		name, params string
		probes       map[string]string // voter -> probe output; absent: unreachable
		files        map[string]string
		verdict      string
		err          error
		reason       string
	}{
		{"cut master, no record", base, map[string]string{"s": probeCut, "w1": probeCut, "w2": probeRefused}, nil, VerdictMasterDown, nil, ""},
		{"corrupt record refuses and names it", base, map[string]string{"s": probeCut, "w1": probeCut, "w2": probeCut},
			record(`{"time": "2026-`), VerdictAntiflapUnreadable, ErrRefused, "/spool/.sgerun-last-takeover.json"},
		{"empty record refuses", base, map[string]string{"s": probeCut, "w1": probeCut, "w2": probeCut},
			record(""), VerdictAntiflapUnreadable, ErrRefused, "empty anti-flap record"},
		{"no antiflap parameter: the window still applies", base, map[string]string{"s": probeCut, "w1": probeCut, "w2": probeCut},
			record(recent), VerdictAntiflap, ErrRefused, "run r1"},
		{"antiflap 0s turns it off", "{master: m, shadow: s, witnesses: 'w1,w2', sge_root: /sge, sge_cell: c, antiflap: 0s}",
			map[string]string{"s": probeCut, "w1": probeCut, "w2": probeCut}, record(recent), VerdictMasterDown, nil, ""},
		{"shared_dir holds the record", "{master: m, shadow: s, witnesses: 'w1,w2', sge_root: /sge, sge_cell: c, shared_dir: /other}",
			map[string]string{"s": probeCut, "w1": probeCut, "w2": probeCut}, record("{bad"), VerdictAntiflapUnreadable, ErrRefused, "/other/.sgerun-last-takeover.json"},
		{"a slow master seen by one witness vetoes", base, map[string]string{"s": probeHung, "w1": probeSlowAct, "w2": probeHung},
			record(""), VerdictHealthy, ErrRefused, "w1 got qping status 0"},
		{"isolated shadow", base, map[string]string{"s": probeCut}, record(""), VerdictNoQuorum, ErrRefused, "w1 ssh_unreachable"},
		{"unreachable shadow", base, map[string]string{"w1": probeAlive, "w2": probeAlive}, record(""), VerdictShadowCutOff, ErrRefused, "shadow s cannot be reached"},
		{"a probe cut short abstains", base, map[string]string{"s": probeCut, "w1": probeHung[:120], "w2": probeCut}, nil, VerdictMasterDown, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := c.files
			if len(files) == 0 {
				files = map[string]string{"/sge/c/common/bootstrap": "qmaster_spool_dir " + spool + "\n"}
			}
			var mu sync.Mutex
			var dialled []*fakeTarget
			env := Runtime{Connect: func(_ context.Context, host, _ string) (target.Target, error) {
				out, ok := c.probes[host]
				if !ok {
					return nil, errors.New("ssh dial " + host + ": no route to host")
				}
				f := voterFake(t, host, out)
				for p, d := range files {
					f.put(p, d, target.File{})
				}
				mu.Lock()
				dialled = append(dialled, f)
				mu.Unlock()
				return f, nil
			}}
			res, err := gateStep(t, c.params).Do(context.Background(), nil, env)
			for _, f := range dialled {
				if len(f.cmds("exec")) != 0 || len(f.cmds("write")) != 0 {
					t.Errorf("the gate must not mutate: %s got %+v", f.name, f.calls)
				}
			}
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v; data %v", err, c.err, res.Data)
			}
			if res.Data["verdict"] != c.verdict {
				t.Fatalf("verdict %v, want %s; reason %v", res.Data["verdict"], c.verdict, res.Data["reason"])
			}
			if r, _ := res.Data["reason"].(string); !strings.Contains(r, c.reason) {
				t.Errorf("reason %q lacks %q", r, c.reason)
			}
			if _, ok := res.Data["voters"].(map[string]any)["m"]; ok {
				t.Errorf("the master votes on itself")
			}
		})
	}
}

func TestGateStepParams(t *testing.T) {
	s := gateStep(t, "{master: m, shadow: s, sge_root: /sge}").(*gateSpec)
	if s.Antiflap != sge.DefaultAntiflap || s.Timeout != DefaultGateTimeout || s.config().retryTimeout() != 3*DefaultGateTimeout {
		t.Errorf("defaults: antiflap %s timeout %s retry %s", s.Antiflap, s.Timeout, s.config().retryTimeout())
	}
	for _, bad := range []string{
		"{master: m, shadow: m, sge_root: /sge}",
		"{master: m, shadow: s, sge_root: /sge, timeout: 5s, retry_timeout: 2s}",
		"{master: m, shadow: s, sge_root: /sge, retry_timeout: -1s}",
		"{master: m, shadow: s, sge_root: /sge, antiflap: -1s}",
		"{master: m, shadow: s, sge_root: /sge, bogus: 1}",
	} {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(bad), &doc); err != nil {
			t.Fatal(err)
		}
		if _, err := gateKind().New(doc.Content[0]); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// The probe script quotes the master and carries both time-outs.
func TestGateProbeScript(t *testing.T) {
	s := GateProbeScript(GateConfig{Master: "m'; rm -rf /", SGERoot: "/sge", SGECell: "c", Port: 6444, Timeout: 2500 * time.Millisecond})
	if !strings.Contains(s, `m='m'\''; rm -rf /'`) && !strings.Contains(s, "m="+shell.Quote("m'; rm -rf /")) {
		t.Errorf("master not quoted:\n%s", s[:200])
	}
	if !strings.Contains(s, "t1=2.5; t2=7.5") {
		t.Errorf("time-outs missing:\n%s", s)
	}
}
