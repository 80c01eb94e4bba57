package steps

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Gate verdicts: what the evidence says, whatever was decided.
const (
	// VerdictMasterDown: a quorum of voters has positive evidence that the
	// master's qmaster is gone, and none got a reply from it.
	VerdictMasterDown = "master_down"
	// VerdictHealthy: the master (or the qmaster act_qmaster names) gave
	// proof of life to some voter, or the down votes miss the quorum.
	VerdictHealthy = "master_reachable"
	// VerdictShadowCutOff: the shadow gives no vote of its own, or it is
	// the one that cannot reach a master the witnesses reach.
	VerdictShadowCutOff = "shadow_cut_off"
	// VerdictNoQuorum: fewer than a majority of the voters gave a vote;
	// the controller cannot tell a dead master from its own isolation.
	VerdictNoQuorum = "no_quorum"
	// VerdictAntiflap: the last takeover is too recent and not
	// acknowledged.
	VerdictAntiflap = "antiflap"
	// VerdictAntiflapUnreadable: the anti-flap record exists but cannot
	// be read or parsed (or where it lives is unknown); the gate refuses
	// rather than act without it.
	VerdictAntiflapUnreadable = "antiflap_unreadable"
	// VerdictAlreadyMaster: the shadow is act_qmaster and its qmaster
	// answers.
	VerdictAlreadyMaster = "already_master"
)

// Gate decisions.
const (
	GateMasterDown    = "master_unreachable"
	GateForced        = "forced"
	GateAlreadyMaster = "already_master"
	GateRefused       = "refused"
)

// Vote values.
const (
	VoteDown    = "down"
	VoteUp      = "up"
	VoteAbstain = "abstain"
)

// Abstention causes: why a voter that gave no vote gave none.
const (
	// CauseSSHUnreachable: the controller could not open SSH to the voter.
	CauseSSHUnreachable = "ssh_unreachable"
	// CauseProbeFailed: the probe's channel failed or its output could
	// not be parsed (truncated, no end marker, a shell error).
	CauseProbeFailed = "probe_failed"
	// CauseQpingMissing: no qping on the voter (or qping exited 127).
	CauseQpingMissing = "qping_missing"
	// CauseTimeoutMissing: no timeout(1) on the voter: qping could not be
	// bounded, so it was not run.
	CauseTimeoutMissing = "timeout_missing"
	// CauseTCPUnavailable: no TCP connect result (no bash for /dev/tcp,
	// an unresolvable name, an unexpected error).
	CauseTCPUnavailable = "tcp_probe_unavailable"
	// CauseQpingError: qping failed in a way that says nothing about the
	// master (not executable, exited 0 without a reply, or failed fast
	// on an open port, as an "access denied" does).
	CauseQpingError = "qping_error"
	// CauseNotRetried: the port was open and qping silent, but the longer
	// second qping did not run.
	CauseNotRetried = "qping_not_retried"
)

// GatePolicy is how the gate decides.
type GatePolicy struct {
	// Quorum is how many down votes a takeover needs; 0 means a majority
	// of the voters.
	Quorum int `json:"quorum"`
	// HeartbeatStale is the heartbeat age reported as "hung" together
	// with an open port; it decides nothing.
	HeartbeatStale time.Duration `json:"heartbeat_stale"`
	// Antiflap is the least time between two takeovers without an
	// acknowledgement; 0 turns the check off.
	Antiflap time.Duration `json:"antiflap"`
	// Force overrides a live master, a missed quorum and the anti-flap
	// window (never a shadow that is cut off); the override is recorded.
	Force bool `json:"force"`
}

// VoterVote is one voter's vote as DecideGate read its evidence.
type VoterVote struct {
	Host string `json:"host"`
	// Vote is VoteDown, VoteUp or VoteAbstain.
	Vote string `json:"vote"`
	// Cause names why: a Cause* value for an abstention; "refused",
	// "tcp_timeout", "unreachable" or "hung" for a down vote; "status_N"
	// for an up vote.
	Cause string `json:"cause"`
	// Detail is a human-readable explanation.
	Detail string `json:"detail,omitempty"`
	// Status is the best qping status the voter got from the master
	// (-1: no reply).
	Status int `json:"qping_status"`
	// ProofOfLife is set when the master answered with status 0.
	ProofOfLife bool `json:"proof_of_life"`
}

// GateDecision is the gate's verdict with the votes behind it.
type GateDecision struct {
	Verdict  string `json:"verdict"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// EvidenceVerdict is what the votes said when the anti-flap check
	// (VerdictAntiflap, VerdictAntiflapUnreadable) overrode it.
	EvidenceVerdict string      `json:"evidence_verdict,omitempty"`
	Votes           []VoterVote `json:"votes"`
	Down            int         `json:"votes_down"`
	Up              int         `json:"votes_up"`
	Abstain         int         `json:"abstain"`
	// Quorum is the down votes needed; Majority the votes (down or up)
	// needed for the gate to judge at all.
	Quorum   int `json:"quorum"`
	Majority int `json:"majority"`
	// Vetoes are the voters that got status 0 from the master.
	Vetoes []string `json:"vetoes,omitempty"`
	// ActAlive names the qmaster host act_qmaster named (not the
	// inventory's master) that answered status 0, and the voters that saw it.
	ActAlive   string   `json:"act_alive,omitempty"`
	ActWitness []string `json:"act_witness,omitempty"`
	// Hung: a down vote found the port open with qping silent, and the
	// heartbeat is stale.
	Hung bool `json:"hung"`
	// Forced is set when Force overrode a refusal.
	Forced bool `json:"forced"`
	// AntiflapLast is the record inside the anti-flap window.
	AntiflapLast *TakeoverRecord `json:"antiflap_last,omitempty"`
}

// Err is the step's error for the decision: nil to proceed, ErrStopRun for
// already_master, an ErrRefused otherwise.
func (d GateDecision) Err() error {
	switch d.Decision {
	case GateMasterDown, GateForced:
		return nil
	case GateAlreadyMaster:
		return fmt.Errorf("%w: %s", ErrStopRun, d.Reason)
	}
	return fmt.Errorf("%w: %s", ErrRefused, d.Reason)
}

// DownWindow returns when the evidence of the down votes in d was taken:
// from the earliest start of a down voter's probe to the latest end of
// one. Voters that abstained or voted up, the SSH connections and the
// shared-state reads after the votes are not in it: a check slowed down by
// an unreachable witness does not count as time the master was seen down.
// ok is false when no down vote has both times.
func (ev GateEvidence) DownWindow(d GateDecision) (from, until time.Time, ok bool) {
	down := map[string]bool{}
	for _, v := range d.Votes {
		if v.Vote == VoteDown {
			down[v.Host] = true
		}
	}
	for _, v := range ev.Voters {
		if !down[v.Host] || v.ProbeStart.IsZero() || v.ProbeEnd.IsZero() {
			continue
		}
		if !ok || v.ProbeStart.Before(from) {
			from = v.ProbeStart
		}
		if !ok || v.ProbeEnd.After(until) {
			until = v.ProbeEnd
		}
		ok = true
	}
	return from, until, ok
}

// VoteOf reads one voter's evidence. A down vote needs positive evidence:
// no qping reply in any attempt, and the TCP connect refused, timed out or
// unreachable, or open with the longer second qping silent too (hung). Any
// status line is an up vote. Anything else abstains, with its cause.
func VoteOf(v VoterEvidence) VoterVote {
	vv := VoterVote{Host: v.Host, Status: v.Master.Status()}
	abstain := func(cause, detail string) VoterVote {
		vv.Vote, vv.Cause, vv.Detail = VoteAbstain, cause, detail
		return vv
	}
	switch {
	case v.SSHError != "":
		return abstain(CauseSSHUnreachable, v.SSHError)
	case v.ProbeError != "":
		return abstain(CauseProbeFailed, v.ProbeError)
	case vv.Status >= 0:
		vv.Vote, vv.Cause, vv.ProofOfLife = VoteUp, fmt.Sprintf("status_%d", vv.Status), vv.Status == 0
		vv.Detail = fmt.Sprintf("qping got status %d from %s", vv.Status, v.Master.Host)
		return vv
	case !v.Tools.Qping:
		return abstain(CauseQpingMissing, "qping is not on the voter's PATH")
	case !v.Tools.Timeout:
		return abstain(CauseTimeoutMissing, "timeout(1) is not on the voter's PATH; qping was not run")
	case len(v.Master.Attempts) == 0:
		return abstain(CauseProbeFailed, "the probe ran no qping")
	}
	for _, a := range v.Master.Attempts {
		switch {
		case a.Exit == 127:
			return abstain(CauseQpingMissing, "qping: not found (exit 127)")
		case a.Exit == 0:
			return abstain(CauseQpingError, "qping exited 0 without a status line")
		case a.Exit != 1 && !a.TimedOut:
			return abstain(CauseQpingError, fmt.Sprintf("qping exited %d: %s", a.Exit, lastLineOf(a.Output)))
		}
	}
	last := v.Master.Attempts[len(v.Master.Attempts)-1]
	down := func(cause, detail string) VoterVote {
		vv.Vote, vv.Cause, vv.Detail = VoteDown, cause, detail
		return vv
	}
	what := qpingFailure(last)
	switch v.Master.TCP {
	case TCPRefused:
		return down("refused", "TCP connect refused; "+what)
	case TCPTimeout:
		return down("tcp_timeout", "TCP connect timed out; "+what)
	case TCPUnreachable:
		return down("unreachable", "no route to the master ("+v.Master.TCPDetail+"); "+what)
	case TCPOpen:
		if len(v.Master.Attempts) < 2 {
			return abstain(CauseNotRetried, "port open, qping silent, and no second qping ran")
		}
		if !last.TimedOut {
			// Hung means no reply at all. A qping that fails fast on an
			// open port got an answer of some kind (access denied, a
			// closed connection): the qmaster may be alive.
			return abstain(CauseQpingError, "port open, but qping failed without timing out: "+what)
		}
		return down("hung", fmt.Sprintf("port open but no qping reply in %d attempts (last %s); %s",
			len(v.Master.Attempts), fmtSeconds(last.TimeoutSeconds), what))
	}
	if !v.Tools.Bash {
		return abstain(CauseTCPUnavailable, "no bash on the voter for the /dev/tcp connect")
	}
	return abstain(CauseTCPUnavailable, strings.TrimSpace("no TCP connect result "+v.Master.TCPDetail))
}

func qpingFailure(a QpingAttempt) string {
	if a.TimedOut {
		return fmt.Sprintf("qping gave no reply within %s", fmtSeconds(a.TimeoutSeconds))
	}
	if l := lastLineOf(a.Output); l != "" {
		return "qping failed: " + l
	}
	return fmt.Sprintf("qping exited %d without a reply", a.Exit)
}

func fmtSeconds(s float64) string { return (time.Duration(s * float64(time.Second))).String() }

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// DecideGate is the gate's decision, a pure function of its evidence, in
// this order:
//  1. the shadow is act_qmaster and answers status 0: already_master;
//  2. the shadow gives no vote: shadow_cut_off (Force does not override);
//  3. a voter got status 0 from the master: a veto, master_reachable
//     (shadow_cut_off when the shadow alone, against a majority of the
//     voting witnesses, cannot reach it, which Force does not override);
//  4. another host that act_qmaster names answers status 0: master_reachable;
//  5. fewer than a majority of the voters vote: no_quorum;
//  6. the down votes reach the quorum: master_down; else master_reachable.
//
// When the takeover would proceed, the anti-flap record is the last word:
// unreadable, antiflap_unreadable; inside the window and not acknowledged,
// antiflap. Force overrides 3–6 and the anti-flap check, recorded as
// forced.
func DecideGate(ev GateEvidence, p GatePolicy) GateDecision {
	d := GateDecision{}
	var shadow *VoterVote
	downHung := false
	for _, v := range ev.Voters {
		vv := VoteOf(v)
		d.Votes = append(d.Votes, vv)
		switch vv.Vote {
		case VoteDown:
			d.Down++
			downHung = downHung || v.Master.TCP == TCPOpen
		case VoteUp:
			d.Up++
		default:
			d.Abstain++
		}
		if vv.ProofOfLife {
			d.Vetoes = append(d.Vetoes, v.Host)
		}
		if v.Act != nil && v.Act.Host != ev.Master && v.Act.Status() == 0 {
			if d.ActAlive == "" || d.ActAlive == v.Act.Host {
				d.ActAlive = v.Act.Host
				d.ActWitness = append(d.ActWitness, v.Host)
			}
		}
	}
	for i := range d.Votes {
		if d.Votes[i].Host == ev.Shadow {
			shadow = &d.Votes[i]
		}
	}
	n := len(ev.Voters)
	d.Majority = n/2 + 1
	d.Quorum = p.Quorum
	if d.Quorum <= 0 {
		d.Quorum = d.Majority
	}
	d.Hung = downHung && ev.HeartbeatAgeSeconds >= 0 && time.Duration(ev.HeartbeatAgeSeconds)*time.Second >= p.HeartbeatStale
	refuse := func(verdict, format string, args ...any) GateDecision {
		d.Verdict, d.Decision, d.Reason = verdict, GateRefused, fmt.Sprintf(format, args...)
		return d
	}
	// proceed returns the decision to go on, unless the anti-flap record
	// says no. reason explains the verdict; a refusal that Force overrode
	// is marked forced.
	proceed := func(verdict string, forced bool, reason string) GateDecision {
		d.Verdict, d.Forced, d.Reason = verdict, forced, reason
		if p.Antiflap > 0 {
			if ev.AntiflapError != "" {
				if !p.Force {
					d.EvidenceVerdict = verdict
					return refuse(VerdictAntiflapUnreadable, "anti-flap record unreadable, refusing rather than ignoring it: %s; "+
						"repair or remove the file, or use --force", ev.AntiflapError)
				}
				d.Forced = true
				d.Reason += "; forced past an unreadable anti-flap record: " + ev.AntiflapError
			} else if last := ev.Antiflap; last != nil && !last.Acked && ev.Time.Sub(last.Time) < p.Antiflap {
				d.AntiflapLast = last
				if !p.Force {
					d.EvidenceVerdict = verdict
					return refuse(VerdictAntiflap, "anti-flap: the last takeover (run %s, %s -> %s) was at %s, less than %s ago; "+
						"acknowledge it with sgerun ack or use --force", last.RunID, last.From, last.To,
						last.Time.Format(time.RFC3339), p.Antiflap)
				}
				d.Forced = true
				d.Reason += "; forced inside the anti-flap window"
			}
		}
		d.Decision = GateMasterDown
		if d.Forced {
			d.Decision = GateForced
		}
		return d
	}
	forceOr := func(verdict, format string, args ...any) GateDecision {
		msg := fmt.Sprintf(format, args...)
		if p.Force {
			return proceed(verdict, true, "forced: "+msg)
		}
		return refuse(verdict, "%s; use --force to override", msg)
	}

	// 1. The shadow already serves.
	for _, v := range ev.Voters {
		if v.Act != nil && v.Act.Host == ev.Shadow && v.Act.Status() == 0 {
			d.Verdict, d.Decision = VerdictAlreadyMaster, GateAlreadyMaster
			d.Reason = fmt.Sprintf("%s is already the active qmaster and answers qping (from %s); nothing to do", ev.Shadow, v.Host)
			return d
		}
	}
	// 2. The shadow must judge for itself.
	if shadow == nil {
		return refuse(VerdictShadowCutOff, "the shadow %s is not among the voters", ev.Shadow)
	}
	if shadow.Vote == VoteAbstain {
		if shadow.Cause == CauseSSHUnreachable || shadow.Cause == CauseProbeFailed {
			return refuse(VerdictShadowCutOff, "the shadow %s cannot be reached (%s): %s", ev.Shadow, shadow.Cause, shadow.Detail)
		}
		return refuse(VerdictShadowCutOff, "the shadow %s gives no vote (%s): %s; a takeover needs the shadow's own view of the master",
			ev.Shadow, shadow.Cause, shadow.Detail)
	}
	// 3. Proof of life from any voter is a veto.
	if len(d.Vetoes) > 0 {
		witUp, witDown := 0, 0
		for _, vv := range d.Votes {
			if vv.Host == ev.Shadow {
				continue
			}
			switch vv.Vote {
			case VoteUp:
				witUp++
			case VoteDown:
				witDown++
			}
		}
		if shadow.Vote == VoteDown && witUp > witDown {
			return refuse(VerdictShadowCutOff, "the shadow %s is the one cut off: it cannot reach the master (%s), but %s get qping status 0 from it",
				ev.Shadow, shadow.Detail, strings.Join(d.Vetoes, ", "))
		}
		return forceOr(VerdictHealthy, "the master %s is alive: %s got qping status 0 from it (proof of life vetoes a takeover; "+
			"%d voter(s) down, %d up, %d abstain)", ev.Master, strings.Join(d.Vetoes, ", "), d.Down, d.Up, d.Abstain)
	}
	// 4. Another active qmaster.
	if d.ActAlive != "" && d.ActAlive != ev.Shadow {
		return forceOr(VerdictHealthy, "act_qmaster names %s, not the master %s, and its qmaster answers qping status 0 from %s",
			d.ActAlive, ev.Master, strings.Join(d.ActWitness, ", "))
	}
	// 5. Enough voters to judge.
	if valid := d.Down + d.Up; valid < d.Majority {
		return forceOr(VerdictNoQuorum, "only %d of %d voter(s) could judge the master %s (a majority, %d, is needed): %s",
			valid, n, ev.Master, d.Majority, abstentions(d.Votes))
	}
	// 6. The quorum.
	if d.Down >= d.Quorum {
		return proceed(VerdictMasterDown, false, fmt.Sprintf("%d of %d voter(s) have positive evidence that the qmaster on %s is gone (quorum %d)",
			d.Down, n, ev.Master, d.Quorum))
	}
	return forceOr(VerdictHealthy, "the master %s is not confirmed down: %d voter(s) reach it, %d do not, %d abstain (quorum %d)",
		ev.Master, d.Up, d.Down, d.Abstain, d.Quorum)
}

// abstentions lists the abstaining voters with their causes.
func abstentions(votes []VoterVote) string {
	var out []string
	for _, v := range votes {
		if v.Vote == VoteAbstain {
			out = append(out, v.Host+" "+v.Cause)
		}
	}
	if len(out) == 0 {
		return "none abstained"
	}
	slices.Sort(out)
	return "abstained: " + strings.Join(out, ", ")
}
