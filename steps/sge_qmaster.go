package steps

import (
	"context"
	"fmt"

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
}

func (s *sgeStartQmasterSpec) Mutates() bool { return true }

func (s *sgeStartQmasterSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	undo := &target.UndoRecord{Kind: "sge_stop_qmaster", Params: map[string]any{
		"sge_root": s.SGERoot, "sge_cell": s.SGECell, "spool_dir": s.SpoolDir}}
	if err := env.prepare(undo); err != nil {
		return Result{}, err
	}
	rc := s.RC
	if rc == "" {
		rc = cellCommon(s.SGERoot, s.SGECell) + "/sgemaster"
	}
	script := sge.Env(s.SGERoot, s.SGECell) + "\n" +
		"rc=" + shell.Quote(rc) + "\n" +
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
