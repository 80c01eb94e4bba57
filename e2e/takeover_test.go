package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/status"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/ui"
)

// TestTakeover runs the acceptance scenarios of issue 4 against real SGE
// daemons. They share one lab because they chain the way a real incident
// does, and a lab per scenario would cost minutes each:
//
//	R3   the shadow is the one cut off: refused, nothing changed
//	R12  dry run with the master cut off: probes run, every change shown, nothing changed
//	R1   running jobs, master cut off, takeover (R4: three runs started at once, one proceeds)
//	R2   the old master is fenced; after heal no two qmasters ever answer
//	R11  a takeover while the shadow already serves is a no-op
//	TB   takeback returns the role, running jobs survive
//	R11  a new takeover inside the anti-flap window is refused; --force passes and is journaled
//	TB   takeback --restore-spool points bootstrap next to the original spool
//	R2b  no fence path: --yes refuses, nothing changed; --yes --unfenced goes on and records a pending fence;
//	     status/check report it; sgerun fence resolves it
//
// Each scenario is a subtest; when one fails the later ones are skipped,
// since they start from the state it should have left. For the same reason
// run the test whole: a -run pattern that selects single subtests skips the
// scenarios that set up their state.
func TestTakeover(t *testing.T) {
	parallelLab(t)
	l := upLab(t, 3)
	c := &toChain{l: l, inv: l.InventoryPath()}
	// As at a site: the master boots its qmaster, the shadow does not.
	if m, s := qmasterAutostart(t, l, l.Master()), qmasterAutostart(t, l, l.Shadow()); m != "enabled" || s != "disabled" {
		t.Fatalf("lab qmaster autostart: master %s, shadow %s; want enabled, disabled", m, s)
	}
	// Wait for a fresh qmaster's first write of jobseqnum and arseqnum, so
	// that it cannot show up as a change in R3's or R12's tree comparison.
	waitSeqnums(t, l)
	scenarios := []struct {
		name string
		fn   func(*testing.T, *toChain)
	}{
		{"R3_shadow_cut_off_refused", toR3},
		{"R12_dry_run", toR12},
		{"R1_R4_takeover_with_running_jobs", toR1R4},
		{"R2_old_master_fenced_no_split_brain", toR2},
		{"R11_idempotent_when_shadow_serves", toR11Idempotent},
		{"takeback", toTakeback},
		{"R11_antiflap_and_force", toR11Antiflap},
		{"takeback_restore_spool", toTakebackRestore},
		{"R2_pending_fence_without_fence_path", toR2PendingFence},
	}
	var timings []string
	for _, s := range scenarios {
		start := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.fn(t, c) })
		timings = append(timings, fmt.Sprintf("%-40s %s", s.name, time.Since(start).Round(100*time.Millisecond)))
		if !ok {
			t.Logf("timings:\n%s", strings.Join(timings, "\n"))
			t.Fatalf("%s failed; the later scenarios build on its outcome and are not run", s.name)
		}
	}
	t.Logf("timings:\n%s", strings.Join(timings, "\n"))
}

// toChain is what the chained scenarios hand on to each other.
type toChain struct {
	l   *lab.Lab
	inv string
	// r1Jobs ran across the R1 takeover; r1End is when that takeover
	// returned, r1Winner the state dir of the run that proceeded.
	r1Jobs       []Job
	r1End        time.Time
	r1Winner     string
	r1Boot       map[string]string
	masterQmPIDs []int // qmaster on the master before R1's partition
}

// ---------------------------------------------------------------- R3

// toR3: the shadow is isolated (both networks). A takeover must refuse
// (exit 3), say why, and leave common/ and the spool untouched.
func toR3(t *testing.T, c *toChain) {
	l := c.l
	before := spoolTree(t, l)
	partition(t, l, l.Shadow(), lab.NetAll)
	r := runSgerun(t, l, 3*time.Minute, "takeover", "--inventory", c.inv, "--yes")
	heal(t, l, l.Shadow())
	after := spoolTree(t, l)

	toWantCode(t, r, 3, "takeover with the shadow cut off")
	if out := r.Stdout + r.Stderr; !regexp.MustCompile(`shadow \S+ (is the one cut off|cannot be reached)`).MatchString(out) {
		t.Errorf("takeover output does not say the shadow is cut off:\n%s", formatResult(r))
	}
	checkNothingChanged(t, l, "refused takeover", before, after)
	waitQping(t, l, l.ExecHosts()[0], l.Master(), time.Minute)
}

// ---------------------------------------------------------------- R12

// toR12: a dry run with the master cut off runs the gate's probes for real
// (its evidence is journaled), shows every mutating command per host and
// changes nothing.
func toR12(t *testing.T, c *toChain) {
	l := c.l
	before := spoolTree(t, l)
	partition(t, l, l.Master(), lab.NetSched)
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", c.inv, "--yes", "--dry-run")
	after := spoolTree(t, l)
	heal(t, l, l.Master())
	toWantCode(t, r, 0, "takeover --dry-run")
	checkNothingChanged(t, l, "dry run", before, after)

	run := toLastRun(t, l, sgerunState(l))
	if run.Runbook != "takeover" || !run.DryRun {
		t.Fatalf("last run %s: runbook %s dry_run %v, want the takeover dry run", run.RunID, run.Runbook, run.DryRun)
	}
	// The probes ran: each voter reached, qping of the master from each
	// failed, and a quorum said "down".
	ev := toGateEvidence(t, run.Dir, "partition gate")
	toCheckDownVotes(t, l, ev)

	// Every mutating command, per host.
	rep := toShow(t, l, sgerunState(l), run.RunID)
	shadow, master := l.Shadow(), l.Master()
	qdir, db := l.QmasterSpoolDir(), l.SpoolDB()
	want := []struct{ step, host, re string }{
		{"take the takeover lock", shadow, `\.sgerun-takeover\.lock.*ln "\$t" "\$p"`},
		// one step: qmaster_spool_dir, then the database (data files, then
		// logs: db_hotbackup's order), then its recovery and verification
		{"copy the spool", shadow, `^run: cp -a -- ` + regexp.QuoteMeta(qdir) + ` ` + regexp.QuoteMeta(qdir) + `\.sgerun-\d{14} && \(cd -- \S+ && rm -rf -- qmaster\.pid\)`},
		{"copy the spool", shadow, `(?m)^run: set -e; mkdir -- ` + regexp.QuoteMeta(db) + `\.sgerun-\d{14};[\s\S]*__db\.\*\|log\.\*\) continue[\s\S]*for f in log\.\*`},
		{"copy the spool", shadow, `db_recover[\s\S]*"\$recover" -c -h[\s\S]*"\$verify" -q`},
		{"point bootstrap at the copy", shadow, `(?m)^\s*-qmaster_spool_dir\s+` + regexp.QuoteMeta(qdir) + `$`},
		{"point bootstrap at the copy", shadow, `(?m)^\s*\+qmaster_spool_dir\s+` + regexp.QuoteMeta(qdir) + `\.sgerun-\d{14}$`},
		{"point bootstrap at the copy", shadow, `(?m)^\s*-spooling_params\s+` + regexp.QuoteMeta(db) + `$`},
		{"point bootstrap at the copy", shadow, `(?m)^\s*\+spooling_params\s+` + regexp.QuoteMeta(db) + `\.sgerun-\d{14}$`},
		{"write act_qmaster", shadow, `(?m)^\s*-` + regexp.QuoteMeta(master) + `\n\s*\+` + regexp.QuoteMeta(shadow) + `$`},
		{"start qmaster on the shadow", shadow, `sgemaster[\s\S]*-qmaster start`},
		{"fence the old master", "controller", `^\[` + regexp.QuoteMeta(master) + `\] run: [\s\S]*kill -KILL`},
		{"record the takeover for the anti-flap window", shadow, `\.sgerun-last-takeover\.json`},
		{"release the takeover lock", shadow, `rm -f -- .*\.sgerun-takeover\.lock`},
	}
	for _, h := range l.ExecHosts() {
		want = append(want, struct{ step, host, re string }{"softstop and start every execd", h, `sgeexecd[\s\S]*softstop[\s\S]*"\$rc" start`})
	}
	for _, w := range want {
		s, ok := toStep(rep, w.step)
		if !ok {
			t.Errorf("dry run: no step %q", w.step)
			continue
		}
		if s.Status != "planned" {
			t.Errorf("dry run: step %q is %s, want planned", w.step, s.Status)
		}
		plan := strings.Join(s.Plan[w.host], "\n")
		if !regexp.MustCompile(w.re).MatchString(plan) {
			t.Errorf("dry run: step %q on %s does not show %s; plan:\n%s", w.step, w.host, w.re, plan)
		}
	}
	if s, ok := toStep(rep, "softstop and start every execd"); ok && len(s.Plan) != len(l.ExecHosts()) {
		t.Errorf("dry run: execd softstop planned on %d host(s), want %d: %v", len(s.Plan), len(l.ExecHosts()), sortedKeys(s.Plan))
	}
	// The text output shows the same, the fence with the master's name.
	for _, frag := range []string{"cp -a -- " + qdir + " ", "mkdir -- " + db + ".sgerun-", "[" + master + "] run: pidfile=", "softstop", "+" + shadow} {
		if !strings.Contains(r.Stdout, frag) {
			t.Errorf("dry run output lacks %q", frag)
		}
	}
	waitQping(t, l, l.ExecHosts()[0], l.Master(), time.Minute)
}

// ---------------------------------------------------------------- R1 + R4

// toR1R4: four jobs run; the master's scheduler network is cut; three
// takeovers start at once, two from the same controller state (the local
// run lock) and one from a second controller (the lock file on the shared
// spool). Exactly one proceeds. Then bootstrap names the new copies, the
// BDB copy verifies, and every job is still known or accounted.
func toR1R4(t *testing.T, c *toChain) {
	l := c.l
	c.r1Jobs = submitJobs(t, l, l.ExecHosts()[0], 4, 90*time.Second)
	waitRunning(t, l, l.Master(), c.r1Jobs, 2*time.Minute)
	before := toJobIDs(t, l, l.Master())
	for _, j := range c.r1Jobs {
		if !before[j.ID] {
			t.Fatalf("job %d not in qstat before the partition: %v", j.ID, toSorted(before))
		}
	}
	c.masterQmPIDs = qmasterPIDs(t, l, l.Master())
	if len(c.masterQmPIDs) == 0 {
		t.Fatalf("no qmaster on %s before the partition", l.Master())
	}
	partition(t, l, l.Master(), lab.NetSched)

	second := filepath.Join(l.StateDir(), "sgerun-state-ctl2")
	dirs := []string{sgerunState(l), sgerunState(l), second}
	results := make([]Result, len(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			results[i], errs[i] = runSgerunAt(l, d, 5*time.Minute, "takeover", "--inventory", c.inv, "--yes")
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	c.r1End = time.Now()
	t.Logf("three concurrent takeovers took %s", c.r1End.Sub(start).Round(100*time.Millisecond))
	winners := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("takeover %d: %v", i, errs[i])
		}
		switch r.Code {
		case 0:
			winners++
			c.r1Winner = dirs[i]
		case 3:
			// Same state dir: the controller's run lock ("another run
			// holds ..."); the second controller: the lock file on the
			// shared spool ("lock ... is held" / "taken meanwhile").
			out := r.Stdout + r.Stderr
			m := regexp.MustCompile(`another run holds|locked|lock \S+ on \S+ is held|could not take lock \S+ .*taken meanwhile`).FindString(out)
			if m == "" {
				t.Errorf("takeover %d exited 3 without saying another run holds the lock:\n%s", i, formatResult(r))
			}
			t.Logf("takeover %d (state %s) refused: %q", i, dirs[i], m)
		default:
			t.Errorf("takeover %d: exit %d, want 0 or 3\n%s", i, r.Code, formatResult(r))
		}
	}
	for i, r := range results {
		if r.Code == 0 {
			t.Logf("the takeover that proceeded (state %s):\n%s", dirs[i], toSummary(r.Stdout))
		}
	}
	finished := markersDone(c.r1Jobs)
	t.Logf("%d of %d jobs had finished when the takeover returned", finished, len(c.r1Jobs))
	if winners != 1 {
		for i, r := range results {
			t.Logf("takeover %d (state %s): exit %d\n%s", i, dirs[i], r.Code, formatResult(r))
		}
		t.Fatalf("%d takeovers proceeded, want exactly 1", winners)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(l.QmasterSpoolDir()), takeoverLockName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("takeover lock file left behind: %v", err)
	}

	// bootstrap names the new .sgerun-<stamp> copies.
	boot := bootstrap(t, l)
	c.r1Boot = boot
	qd, sp := boot["qmaster_spool_dir"], boot["spooling_params"]
	m := regexp.MustCompile(`^` + regexp.QuoteMeta(l.QmasterSpoolDir()) + `\.sgerun-(\d{14})$`).FindStringSubmatch(qd)
	if m == nil {
		t.Fatalf("bootstrap qmaster_spool_dir %q, want %s.sgerun-<stamp>", qd, l.QmasterSpoolDir())
	}
	if want := l.SpoolDB() + ".sgerun-" + m[1]; sp != want {
		t.Errorf("bootstrap spooling_params %q, want %q", sp, want)
	}
	if a := actQmaster(t, l); a != l.Shadow() {
		t.Errorf("act_qmaster %q, want %s", a, l.Shadow())
	}
	waitQping(t, l, l.ExecHosts()[1], l.Shadow(), 30*time.Second)

	// The BDB copy verifies, checked here independently of sgerun's own
	// db_verify step.
	toDBVerify(t, l, l.Shadow(), boot["admin_user"], sp)

	// No job lost: every job known before is queued/running on the new
	// master or accounted. A job that ends right now leaves qstat a moment
	// before its accounting record is written, so poll; a lost job never
	// shows up in either.
	var after map[int]bool
	waitUntil(t, time.Minute, 2*time.Second, "every job known before the takeover to be known or accounted", func() (bool, error) {
		after = toJobIDs(t, l, l.Shadow())
		for id := range toAccounted(t, l) {
			after[id] = true
		}
		var lost []int
		for id := range before {
			if !after[id] {
				lost = append(lost, id)
			}
		}
		sort.Ints(lost)
		if len(lost) > 0 {
			return false, fmt.Errorf("jobs neither known to the new master nor accounted: %v (before %v, after %v)", lost, toSorted(before), toSorted(after))
		}
		return true, nil
	})
	if len(after) != len(before) {
		t.Errorf("job count after the takeover %d (%v), before %d (%v)", len(after), toSorted(after), len(before), toSorted(before))
	}
	// The jobs' exit status is checked at the end of R2, once they end.
}

// ---------------------------------------------------------------- R2

// toR2: the old master comes back on the network. Its qmaster must be gone
// (fenced during the takeover, well within 30 s of its end), and in 30 s
// of sampling never do two qmasters answer. Then R1's jobs end with exit
// status 0.
func toR2(t *testing.T, c *toChain) {
	l := c.l
	heal(t, l, l.Master())
	if pids := qmasterPIDs(t, l, l.Master()); len(pids) > 0 {
		t.Errorf("qmaster %v still runs on the old master %s (it ran as %v before)", pids, l.Master(), c.masterQmPIDs)
	}
	if d := time.Since(c.r1End); d > 30*time.Second {
		t.Errorf("fence checked %s after the takeover ended, want within 30s", d)
	}
	run := toLastRun(t, l, c.r1Winner)
	if run.Runbook != "takeover" || run.DryRun || run.Status != "ok" {
		t.Fatalf("winning run %s: %s dry_run=%v status=%s", run.RunID, run.Runbook, run.DryRun, run.Status)
	}
	f := toStepEnd(t, run.Dir, "fence the old master")
	// The scheduler network is cut: the fence goes over the fence address.
	if f.Data["method"] != "fence_address" || !strings.Contains(fmt.Sprint(f.Data["detail"]), "fenced") {
		t.Errorf("fence step: method %v detail %v, want fence_address ... fenced", f.Data["method"], f.Data["detail"])
	}
	// Fence before promote: the old master was stopped before anything of
	// its spool was copied.
	if cp := toStepEnd(t, run.Dir, "copy the spool"); !f.Time.Before(cp.Time) || f.Seq > cp.Seq {
		t.Errorf("journal order: fence ended #%d %s, copy of the spool ended #%d %s; want the fence first", f.Seq, f.Time, cp.Seq, cp.Time)
	}
	if !f.Time.Before(c.r1End) {
		t.Errorf("fence step ended at %s, after the takeover returned (%s)", f.Time, c.r1End)
	}
	// A reboot of the old master must not bring its qmaster back.
	if a := qmasterAutostart(t, l, l.Master()); a != "disabled" {
		t.Errorf("qmaster autostart on the fenced master: %s, want disabled", a)
	}
	if a := qmasterAutostart(t, l, l.Shadow()); a != "disabled" {
		t.Errorf("qmaster autostart on the shadow: %s; the fence touched the wrong host", a)
	}
	// What it turned off is recorded there, for the takeback.
	if rec, ok := fencedAutostart(t, l, l.Master()); rec != "sysv gridengine-master\n" {
		t.Errorf("the fence's autostart record on the master: %q (exists %v), want the gridengine-master link", rec, ok)
	}
	if rec, ok := fencedAutostart(t, l, l.Shadow()); ok {
		t.Errorf("an autostart record on the shadow: %q", rec)
	}

	// 30 one-second samples of both qmasters, as a witness sees them.
	witness := l.ExecHosts()[2]
	var both, masterUp, shadowUp, n int
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); n++ {
		tick := time.Now()
		var ms, ss int
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ms = qpingStatus(l, witness, l.Master()) }()
		go func() { defer wg.Done(); ss = qpingStatus(l, witness, l.Shadow()) }()
		wg.Wait()
		if ms == 0 && ss == 0 {
			both++
		}
		if ms == 0 {
			masterUp++
		}
		if ss == 0 {
			shadowUp++
		}
		time.Sleep(time.Until(tick.Add(time.Second)))
	}
	t.Logf("%d samples: master status 0 in %d, shadow in %d, both in %d", n, masterUp, shadowUp, both)
	if both > 0 {
		t.Errorf("split brain: both qmasters answered status 0 in %d of %d samples", both, n)
	}
	if masterUp > 0 {
		t.Errorf("the fenced master's qmaster answered status 0 in %d of %d samples", masterUp, n)
	}
	if n < 15 || shadowUp < n*9/10 {
		t.Errorf("the new qmaster answered status 0 in only %d of %d samples", shadowUp, n)
	}

	// R1's jobs, which ran across the takeover, end well.
	checkJobsExitZero(t, l, l.Shadow(), c.r1Jobs, 3*time.Minute)
}

// ---------------------------------------------------------------- R11 (no-op)

// toR11Idempotent: with the shadow already serving, a takeover changes
// nothing and exits 0.
func toR11Idempotent(t *testing.T, c *toChain) {
	l := c.l
	entries := toSpoolEntries(t, l)
	r := runSgerun(t, l, 3*time.Minute, "takeover", "--inventory", c.inv, "--yes")
	toWantCode(t, r, 0, "takeover while the shadow serves")
	if !strings.Contains(r.Stdout+r.Stderr, "already") {
		t.Errorf("takeover output does not say the shadow is already the qmaster:\n%s", formatResult(r))
	}
	if b := bootstrap(t, l); b["qmaster_spool_dir"] != c.r1Boot["qmaster_spool_dir"] || b["spooling_params"] != c.r1Boot["spooling_params"] {
		t.Errorf("no-op takeover changed bootstrap: %v -> %v", c.r1Boot, b)
	}
	if a := actQmaster(t, l); a != l.Shadow() {
		t.Errorf("act_qmaster %q, want %s", a, l.Shadow())
	}
	if e := toSpoolEntries(t, l); strings.Join(e, " ") != strings.Join(entries, " ") {
		t.Errorf("no-op takeover changed the spool directory: %v -> %v", entries, e)
	}
	waitQping(t, l, l.ExecHosts()[0], l.Shadow(), 10*time.Second)
}

// ---------------------------------------------------------------- takeback

// toTakeback: jobs run; takeback returns the role to the master; the jobs
// end with exit status 0.
func toTakeback(t *testing.T, c *toChain) {
	l := c.l
	jobs := submitJobs(t, l, l.ExecHosts()[1], 4, 40*time.Second)
	waitRunning(t, l, l.Shadow(), jobs, 2*time.Minute)
	r := runSgerun(t, l, 5*time.Minute, "takeback", "--inventory", c.inv, "--yes")
	toWantCode(t, r, 0, "takeback")
	toCheckMasterBack(t, l)
	if a := qmasterAutostart(t, l, l.Master()); a != "enabled" {
		t.Errorf("qmaster autostart on the master after takeback: %s, want enabled again", a)
	}
	if rec, ok := fencedAutostart(t, l, l.Master()); ok {
		t.Errorf("the fence's autostart record is still on the master after the takeback: %q", rec)
	}
	if b := bootstrap(t, l); b["qmaster_spool_dir"] != c.r1Boot["qmaster_spool_dir"] || b["spooling_params"] != c.r1Boot["spooling_params"] {
		t.Errorf("takeback without --restore-spool changed bootstrap: %v -> %v", c.r1Boot, b)
	}
	checkJobsExitZero(t, l, l.ExecHosts()[0], jobs, 3*time.Minute)
}

// ---------------------------------------------------------------- R11 (anti-flap)

// toR11Antiflap: the master is cut off again, inside the anti-flap window
// of R1's takeover: refused (exit 3, "anti-flap"), nothing changed. With
// --force it proceeds, and the gate's journaled evidence says forced.
func toR11Antiflap(t *testing.T, c *toChain) {
	l := c.l
	bootBefore := bootstrap(t, l)
	entries := toSpoolEntries(t, l)
	partition(t, l, l.Master(), lab.NetSched)
	r := runSgerun(t, l, 3*time.Minute, "takeover", "--inventory", c.inv, "--yes")
	toWantCode(t, r, 3, "takeover inside the anti-flap window")
	if !strings.Contains(r.Stdout+r.Stderr, "anti-flap") {
		t.Errorf("refusal does not mention anti-flap:\n%s", formatResult(r))
	}
	if b := bootstrap(t, l); fmt.Sprint(b) != fmt.Sprint(bootBefore) {
		t.Errorf("refused takeover changed bootstrap: %v -> %v", bootBefore, b)
	}
	if e := toSpoolEntries(t, l); strings.Join(e, " ") != strings.Join(entries, " ") {
		t.Errorf("refused takeover changed the spool directory: %v -> %v", entries, e)
	}
	if a := actQmaster(t, l); a != l.Master() {
		t.Errorf("act_qmaster %q after a refused takeover, want %s", a, l.Master())
	}
	refused := toLastRun(t, l, sgerunState(l))
	if ev := toGateEvidence(t, refused.Dir, "partition gate"); ev["verdict"] != "antiflap" || ev["forced"] != false {
		t.Errorf("refused gate evidence: verdict %v forced %v, want antiflap/false", ev["verdict"], ev["forced"])
	}

	r = runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", c.inv, "--yes", "--force")
	toWantCode(t, r, 0, "takeover --force inside the anti-flap window")
	run := toLastRun(t, l, sgerunState(l))
	if run.RunID == refused.RunID || run.Status != "ok" {
		t.Fatalf("forced run: %+v", run)
	}
	ev := toGateEvidence(t, run.Dir, "partition gate")
	if ev["forced"] != true || ev["decision"] != "forced" {
		t.Errorf("forced gate evidence: forced %v decision %v, want true/forced", ev["forced"], ev["decision"])
	}
	if ev["antiflap_last"] == nil {
		t.Errorf("forced gate evidence lacks the anti-flap record it overrode: %v", ev)
	}
	toCheckDownVotes(t, l, ev)
	if a := actQmaster(t, l); a != l.Shadow() {
		t.Errorf("act_qmaster %q after the forced takeover, want %s", a, l.Shadow())
	}
	heal(t, l, l.Master())
	if pids := qmasterPIDs(t, l, l.Master()); len(pids) > 0 {
		t.Errorf("forced takeover did not fence the master: qmaster %v", pids)
	}
	waitQping(t, l, l.ExecHosts()[0], l.Shadow(), 30*time.Second)
}

// ---------------------------------------------------------------- takeback --restore-spool

// toTakebackRestore: takeback --restore-spool puts the spool back next to
// the original location (same parent, the original name with a suffix,
// not a .sgerun- copy), verified, with running jobs intact.
func toTakebackRestore(t *testing.T, c *toChain) {
	l := c.l
	jobs := submitJobs(t, l, l.ExecHosts()[2], 4, 30*time.Second)
	waitRunning(t, l, l.Shadow(), jobs, 2*time.Minute)
	r := runSgerun(t, l, 5*time.Minute, "takeback", "--inventory", c.inv, "--yes", "--restore-spool")
	toWantCode(t, r, 0, "takeback --restore-spool")
	toCheckMasterBack(t, l)
	// The forced takeover before fenced the master again: its autostart
	// comes back from that fence's record too.
	if a := qmasterAutostart(t, l, l.Master()); a != "enabled" {
		t.Errorf("qmaster autostart on the master after takeback --restore-spool: %s, want enabled again", a)
	}
	if rec, ok := fencedAutostart(t, l, l.Master()); ok {
		t.Errorf("the fence's autostart record is still on the master after the takeback: %q", rec)
	}
	boot := bootstrap(t, l)
	for key, orig := range map[string]string{"qmaster_spool_dir": l.QmasterSpoolDir(), "spooling_params": l.SpoolDB()} {
		got := boot[key]
		if filepath.Dir(got) != filepath.Dir(orig) || !strings.HasPrefix(filepath.Base(got), filepath.Base(orig)+".") ||
			strings.Contains(got, ".sgerun-") {
			t.Errorf("bootstrap %s %q, want a restored path next to %s (not a .sgerun- copy)", key, got, orig)
		}
		if fi, err := os.Stat(got); err != nil || !fi.IsDir() {
			t.Errorf("bootstrap %s %q: %v", key, got, err)
		}
	}
	toDBVerify(t, l, l.Master(), boot["admin_user"], boot["spooling_params"])
	checkJobsExitZero(t, l, l.ExecHosts()[0], jobs, 3*time.Minute)
}

// ---------------------------------------------------------------- R2 variant: pending fence

// toR2PendingFence: without any fence path (no fence_command, the fence
// address unreachable because the master is cut off on both networks) the
// takeover still completes, but records a pending fence that status and
// check (CRITICAL) report until sgerun fence, retried once the master is
// reachable again, stops the old qmaster.
func toR2PendingFence(t *testing.T, c *toChain) {
	l := c.l
	// R11's forced takeover is inside the anti-flap window; acknowledging
	// it is what an operator does before the next one.
	toWantCode(t, runSgerun(t, l, 2*time.Minute, "ack", "--inventory", c.inv), 0, "ack")

	inv := toInventoryWithoutFenceCommand(t, l)
	oldPIDs := qmasterPIDs(t, l, l.Master())
	if len(oldPIDs) == 0 {
		t.Fatalf("no qmaster on %s before the partition", l.Master())
	}
	partition(t, l, l.Master(), lab.NetAll)
	boot0, act0 := readFile(t, bootstrapPath(l)), actQmaster(t, l)
	left0 := strings.Join(takeoverLeftovers(l), " ")
	// No way to fence: --yes alone refuses before anything is copied.
	r := runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes")
	toWantCode(t, r, 3, "takeover --yes without a fence path")
	if !strings.Contains(r.Stdout+r.Stderr, "cannot fence the old master") {
		t.Errorf("the refusal does not say the old master cannot be fenced:\n%s", formatResult(r))
	}
	if b, a := readFile(t, bootstrapPath(l)), actQmaster(t, l); b != boot0 || a != act0 {
		t.Errorf("the refused takeover changed bootstrap or act_qmaster (act_qmaster %q, was %q)", a, act0)
	}
	if left := strings.Join(takeoverLeftovers(l), " "); left != left0 {
		t.Errorf("the refused takeover left copies or a lock: before %v, after %v", left0, left)
	}
	// --unfenced: the operator takes the risk; it goes on and says so.
	r = runSgerun(t, l, 5*time.Minute, "takeover", "--inventory", inv, "--yes", "--unfenced")
	toWantCode(t, r, 0, "takeover --yes --unfenced without a fence path")
	if !strings.Contains(r.Stdout, "UNFENCED") {
		t.Errorf("the unfenced takeover does not say so:\n%s", formatResult(r))
	}
	if a := actQmaster(t, l); a != l.Shadow() {
		t.Errorf("act_qmaster %q, want %s", a, l.Shadow())
	}
	run := toLastRun(t, l, sgerunState(l))
	if f := toStepEnd(t, run.Dir, "fence the old master"); f.Data["method"] != "unfenced" {
		t.Errorf("fence step method %v, want unfenced (detail %v)", f.Data["method"], f.Data["detail"])
	}
	if pids := qmasterPIDs(t, l, l.Master()); len(pids) == 0 {
		t.Errorf("the unfenced master's qmaster is gone already; the scenario expects it to survive the takeover")
	}

	pendingRe := regexp.MustCompile(`(?m)^pending fence\s+` + regexp.QuoteMeta(l.Master()) + ` since .*run ` + regexp.QuoteMeta(run.RunID))
	st := runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	toWantCode(t, st, 0, "status")
	if !pendingRe.MatchString(st.Stdout) {
		t.Errorf("status does not show the pending fence:\n%s", formatResult(st))
	}
	toCheckPending(t, l, inv, l.Master(), true)

	// Still cut off: the retry cannot fence and says so; the record stays.
	fr := runSgerun(t, l, 3*time.Minute, "fence", "--inventory", inv)
	if fr.Code == 0 {
		t.Errorf("sgerun fence succeeded although the master is unreachable:\n%s", formatResult(fr))
	}
	toCheckPending(t, l, inv, l.Master(), true)

	// Reachable again: the retry stops the old qmaster over the fence
	// address and clears the record.
	heal(t, l, l.Master())
	fr = runSgerun(t, l, 3*time.Minute, "fence", "--inventory", inv)
	toWantCode(t, fr, 0, "sgerun fence after heal")
	if pids := qmasterPIDs(t, l, l.Master()); len(pids) > 0 {
		t.Errorf("qmaster %v still runs on %s after sgerun fence", pids, l.Master())
	}
	toCheckPending(t, l, inv, l.Master(), false)
	st = runSgerun(t, l, 2*time.Minute, "status", "--inventory", inv)
	if !regexp.MustCompile(`(?m)^pending fence\s+none$`).MatchString(st.Stdout) {
		t.Errorf("status after sgerun fence:\n%s", formatResult(st))
	}
	waitQping(t, l, l.ExecHosts()[0], l.Shadow(), 30*time.Second)
}

// toCheckPending runs check (nagios and json) and wants a pending fence of
// master reported as CRITICAL, or not reported at all.
func toCheckPending(t *testing.T, l *lab.Lab, inv, master string, pending bool) {
	t.Helper()
	ck := runSgerun(t, l, 2*time.Minute, "check", "--inventory", inv)
	says := strings.Contains(ck.Stdout, "pending fence")
	switch {
	case pending && (ck.Code != 2 || !strings.HasPrefix(ck.Stdout, "SGERUN CRITICAL") || !says || !strings.Contains(ck.Stdout, "pending_fence=1")):
		t.Errorf("check with a pending fence: exit %d, want 2 (CRITICAL) naming the pending fence:\n%s", ck.Code, formatResult(ck))
	case !pending && (ck.Code == 2 || says || !strings.Contains(ck.Stdout, "pending_fence=0")):
		t.Errorf("check after the fence: exit %d, still reports a pending fence:\n%s", ck.Code, formatResult(ck))
	}
	js := runSgerun(t, l, 2*time.Minute, "check", "--inventory", inv, "--format", "json")
	var v status.Verdict
	if err := json.Unmarshal([]byte(js.Stdout), &v); err != nil {
		t.Errorf("check --format json: %v\n%s", err, formatResult(js))
		return
	}
	var fence *steps.PendingFence
	if v.Report != nil {
		fence = v.Report.PendingFence
	}
	switch {
	case pending && (fence == nil || fence.Master != master || v.State != 2 || js.Code != 2):
		t.Errorf("check --format json: exit %d state %d pending_fence %+v, want 2 and %s", js.Code, v.State, fence, master)
	case !pending && fence != nil:
		t.Errorf("check --format json still has pending_fence %+v", fence)
	}
}

// ---------------------------------------------------------------- helpers

// toDBVerify wants db_verify of the BDB spool sp's sge and sge_job files
// to succeed on host, run as the admin user (a root db_verify could leave
// root-owned environment files the qmaster cannot open).
func toDBVerify(t *testing.T, l *lab.Lab, host, admin, sp string) {
	t.Helper()
	for _, f := range []string{"sge", "sge_job"} {
		cmd := shell.Join("db_verify", "-h", sp, filepath.Join(sp, f))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, stderr, err := l.ExecAs(ctx, host, admin, cmd)
		cancel()
		if err != nil || !strings.Contains(out+stderr, "succeeded") {
			t.Errorf("%s on %s: %v\n%s%s", cmd, host, err, out, stderr)
		}
	}
}

// toSummary keeps the step lines of sgerun's text output.
func toSummary(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// toWantCode fails the test unless r exited with code.
func toWantCode(t *testing.T, r Result, code int, what string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: exit %d, want %d\n%s", what, r.Code, code, formatResult(r))
	}
}

// toCheckMasterBack: act_qmaster names the master, its qmaster answers,
// the shadow runs none.
func toCheckMasterBack(t *testing.T, l *lab.Lab) {
	t.Helper()
	if a := actQmaster(t, l); a != l.Master() {
		t.Errorf("act_qmaster %q after takeback, want %s", a, l.Master())
	}
	if st := qpingStatus(l, l.ExecHosts()[0], l.Master()); st != 0 {
		t.Errorf("qping of the master after takeback: status %d, want 0", st)
	}
	if pids := qmasterPIDs(t, l, l.Shadow()); len(pids) > 0 {
		t.Errorf("qmaster %v still runs on the shadow after takeback", pids)
	}
	if pids := qmasterPIDs(t, l, l.Master()); len(pids) != 1 {
		t.Errorf("qmaster processes on the master after takeback: %v, want one", pids)
	}
}

// toSpoolEntries lists the directory holding the spools (copies, locks
// and records show up there).
func toSpoolEntries(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(l.QmasterSpoolDir()))
	if err != nil {
		t.Fatalf("spool dir: %v", err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// toInventoryWithoutFenceCommand writes a copy of the lab's inventory with
// no cluster.fence_command.
func toInventoryWithoutFenceCommand(t *testing.T, l *lab.Lab) string {
	t.Helper()
	b, err := os.ReadFile(l.InventoryPath())
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "fence_command:") {
			continue
		}
		keep = append(keep, line)
	}
	text := strings.Join(keep, "\n")
	if strings.Contains(text, "fence_command") || !strings.Contains(text, "fence_address") {
		t.Fatalf("inventory copy: fence_command still there or fence_address gone:\n%s", text)
	}
	p := filepath.Join(l.StateDir(), "inventory-nofence.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatalf("inventory copy: %v", err)
	}
	return p
}

// toJobIDs lists the jobs qstat on host shows (every user).
func toJobIDs(t *testing.T, l *lab.Lab, host string) map[int]bool {
	t.Helper()
	all, err := qstatJobs(l, host, "")
	if err != nil {
		t.Fatalf("qstat on %s: %v", host, err)
	}
	jobs := map[int]bool{}
	for id := range all {
		jobs[id] = true
	}
	return jobs
}

// toAccounted lists the job numbers in the cell's accounting file.
func toAccounted(t *testing.T, l *lab.Lab) map[int]bool {
	t.Helper()
	ids := map[int]bool{}
	b, err := os.ReadFile(filepath.Join(l.CommonDir(), "accounting"))
	if errors.Is(err, os.ErrNotExist) {
		return ids
	}
	if err != nil {
		t.Fatalf("accounting: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Split(line, ":"); len(f) > 5 {
			if id, err := strconv.Atoi(f[5]); err == nil {
				ids[id] = true
			}
		}
	}
	return ids
}

// toSorted returns the keys of m, sorted.
func toSorted(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// toLastRun is the newest run in a state dir, as sgerun history shows it.
func toLastRun(t *testing.T, l *lab.Lab, stateDir string) journal.Summary {
	t.Helper()
	r, err := runSgerunAt(l, stateDir, time.Minute, "history", "--output", "json", "--limit", "1")
	if err != nil || r.Code != 0 {
		t.Fatalf("sgerun history: %v\n%s", err, formatResult(r))
	}
	var runs []journal.Summary
	if err := json.Unmarshal([]byte(r.Stdout), &runs); err != nil || len(runs) == 0 {
		t.Fatalf("sgerun history: %v\n%s", err, r.Stdout)
	}
	return runs[0]
}

// toStepEnd returns the first host_end event of the named step.
func toStepEnd(t *testing.T, runDir, step string) journal.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, "journal.jsonl"))
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		var ev journal.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("journal %s: %v: %s", runDir, err, line)
		}
		if ev.Type == "host_end" && ev.StepName == step {
			return ev
		}
	}
	t.Fatalf("journal %s: no host_end of step %q", runDir, step)
	return journal.Event{}
}

// toGateEvidence is the journaled evidence of a gate step.
func toGateEvidence(t *testing.T, runDir, step string) map[string]any {
	t.Helper()
	ev := toStepEnd(t, runDir, step)
	if ev.Data == nil {
		t.Fatalf("journal %s: step %q has no evidence", runDir, step)
	}
	return ev.Data
}

// toCheckDownVotes wants the gate's evidence to show that the shadow and
// every witness were reached, none got a qping reply from the master, and
// the votes reached the quorum.
func toCheckDownVotes(t *testing.T, l *lab.Lab, ev map[string]any) {
	t.Helper()
	voters, _ := ev["voters"].(map[string]any)
	for _, h := range append([]string{l.Shadow()}, l.ExecHosts()...) {
		v, _ := voters[h].(map[string]any)
		if v == nil || v["reachable"] != true || v["qping_status"] != float64(-1) || v["master_up"] != false {
			t.Errorf("gate evidence of voter %s: %v, want reachable, qping_status -1, master_up false", h, v)
		}
	}
	down, _ := ev["votes_down"].(float64)
	quorum, _ := ev["quorum"].(float64)
	if down != float64(len(l.ExecHosts())+1) || down < quorum || quorum < 1 {
		t.Errorf("gate evidence: votes_down %v quorum %v, want all %d voters down", ev["votes_down"], ev["quorum"], len(l.ExecHosts())+1)
	}
	if ev["verdict"] != "master_down" && ev["evidence_verdict"] != "master_down" {
		t.Errorf("gate evidence: verdict %v, want master_down", ev["verdict"])
	}
}

// toStep returns the step of r named name.
func toStep(r ui.Report, name string) (ui.StepReport, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return ui.StepReport{}, false
}

// toShow reads "sgerun show RUN --output json" of a dry run and wants it planned.
func toShow(t *testing.T, l *lab.Lab, stateDir, runID string) ui.Report {
	t.Helper()
	r, err := runSgerunAt(l, stateDir, time.Minute, "show", runID, "--output", "json")
	if err != nil || r.Code != 0 {
		t.Fatalf("sgerun show %s: %v\n%s", runID, err, formatResult(r))
	}
	var rep ui.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || len(rep.Steps) == 0 {
		t.Fatalf("sgerun show %s: %v\n%s", runID, err, r.Stdout)
	}
	if rep.Status != "planned" {
		t.Errorf("dry run status %q, want planned", rep.Status)
	}
	return rep
}
