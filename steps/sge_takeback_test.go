package steps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

// The kinds of the takeback playbook: the clean shutdown of the shadow's
// qmaster, the job lists, and the autostart the fence turned off.

const shutdownParams = "{sge_root: /opt/sge, sge_cell: prod, rc: /etc/init.d/sgemaster.p, interval: 10ms, deadline: 200ms}"

// procs answers the process lookup with each reply in turn, then the last.
func procs(replies ...target.Output) func(*fakeTarget, string) target.Output {
	i := 0
	return func(_ *fakeTarget, _ string) target.Output {
		out := replies[min(i, len(replies)-1)]
		i++
		return out
	}
}

var (
	stillRuns = target.Output{ExitCode: 1, Stdout: "sge_qmaster still runs on s, pid 42\n"}
	noneRuns  = target.Output{Stdout: "no sge_qmaster process on s (pgrep -x sge_qmaster, /proc/PID/comm)\n"}
)

func TestSGEShutdownQmaster(t *testing.T) {
	tests := []struct {
		name    string
		km      target.Output
		lookups []target.Output
		wantErr string
		polls   int // process lookups wanted; -1: any number
	}{
		{name: "gone after two lookups", lookups: []target.Output{stillRuns, stillRuns, noneRuns}, polls: 3},
		{name: "still running at the deadline", lookups: []target.Output{stillRuns}, wantErr: "sge_qmaster still runs on s, pid 42 (after", polls: -1},
		{name: "qconf -km refused", km: target.Output{ExitCode: 1, Stderr: "denied: host \"s\" is no admin host"},
			wantErr: "qconf -km: exit status 1: denied", polls: 0},
		{name: "no process lookup on the host", lookups: []target.Output{{ExitCode: 2, Stderr: "pgrep not found on s"}},
			wantErr: "cannot look up processes on s: pgrep not found", polls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "s").on("qconf -km", tc.km)
			if tc.lookups != nil {
				f.onDo("pgrep -x sge_qmaster); rc=$?", procs(tc.lookups...))
			}
			j := &journal{f: f}
			res, err := skMust(t, "sge_shutdown_qmaster", shutdownParams).Do(context.Background(), f, Runtime{Prepare: j.prepare})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			execs := f.cmds("exec")
			if len(execs) != 1 || !strings.HasSuffix(execs[0], "qconf -km") || !strings.Contains(execs[0], "SGE_CELL=prod") {
				t.Errorf("execs %q, want one qconf -km in the cell's environment", execs)
			}
			if len(j.records) != 1 || j.at[0] != 0 || res.Undo != j.records[0] {
				t.Fatalf("undo %v journaled at %v: want one, before qconf -km, also in the result", j.records, j.at)
			}
			u := j.records[0]
			if u.Kind != "sge_start_qmaster" || u.Params["if_none"] != true || u.Params["rc"] != "/etc/init.d/sgemaster.p" {
				t.Errorf("undo %+v: want sge_start_qmaster if_none with the rc script", u)
			}
			if len(f.cmds("query")) != tc.polls && tc.polls >= 0 {
				t.Errorf("%d process lookups, want %d", len(f.cmds("query")), tc.polls)
			}
			if tc.wantErr == "" && !strings.Contains(res.Stdout, "no sge_qmaster process on s") {
				t.Errorf("stdout %q lacks the lookup's proof", res.Stdout)
			}
		})
	}
}

// The dry run sends qconf -km to the recording target and does not wait
// for a qmaster that keeps running.
func TestSGEShutdownQmasterPlan(t *testing.T) {
	f := newFake(t, "s").on("qconf -km", target.Output{})
	res, err := skMust(t, "sge_shutdown_qmaster", shutdownParams).(Planner).Plan(context.Background(), f, Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.cmds("query")) != 0 || !strings.Contains(res.Stdout, "then wait until no sge_qmaster process runs on s") {
		t.Errorf("plan looked up processes %q or does not say it would wait: %q", f.cmds("query"), res.Stdout)
	}
}

// The shutdown's undo starts a qmaster only where none runs, and then
// journals the undo of that start; where one runs it starts nothing and
// journals nothing, so that a rollback never stops a qmaster it did not
// start.
func TestSGEStartQmasterIfNone(t *testing.T) {
	const params = "{sge_root: /opt/sge, sge_cell: prod, if_none: true}"
	f := newFake(t, "s").on("pgrep -x sge_qmaster); rc=$?", noneRuns).on("sh -s", target.Output{})
	j := &journal{f: f}
	if _, err := skMust(t, "sge_start_qmaster", params).Do(context.Background(), f, Runtime{Prepare: j.prepare}); err != nil {
		t.Fatal(err)
	}
	execs := f.calls[1:]
	if len(execs) != 1 || len(j.records) != 1 || j.records[0].Kind != "sge_stop_qmaster" {
		t.Fatalf("calls %v, undo %v: want one start with its undo journaled", f.calls, j.records)
	}
	script := string(execs[0].stdin)
	guard := strings.Index(script, "if pgrep -x sge_qmaster >/dev/null; then")
	if guard < 0 || guard > strings.Index(script, `"$rc" -qmaster start`) {
		t.Errorf("if_none start script does not check again for a running qmaster first:\n%s", script)
	}

	f = newFake(t, "s").on("pgrep -x sge_qmaster); rc=$?", stillRuns)
	j = &journal{f: f}
	res, err := skMust(t, "sge_start_qmaster", params).Do(context.Background(), f, Runtime{Prepare: j.prepare})
	if err != nil || len(f.cmds("exec")) != 0 || len(j.records) != 0 || res.Undo != nil || res.Changed {
		t.Errorf("a qmaster runs: err %v, execs %v, undo %v/%v, changed %v; want nothing started or journaled", err, f.cmds("exec"), j.records, res.Undo, res.Changed)
	}
	if !strings.Contains(res.Stdout, "still runs on s, pid 42: none started") {
		t.Errorf("stdout %q", res.Stdout)
	}

	f = newFake(t, "s").on("sh -s", target.Output{})
	skMust(t, "sge_start_qmaster", "{sge_root: /opt/sge, sge_cell: prod}").Do(context.Background(), f, Runtime{})
	if len(f.calls) != 1 || strings.Contains(string(f.calls[0].stdin), "pgrep") {
		t.Errorf("a plain start looks for a running qmaster: %v", f.calls)
	}
}

func TestSGEListJobs(t *testing.T) {
	qstat := "job-ID prior name user state submit/start at queue slots\n-----\n" +
		"12 0.5 a u r 12/01/2026 00:59:00 all.q@e1 1\n 3 0.5 b u qw 12/01/2026 00:59:00 1\n12 0.5 a u r 12/01/2026 00:59:00 all.q@e2 1\n"
	f := newFake(t, "s").on("qstat -u '*'", target.Output{Stdout: qstat})
	res, err := skMust(t, "sge_list_jobs", "{sge_root: /opt/sge, sge_cell: prod}").Do(context.Background(), f, Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "3 12" || strings.Join(res.Data["jobs"].([]string), ",") != "3,12" {
		t.Errorf("jobs %q %v, want 3 12 once each in numeric order", res.Stdout, res.Data["jobs"])
	}
	f = newFake(t, "s").on("qstat -u '*'", target.Output{ExitCode: 1, Stderr: "error: unable to contact qmaster"})
	if _, err := skMust(t, "sge_list_jobs", "{sge_root: /opt/sge, sge_cell: prod}").Do(context.Background(), f, Runtime{}); err == nil ||
		!strings.Contains(err.Error(), "unable to contact qmaster") {
		t.Errorf("a failed qstat: %v, want its error (an empty list would check no job)", err)
	}
}

func TestSGEJobsAccounted(t *testing.T) {
	f := newFake(t, "s").onRE(`^\[ -r /opt/sge/prod/common/accounting \] \|\| exit 0; awk -F: -v ids=' 1 2 7 ' `,
		target.Output{Stdout: "7\n1\n7\n"})
	res, err := skMust(t, "sge_jobs_accounted", "{sge_root: /opt/sge, sge_cell: prod, jobs: '2 1 7 1'}").Do(context.Background(), f, Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "1 7" {
		t.Errorf("accounted %q, want 1 7", res.Stdout)
	}
	// No jobs: nothing to look up.
	f = newFake(t, "s")
	if res, err := skMust(t, "sge_jobs_accounted", "{sge_root: /opt/sge, sge_cell: prod, jobs: ''}").Do(context.Background(), f, Runtime{}); err != nil || res.Stdout != "" {
		t.Errorf("no jobs: %q %v", res.Stdout, err)
	}
	f = newFake(t, "s").on("awk", target.Output{ExitCode: 2, Stderr: "awk: cannot open"})
	if _, err := skMust(t, "sge_jobs_accounted", "{sge_root: /opt/sge, sge_cell: prod, jobs: '1'}").Do(context.Background(), f, Runtime{}); err == nil {
		t.Errorf("an unreadable accounting file is not an error")
	}
}

func TestSGERestoreAutostart(t *testing.T) {
	const path = "/var/lib/sgerun/fenced-autostart"
	tests := []struct {
		name, record, script string
		enable               target.Output
		wantOn, wantWarn     string
		wantNoScript, keep   bool // keep: the record stays whatever happens
	}{
		{name: "no record", wantNoScript: true},
		{name: "a unit and a link", record: "systemd sgemaster.p6444.service\nsysv gridengine-master\n",
			enable: target.Output{Stdout: "autostart enabled: sgemaster.p6444.service\nautostart enabled: gridengine-master\n"},
			script: "systemctl enable sgemaster.p6444.service >/dev/null; then",
			wantOn: "sgemaster.p6444.service,gridengine-master"},
		{name: "chkconfig", record: "chkconfig sgemaster.p\n", enable: target.Output{Stdout: "autostart enabled: sgemaster.p\n"},
			script: "chkconfig sgemaster.p on; then", wantOn: "sgemaster.p"},
		{name: "one fails: a warning, the record kept", record: "sysv gridengine-master\n",
			enable: target.Output{Stdout: WarningPrefix + "autostart gridengine-master could not be turned on again on m; " + path + " keeps it\n"},
			script: "update-rc.d -f gridengine-master enable", wantWarn: "could not be turned on again"},
		{name: "a line sgerun did not write is named and not run", record: "sysv gridengine-master\nrm -rf /\nsystemd --now\n",
			enable: target.Output{Stdout: "autostart enabled: gridengine-master\n"}, script: "update-rc.d -f gridengine-master enable",
			wantOn: "gridengine-master", wantWarn: `line "rm -rf /" is not an autostart sgerun recorded`, keep: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "m").on("SGERUN_STATE_DIR", target.Output{Stdout: path + "\n" + tc.record}).on("sh -s", tc.enable)
			res, err := skMust(t, "sge_restore_autostart", "{}").Do(context.Background(), f, Runtime{})
			if err != nil {
				t.Fatal(err)
			}
			execs := f.calls[1:]
			if tc.wantNoScript {
				if len(execs) != 0 || !strings.Contains(res.Stdout, "nothing to turn on") {
					t.Errorf("without a record: ran %v, said %q", execs, res.Stdout)
				}
				return
			}
			if len(execs) != 1 {
				t.Fatalf("calls %v, want one enable script", f.calls)
			}
			script := string(execs[0].stdin)
			if !strings.Contains(script, tc.script) || strings.Contains(script, "rm -rf /\n") || strings.Contains(script, "--now") {
				t.Errorf("script lacks %q or runs a line sgerun did not write:\n%s", tc.script, script)
			}
			// The record goes only when every autostart came back, and
			// never while it holds a line sgerun did not write.
			if removes := strings.Contains(script, `[ -n "$fail" ] || rm -f -- `+path); removes == tc.keep {
				t.Errorf("script removes the record: %v, want %v:\n%s", removes, !tc.keep, script)
			}
			if got := strings.Join(res.Data["enabled"].([]string), ","); got != tc.wantOn {
				t.Errorf("enabled %q, want %q", got, tc.wantOn)
			}
			if !strings.Contains(res.Warning, tc.wantWarn) || tc.wantWarn == "" && res.Warning != "" {
				t.Errorf("warning %q, want %q", res.Warning, tc.wantWarn)
			}
		})
	}
}

// The fence turns off only an autostart that is on, and records each one
// it turned off before it says so.
func TestAutostartOffScript(t *testing.T) {
	s := autostartOffScript()
	for _, want := range []string{
		`rec="${SGERUN_STATE_DIR:-/var/lib/sgerun}/fenced-autostart"`,
		`sc is-enabled --quiet "$u" 2>/dev/null || continue`,
		`sc disable "$u" >/dev/null 2>&1 && off systemd "$u"`,
		`timeout 5 systemctl "$@"`,
		`ls /etc/rc[2-5].d/S[0-9][0-9]"$n" >/dev/null 2>&1 || continue`,
		`update-rc.d -f "$n" disable >/dev/null 2>&1 && off sysv "$n"`,
		`chkconfig "$n" off && off chkconfig "$n"`,
		`mv -f "$rec.tmp.$$" "$rec"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("autostart script lacks %q", want)
		}
	}
	if !strings.Contains(fenceScript("/spool/qmaster/qmaster.pid"), s) {
		t.Errorf("the fence script does not turn the autostart off with autostartOffScript")
	}
}

// The recorder run by a real sh: each autostart once in the record, the
// state directory private, no temp file left; a record it cannot write is
// a warning, and the fence goes on.
func TestAutostartRecorderRuns(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	run := func(stateDir string) string {
		cmd := exec.Command("sh", "-c", autostartRecorder()+"\noff systemd sgemaster.p.service\noff sysv gridengine-master\noff systemd sgemaster.p.service\necho done")
		cmd.Env = append(os.Environ(), "SGERUN_STATE_DIR="+stateDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("recorder: %v\n%s", err, out)
		}
		return string(out)
	}
	dir := filepath.Join(t.TempDir(), "state")
	out := run(dir)
	if strings.Count(out, "autostart disabled: ") != 3 || !strings.HasSuffix(out, "done\n") || strings.Contains(out, "sgerun-warning") {
		t.Errorf("recorder said %q", out)
	}
	rec, err := os.ReadFile(filepath.Join(dir, "fenced-autostart"))
	if err != nil || string(rec) != "systemd sgemaster.p.service\nsysv gridengine-master\n" {
		t.Errorf("record %q (%v), want each autostart once", rec, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir %v %v, want 0700", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp.*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
	entries, bad := parseAutostartRecord(rec)
	if len(entries) != 2 || len(bad) != 0 {
		t.Errorf("the takeback reads the record as %v, bad %v", entries, bad)
	}

	// A state dir that cannot be made (its parent is a file).
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	out = run(filepath.Join(file, "state"))
	if !strings.Contains(out, "sgerun-warning: autostart gridengine-master turned off on") || !strings.HasSuffix(out, "done\n") {
		t.Errorf("unwritable record: %q, want a warning per autostart and the script going on", out)
	}
	if w := warnings(out); strings.Count(w, "\n") != 2 {
		t.Errorf("warnings the fence shows: %q, want 3", w)
	}
}
