package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
)

// TestClassicSpooling: a cell laid out differently from the other labs. It
// spools in flat files (bootstrap spooling_method classic, spooling_params
// "<common dir>;<spool dir>") instead of Berkeley DB. With jobs running and
// the master cut off, takeover copies the spool dir, counts the jobs in the
// copy, keeps the common dir in spooling_params, and the jobs end well on
// the new master. takeback --restore-spool then puts the master back on a
// fresh copy at the original location.
func TestClassicSpooling(t *testing.T) {
	parallelLab(t)
	l := upLabWith(t, lab.Config{ExecHosts: 2, Spooling: lab.SpoolingClassic})
	inv := l.InventoryPath()
	if b := bootstrap(t, l); b["spooling_method"] != "classic" || b["spooling_params"] != l.CommonDir()+";"+l.QmasterSpoolDir() {
		t.Fatalf("lab bootstrap is not classic spooling: %v", b)
	}
	jobs := submitJobs(t, l, l.ExecHosts()[0], 4, 60*time.Second)
	waitRunning(t, l, l.Master(), jobs, 2*time.Minute)
	before := toJobIDs(t, l, l.Master())

	partition(t, l, l.Master(), lab.NetSched)
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeover of a classic-spooling cell")

	boot := bootstrap(t, l)
	copyDir := boot["qmaster_spool_dir"]
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(l.QmasterSpoolDir()) + `\.sgerun-\d{14}$`).MatchString(copyDir) {
		t.Fatalf("bootstrap qmaster_spool_dir %q, want %s.sgerun-<stamp>", copyDir, l.QmasterSpoolDir())
	}
	if want := l.CommonDir() + ";" + copyDir; boot["spooling_params"] != want || boot["spooling_method"] != "classic" {
		t.Errorf("bootstrap spooling %s %q, want classic %q", boot["spooling_method"], boot["spooling_params"], want)
	}
	if a := actQmaster(t, l); a != l.Shadow() {
		t.Errorf("act_qmaster %q, want %s", a, l.Shadow())
	}
	// The run listed the copy's jobs (every job known before) and did not
	// take the Berkeley DB path.
	run := toLastRun(t, l, sgerunState(l))
	listed := classicStep(t, l, run.RunID, "copy the spool")
	if listed.Type != journal.StepEnd || listed.Status != journal.StatusOK {
		t.Errorf("spool copy: %s %s, want a step_end ok", listed.Type, listed.Status)
	}
	got := map[string]bool{}
	reg, _ := listed.Registered["copy"].(map[string]any)
	data, _ := reg["data"].(map[string]any)
	for _, f := range strings.Fields(fmt.Sprint(data["jobs"])) {
		got[f] = true
	}
	for id := range before {
		if !got[strconv.Itoa(id)] {
			t.Errorf("job %d, known before the takeover, is not in the copy's list %v", id, got)
		}
	}
	if data["method"] != "classic" || strings.Contains(fmt.Sprint(reg["stdout"]), "db_recover") {
		t.Errorf("the spool copy took the Berkeley DB path on a classic spool: method %v, output %q", data["method"], reg["stdout"])
	}
	if ev := classicStep(t, l, run.RunID, "verify no job was lost"); ev.Status != journal.StatusOK {
		t.Errorf("job-loss verification: %s", ev.Status)
	}
	waitQping(t, l, l.ExecHosts()[1], l.Shadow(), 30*time.Second)
	checkJobsExitZero(t, l, l.Shadow(), jobs, 3*time.Minute)

	heal(t, l, l.Master())
	r = runSgerun(t, l, 5*time.Minute, "takeback", "--restore-spool", "--inventory", inv, "--yes")
	toWantCode(t, r, 0, "takeback --restore-spool of a classic-spooling cell")
	toCheckMasterBack(t, l)
	boot = bootstrap(t, l)
	restored := boot["qmaster_spool_dir"]
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(l.QmasterSpoolDir()) + `\.orig-\d{14}$`).MatchString(restored) {
		t.Errorf("bootstrap qmaster_spool_dir after takeback %q, want %s.orig-<stamp>", restored, l.QmasterSpoolDir())
	}
	if want := l.CommonDir() + ";" + restored; boot["spooling_params"] != want {
		t.Errorf("bootstrap spooling_params after takeback %q, want %q", boot["spooling_params"], want)
	}
	if _, err := os.Stat(filepath.Join(restored, "jobs")); err != nil {
		t.Errorf("restored spool has no jobs dir: %v", err)
	}
}

// classicStep returns the step_end or step_skip event of the named step of
// a run.
func classicStep(t *testing.T, l *lab.Lab, runID, step string) journal.Event {
	t.Helper()
	_, events, err := journal.Read(runDir(l, runID))
	if err != nil {
		t.Fatalf("journal of run %s: %v", runID, err)
	}
	for _, ev := range events {
		if ev.StepName == step && (ev.Type == journal.StepEnd || ev.Type == journal.StepSkip) {
			return ev
		}
	}
	t.Fatalf("run %s has no step %q", runID, step)
	return journal.Event{}
}
