package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/shell"
	"go.yaml.in/yaml/v3"
)

// fenceSpec makes sure the old master's qmaster can no longer serve. In
// order: stop it over SSH on its fence address (the file-service network)
// and disable its autostart; else run the site's fence command on the
// controller; else record a pending fence that status and check report.
type fenceSpec struct {
	Master  string `yaml:"master"`
	Address string `yaml:"address"`
	// PIDFile is qmaster.pid in the OLD spool dir, read before bootstrap
	// was changed: the shared bootstrap now names the new master's spool,
	// whose pid is not the old host's process.
	PIDFile string `yaml:"pid_file"`
	// Command is the site's fence command (e.g. an IPMI power-off), run on
	// the controller with SGERUN_FENCE_HOST and SGERUN_FENCE_ADDRESS set.
	// It is shell text the inventory's author wrote, run as written.
	Command string `yaml:"command"`
	// Pending is the pending-fence record file, written through
	// PendingHost (the new master) on the shared filesystem.
	Pending     string        `yaml:"pending"`
	PendingHost string        `yaml:"pending_host"`
	RunID       string        `yaml:"run_id"`
	Grace       time.Duration `yaml:"grace"`
	Timeout     time.Duration `yaml:"timeout"`
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

func (s *fenceSpec) Mutates() bool { return true }

func (s *fenceSpec) Do(ctx context.Context, local Target, env Env) (Result, error) {
	res := Result{Changed: true, Data: map[string]any{"method": "", "detail": ""}}
	var reasons []string
	if s.Address != "" && env.Connect != nil {
		cctx, cancel := context.WithTimeout(ctx, s.Timeout)
		t, err := env.Connect(cctx, s.Master, s.Address)
		if err == nil {
			var out Output
			out, err = t.Exec(cctx, fenceScript(s.PIDFile, s.Grace), nil)
			res.Output = out
			if err == nil && out.ExitCode != 0 {
				err = fmt.Errorf("fence script exit %d%s", out.ExitCode, lastLine(out.Stdout+"\n"+out.Stderr))
			}
		}
		cancel()
		if err == nil {
			res.Data["method"], res.Data["detail"] = "ssh", strings.TrimSpace(res.Output.Stdout)
			return res, nil
		}
		reasons = append(reasons, fmt.Sprintf("ssh to fence address %s: %v", s.Address, err))
	} else if s.Address == "" {
		reasons = append(reasons, "no fence_address in the inventory")
	}
	if s.Command != "" {
		cmd := "SGERUN_FENCE_HOST=" + shell.Quote(s.Master) + " SGERUN_FENCE_ADDRESS=" + shell.Quote(s.Address) +
			" ; export SGERUN_FENCE_HOST SGERUN_FENCE_ADDRESS; " + s.Command
		cctx, cancel := context.WithTimeout(ctx, s.Timeout)
		out, err := local.Exec(cctx, cmd, nil)
		cancel()
		res.Output = out
		if err == nil && out.ExitCode == 0 {
			res.Data["method"], res.Data["detail"] = "command", strings.TrimSpace(out.Stdout)
			return res, nil
		}
		if err == nil {
			err = fmt.Errorf("exit %d%s", out.ExitCode, lastLine(out.Stderr))
		}
		reasons = append(reasons, "fence_command: "+err.Error())
	} else {
		reasons = append(reasons, "no fence_command in the inventory")
	}
	// Nothing could fence the old master: record it, loudly.
	rec := PendingFence{Time: time.Now().UTC(), RunID: s.RunID, Master: s.Master, Address: s.Address,
		PIDFile: s.PIDFile, Reason: strings.Join(reasons, "; ")}
	res.Data["method"], res.Data["detail"] = "pending", rec.Reason
	if s.Pending == "" || s.PendingHost == "" || env.Connect == nil {
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
	if err := t.WriteFile(ctx, s.Pending, File{Data: append(data, '\n'), Mode: 0o644, UID: -1, GID: -1, Exists: true}); err != nil {
		return res, fmt.Errorf("record pending fence: %w", err)
	}
	return res, nil
}

// fenceScript stops the old host's own qmaster: the pid from its old spool
// dir when that process really is sge_qmaster, else any sge_qmaster on that
// host; SIGTERM, a short grace, then SIGKILL, and a check that it is gone
// (SIGTERM alone does not stop a partitioned qmaster). Then it disables the
// host's qmaster autostart.
func fenceScript(pidFile string, grace time.Duration) string {
	g := strconv.Itoa(max(1, int(grace/time.Second)))
	return `pidfile=` + shell.Quote(pidFile) + `; pids=""
if [ -n "$pidfile" ] && [ -r "$pidfile" ]; then
  p=$(cat "$pidfile" 2>/dev/null)
  case "$p" in ''|*[!0-9]*) ;; *) [ "$(ps -p "$p" -o comm= 2>/dev/null)" = sge_qmaster ] && pids=$p ;; esac
fi
[ -z "$pids" ] && pids=$(pgrep -x sge_qmaster | tr '\n' ' ')
echo "qmaster pids: ${pids:-none}"
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null
  i=0
  while [ $i -lt ` + g + ` ]; do
    alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 1; i=$((i+1))
  done
  for p in $pids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null && echo "SIGKILL $p"; done
  i=0; while [ $i -lt 10 ]; do
    alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break; sleep 1; i=$((i+1))
  done
  [ -n "$alive" ] && { echo "still running:$alive"; exit 1; }
fi
if command -v systemctl >/dev/null 2>&1; then
  for u in gridengine-master sgemaster sge_qmaster; do
    if systemctl list-unit-files "$u.service" 2>/dev/null | grep -q "^$u.service"; then
      systemctl disable "$u.service" >/dev/null 2>&1 && echo "autostart disabled: $u.service"
    fi
  done
fi
for f in /etc/init.d/sgemaster* /etc/init.d/gridengine-master; do
  [ -e "$f" ] || continue
  if command -v update-rc.d >/dev/null 2>&1; then update-rc.d -f "$(basename "$f")" disable >/dev/null 2>&1 && echo "autostart disabled: $f"
  elif command -v chkconfig >/dev/null 2>&1; then chkconfig "$(basename "$f")" off && echo "autostart disabled: $f"; fi
done
echo fenced`
}

func fenceKind() Kind {
	return Kind{
		Name:     "sge_fence",
		Doc:      "fence the old master: stop its qmaster over its fence address and disable autostart, else run fence_command, else record a pending fence",
		Local:    true,
		DataKeys: []string{"method", "detail"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &fenceSpec{Grace: 5 * time.Second, Timeout: 60 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := require(n, "master", s.Master); err != nil {
				return nil, err
			}
			if s.Grace <= 0 || s.Timeout <= 0 {
				return nil, posErr(n, "grace and timeout must be positive")
			}
			return s, nil
		},
	}
}
