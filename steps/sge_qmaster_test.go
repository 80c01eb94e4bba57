package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

func TestSGEStartQmaster(t *testing.T) {
	tests := []struct {
		name, params, wantRC string
		out                  target.Output
		prepareErr, wantErr  string
	}{
		{name: "the cell's rc script", params: "{sge_root: /opt/sge, sge_cell: prod, spool_dir: /spool/q.sgerun-1}",
			wantRC: "rc=/opt/sge/prod/common/sgemaster"},
		{name: "the inventory's rc_master", params: "{sge_root: /opt/sge, sge_cell: prod, rc: /etc/init.d/sgemaster.p, spool_dir: /spool/q}",
			wantRC: "rc=/etc/init.d/sgemaster.p"},
		{name: "a failed start", params: "{sge_root: /opt/sge, sge_cell: prod}", wantRC: "rc=/opt/sge/prod/common/sgemaster",
			out: target.Output{ExitCode: 1, Stderr: "startup guard: qmaster runs on m"}, wantErr: "exit status 1: startup guard: qmaster runs on m"},
		{name: "no journal, no start", params: "{sge_root: /opt/sge, sge_cell: prod}", prepareErr: "disk full", wantErr: "journal undo: disk full"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "s").on("sh -s", tc.out)
			var prepared []*target.UndoRecord
			env := Runtime{Prepare: func(r *target.UndoRecord) error {
				if tc.prepareErr != "" {
					return errors.New(tc.prepareErr)
				}
				if len(f.cmds("exec")) != 0 {
					t.Error("undo journaled after the start")
				}
				prepared = append(prepared, r)
				return nil
			}}
			res, err := skMust(t, "sge_start_qmaster", tc.params).Do(context.Background(), f, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.prepareErr != "" {
				if len(f.cmds("exec")) != 0 {
					t.Errorf("started without a journaled undo")
				}
				return
			}
			if len(prepared) != 1 || prepared[0].Kind != "sge_stop_qmaster" || prepared[0].Params["sge_cell"] != "prod" || res.Undo != prepared[0] {
				t.Errorf("prepared %+v, result undo %+v; want one sge_stop_qmaster, also in the result", prepared, res.Undo)
			}
			script := string(f.calls[0].stdin)
			for _, w := range []string{tc.wantRC, `if [ -x "$rc" ]; then "$rc" -qmaster start; else sge_qmaster; fi`, "SGE_CELL=prod"} {
				if !strings.Contains(script, w) {
					t.Errorf("start script lacks %q:\n%s", w, script)
				}
			}
		})
	}
}

// The undo finds this cell's qmaster by its process, SIGTERMs it, then
// SIGKILLs it by pid, and never reads a pid file.
func TestSGEStopQmaster(t *testing.T) {
	f := newFake(t, "s").on("sh -s", target.Output{Stdout: "stopping qmaster 42\n"})
	if _, err := skMust(t, "sge_stop_qmaster", "{sge_root: /opt/sge, sge_cell: prod, spool_dir: /spool/q.sgerun-1}").Do(context.Background(), f, Runtime{}); err != nil {
		t.Fatal(err)
	}
	script := string(f.calls[0].stdin)
	for _, w := range []string{"d=/spool/q.sgerun-1", "readlink /proc/\"$p\"/cwd", "SGE_ROOT=$root", "SGE_CELL=$cell",
		"kill -TERM $p", "kill -KILL $p", "qmaster still runs"} {
		if !strings.Contains(script, w) {
			t.Errorf("stop script lacks %q:\n%s", w, script)
		}
	}
	if strings.Contains(script, "qmaster.pid") || strings.Contains(script, "pkill") || strings.Contains(script, "kill -TERM -") {
		t.Errorf("stop script uses a pid file, pkill or a process group:\n%s", script)
	}
	f = newFake(t, "s").on("sh -s", target.Output{ExitCode: 1, Stderr: "qmaster still runs: 42"})
	if _, err := skMust(t, "sge_stop_qmaster", "{sge_root: /opt/sge, sge_cell: prod}").Do(context.Background(), f, Runtime{}); err == nil {
		t.Error("a qmaster that survived its stop was not an error")
	}
}
