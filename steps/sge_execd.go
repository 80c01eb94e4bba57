package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// sgeRestartExecdSpec restarts sge_execd on the target so that it reports
// to the new qmaster at once (execds follow act_qmaster within 30 s
// anyway): softstop, SIGTERM to sge_execd only, so that running jobs and
// their shepherds stay; an execd that ignores it for 5 s is SIGKILLed by
// its own pid alone, never its process group; then the rc script's start
// (default the cell's common/sgeexecd), else sge_execd, and a check that a
// new sge_execd runs.
type sgeRestartExecdSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
	// RC is the inventory's cluster.rc_execd; default the cell's
	// common/sgeexecd.
	RC string `yaml:"rc"`
}

func (s *sgeRestartExecdSpec) Mutates() bool { return true }

func (s *sgeRestartExecdSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	rc := s.RC
	if rc == "" {
		rc = cellCommon(s.SGERoot, s.SGECell) + "/sgeexecd"
	}
	res, err := runScript(ctx, t, restartExecdScript(s.SGERoot, s.SGECell, rc), nil)
	res.Data = map[string]any{"old": "", "new": ""}
	// the script's last line: "sge_execd OLD -> NEW"
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if last := lines[len(lines)-1]; strings.HasPrefix(last, "sge_execd ") {
		if old, nw, ok := strings.Cut(strings.TrimPrefix(last, "sge_execd "), " -> "); ok {
			res.Data["old"], res.Data["new"] = strings.TrimSpace(old), strings.TrimSpace(nw)
		}
	}
	return res, err
}

func restartExecdScript(root, cell, rc string) string {
	return sge.Env(root, cell) + "\n" +
		"rc=" + shell.Quote(rc) + "\n" +
		`gone() { for p in $1; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
# softstop: SIGTERM to sge_execd only; running jobs and their shepherds stay
old=$(pgrep -x sge_execd | tr '\n' ' ')
[ -n "$old" ] && kill -TERM $old
i=0; while ! gone "$old" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
if ! gone "$old"; then
  # it ignored softstop: end it by its own pid alone, never its
  # process group, so the shepherds and jobs live on
  for p in $old; do kill -0 "$p" 2>/dev/null && { echo "sge_execd $p ignored SIGTERM: SIGKILL $p"; kill -KILL "$p"; }; done
  i=0; while ! gone "$old" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  gone "$old" || { echo "sge_execd did not stop: $old" >&2; exit 1; }
fi
if [ -x "$rc" ]; then "$rc" start >/dev/null; else sge_execd; fi
i=0; while [ -z "$(pgrep -x sge_execd)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
new=$(pgrep -x sge_execd | tr '\n' ' ')
[ -n "$new" ] || { echo "sge_execd did not start" >&2; exit 1; }
echo "sge_execd ${old:-none} -> $new"
`
}

func sgeRestartExecdKind() Kind {
	return Kind{
		Name:     "sge_restart_execd",
		Doc:      "softstop and start sge_execd: SIGTERM to sge_execd only (jobs and shepherds stay), SIGKILL by its own pid after 5 s, never its process group; start with the rc script, else sge_execd; check a new one runs",
		DataKeys: []string{"old", "new"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeRestartExecdSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkCell(n, s.SGERoot, s.SGECell); err != nil {
				return nil, err
			}
			if s.RC != "" {
				if err := checkAbs(n, "rc", s.RC); err != nil {
					return nil, err
				}
			}
			return s, nil
		},
	}
}

// sgeExecdReportingSpec waits until every host of Hosts reports load to
// the qmaster (qhost shows a load value, not "-").
type sgeExecdReportingSpec struct {
	SGERoot  string        `yaml:"sge_root"`
	SGECell  string        `yaml:"sge_cell"`
	Hosts    string        `yaml:"hosts"`
	Interval time.Duration `yaml:"interval"`
	Deadline time.Duration `yaml:"deadline"`
}

func (s *sgeExecdReportingSpec) Mutates() bool { return false }

func (s *sgeExecdReportingSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return s.poll(ctx, t, s.Deadline)
}

// Plan checks once: in a dry run the execds were not restarted.
func (s *sgeExecdReportingSpec) Plan(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return s.poll(ctx, t, 0)
}

func (s *sgeExecdReportingSpec) poll(ctx context.Context, t target.Target, deadline time.Duration) (Result, error) {
	hosts := splitList(s.Hosts)
	cmd := sge.Env(s.SGERoot, s.SGECell) + "qhost"
	return pollUntil(ctx, s.Interval, deadline, func() (Result, string, error) {
		out, err := t.Query(ctx, cmd, nil)
		res := Result{Output: out, Data: map[string]any{"not_reporting": []string{}}}
		if err != nil {
			return res, "", err
		}
		if out.ExitCode != 0 {
			return res, fmt.Sprintf("qhost: exit status %d%s", out.ExitCode, lastLine(out.Stderr)), nil
		}
		bad := sge.NotReporting(out.Stdout, hosts)
		res.Data["not_reporting"] = bad
		if len(bad) > 0 {
			return res, "not reporting: " + strings.Join(bad, " "), nil
		}
		return res, "", nil
	})
}

// pollUntil calls check until it reports no problem, every interval until
// deadline (0: once). check returns a problem or an error that ends the
// poll at once.
func pollUntil(ctx context.Context, interval, deadline time.Duration, check func() (Result, string, error)) (Result, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		res, problem, err := check()
		if res.Data == nil {
			res.Data = map[string]any{}
		}
		res.Data["attempts"] = attempt
		if err != nil || problem == "" {
			return res, err
		}
		if !time.Now().Add(interval).Before(start.Add(deadline)) {
			return res, fmt.Errorf("%s (after %d attempt(s) in %s, deadline %s)", problem, attempt,
				time.Since(start).Round(100*time.Millisecond), deadline)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// checkPoll checks a polling kind's interval and deadline.
func checkPoll(n *yaml.Node, interval, deadline time.Duration) error {
	if interval <= 0 || deadline <= 0 {
		return posErr(n, "interval and deadline must be positive")
	}
	return nil
}

func sgeExecdReportingKind() Kind {
	return Kind{
		Name:     "sge_execd_reporting",
		Doc:      "wait until every host of hosts reports load to the qmaster (qhost), every interval until the deadline",
		DataKeys: []string{"not_reporting", "attempts"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeExecdReportingSpec{Interval: 500 * time.Millisecond, Deadline: 2 * time.Minute}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkCell(n, s.SGERoot, s.SGECell); err != nil {
				return nil, err
			}
			return s, checkPoll(n, s.Interval, s.Deadline)
		},
	}
}
