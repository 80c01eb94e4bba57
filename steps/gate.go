package steps

import (
	"context"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// The partition gate of a takeover: is the master really gone, as seen
// from the shadow and the witnesses, and is the shadow not the one that is
// cut off? CollectGate gathers typed evidence (gate_probe.go), DecideGate
// turns it into a verdict (gate_decide.go), GateData renders both for the
// journal and templates. The sge_gate step and `sgerun watch` run the same
// three.

// gateSpec is the sge_gate step's parameters.
type gateSpec struct {
	Master    string `yaml:"master"`
	Shadow    string `yaml:"shadow"`
	Witnesses string `yaml:"witnesses"` // comma-separated host names
	SGERoot   string `yaml:"sge_root"`
	SGECell   string `yaml:"sge_cell"`
	Port      int    `yaml:"port"`
	// Quorum is how many voters must have positive evidence that the
	// master is gone; 0 means a majority of the voters (shadow +
	// witnesses).
	Quorum int `yaml:"quorum"`
	// SharedDir is the inventory's cluster.shared_dir; empty means the
	// directory holding bootstrap's qmaster_spool_dir. The anti-flap
	// record lives there.
	SharedDir      string        `yaml:"shared_dir"`
	HeartbeatStale time.Duration `yaml:"heartbeat_stale"`
	// Antiflap defaults to sge.DefaultAntiflap, so that a gate whose
	// playbook forgets the window does not fail open; "0s" turns it off.
	Antiflap time.Duration `yaml:"antiflap"`
	// Timeout bounds the first qping and the TCP connect; RetryTimeout
	// the second qping (0: three times Timeout).
	Timeout      time.Duration `yaml:"timeout"`
	RetryTimeout time.Duration `yaml:"retry_timeout"`
	// Force proceeds even when the master looks alive, the quorum is
	// missed or the anti-flap window is open; the evidence and the
	// override are recorded.
	Force bool `yaml:"force"`
}

func (s *gateSpec) config() GateConfig {
	return GateConfig{
		Master: s.Master, Shadow: s.Shadow, Witnesses: splitList(s.Witnesses),
		SGERoot: s.SGERoot, SGECell: s.SGECell, Port: s.Port, SharedDir: s.SharedDir,
		Timeout: s.Timeout, RetryTimeout: s.RetryTimeout,
		Policy: GatePolicy{Quorum: s.Quorum, HeartbeatStale: s.HeartbeatStale, Antiflap: s.Antiflap, Force: s.Force},
	}
}

// GateConfigOf returns the configuration of an sge_gate step's spec (from
// its kind's New), so that `sgerun watch` probes exactly the gate the
// takeover playbook would run; ok is false for any other kind's spec.
func GateConfigOf(spec Spec) (cfg GateConfig, ok bool) {
	s, ok := spec.(*gateSpec)
	if !ok {
		return GateConfig{}, false
	}
	return s.config(), true
}

func (s *gateSpec) Mutates() bool { return false }

func (s *gateSpec) Do(ctx context.Context, _ target.Target, env Runtime) (Result, error) {
	cfg := s.config()
	ev, err := CollectGate(ctx, cfg, env)
	if err != nil {
		return Result{}, err
	}
	d := DecideGate(ev, cfg.Policy)
	return Result{Data: GateData(ev, d)}, d.Err()
}

// GateData renders the evidence and the decision as the step's registered
// data (the journal, templates, watch events). The keys are gateKind's
// DataKeys; "voters" maps each voter to its evidence and vote.
func GateData(ev GateEvidence, d GateDecision) map[string]any {
	voters := make(map[string]any, len(ev.Voters))
	for i, v := range ev.Voters {
		vote := VoteOf(v)
		if i < len(d.Votes) && d.Votes[i].Host == v.Host {
			vote = d.Votes[i]
		}
		m := map[string]any{
			"reachable":    v.SSHError == "",
			"vote":         vote.Vote,
			"cause":        vote.Cause,
			"detail":       vote.Detail,
			"qping_status": vote.Status,
			"master_up":    vote.Vote == VoteUp,
			"tcp":          v.Master.TCP,
			"attempts":     v.Master.Attempts,
			"tools":        v.Tools,
		}
		if v.Master.TCPDetail != "" {
			m["tcp_detail"] = v.Master.TCPDetail
		}
		if v.SSHError != "" {
			m["error"] = v.SSHError
		}
		if v.ProbeError != "" {
			m["error"] = v.ProbeError
		}
		if v.ActQmaster != "" {
			m["act_qmaster"] = v.ActQmaster
		}
		if v.Act != nil {
			m["act"] = *v.Act
		}
		voters[v.Host] = m
	}
	data := map[string]any{
		"verdict":               d.Verdict,
		"decision":              d.Decision,
		"reason":                d.Reason,
		"forced":                d.Forced,
		"voters":                voters,
		"votes_down":            d.Down,
		"votes_up":              d.Up,
		"abstain":               d.Abstain,
		"quorum":                d.Quorum,
		"majority":              d.Majority,
		"vetoes":                nonNil(d.Vetoes),
		"hung":                  d.Hung,
		"heartbeat_age_seconds": ev.HeartbeatAgeSeconds,
		"heartbeat":             ev.Heartbeat,
		"act_qmaster":           ev.ActQmaster,
		"ssh_master_ok":         ev.SSHMasterChecked && ev.SSHMasterError == "",
		"ssh_master_error":      ev.SSHMasterError,
		"qmaster_spool_dir":     ev.QmasterSpoolDir,
		"shared_dir":            ev.SharedDir,
		"antiflap_file":         ev.AntiflapFile,
		"antiflap_error":        ev.AntiflapError,
	}
	if d.ActAlive != "" {
		data["act_alive"] = d.ActAlive
	}
	if d.AntiflapLast != nil {
		data["antiflap_last"] = d.AntiflapLast
	}
	if d.EvidenceVerdict != "" {
		data["evidence_verdict"] = d.EvidenceVerdict
	}
	return data
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func gateKind() Kind {
	return Kind{
		Name: "sge_gate",
		Doc: "partition gate: a quorum of shadow + witnesses must have positive evidence that the qmaster is gone (no qping reply after a longer retry, " +
			"TCP refused, timed out or hung), no voter may get qping status 0 from it, a majority must vote, the shadow must vote, and the anti-flap window must be closed",
		Local:   true,
		Recheck: true,
		DataKeys: []string{"decision", "reason", "voters", "votes_down", "votes_up", "abstain", "quorum", "majority", "vetoes", "hung",
			"heartbeat_age_seconds", "heartbeat", "act_qmaster", "act_alive", "ssh_master_ok", "ssh_master_error", "forced",
			"antiflap_last", "antiflap_file", "antiflap_error", "note", "qmaster_spool_dir", "shared_dir", "verdict", "evidence_verdict"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &gateSpec{Port: sge.DefaultQmasterPort, Timeout: DefaultGateTimeout, HeartbeatStale: sge.DefaultHeartbeatStale,
				SGECell: sge.DefaultCell, Antiflap: sge.DefaultAntiflap}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			for _, k := range []struct{ key, val string }{{"master", s.Master}, {"shadow", s.Shadow}, {"sge_root", s.SGERoot}} {
				if err := require(n, k.key, k.val); err != nil {
					return nil, err
				}
			}
			if s.Master == s.Shadow {
				return nil, posErr(n, "master and shadow are the same host")
			}
			if s.Timeout <= 0 || s.RetryTimeout < 0 || s.Port < 1 || s.Port > 65535 || s.Quorum < 0 || s.Antiflap < 0 {
				return nil, posErr(n, "timeout, retry_timeout, port, quorum and antiflap must be positive")
			}
			if s.RetryTimeout > 0 && s.RetryTimeout < s.Timeout {
				return nil, posErr(n, "retry_timeout must not be shorter than timeout")
			}
			return s, nil
		},
	}
}
