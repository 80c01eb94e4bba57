package steps

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

const skStamp = "20261201000000"

// skSpoolFake answers the spool copy's commands: the sources exist, the
// destinations do not, every copy works; the database dir lists tree, its
// copy copyTree (default the same), qmaster_spool_dir and its copy a
// messages file.
func skSpoolFake(t *testing.T, tree, copyTree string) *fakeTarget {
	if copyTree == "" {
		copyTree = tree
	}
	return newFake(t, "s").
		on("test -d ", target.Output{}).
		on("test -e ", target.Output{ExitCode: 1}).
		on("cp -a -- ", target.Output{}).
		on("set -e; mkdir -- ", target.Output{}).
		onRE(`^cd /spool/(spooldb|classic)\.sgerun-\d+ && find`, target.Output{Stdout: copyTree}).
		onRE(`^cd /spool/(spooldb|classic) && find`, target.Output{Stdout: tree}).
		onRE(`^cd \S+ && find`, target.Output{Stdout: "messages\tf\t10\n"}).
		on("sh -s", target.Output{Stdout: "db_recover -c, db_verify: ok\n"}).
		on(`"$t" -p -h "$d" "$d/sge_job"`, target.Output{Stdout: "1\n2\n10\n2\n"}).
		on("find . -mindepth 3 -maxdepth 3", target.Output{Stdout: "./00/0000/0001\n./00/0000/0012\n./00/0001/0000\n./00/0000/bad\n"})
}

func TestSGECopySpool(t *testing.T) {
	params := "{sge_root: /opt/sge, sge_cell: prod, stamp: '" + skStamp + "', catastrophic: true, bootstrap: %q}"
	tests := []struct {
		name, boot, tree, copyTree string
		wantErr                    string
		wantExec                   []string // substrings of the Exec calls, in order
		wantData                   map[string]any
		wantUndo                   []string
	}{
		{name: "bdb", boot: skBootBDB, tree: "sge_job\tf\t100\n__db.001\tf\t8\nlog.0000000001\tf\t50\n",
			copyTree: "sge_job\tf\t100\nlog.0000000001\tf\t50\n",
			wantExec: []string{"cp -a -- /spool/qmaster /spool/qmaster.sgerun-" + skStamp + " && (cd -- /spool/qmaster.sgerun-" + skStamp + " && rm -rf -- qmaster.pid)",
				"set -e; mkdir -- /spool/spooldb.sgerun-" + skStamp, "sh -s"},
			wantData: map[string]any{"method": "berkeleydb", "qmaster_spool_dir": "/spool/qmaster.sgerun-" + skStamp,
				"spool_dir": "/spool/spooldb.sgerun-" + skStamp, "spooling_params": "/spool/spooldb.sgerun-" + skStamp, "jobs": "1 2 10"},
			wantUndo: []string{"/spool/qmaster.sgerun-" + skStamp, "/spool/spooldb.sgerun-" + skStamp}},
		{name: "classic", boot: skBootClassic, tree: "jobs\td\t4096\n",
			wantExec: []string{"cp -a -- /spool/qmaster ", "cp -a -- /spool/classic /spool/classic.sgerun-" + skStamp},
			wantData: map[string]any{"method": "classic", "spool_dir": "/spool/classic.sgerun-" + skStamp,
				"spooling_params": "/opt/sge/prod/common;/spool/classic.sgerun-" + skStamp, "jobs": "1 12 10000"},
			wantUndo: []string{"/spool/qmaster.sgerun-" + skStamp, "/spool/classic.sgerun-" + skStamp}},
		{name: "classic spool inside qmaster_spool_dir's path", boot: "qmaster_spool_dir /spool/q\nspooling_method classic\nspooling_params /c;/spool/q\n",
			wantExec: []string{"cp -a -- /spool/q /spool/q.sgerun-"},
			wantData: map[string]any{"spool_dir": "/spool/q.sgerun-" + skStamp}, wantUndo: []string{"/spool/q.sgerun-" + skStamp}},
		{name: "a copy that differs fails", boot: skBootBDB, tree: "sge_job\tf\t100\n", copyTree: "sge_job\tf\t99\n",
			wantErr:  "verify copy /spool/spooldb.sgerun-" + skStamp + ": sge_job: 99 bytes, want 100",
			wantUndo: []string{"/spool/qmaster.sgerun-" + skStamp, "/spool/spooldb.sgerun-" + skStamp}},
		{name: "rpc server", boot: skBootRPC, wantErr: "sgerun copies local spools"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := skSpoolFake(t, tc.tree, tc.copyTree)
			var prepared []*target.UndoRecord
			env := Runtime{Prepare: func(r *target.UndoRecord) error { prepared = append(prepared, r); return nil }}
			res, err := skMust(t, "sge_copy_spool", fmt.Sprintf(params, tc.boot)).Do(context.Background(), f, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			execs := f.cmds("exec")
			if len(execs) != len(tc.wantExec) && tc.wantErr == "" {
				t.Errorf("exec calls %q, want %d", execs, len(tc.wantExec))
			}
			for i, w := range tc.wantExec {
				if i >= len(execs) || !strings.Contains(execs[i], w) {
					t.Errorf("exec %d: %q, want it to contain %q", i, execs, w)
				}
			}
			for k, v := range tc.wantData {
				if res.Data[k] != v {
					t.Errorf("data %s = %v, want %v", k, res.Data[k], v)
				}
			}
			if tc.wantUndo == nil {
				if len(prepared) != 0 {
					t.Errorf("undo prepared %v for a refused copy", prepared)
				}
				return
			}
			// the undo is journaled before the first copy and removes both
			if len(prepared) != 1 || prepared[0].Kind != "sge_remove_spool_copy" || !reflect.DeepEqual(prepared[0].Params["paths"], tc.wantUndo) {
				t.Errorf("prepared %+v, want one sge_remove_spool_copy of %v", prepared, tc.wantUndo)
			}
			if res.Undo != prepared[0] {
				t.Errorf("result undo %+v, want the prepared record", res.Undo)
			}
		})
	}
}

// The recovery is catastrophic only when asked; the tools are found under
// Debian's names too.
func TestSGECopySpoolRecoverScript(t *testing.T) {
	for _, c := range []bool{true, false} {
		s := bdbRecoverScript("/opt/sge", "prod", "/spool/db.x", c)
		if got := strings.Contains(s, `"$recover" -c -h "$d"`); got != c {
			t.Errorf("catastrophic %v: script %s", c, s)
		}
		for _, w := range []string{"db5.3_", `"$verify" -q -h "$d"`, `chown -R "$(stat -c %u:%g "$d")" "$d"`, "d=/spool/db.x"} {
			if !strings.Contains(s, w) {
				t.Errorf("script lacks %q:\n%s", w, s)
			}
		}
	}
}

// Plan checks the ends and records the copies and the recovery, and
// neither verifies nor lists a copy that was not made.
func TestSGECopySpoolPlan(t *testing.T) {
	f := newFake(t, "s").
		on("test -d ", target.Output{}).
		on("test -e ", target.Output{ExitCode: 1}).
		on("cp -a -- ", target.Output{}).
		on("set -e; mkdir -- ", target.Output{}).
		on("sh -s", target.Output{})
	spec := skMust(t, "sge_copy_spool", fmt.Sprintf("{sge_root: /opt/sge, sge_cell: prod, stamp: '1', tag: orig, bootstrap: %q}", skBootBDB))
	res, err := spec.(Planner).Plan(context.Background(), f, Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	if f.ran("find") || f.ran("db_dump") {
		t.Errorf("plan listed a copy: %q", f.cmds("query"))
	}
	if len(f.cmds("exec")) != 3 || res.Data["qmaster_spool_dir"] != "/spool/qmaster.orig-1" {
		t.Errorf("plan: exec %q, data %v", f.cmds("exec"), res.Data)
	}
}

func TestSGECopySpoolNeverOverwrites(t *testing.T) {
	f := newFake(t, "s").on("test -d ", target.Output{}).on("test -e ", target.Output{})
	_, err := skMust(t, "sge_copy_spool", fmt.Sprintf("{sge_root: /r, sge_cell: c, stamp: '1', bootstrap: %q}", skBootBDB)).Do(context.Background(), f, Runtime{})
	if err == nil || !strings.Contains(err.Error(), "already exists") || len(f.cmds("exec")) != 0 {
		t.Fatalf("err %v, exec %q; want a refusal before any copy", err, f.cmds("exec"))
	}
}

func TestStampedPath(t *testing.T) {
	for _, tc := range [][4]string{
		{"/spool/qmaster", "", "1", "/spool/qmaster.sgerun-1"},
		{"/spool/qmaster.sgerun-0/", "", "1", "/spool/qmaster.sgerun-1"},
		{"/spool/qmaster.sgerun-0", "orig", "1", "/spool/qmaster.orig-1"},
		{"/a.sgerun-0/b", "", "1", "/a.sgerun-0/b.sgerun-1"},
	} {
		if got := stampedPath(tc[0], tc[1], tc[2]); got != tc[3] {
			t.Errorf("stampedPath(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[3])
		}
	}
}

func TestSGERemoveSpoolCopy(t *testing.T) {
	f := newFake(t, "s").on("rm -rf -- /spool/q.sgerun-1 /spool/db.sgerun-1", target.Output{})
	if _, err := skMust(t, "sge_remove_spool_copy", "{paths: [/spool/q.sgerun-1, /spool/db.sgerun-1]}").Do(context.Background(), f, Runtime{}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"{paths: []}", "{paths: [/spool]}", "{paths: [spool/x/y]}"} {
		if _, err := skSpec(t, "sge_remove_spool_copy", bad); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// An unfenced master may still write its database: with live, sizes may
// differ, the file list may not; a recovery that fails fails the copy.
func TestSGECopySpoolLiveAndRecovery(t *testing.T) {
	params := fmt.Sprintf("{sge_root: /r, sge_cell: c, stamp: '1', live: %%v, bootstrap: %q}", skBootBDB)
	for _, live := range []bool{true, false} {
		f := skSpoolFake(t, "sge_job\tf\t100\n", "sge_job\tf\t99\n")
		_, err := skMust(t, "sge_copy_spool", fmt.Sprintf(params, live)).Do(context.Background(), f, Runtime{})
		if live && err != nil {
			t.Errorf("live: %v, want sizes ignored", err)
		}
		if !live && err == nil {
			t.Errorf("not live: a size difference passed")
		}
	}
	f := newFake(t, "s").
		on("test -d ", target.Output{}).
		on("test -e ", target.Output{ExitCode: 1}).
		on("cp -a -- ", target.Output{}).
		on("set -e; mkdir -- ", target.Output{}).
		on("find", target.Output{Stdout: "sge_job\tf\t1\n"}).
		on("sh -s", target.Output{ExitCode: 1, Stderr: "db_verify: sge_job: DB_VERIFY_BAD"})
	_, err := skMust(t, "sge_copy_spool", fmt.Sprintf(params, false)).Do(context.Background(), f, Runtime{})
	if err == nil || !strings.Contains(err.Error(), "recover and verify the BDB copy /spool/spooldb.sgerun-1: exit status 1: db_verify: sge_job: DB_VERIFY_BAD") {
		t.Fatalf("err %v, want the failed verification", err)
	}
	if f.ran("db_dump") {
		t.Error("listed the jobs of a copy that failed its verification")
	}
}
