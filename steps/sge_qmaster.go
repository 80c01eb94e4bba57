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

// sgeStartQmasterSpec starts the cell's qmaster on the target: the rc
// script (default the cell's common/sgemaster) with -qmaster start, else
// sge_qmaster itself. Its undo is journaled before the start, so that a
// start that hangs or is killed still leaves it: sge_stop_qmaster, which
// finds this cell's qmaster by its process (its cwd the spool dir, or
// SGE_ROOT and SGE_CELL in its environment), never through a pid file,
// since a copied spool's pid file names the old master's process.
type sgeStartQmasterSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
	// RC is the inventory's cluster.rc_master; default the cell's
	// common/sgemaster.
	RC string `yaml:"rc"`
	// SpoolDir is the qmaster_spool_dir the new qmaster runs in.
	SpoolDir string `yaml:"spool_dir"`
	// IfNone starts nothing, and journals no undo, when an sge_qmaster
	// already runs on the host (the undo of sge_shutdown_qmaster: bring
	// back the one it stopped). A rollback then leaves that qmaster alone.
	IfNone bool `yaml:"if_none"`
}

func (s *sgeStartQmasterSpec) Mutates() bool { return true }

func (s *sgeStartQmasterSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	if s.IfNone {
		q, running, err := qmasterRuns(ctx, t)
		if err != nil {
			return Result{Output: q}, err
		}
		if running != "" {
			return Result{Output: target.Output{Stdout: running + ": none started\n"}}, nil
		}
	}
	undo := &target.UndoRecord{Kind: "sge_stop_qmaster", Params: map[string]any{
		"sge_root": s.SGERoot, "sge_cell": s.SGECell, "spool_dir": s.SpoolDir}}
	if err := env.prepare(undo); err != nil {
		return Result{}, err
	}
	rc := s.RC
	if rc == "" {
		rc = cellCommon(s.SGERoot, s.SGECell) + "/sgemaster"
	}
	script := sge.Env(s.SGERoot, s.SGECell) + "\n"
	if s.IfNone {
		script += `if pgrep -x sge_qmaster >/dev/null; then echo "an sge_qmaster runs on $(hostname) already: none started"; exit 0; fi` + "\n"
	}
	script += "rc=" + shell.Quote(rc) + "\n" +
		`if [ -x "$rc" ]; then "$rc" -qmaster start; else sge_qmaster; fi` + "\n"
	return runScript(ctx, t, script, undo)
}

// runScript sends script to sh -s and fails on a non-zero exit; the result
// carries undo.
func runScript(ctx context.Context, t target.Target, script string, undo *target.UndoRecord) (Result, error) {
	out, err := t.Exec(ctx, "sh -s", []byte(script))
	res := Result{Output: out, Changed: true, Undo: undo, Warning: warnings(out.Stdout)}
	res.Output.Cmd = "sh -s <<script\n" + script + "script"
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("exit status %d%s", out.ExitCode, lastLine(out.Stderr))
	}
	return res, nil
}

// sgeStopQmasterSpec stops the cell's qmaster on the target: SIGTERM, 10 s
// of grace, then SIGKILL, by pid only; it proves the process is gone.
type sgeStopQmasterSpec struct {
	SGERoot  string `yaml:"sge_root"`
	SGECell  string `yaml:"sge_cell"`
	SpoolDir string `yaml:"spool_dir"`
}

func (s *sgeStopQmasterSpec) Mutates() bool { return true }

func (s *sgeStopQmasterSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return runScript(ctx, t, stopQmasterScript(s.SGERoot, s.SGECell, s.SpoolDir), nil)
}

// stopQmasterScript finds the qmaster of this cell on the host by its cwd
// (the spool dir) or its environment (SGE_ROOT and SGE_CELL).
func stopQmasterScript(root, cell, spoolDir string) string {
	return "d=" + shell.Quote(spoolDir) + "\n" +
		"root=" + shell.Quote(root) + "; cell=" + shell.Quote(cell) + "\n" +
		`mine() { for p in $(pgrep -x sge_qmaster); do
    [ "$(cat /proc/"$p"/comm 2>/dev/null)" = sge_qmaster ] || continue
    if { [ -n "$d" ] && [ "$(readlink /proc/"$p"/cwd)" = "$d" ]; } || { tr '\0' '\n' < /proc/"$p"/environ | grep -qx "SGE_ROOT=$root" && tr '\0' '\n' < /proc/"$p"/environ | grep -qx "SGE_CELL=$cell"; }; then echo "$p"; fi
  done; }
p=$(mine); [ -z "$p" ] && { echo "no qmaster of this cell runs here"; exit 0; }
echo "stopping qmaster $p"; kill -TERM $p; i=0
while [ -n "$(mine)" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
p=$(mine); [ -n "$p" ] && kill -KILL $p; sleep 0.5
[ -z "$(mine)" ] || { echo "qmaster still runs: $(mine)" >&2; exit 1; }
`
}

// sgeShutdownQmasterSpec shuts the cell's qmaster down cleanly on the host
// it runs on, as `sgemaster -migrate` does: qconf -km (the qmaster writes
// its spool and its lock file on the way out), then it waits until no
// sge_qmaster process is left on that host, looked up there (pgrep and
// /proc/PID/comm): a qping that fails shows only that no answer came back.
// Its undo, journaled before qconf -km, starts a qmaster on the host again
// unless one runs.
type sgeShutdownQmasterSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
	// RC is the inventory's cluster.rc_master, for the undo.
	RC       string        `yaml:"rc"`
	Interval time.Duration `yaml:"interval"`
	Deadline time.Duration `yaml:"deadline"`
}

func (s *sgeShutdownQmasterSpec) Mutates() bool { return true }

func (s *sgeShutdownQmasterSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	return s.shutdown(ctx, t, env, s.Deadline)
}

// Plan sends qconf -km to the recording target and does not wait: in a dry
// run the qmaster keeps running.
func (s *sgeShutdownQmasterSpec) Plan(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	return s.shutdown(ctx, t, env, 0)
}

func (s *sgeShutdownQmasterSpec) shutdown(ctx context.Context, t target.Target, env Runtime, deadline time.Duration) (Result, error) {
	undo := &target.UndoRecord{Kind: "sge_start_qmaster", Params: map[string]any{
		"sge_root": s.SGERoot, "sge_cell": s.SGECell, "rc": s.RC, "if_none": true}}
	if err := env.prepare(undo); err != nil {
		return Result{}, err
	}
	cmd := sge.Env(s.SGERoot, s.SGECell) + "qconf -km"
	out, err := t.Exec(ctx, cmd, nil)
	res := Result{Output: out, Changed: true, Undo: undo}
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("qconf -km: exit status %d%s", out.ExitCode, lastLine(out.Stderr+"\n"+out.Stdout))
	}
	if deadline == 0 {
		res.Stdout += fmt.Sprintf("then wait until no sge_qmaster process runs on %s (every %s, up to %s)\n", t.Name(), s.Interval, s.Deadline)
		return res, nil
	}
	gone, err := pollUntil(ctx, s.Interval, deadline, func() (Result, string, error) {
		q, running, err := qmasterRuns(ctx, t)
		return Result{Output: q}, running, err
	})
	res.Stdout += gone.Stdout
	res.Stderr += gone.Stderr
	res.Data = gone.Data
	return res, err
}

// qmasterRuns looks up sge_qmaster processes on t itself (noQmasterScript):
// running names them ("sge_qmaster still runs on HOST, pid ..."), "" when
// there are none; an error when the host cannot tell.
func qmasterRuns(ctx context.Context, t target.Target) (out target.Output, running string, err error) {
	out, err = t.Query(ctx, noQmasterScript, nil)
	switch {
	case err != nil:
		return out, "", err
	case out.ExitCode == 1:
		return out, strings.TrimSpace(out.Stdout), nil
	case out.ExitCode != 0:
		return out, "", fmt.Errorf("cannot look up processes on %s%s", t.Name(), lastLine(out.Stderr))
	}
	return out, "", nil
}

// noQmasterScript exits 0 when no sge_qmaster process runs on the host,
// 1 when one does (naming it), 2 when it cannot tell.
const noQmasterScript = `[ -d /proc/self ] || { echo "no /proc on $(hostname)" >&2; exit 2; }
command -v pgrep >/dev/null 2>&1 || { echo "pgrep not found on $(hostname)" >&2; exit 2; }
pids=$(pgrep -x sge_qmaster); rc=$?
[ "$rc" -le 1 ] || { echo "pgrep -x sge_qmaster failed on $(hostname) (exit $rc)" >&2; exit 2; }
alive=""
for p in $pids; do
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sge_qmaster ] && alive="$alive $p"
done
[ -z "$alive" ] || { echo "sge_qmaster still runs on $(hostname), pid$alive"; exit 1; }
echo "no sge_qmaster process on $(hostname) (pgrep -x sge_qmaster, /proc/PID/comm)"`

func sgeShutdownQmasterKind() Kind {
	return Kind{
		Name: "sge_shutdown_qmaster",
		Doc: "shut the cell's qmaster down cleanly (qconf -km) and wait until no sge_qmaster process is left on this host, looked up there; " +
			"undo, journaled first, starts a qmaster here again unless one runs",
		DataKeys: []string{"attempts"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeShutdownQmasterSpec{Interval: time.Second, Deadline: 60 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkQmasterParams(n, s.SGERoot, s.SGECell, "", s.RC); err != nil {
				return nil, err
			}
			return s, checkPoll(n, s.Interval, s.Deadline)
		},
	}
}

func sgeStartQmasterKind() Kind {
	return Kind{
		Name: "sge_start_qmaster",
		Doc:  "start the cell's qmaster (rc script -qmaster start, else sge_qmaster); undo, journaled before the start, stops this cell's qmaster found by its cwd or environment, never by a pid file",
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeStartQmasterSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, checkQmasterParams(n, s.SGERoot, s.SGECell, s.SpoolDir, s.RC)
		},
	}
}

func checkQmasterParams(n *yaml.Node, root, cell, spoolDir, rc string) error {
	if err := checkCell(n, root, cell); err != nil {
		return err
	}
	if spoolDir != "" {
		if err := checkAbs(n, "spool_dir", spoolDir); err != nil {
			return err
		}
	}
	if rc != "" {
		return checkAbs(n, "rc", rc)
	}
	return nil
}

func sgeStopQmasterKind() Kind {
	return Kind{
		Name:     "sge_stop_qmaster",
		Doc:      "undo of sge_start_qmaster: SIGTERM this cell's qmaster (cwd the spool dir, or its environment), SIGKILL after 10 s, prove it is gone",
		UndoOnly: true,
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeStopQmasterSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, checkQmasterParams(n, s.SGERoot, s.SGECell, s.SpoolDir, "")
		},
	}
}
