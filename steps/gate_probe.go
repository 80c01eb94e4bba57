package steps

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
)

// GateConfig is what the partition gate probes, and its policy.
type GateConfig struct {
	Master    string
	Shadow    string
	Witnesses []string
	SGERoot   string
	SGECell   string
	Port      int
	// SharedDir is the inventory's cluster.shared_dir; empty means the
	// directory holding bootstrap's qmaster_spool_dir. The anti-flap
	// record lives there.
	SharedDir string
	// Timeout bounds the first qping and the TCP connect (side by side).
	Timeout time.Duration
	// RetryTimeout bounds the second qping, run when the first got no
	// reply and the port was open (or its state unknown); 0 means three
	// times Timeout.
	RetryTimeout time.Duration
	Policy       GatePolicy
}

// Default gate timings. The gate's other defaults (port, cell, heartbeat
// staleness, anti-flap window) are the inventory's, from package sge.
const (
	DefaultGateTimeout     = 3 * time.Second
	DefaultGateRetryFactor = 3
)

// Voters returns the shadow, then every witness that is neither the master
// nor already listed.
func (c GateConfig) Voters() []string {
	voters := []string{c.Shadow}
	for _, w := range c.Witnesses {
		if w != c.Master && w != "" && !slices.Contains(voters, w) {
			voters = append(voters, w)
		}
	}
	return voters
}

func (c GateConfig) retryTimeout() time.Duration {
	if c.RetryTimeout > 0 {
		return c.RetryTimeout
	}
	return DefaultGateRetryFactor * c.Timeout
}

// TCP connect results.
const (
	TCPOpen        = "open"
	TCPRefused     = "refused"
	TCPTimeout     = "timeout"
	TCPUnreachable = "unreachable" // no route, network unreachable, blackhole route
	TCPUnknown     = "unknown"     // not probed, or an error that says nothing of the master
)

// QpingAttempt is one `qping -info HOST PORT qmaster 1` under timeout(1).
type QpingAttempt struct {
	TimeoutSeconds float64 `json:"timeout_seconds"`
	// Exit is the exit code: 0 a reply, 1 any qping error, 124 (or 137)
	// timed out, 127 not found.
	Exit int `json:"exit"`
	// Status is the reply's status (0 ok, 1/2 warnings, 3 not
	// initialised); -1 when no status line came back.
	Status   int     `json:"status"`
	TimedOut bool    `json:"timed_out"`
	Seconds  float64 `json:"seconds"` // how long it ran; -1 unknown
	Output   string  `json:"output,omitempty"`
}

// HostProbe is one voter's probe of one qmaster host.
type HostProbe struct {
	Host      string         `json:"host"`
	TCP       string         `json:"tcp"` // a TCP* value
	TCPDetail string         `json:"tcp_detail,omitempty"`
	Attempts  []QpingAttempt `json:"attempts"`
}

// Status is the best status any attempt got: 0 when one got 0, else the
// last status seen, -1 when none replied.
func (p HostProbe) Status() int {
	st := -1
	for _, a := range p.Attempts {
		if a.Status == 0 {
			return 0
		}
		if a.Status > 0 {
			st = a.Status
		}
	}
	return st
}

// GateTools are the voter's tools the probe needs.
type GateTools struct {
	Qping   bool `json:"qping"`
	Timeout bool `json:"timeout"`
	Bash    bool `json:"bash"` // for the /dev/tcp connect
}

// VoterEvidence is what one voter saw.
type VoterEvidence struct {
	Host string `json:"host"`
	// SSHError is set when the controller could not reach the voter.
	SSHError string `json:"ssh_error,omitempty"`
	// ProbeError is set when the probe ran but its channel failed or its
	// output made no sense.
	ProbeError string    `json:"probe_error,omitempty"`
	Tools      GateTools `json:"tools"`
	// ActQmaster is what the voter's own act_qmaster file says.
	ActQmaster string    `json:"act_qmaster,omitempty"`
	Master     HostProbe `json:"master"`
	// Act is the probe of ActQmaster when that is not the master.
	Act *HostProbe `json:"act,omitempty"`
	// ProbeStart and ProbeEnd are when the controller sent the probe
	// script (after the SSH connection was up) and when its output came
	// back: the voter's evidence was taken between them.
	ProbeStart time.Time `json:"probe_start,omitzero"`
	ProbeEnd   time.Time `json:"probe_end,omitzero"`
}

// GateEvidence is everything the gate collected; DecideGate reads only this.
type GateEvidence struct {
	Time   time.Time       `json:"time"`
	Master string          `json:"master"`
	Shadow string          `json:"shadow"`
	Voters []VoterEvidence `json:"voters"`
	// ActQmaster, the heartbeat, the spool and shared dirs and the
	// anti-flap record are read through SharedVia (the shadow when it
	// answers).
	SharedVia           string `json:"shared_via,omitempty"`
	ActQmaster          string `json:"act_qmaster"`
	HeartbeatAgeSeconds int    `json:"heartbeat_age_seconds"` // -1: unknown
	Heartbeat           string `json:"heartbeat"`
	QmasterSpoolDir     string `json:"qmaster_spool_dir"`
	SharedDir           string `json:"shared_dir"`
	// SSHMasterError is the controller's SSH to the master ("" reached);
	// it is recorded, it decides nothing.
	SSHMasterChecked bool   `json:"ssh_master_checked"`
	SSHMasterError   string `json:"ssh_master_error,omitempty"`
	// AntiflapFile is the record's path; Antiflap the record (nil: none);
	// AntiflapError says why it could not be read or parsed.
	AntiflapFile  string          `json:"antiflap_file,omitempty"`
	Antiflap      *TakeoverRecord `json:"antiflap_record,omitempty"`
	AntiflapError string          `json:"antiflap_error,omitempty"`
}

// CollectGate gathers the gate's evidence: one probe per voter, all in
// parallel, each one shell round trip; the controller's SSH to the master;
// the shared state through the shadow (or the first voter that answers).
// It returns an error only when ctx ends.
func CollectGate(ctx context.Context, cfg GateConfig, env Runtime) (GateEvidence, error) {
	ev := GateEvidence{Time: time.Now().UTC(), Master: cfg.Master, Shadow: cfg.Shadow, HeartbeatAgeSeconds: -1}
	if env.Connect == nil {
		return ev, errors.New("sge_gate needs connections to other hosts")
	}
	voters := cfg.Voters()
	ev.Voters = make([]VoterEvidence, len(voters))
	targets := make([]target.Target, len(voters))
	var wg sync.WaitGroup
	for i, v := range voters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev.Voters[i], targets[i] = probeVoter(ctx, cfg, env, v)
		}()
	}
	if env.Reach != nil {
		// Recorded only: it must not make the gate slower than its probes,
		// so it is cut short when the votes are in.
		cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		ev.SSHMasterChecked = true
		sshErr := make(chan string, 1)
		go func() {
			msg := ""
			if err := env.Reach(cctx, cfg.Master); err != nil {
				msg = err.Error()
				if errors.Is(cctx.Err(), context.Canceled) {
					msg = "not finished when the votes were in: " + msg
				}
			}
			sshErr <- msg
		}()
		wg.Wait()
		cancel()
		ev.SSHMasterError = <-sshErr
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ev, err
	}
	for i, t := range targets {
		if t != nil && ev.Voters[i].ProbeError == "" {
			ev.SharedVia = voters[i]
			readShared(ctx, cfg, t, &ev)
			break
		}
	}
	if ev.SharedVia == "" {
		ev.AntiflapError = "no voter could read the shared state, so the anti-flap record is unknown"
	}
	return ev, ctx.Err()
}

// probeVoter runs the probe script on one voter.
func probeVoter(ctx context.Context, cfg GateConfig, env Runtime, voter string) (VoterEvidence, target.Target) {
	ve := VoterEvidence{Host: voter, Master: HostProbe{Host: cfg.Master, TCP: TCPUnknown}}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout+cfg.retryTimeout()+15*time.Second)
	defer cancel()
	t, err := env.Connect(cctx, voter, "")
	if err == nil {
		_, err = t.Query(cctx, "true", nil)
	}
	if err != nil {
		ve.SSHError = err.Error()
		return ve, nil
	}
	ve.ProbeStart = time.Now()
	out, err := t.Query(cctx, GateProbeScript(cfg), nil)
	ve.ProbeEnd = time.Now()
	if err != nil {
		ve.ProbeError = fmt.Sprintf("probe channel: %v", err)
		return ve, t
	}
	p, err := ParseGateProbe(out.Stdout)
	if err != nil {
		ve.ProbeError = fmt.Sprintf("probe output (exit %d): %v: %s", out.ExitCode, err, tailText(out.Stderr+out.Stdout, 300))
		return ve, t
	}
	ve.Tools, ve.ActQmaster = p.Tools, p.Act
	if m, ok := p.Targets["m"]; ok {
		ve.Master = m
		ve.Master.Host = cfg.Master
	}
	if a, ok := p.Targets["a"]; ok {
		a.Host = p.Act
		ve.Act = &a
	}
	return ve, t
}

const gateMark = "@sgerun-gate"

// GateProbeScript is the voter's probe, one POSIX sh round trip: which
// tools there are, what act_qmaster says, then for the master (and the
// act_qmaster host when it differs) a qping and a bash /dev/tcp connect
// side by side, the qping bounded by Timeout, the connect by Timeout or
// MaxGateTCPTimeout, whichever is shorter; a connect that fails cuts the
// first qping short (it cannot get through either); when qping got no status line
// and the port was open (or could not be tested), a second qping bounded
// by RetryTimeout. It prints "@sgerun-gate" lines, the qping output
// prefixed with "| ", and an end marker.
func GateProbeScript(cfg GateConfig) string {
	t1, t2, tc := secs(cfg.Timeout), secs(cfg.retryTimeout()), secs(min(cfg.Timeout, MaxGateTCPTimeout))
	return sge.Env(cfg.SGERoot, cfg.SGECell) +
		sge.QpingRepliedSh +
		"m=" + shell.Quote(cfg.Master) + "; p=" + strconv.Itoa(cfg.Port) + "; t1=" + t1 + "; t2=" + t2 + "; tc=" + tc + "\n" + gateScriptBody
}

// MaxGateTCPTimeout bounds the gate's TCP connect to the qmaster port. A
// host on the scheduler network completes a TCP handshake in well under a
// millisecond, even when its qmaster hangs (the kernel answers); a connect
// that gets no answer in this time finds nobody there. A cut network then
// gives its positive evidence in this time instead of the ARP timeout's
// 3 s, and the first qping, which cannot get through either, is cut short.
const MaxGateTCPTimeout = 1500 * time.Millisecond

func secs(d time.Duration) string {
	return strconv.FormatFloat(max(d, 100*time.Millisecond).Seconds(), 'f', -1, 64)
}

const gateScriptBody = `M=@sgerun-gate
tq=0; command -v qping >/dev/null 2>&1 && tq=1
tt=0; command -v timeout >/dev/null 2>&1 && tt=1
tb=0; command -v bash >/dev/null 2>&1 && tb=1
act=$(head -n 1 "$SGE_ROOT/$SGE_CELL/common/act_qmaster" 2>/dev/null | tr -d ' \t\r')
echo "$M tools qping=$tq timeout=$tt bash=$tb"
printf '%s act %s\n' "$M" "$act"
if [ "$tq" = 1 ] && [ "$tt" = 1 ]; then
  d=$(mktemp -d 2>/dev/null) || { echo "$M error mktemp failed"; exit 0; }
  trap 'rm -rf "$d"' EXIT
  attempt() { # id n timeout host
    s=$(date +%s%N)
    timeout -k 2 "$3" qping -info "$4" "$p" qmaster 1 >"$d/$1.q$2" 2>&1 &
    echo $! >"$d/$1.p$2"
    wait $!; rc=$?
    # cut short because nothing answered the TCP connect: as its time-out
    [ -f "$d/$1.c$2" ] && rc=124
    echo "$rc $3 $s $(date +%s%N)" >"$d/$1.r$2"
  }
  probe() { # id host
    tp=""
    if [ "$tb" = 1 ]; then
      ( timeout -k 1 "$tc" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$p" 2>"$d/$1.te"; echo $? >"$d/$1.t" ) &
      tp=$!
    fi
    attempt "$1" 1 "$t1" "$2" &
    ap=$!
    if [ -n "$tp" ]; then
      wait "$tp"
      case $(cat "$d/$1.t" 2>/dev/null) in
        0|'') ;;
        *) : >"$d/$1.c1"; qp=$(cat "$d/$1.p1" 2>/dev/null)
           # qping ignores SIGTERM while it connects: KILL it, then its timeout
           [ -n "$qp" ] && { pkill -KILL -P "$qp" 2>/dev/null; kill "$qp" 2>/dev/null; } ;;
      esac
    fi
    wait "$ap"
    tcp=x; [ -f "$d/$1.t" ] && tcp=$(cat "$d/$1.t")
    if ! qping_replied "$d/$1.q1" && { [ "$tcp" = 0 ] || [ "$tcp" = x ]; }; then
      attempt "$1" 2 "$t2" "$2"
    fi
  }
  emit() { # id host
    printf '%s target %s %s\n' "$M" "$1" "$2"
    if [ -f "$d/$1.t" ]; then printf '%s tcp %s %s\n' "$M" "$(cat "$d/$1.t")" "$(head -c 300 "$d/$1.te" | tr '\n' ' ')"; fi
    for n in 1 2; do
      [ -f "$d/$1.r$n" ] || continue
      printf '%s qping %s\n' "$M" "$(cat "$d/$1.r$n")"
      head -c 4000 "$d/$1.q$n" | sed 's/^/| /'
    done
  }
  probe m "$m" &
  if [ -n "$act" ] && [ "$act" != "$m" ]; then probe a "$act" & fi
  wait
  emit m "$m"
  if [ -n "$act" ] && [ "$act" != "$m" ]; then emit a "$act"; fi
fi
echo "$M end"
`

// GateProbe is the parsed output of GateProbeScript.
type GateProbe struct {
	Tools   GateTools
	Act     string
	Targets map[string]HostProbe // "m": the master, "a": the act_qmaster host
}

// ParseGateProbe parses GateProbeScript's output. Without the tools line
// or the end marker (a channel cut short, a shell error) it fails.
func ParseGateProbe(out string) (GateProbe, error) {
	p := GateProbe{Targets: map[string]HostProbe{}}
	var cur *HostProbe
	var curID string
	var qout *strings.Builder
	var attempt *QpingAttempt
	flushAttempt := func() {
		if attempt != nil && cur != nil {
			attempt.Output = tailText(qout.String(), 600)
			attempt.Status = sge.ParseQping(qout.String())
			cur.Attempts = append(cur.Attempts, *attempt)
		}
		attempt, qout = nil, nil
	}
	flushTarget := func() {
		flushAttempt()
		if cur != nil {
			p.Targets[curID] = *cur
		}
		cur = nil
	}
	sawTools, sawEnd := false, false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "| "); ok || line == "|" {
			if qout != nil {
				qout.WriteString(rest + "\n")
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, gateMark+" ")
		if !ok {
			continue // login banners, motd
		}
		word, arg, _ := strings.Cut(rest, " ")
		switch word {
		case "tools":
			sawTools = true
			for _, kv := range strings.Fields(arg) {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "qping":
					p.Tools.Qping = v == "1"
				case "timeout":
					p.Tools.Timeout = v == "1"
				case "bash":
					p.Tools.Bash = v == "1"
				}
			}
		case "act":
			p.Act = strings.TrimSpace(arg)
		case "target":
			flushTarget()
			id, host, _ := strings.Cut(arg, " ")
			curID, cur = id, &HostProbe{Host: strings.TrimSpace(host), TCP: TCPUnknown}
		case "tcp":
			if cur == nil {
				return p, fmt.Errorf("tcp line outside a target: %q", line)
			}
			code, detail, _ := strings.Cut(arg, " ")
			cur.TCP, cur.TCPDetail = classifyTCP(code, strings.TrimSpace(detail))
		case "qping":
			if cur == nil {
				return p, fmt.Errorf("qping line outside a target: %q", line)
			}
			flushAttempt()
			a, err := parseAttempt(arg)
			if err != nil {
				return p, err
			}
			attempt, qout = &a, &strings.Builder{}
		case "error":
			return p, fmt.Errorf("probe: %s", arg)
		case "end":
			sawEnd = true
		}
	}
	flushTarget()
	if err := sc.Err(); err != nil {
		return p, fmt.Errorf("read probe output: %w", err)
	}
	if !sawTools || !sawEnd {
		return p, errors.New("probe output incomplete (no tools line or no end marker)")
	}
	if p.Tools.Qping && p.Tools.Timeout {
		if _, ok := p.Targets["m"]; !ok {
			return p, errors.New("probe output has no result for the master")
		}
	}
	return p, nil
}

// parseAttempt parses "EXIT TIMEOUT START_NS END_NS".
func parseAttempt(arg string) (QpingAttempt, error) {
	f := strings.Fields(arg)
	if len(f) < 2 {
		return QpingAttempt{}, fmt.Errorf("bad qping line %q", arg)
	}
	code, err := strconv.Atoi(f[0])
	if err != nil {
		return QpingAttempt{}, fmt.Errorf("bad qping exit in %q: %w", arg, err)
	}
	to, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return QpingAttempt{}, fmt.Errorf("bad qping timeout in %q: %w", arg, err)
	}
	a := QpingAttempt{Exit: code, TimeoutSeconds: to, Status: -1, Seconds: -1, TimedOut: code == 124 || code == 137}
	if len(f) >= 4 {
		s, err1 := strconv.ParseInt(f[2], 10, 64)
		e, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 == nil && err2 == nil && e >= s {
			a.Seconds = float64((e-s)/1e6) / 1000
		}
	}
	return a, nil
}

// classifyTCP maps the /dev/tcp connect's exit code and stderr to a TCP*
// value.
func classifyTCP(code, detail string) (string, string) {
	switch {
	case code == "0":
		return TCPOpen, ""
	case code == "124" || code == "137":
		return TCPTimeout, "no answer to the TCP connect in time"
	}
	low := strings.ToLower(detail)
	switch {
	case strings.Contains(low, "connection refused"):
		return TCPRefused, detail
	case strings.Contains(low, "no route to host"), strings.Contains(low, "network is unreachable"),
		strings.Contains(low, "host is unreachable"), strings.Contains(low, "invalid argument"):
		// EINVAL is what a blackhole route gives a connect.
		return TCPUnreachable, detail
	case strings.Contains(low, "timed out"):
		return TCPTimeout, detail
	}
	return TCPUnknown, strings.TrimSpace("exit " + code + " " + detail)
}

// readShared reads bootstrap (for the spool and shared dirs), the
// heartbeat age, act_qmaster and the anti-flap record through t.
func readShared(ctx context.Context, cfg GateConfig, t target.Target, ev *GateEvidence) {
	cell := sge.Cell{Root: cfg.SGERoot, Name: cfg.SGECell}
	var boot sge.Bootstrap
	if f, err := t.ReadFile(ctx, cell.BootstrapPath()); err == nil && f.Exists {
		boot = sge.ParseBootstrap(string(f.Data))
	}
	ev.QmasterSpoolDir = boot.QmasterSpoolDir
	ev.SharedDir = sge.RecordDir(cfg.SharedDir, boot)
	if ev.QmasterSpoolDir != "" {
		cmd := "f=" + shell.Quote(ev.QmasterSpoolDir+"/heartbeat") + `; [ -r "$f" ] && echo "$(( $(date +%s) - $(stat -c %Y "$f") )) $(cat "$f")"`
		if out, err := t.Query(ctx, cmd, nil); err == nil && out.ExitCode == 0 {
			f := strings.Fields(out.Stdout)
			if len(f) >= 1 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					ev.HeartbeatAgeSeconds = n
				}
			}
			if len(f) >= 2 {
				ev.Heartbeat = f[1]
			}
		}
	}
	if f, err := t.ReadFile(ctx, cell.ActQmasterPath()); err == nil && f.Exists {
		ev.ActQmaster = strings.TrimSpace(string(f.Data))
	}
	if ev.SharedDir == "" {
		ev.AntiflapError = "the anti-flap record's directory is unknown (no shared_dir, and bootstrap gave no qmaster_spool_dir)"
		return
	}
	ev.AntiflapFile = ev.SharedDir + "/" + sge.AntiflapFile
	f, err := t.ReadFile(ctx, ev.AntiflapFile)
	switch {
	case err != nil:
		ev.AntiflapError = fmt.Sprintf("read %s: %v", ev.AntiflapFile, err)
	case f.Exists:
		rec, err := ParseTakeoverRecord(f.Data)
		if err != nil {
			ev.AntiflapError = fmt.Sprintf("%s: %v", ev.AntiflapFile, err)
		} else {
			ev.Antiflap = &rec
		}
	}
}

// TakeoverRecord is the anti-flap history: the last takeover.
type TakeoverRecord struct {
	Time  time.Time `json:"time"`
	RunID string    `json:"run_id"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Acked bool      `json:"acked"`
}

// ParseTakeoverRecord parses the anti-flap record; an empty file, bad JSON
// or a record without a time is an error.
func ParseTakeoverRecord(data []byte) (TakeoverRecord, error) {
	var r TakeoverRecord
	if strings.TrimSpace(string(data)) == "" {
		return r, errors.New("empty anti-flap record")
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("corrupt anti-flap record: %w", err)
	}
	if r.Time.IsZero() {
		return r, errors.New("anti-flap record without a time")
	}
	return r, nil
}

func tailText(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
