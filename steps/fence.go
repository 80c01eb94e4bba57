package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// fenceSpec makes sure the old master's qmaster can no longer serve, before
// anything of its spool is copied (fence before promote). It tries every
// way to the old master, in order: its own address (a hung qmaster on a
// live host), its fence address (the file-service network), then the
// site's fence command on the controller. Over SSH it SIGKILLs sge_qmaster
// and sge_shadowd, disables their autostart and proves both are gone.
//
// When no way works the master is unfenced. With Pending set (sgerun fence,
// retrying a fence) the failure is recorded there. Otherwise (a takeover)
// the step refuses, unless Unfenced allows going on or the operator
// confirms at the prompt: then the result says method "unfenced" and
// carries the record a later step writes.
type fenceSpec struct {
	Master  string `yaml:"master"`
	Address string `yaml:"address"`
	// OwnAddress tries the master's own inventory address first (default
	// true).
	OwnAddress *bool `yaml:"own_address"`
	// PIDFile is qmaster.pid in the old master's spool dir, as bootstrap
	// names it before the takeover changes it. It is one hint among the
	// host's process list: every sge_qmaster on the host is killed.
	PIDFile string `yaml:"pid_file"`
	// Command is the site's fence command (e.g. an IPMI power-off), run on
	// the controller with SGERUN_FENCE_HOST and SGERUN_FENCE_ADDRESS set.
	// It is shell text the inventory's author wrote, run as written.
	Command string `yaml:"command"`
	// Pending is the pending-fence record file, written through
	// PendingHost (the new master) on the shared filesystem, when no way
	// works (sgerun fence).
	Pending     string `yaml:"pending"`
	PendingHost string `yaml:"pending_host"`
	RunID       string `yaml:"run_id"`
	// Unfenced lets a takeover go on when no way works (takeover
	// --unfenced, or policy.allow_unfenced).
	Unfenced bool          `yaml:"unfenced"`
	Timeout  time.Duration `yaml:"timeout"`
}

// PendingFence is the record of a fence that could not be done.
type PendingFence struct {
	Time    time.Time `json:"time"`
	RunID   string    `json:"run_id"`
	Master  string    `json:"master"`
	Address string    `json:"address,omitempty"`
	PIDFile string    `json:"pid_file,omitempty"`
	Reason  string    `json:"reason"`
	// LastAttempt is when `sgerun fence` last tried and failed.
	LastAttempt time.Time `json:"last_attempt,omitzero"`
}

// Fence methods, in Result.Data["method"].
const (
	FenceSSH          = "ssh"           // over the master's own address
	FenceAddress      = "fence_address" // over its fence address
	FenceCommand      = "command"       // the site's fence_command
	FenceUnfenced     = "unfenced"      // no way worked; the takeover went on
	FencePendingSaved = "pending"       // no way worked; recorded (sgerun fence)
)

func (s *fenceSpec) Mutates() bool { return true }

type fenceWay struct {
	method, address string
}

func (s *fenceSpec) Do(ctx context.Context, local target.Target, env Runtime) (Result, error) {
	res := Result{Changed: true, Data: map[string]any{"method": "", "detail": "", "tried": []string{}}}
	var reasons []string
	var ways []fenceWay
	if s.OwnAddress == nil || *s.OwnAddress {
		ways = append(ways, fenceWay{FenceSSH, ""})
	}
	if s.Address != "" {
		ways = append(ways, fenceWay{FenceAddress, s.Address})
	} else {
		reasons = append(reasons, "no fence_address in the inventory")
	}
	if env.Connect != nil && len(ways) > 0 {
		if out, way, err := s.overSSH(ctx, env, ways); err == nil {
			res.Output = out
			res.Data["method"], res.Data["detail"] = way.method, strings.TrimSpace(out.Stdout)
			// e.g. an autostart turned off but not recorded for the takeback
			res.Warning = warnings(out.Stdout)
			return res, nil
		} else {
			reasons = append(reasons, err.Error())
		}
	}
	if s.Command != "" {
		cmd := "SGERUN_FENCE_HOST=" + shell.Quote(s.Master) + " SGERUN_FENCE_ADDRESS=" + shell.Quote(s.Address) +
			" ; export SGERUN_FENCE_HOST SGERUN_FENCE_ADDRESS; " + s.Command
		cctx, cancel := context.WithTimeout(ctx, s.Timeout)
		out, err := local.Exec(cctx, cmd, nil)
		cancel()
		res.Output = out
		if err == nil && out.ExitCode == 0 {
			res.Data["method"], res.Data["detail"] = FenceCommand, strings.TrimSpace(out.Stdout)
			return res, nil
		}
		if err == nil {
			err = fmt.Errorf("exit %d%s", out.ExitCode, lastLine(out.Stderr))
		}
		reasons = append(reasons, "fence_command: "+err.Error())
	} else {
		reasons = append(reasons, "no fence_command in the inventory")
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	rec := PendingFence{Time: time.Now().UTC(), RunID: s.RunID, Master: s.Master, Address: s.Address,
		PIDFile: s.PIDFile, Reason: strings.Join(reasons, "; ")}
	if s.Pending != "" {
		return s.recordPending(ctx, env, res, rec)
	}
	// A takeover: going on unfenced needs an explicit yes.
	question := fmt.Sprintf("the old master %s cannot be fenced: %s.\n"+
		"It may still run a qmaster and write its spool; a takeover now copies a possibly live spool.", s.Master, rec.Reason)
	allowed, how := s.Unfenced, "allowed by --unfenced or policy.allow_unfenced"
	if !allowed && env.Confirm != nil {
		ok, err := env.Confirm(ctx, question+"\nType \"unfenced\" to take over without fencing: ", "unfenced")
		if err != nil {
			return res, fmt.Errorf("ask to go on unfenced: %w", err)
		}
		allowed, how = ok, "confirmed by the operator at the prompt"
	}
	res.Data["detail"] = rec.Reason
	if !allowed {
		res.Data["method"] = ""
		return res, fmt.Errorf("%w: cannot fence the old master %s, so nothing was changed: %s. "+
			"Make a way work (SSH to %s or its fence_address, or a fence_command), or power it off and run the takeover "+
			"with --unfenced (policy.allow_unfenced for unattended takeovers)", ErrRefused, s.Master, rec.Reason, s.Master)
	}
	data, _ := json.Marshal(rec)
	res.Data["method"], res.Data["allowed"], res.Data["pending_record"] = FenceUnfenced, how, string(data)
	res.Warning = fmt.Sprintf("UNFENCED: the old master %s was not fenced (%s): %s", s.Master, how, rec.Reason)
	res.Output.Stdout = res.Warning + "\n"
	return res, nil
}

// overSSH connects over every way at once (a cut network makes a connect
// wait for its timeout) and runs the fence script over the first that
// connects, then over the next ones as they connect, until one proves the
// master's daemons are gone.
func (s *fenceSpec) overSSH(ctx context.Context, env Runtime, ways []fenceWay) (target.Output, fenceWay, error) {
	cctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	type conn struct {
		way fenceWay
		t   target.Target
		err error
	}
	conns := make(chan conn, len(ways))
	for _, w := range ways {
		go func() {
			t, err := env.Connect(cctx, s.Master, w.address)
			conns <- conn{w, t, err}
		}()
	}
	var errs []string
	var last target.Output
	for range ways {
		c := <-conns
		label := "ssh to " + s.Master
		if c.way.address != "" {
			label = "ssh to fence address " + c.way.address
		}
		if c.err != nil {
			errs = append(errs, label+": "+c.err.Error())
			continue
		}
		out, err := c.t.Exec(cctx, fenceScript(s.PIDFile), nil)
		last = out
		if err == nil && out.ExitCode != 0 {
			err = fmt.Errorf("fence script exit %d%s", out.ExitCode, lastLine(out.Stdout+"\n"+out.Stderr))
		}
		if err == nil {
			return out, c.way, nil
		}
		errs = append(errs, label+": "+err.Error())
	}
	slices.Sort(errs)
	return last, fenceWay{}, errors.New(strings.Join(errs, "; "))
}

func (s *fenceSpec) recordPending(ctx context.Context, env Runtime, res Result, rec PendingFence) (Result, error) {
	res.Data["method"], res.Data["detail"] = FencePendingSaved, rec.Reason
	if s.PendingHost == "" || env.Connect == nil {
		return res, fmt.Errorf("cannot fence %s and nowhere to record it: %s", s.Master, rec.Reason)
	}
	t, err := env.Connect(ctx, s.PendingHost, "")
	if err != nil {
		return res, fmt.Errorf("record pending fence: %w", err)
	}
	if old, err := t.ReadFile(ctx, s.Pending); err == nil && old.Exists {
		// A retry that failed again: the fence has been pending since the
		// first record, which status reports.
		var first PendingFence
		if json.Unmarshal(old.Data, &first) == nil && !first.Time.IsZero() {
			rec.Time, rec.RunID = first.Time, first.RunID
			rec.LastAttempt = time.Now().UTC()
		}
	}
	data, _ := json.Marshal(rec)
	if err := t.WriteFile(ctx, s.Pending, target.File{Data: append(data, '\n'), Mode: 0o644, UID: -1, GID: -1, Exists: true}); err != nil {
		return res, fmt.Errorf("record pending fence: %w", err)
	}
	return res, nil
}

// fenceScript ends the old host's SGE master daemons and keeps them from
// coming back: SIGKILL at once to every sge_qmaster and sge_shadowd on the
// host (SIGTERM does not stop a partitioned qmaster, and the old spool is
// abandoned: the copy is made after this, and recovery handles a kill
// mid-write); their autostart turned off and recorded on the host
// (autostartOffScript), so that a takeback turns on again exactly that;
// then it proves both daemons are gone. The pid file of the old
// spool is checked too, against the process's command, so that a qmaster
// started under another name is not missed.
func fenceScript(pidFile string) string {
	return `pidfile=` + shell.Quote(pidFile) + `
pids=$(pgrep -x sge_qmaster | tr '\n' ' ')
if [ -n "$pidfile" ] && [ -r "$pidfile" ]; then
  p=$(cat "$pidfile" 2>/dev/null)
  case "$p" in ''|*[!0-9]*) ;; *) [ "$(cat /proc/"$p"/comm 2>/dev/null)" = sge_qmaster ] && pids="$pids $p" ;; esac
fi
shadow=$(pgrep -x sge_shadowd | tr '\n' ' ')
echo "qmaster pids: ${pids:-none}; shadowd pids: ${shadow:-none}"
[ -n "$pids$shadow" ] && kill -KILL $pids $shadow 2>/dev/null
` + autostartOffScript() + `
i=0
while :; do
  alive=$(pgrep -x sge_qmaster; pgrep -x sge_shadowd)
  [ -z "$alive" ] && break
  [ $i -ge 100 ] && { echo "still running: $(echo $alive)"; exit 1; }
  [ -n "$alive" ] && kill -KILL $alive 2>/dev/null
  sleep 0.1; i=$((i+1))
done
echo "fenced: no sge_qmaster or sge_shadowd runs on $(hostname)"`
}

func fenceKind() Kind {
	return Kind{
		Name:     "sge_fence",
		Doc:      "fence the old master: SIGKILL its sge_qmaster and sge_shadowd over its own address or its fence address, disable their autostart and prove they are gone, else run fence_command; else refuse, go on unfenced when allowed, or record a pending fence",
		Local:    true,
		DataKeys: []string{"method", "detail", "allowed", "pending_record"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &fenceSpec{Timeout: 60 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := require(n, "master", s.Master); err != nil {
				return nil, err
			}
			if s.Timeout <= 0 {
				return nil, posErr(n, "timeout must be positive")
			}
			return s, nil
		},
	}
}
