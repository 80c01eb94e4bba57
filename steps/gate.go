package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/shell"
	"go.yaml.in/yaml/v3"
)

// gateSpec is the partition gate of a takeover: is the master really gone,
// as seen from the shadow and the witnesses, and is the shadow not the one
// that is cut off?
type gateSpec struct {
	Master    string `yaml:"master"`
	Shadow    string `yaml:"shadow"`
	Witnesses string `yaml:"witnesses"` // comma-separated host names
	SGERoot   string `yaml:"sge_root"`
	SGECell   string `yaml:"sge_cell"`
	Port      int    `yaml:"port"`
	// Quorum is how many voters must find the master unreachable; 0
	// means a majority of the voters (shadow + witnesses).
	Quorum int `yaml:"quorum"`
	// SharedDir is the inventory's cluster.shared_dir; empty means the
	// directory holding bootstrap's qmaster_spool_dir. The anti-flap
	// record lives there.
	SharedDir      string        `yaml:"shared_dir"`
	HeartbeatStale time.Duration `yaml:"heartbeat_stale"`
	Antiflap       time.Duration `yaml:"antiflap"`
	Timeout        time.Duration `yaml:"timeout"`
	// Force proceeds even when the master looks healthy or the anti-flap
	// window is open; the evidence and the override are recorded.
	Force bool `yaml:"force"`
}

// Vote is one voter's view of the master.
type Vote struct {
	Reachable   bool   `json:"reachable"`
	Error       string `json:"error,omitempty"`
	QpingStatus int    `json:"qping_status"` // -1: no reply
	QpingOutput string `json:"qping_output,omitempty"`
	TCP         bool   `json:"tcp"`
	MasterUp    bool   `json:"master_up"`
}

// Gate verdicts: what the evidence says, whatever was decided.
const (
	VerdictMasterDown    = "master_down"
	VerdictHealthy       = "master_reachable"
	VerdictShadowCutOff  = "shadow_cut_off"
	VerdictAntiflap      = "antiflap"
	VerdictAlreadyMaster = "already_master"
)

// Gate decisions.
const (
	GateMasterDown    = "master_unreachable"
	GateForced        = "forced"
	GateAlreadyMaster = "already_master"
	GateRefused       = "refused"
)

func (s *gateSpec) Mutates() bool { return false }

func (s *gateSpec) Do(ctx context.Context, _ Target, env Env) (Result, error) {
	if env.Connect == nil {
		return Result{}, fmt.Errorf("sge_gate needs connections to other hosts")
	}
	voters := []string{s.Shadow}
	for _, w := range splitList(s.Witnesses) {
		if w != s.Master && !slices.Contains(voters, w) {
			voters = append(voters, w)
		}
	}
	votes := make(map[string]*Vote, len(voters))
	targets := make(map[string]Target, len(voters))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, v := range voters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vote, t := s.vote(ctx, env, v)
			mu.Lock()
			votes[v], targets[v] = vote, t
			mu.Unlock()
		}()
	}
	sshMaster := ""
	if env.Reach != nil {
		cctx, cancel := context.WithTimeout(ctx, s.Timeout)
		if err := env.Reach(cctx, s.Master); err != nil {
			sshMaster = err.Error()
		}
		cancel()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	ev := map[string]any{"voters": votes, "ssh_master_ok": sshMaster == "", "ssh_master_error": sshMaster}
	// Read shared state through the first voter that answers.
	var reader Target
	for _, v := range voters {
		if targets[v] != nil {
			reader = targets[v]
			break
		}
	}
	sh := shared{hbAge: -1}
	if reader != nil {
		sh = s.sharedState(ctx, reader)
	}
	hbAge, hist, act := sh.hbAge, sh.history, sh.act
	ev["heartbeat_age_seconds"], ev["heartbeat"], ev["act_qmaster"] = hbAge, sh.hb, act
	ev["qmaster_spool_dir"], ev["shared_dir"] = sh.spoolDir, sh.sharedDir
	hung := false
	down, up, abstain := 0, 0, 0
	for _, v := range voters {
		switch vote := votes[v]; {
		case !vote.Reachable:
			abstain++
		case vote.MasterUp:
			up++
		default:
			down++
			if vote.TCP {
				hung = true
			}
		}
	}
	quorum := s.Quorum
	if quorum <= 0 {
		quorum = len(voters)/2 + 1
	}
	ev["votes_down"], ev["votes_up"], ev["abstain"], ev["quorum"] = down, up, abstain, quorum
	ev["hung"] = hung && hbAge >= 0 && time.Duration(hbAge)*time.Second >= s.HeartbeatStale
	ev["forced"] = false
	res := Result{Data: ev}
	refuse := func(verdict, format string, args ...any) (Result, error) {
		ev["decision"], ev["verdict"] = GateRefused, verdict
		msg := fmt.Sprintf(format, args...)
		ev["reason"] = msg
		return res, fmt.Errorf("%w: %s", ErrRefused, msg)
	}
	shadowVote := votes[s.Shadow]
	if act == s.Shadow && s.selfOK(ctx, targets[s.Shadow]) {
		ev["decision"], ev["verdict"] = GateAlreadyMaster, VerdictAlreadyMaster
		ev["reason"] = fmt.Sprintf("%s is already the active qmaster and answers qping; nothing to do", s.Shadow)
		return res, fmt.Errorf("%w: %s", ErrStopRun, ev["reason"])
	}
	witnessUp, witnessDown := 0, 0
	for _, v := range voters[1:] {
		if votes[v].Reachable && votes[v].MasterUp {
			witnessUp++
		} else if votes[v].Reachable {
			witnessDown++
		}
	}
	switch {
	case !shadowVote.MasterUp && witnessUp > witnessDown:
		return refuse(VerdictShadowCutOff, "the shadow %s is the one cut off: it cannot reach the master, but %d of %d witness(es) can",
			s.Shadow, witnessUp, len(voters)-1)
	case !shadowVote.Reachable:
		return refuse(VerdictShadowCutOff, "the shadow %s cannot be reached: %s", s.Shadow, shadowVote.Error)
	case down >= quorum:
		ev["verdict"] = VerdictMasterDown
		ev["reason"] = fmt.Sprintf("%d of %d voter(s) cannot reach the qmaster on %s (quorum %d)", down, len(voters), s.Master, quorum)
	case s.Force:
		ev["verdict"], ev["forced"] = VerdictHealthy, true
		ev["reason"] = fmt.Sprintf("forced: only %d of %d voter(s) report the master unreachable (quorum %d)", down, len(voters), quorum)
	default:
		return refuse(VerdictHealthy, "the master %s is not confirmed down: %d voter(s) reach it, %d do not, %d abstain (quorum %d); use --force to override",
			s.Master, up, down, abstain, quorum)
	}
	// The takeover would proceed: the anti-flap window is the last word.
	if last, ok := parseHistory(hist); ok && s.Antiflap > 0 && time.Since(last.Time) < s.Antiflap && !last.Acked {
		ev["antiflap_last"] = last
		if !s.Force {
			verdict := ev["verdict"]
			res, err := refuse(VerdictAntiflap, "anti-flap: the last takeover (run %s, %s -> %s) was at %s, less than %s ago; "+
				"acknowledge it with sgerun ack or use --force", last.RunID, last.From, last.To,
				last.Time.Format(time.RFC3339), s.Antiflap)
			ev["evidence_verdict"] = verdict
			return res, err
		}
		ev["forced"] = true
	}
	ev["decision"] = GateMasterDown
	if ev["forced"] == true {
		ev["decision"] = GateForced
	}
	return res, nil
}

// vote probes the master from one voter.
func (s *gateSpec) vote(ctx context.Context, env Env, voter string) (*Vote, Target) {
	vote := &Vote{QpingStatus: -1}
	cctx, cancel := context.WithTimeout(ctx, s.Timeout+5*time.Second)
	defer cancel()
	t, err := env.Connect(cctx, voter, "")
	if err == nil {
		_, err = t.Query(cctx, "true", nil)
	}
	if err != nil {
		vote.Error = err.Error()
		return vote, nil
	}
	vote.Reachable = true
	secs := strconv.Itoa(max(1, int(s.Timeout/time.Second)))
	// qping and the TCP connect run side by side: a partitioned master
	// makes both wait for their timeout.
	tcpDone := make(chan bool, 1)
	go func() {
		tcp := "timeout " + secs + " bash -c 'exec 3<>/dev/tcp/\"$0\"/\"$1\"' " + shell.Quote(s.Master) + " " + strconv.Itoa(s.Port)
		out, err := t.Query(cctx, tcp, nil)
		tcpDone <- err == nil && out.ExitCode == 0
	}()
	out, err := t.Query(cctx, "timeout "+secs+" sh -c "+shell.Quote(qpingCmd(s.SGERoot, s.SGECell, s.Master, s.Port)), nil)
	if err == nil {
		vote.QpingStatus = ParseQping(out.Stdout)
		vote.QpingOutput = tailText(out.Stdout, 400)
	}
	vote.TCP = <-tcpDone
	vote.MasterUp = vote.QpingStatus >= 0
	return vote, t
}

// selfOK reports whether the shadow's own qmaster answers.
func (s *gateSpec) selfOK(ctx context.Context, t Target) bool {
	if t == nil {
		return false
	}
	secs := strconv.Itoa(max(1, int(s.Timeout/time.Second)))
	out, err := t.Query(ctx, "timeout "+secs+" sh -c "+shell.Quote(qpingCmd(s.SGERoot, s.SGECell, s.Shadow, s.Port)), nil)
	return err == nil && ParseQping(out.Stdout) == 0
}

// shared is what the gate reads from the shared filesystem.
type shared struct {
	hbAge            int
	hb, history, act string
	spoolDir         string
	sharedDir        string
}

// sharedState reads bootstrap (for the spool and shared dirs), the
// heartbeat age, the anti-flap record and act_qmaster through one voter.
func (s *gateSpec) sharedState(ctx context.Context, t Target) shared {
	sh := shared{hbAge: -1, sharedDir: s.SharedDir}
	common := s.SGERoot + "/" + s.SGECell + "/common/"
	if f, err := t.ReadFile(ctx, common+"bootstrap"); err == nil && f.Exists {
		for _, line := range strings.Split(string(f.Data), "\n") {
			if fl := strings.Fields(line); len(fl) >= 2 && fl[0] == "qmaster_spool_dir" {
				sh.spoolDir = fl[1]
			}
		}
	}
	if sh.sharedDir == "" && sh.spoolDir != "" {
		sh.sharedDir = path.Dir(sh.spoolDir)
	}
	if sh.spoolDir != "" {
		cmd := "f=" + shell.Quote(sh.spoolDir+"/heartbeat") + `; [ -r "$f" ] && echo "$(( $(date +%s) - $(stat -c %Y "$f") )) $(cat "$f")"`
		if out, err := t.Query(ctx, cmd, nil); err == nil && out.ExitCode == 0 {
			f := strings.Fields(out.Stdout)
			if len(f) >= 1 {
				sh.hbAge, _ = strconv.Atoi(f[0])
			}
			if len(f) >= 2 {
				sh.hb = f[1]
			}
		}
	}
	if sh.sharedDir != "" {
		if f, err := t.ReadFile(ctx, sh.sharedDir+"/.sgerun-last-takeover.json"); err == nil && f.Exists {
			sh.history = string(f.Data)
		}
	}
	if f, err := t.ReadFile(ctx, common+"act_qmaster"); err == nil && f.Exists {
		sh.act = strings.TrimSpace(string(f.Data))
	}
	return sh
}

// TakeoverRecord is the anti-flap history: the last takeover.
type TakeoverRecord struct {
	Time  time.Time `json:"time"`
	RunID string    `json:"run_id"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Acked bool      `json:"acked"`
}

func parseHistory(s string) (TakeoverRecord, bool) {
	var r TakeoverRecord
	if strings.TrimSpace(s) == "" || json.Unmarshal([]byte(s), &r) != nil || r.Time.IsZero() {
		return r, false
	}
	return r, true
}

func tailText(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

func gateKind() Kind {
	return Kind{
		Name:    "sge_gate",
		Doc:     "partition gate: the qmaster must be unreachable for a quorum of shadow + witnesses (qping status, tcp, ssh, heartbeat age), the shadow must not be the one cut off, and the anti-flap window must be closed",
		Local:   true,
		Recheck: true,
		DataKeys: []string{"decision", "reason", "voters", "votes_down", "votes_up", "abstain", "quorum", "hung",
			"heartbeat_age_seconds", "heartbeat", "act_qmaster", "ssh_master_ok", "ssh_master_error", "forced",
			"antiflap_last", "note", "qmaster_spool_dir", "shared_dir", "verdict", "evidence_verdict"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &gateSpec{Port: 6444, Timeout: 5 * time.Second, HeartbeatStale: 90 * time.Second, SGECell: "default"}
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
			if s.Timeout <= 0 || s.Port < 1 || s.Port > 65535 || s.Quorum < 0 {
				return nil, posErr(n, "timeout, port and quorum must be positive")
			}
			return s, nil
		},
	}
}
