package e2e

// Issue 3, scenarios E2 and E3: the seed document's manual takeover
// (testdata/seed-takeover.yaml: copy the qmaster spool and the BDB spool to
// stamped paths, point bootstrap at the copies, write act_qmaster, start
// qmaster on the shadow with the instantiated sgemaster script, softstop and
// start every execd), driven through "sgerun run" against a real-SGE lab
// whose master lost its scheduler network. It has no gate, no lock and no
// fence, on purpose: it is the seed's procedure, not the takeover playbook.
//
// E2 runs it for real; E3 dry-runs it and checks that nothing changes and
// that the printed plan names every mutating command on every host.
//
// What E2 sees after the old master's network comes back (seen on this
// machine, 3 exec hosts, 4 jobs of 60 s, heal right after the run while the
// jobs still run):
//
//   - The old sge_qmaster was never fenced. It keeps running with the same
//     pid, and "qping -info <master> 6444 qmaster 1" from an exec host
//     answers "status: 0" within 0.2 s of the heal, as does the new qmaster
//     on the shadow: two qmasters answer at once (a split brain), each on
//     its own spool copy. Both answered in every ~6 s sample for the 30 to
//     41 s until the jobs were done. act_qmaster keeps naming the shadow (the
//     old qmaster writes it only at startup), so the execds report to the
//     shadow and the 4 jobs end with exit_status 0. The old qmaster's
//     heartbeat in the old spool dir keeps advancing every 30 s, so a
//     heartbeat-based shadowd could not tell anything is wrong.
//   - SGE's own remedy is slow, and its delay is a matter of phase:
//     increment_heartbeat() (sge_qmaster_heartbeat.c) reads the counter from
//     the heartbeat file every 30 s, writes it incremented, and re-reads
//     act_qmaster only when the new value is a multiple of 20 (or the write
//     failed). The counter was 00002 at heal on the test's fresh lab, so the
//     old qmaster would have gone on answering for about 9 more minutes; on
//     a real site the window is anywhere from 0 to 10 minutes.
//   - To see the end of the window without waiting, the test writes 00019
//     into the old spool's heartbeat file (in place: same length, owner and
//     inode; SGE itself is not patched). At its next beat (up to 30 s
//     later; 28 s in the run above) the old qmaster logs "act_qmaster file
//     has been changed by another qmaster", then "controlled shutdown 8.1.9
//     (exit state = 100)" and its process is gone: 1 to 41 s later in 7
//     tries (most 5 to 8 s). It
//     leaves its qmaster.pid behind and writes no "lock" file. act_qmaster
//     and bootstrap still name the shadow and its copies, and the new
//     qmaster still answers.
//
// This window is why the real takeover playbook fences the old master.

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
	"testing"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/ui"
)

// seedRunbookFile is the seed's procedure as a runbook, relative to the
// package directory.
const seedRunbookFile = "testdata/seed-takeover.yaml"

// seedActChanged is what an old qmaster logs when it finds act_qmaster
// naming another host.
const seedActChanged = "act_qmaster file has been changed by another qmaster"

// TestE2SeedTakeover runs the seed's manual takeover with sgerun while 4
// jobs run and the master's scheduler network is cut, checks that the
// shadow took over with the jobs, then heals the master and records the
// split brain the seed's procedure leaves open (see the file comment).
func TestE2SeedTakeover(t *testing.T) {
	parallelLab(t)
	start := time.Now()
	l := upLab(t, 3)
	rb := seedRunbookPath(t)
	master, shadow, execs := l.Master(), l.Shadow(), l.ExecHosts()
	inv := l.InventoryPath()

	jobs := submitJobs(t, l, execs[0], 4, 60*time.Second)
	waitRunning(t, l, execs[0], jobs, time.Minute)
	t.Logf("4 jobs running at %s", time.Since(start).Round(time.Millisecond))

	oldPID := onePID(t, l, master, "sge_qmaster")
	bootBefore := readFile(t, bootstrapPath(l))
	partition(t, l, master, lab.NetSched)
	if st := qpingStatus(l, execs[0], master); st != -1 {
		t.Fatalf("after the partition, qping of %s from %s still got status %d", master, execs[0], st)
	}

	runStart := time.Now()
	r := runSgerun(t, l, 3*time.Minute, "--no-color", "run", rb, "--inventory", inv)
	runTook := time.Since(runStart)
	if r.Code != 0 {
		t.Fatalf("sgerun run: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("sgerun run took %s:\n%s", runTook.Round(time.Millisecond), r.Stdout)

	// bootstrap names the stamped copies; every other byte is unchanged.
	bootAfter := readFile(t, bootstrapPath(l))
	stamp := seedCheckBootstrap(t, l, bootBefore, bootAfter)
	newQ := l.QmasterSpoolDir() + ".sgerun-" + stamp
	newDB := l.SpoolDB() + ".sgerun-" + stamp
	for _, d := range []string{newQ, newDB} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("spool copy %s: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(newQ, "qmaster.pid")); err != nil {
		t.Errorf("the new qmaster wrote no pid file into its spool copy: %v", err)
	}
	if act := readFile(t, actQmasterPath(l)); act != shadow+"\n" {
		t.Fatalf("act_qmaster = %q, want %q", act, shadow+"\n")
	}
	// The new qmaster answers, from its own host and over the network.
	for _, from := range []string{shadow, execs[0]} {
		if st := qpingStatus(l, from, shadow); st != 0 {
			t.Fatalf("qping of the new qmaster on %s from %s: status %d, want 0", shadow, from, st)
		}
	}
	onePID(t, l, shadow, "sge_qmaster")
	// Clients follow act_qmaster: qstat reaches the new qmaster, which
	// read the jobs from the spool copy.
	known, err := qstatJobs(l, execs[0], "")
	if err != nil {
		t.Fatalf("qstat through the new qmaster: %v", err)
	}
	for _, j := range jobs {
		if _, ok := known[j.ID]; !ok {
			t.Fatalf("the new qmaster does not know job %d (it knows %v)", j.ID, known)
		}
	}

	// Heal the old master while the jobs still run: the seed's step g.
	hbPath := filepath.Join(l.QmasterSpoolDir(), "heartbeat")
	heal(t, l, master)
	healAt := time.Now()
	hbAtHeal := seedHeartbeat(t, hbPath)
	t.Logf("healed %s %s after the run ended; old heartbeat %05d; without help the old qmaster re-reads act_qmaster at heartbeat %d, about %d s from now",
		master, healAt.Sub(runStart.Add(runTook)).Round(time.Millisecond), hbAtHeal,
		seedNextCheck(hbAtHeal), (seedNextCheck(hbAtHeal)-hbAtHeal)*30)

	// Two qmasters answer: the old one as soon as its link is up.
	waitUntil(t, 30*time.Second, time.Second, "the old qmaster to answer qping after heal", func() (bool, error) {
		if st := qpingStatus(l, execs[0], master); st != 0 {
			return false, fmt.Errorf("status %d", st)
		}
		return true, nil
	})
	t.Logf("split brain: the old qmaster on %s answers qping %s after heal", master, time.Since(healAt).Round(time.Millisecond))

	// Watch the split brain until the jobs are done (at least 30 s): the
	// old qmaster keeps its pid and answers, act_qmaster keeps the shadow.
	var both, samples int
	var lastOld, lastNew int
	for {
		pids := pgrep(t, l, master, "sge_qmaster")
		lastOld, lastNew = qpingStatus(l, execs[0], master), qpingStatus(l, execs[0], shadow)
		act := readFile(t, actQmasterPath(l))
		hb := seedHeartbeat(t, hbPath)
		samples++
		if lastOld == 0 && lastNew == 0 {
			both++
		}
		t.Logf("t+%2ds after heal: old qmaster pids %v, qping old=%d new=%d, act_qmaster=%q, old heartbeat %05d, jobs done %d/4",
			int(time.Since(healAt).Seconds()), pids, lastOld, lastNew, strings.TrimSpace(act), hb, markersDone(jobs))
		if len(pids) != 1 || pids[0] != oldPID {
			t.Fatalf("old qmaster on %s: pids %v, want the unfenced %d still running", master, pids, oldPID)
		}
		if act != shadow+"\n" {
			t.Fatalf("act_qmaster changed to %q during the split brain", act)
		}
		if time.Since(healAt) >= 30*time.Second && markersDone(jobs) == len(jobs) {
			break
		}
		if time.Since(healAt) > 2*time.Minute {
			t.Fatalf("jobs not done 2 min after heal (%d/4 markers)", markersDone(jobs))
		}
		time.Sleep(5 * time.Second)
	}
	if lastOld != 0 || lastNew != 0 {
		t.Fatalf("at the end of the split-brain window: qping old=%d new=%d, want both 0", lastOld, lastNew)
	}
	t.Logf("split brain for %s: both qmasters answered status 0 in %d of %d samples", time.Since(healAt).Round(time.Second), both, samples)

	waitMarkers(t, jobs, time.Minute)

	// The end of the window, brought forward: the old qmaster re-reads
	// act_qmaster when its heartbeat counter reaches a multiple of 20.
	msgPath := filepath.Join(l.QmasterSpoolDir(), "messages")
	poke := time.Now()
	seedSetHeartbeat(t, hbPath, 19)

	// Meanwhile: every job ended with exit_status 0 in qacct.
	for _, j := range jobs {
		if code := jobExitStatus(t, l, shadow, j.ID, time.Minute); code != 0 {
			t.Errorf("job %d: exit_status %d, want 0", j.ID, code)
		}
	}
	var noticed time.Time
	waitUntil(t, 75*time.Second, time.Second, "the old qmaster to notice the act_qmaster change", func() (bool, error) {
		if strings.Contains(readFile(t, msgPath), seedActChanged) {
			noticed = time.Now()
			return true, nil
		}
		if hb := seedHeartbeat(t, hbPath); hb != 19 && hb != 20 {
			// qmaster's own beat raced with the write: write again.
			seedSetHeartbeat(t, hbPath, 19)
			return false, fmt.Errorf("heartbeat %05d, rewritten to 00019", hb)
		}
		return false, errors.New("no " + strconv.Quote(seedActChanged) + " in " + msgPath)
	})
	// Its controlled shutdown took 1 to 41 s here (7 tries).
	waitUntil(t, 100*time.Second, time.Second, "the old qmaster to exit after noticing", func() (bool, error) {
		pids := pgrep(t, l, master, "sge_qmaster")
		if len(pids) == 0 {
			return true, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ps, _, _ := l.Exec(ctx, master, "ps -L -o pid,lwp,stat,etime,wchan:32,comm -p "+strconv.Itoa(pids[0]))
		return false, fmt.Errorf("old qmaster still running %s after it logged %q:\n%s\n%s:\n%s",
			time.Since(noticed).Round(time.Second), seedActChanged, ps, msgPath, tail(readFile(t, msgPath), 6))
	})
	t.Logf("old qmaster: logged %q %s after the heartbeat was set to 00019, gone %s after it; %s:\n%s",
		seedActChanged, noticed.Sub(poke).Round(time.Millisecond), time.Since(poke).Round(time.Millisecond),
		msgPath, tail(readFile(t, msgPath), 4))
	for _, f := range []string{"qmaster.pid", "lock"} {
		_, err := os.Stat(filepath.Join(l.QmasterSpoolDir(), f))
		t.Logf("after the old qmaster's exit, %s in the old spool dir exists: %v", f, err == nil)
	}
	if act := readFile(t, actQmasterPath(l)); act != shadow+"\n" {
		t.Errorf("after the old qmaster's exit, act_qmaster = %q, want %q", act, shadow+"\n")
	}
	if b := readFile(t, bootstrapPath(l)); b != bootAfter {
		t.Errorf("bootstrap changed after the old qmaster's exit:\n%s", b)
	}
	if st := qpingStatus(l, execs[0], shadow); st != 0 {
		t.Errorf("after the old qmaster's exit, qping of the new one: status %d, want 0", st)
	}
	if st := qpingStatus(l, execs[0], master); st != -1 {
		t.Errorf("after its exit, the old qmaster still answers qping: status %d", st)
	}
	t.Logf("timings: run %s, whole test %s", runTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestE3SeedDryRun dry-runs the seed's takeover against a lab whose master
// is partitioned: exit 0, nothing a run could change has changed, and the
// plan (text and JSON) lists every mutating command on the right hosts.
func TestE3SeedDryRun(t *testing.T) {
	parallelLab(t)
	start := time.Now()
	l := upLab(t, 3)
	rb := seedRunbookPath(t)
	master, shadow, execs := l.Master(), l.Shadow(), l.ExecHosts()
	inv := l.InventoryPath()
	partition(t, l, master, lab.NetSched)

	qPIDs := map[string][]int{master: pgrep(t, l, master, "sge_qmaster"), shadow: pgrep(t, l, shadow, "sge_qmaster")}
	if len(qPIDs[master]) != 1 || len(qPIDs[shadow]) != 0 {
		t.Fatalf("before the dry run: qmaster pids %v, want one on %s and none on %s", qPIDs, master, shadow)
	}
	execdPIDs := map[string]int{}
	for _, h := range execs {
		execdPIDs[h] = onePID(t, l, h, "sge_execd")
	}
	before := seedStableTree(t, l)

	r := runSgerun(t, l, 2*time.Minute, "--no-color", "run", rb, "--inventory", inv, "--dry-run")
	if r.Code != 0 {
		t.Fatalf("sgerun run --dry-run: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("dry run:\n%s", r.Stdout)
	seedCheckUnchanged(t, l, "text dry run", before, qPIDs, execdPIDs)
	seedCheckTextPlan(t, l, r.Stdout)

	rj := runSgerun(t, l, 2*time.Minute, "--output", "json", "run", rb, "--inventory", inv, "--dry-run")
	if rj.Code != 0 {
		t.Fatalf("sgerun run --dry-run -o json: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", rj.Code, rj.Stdout, rj.Stderr)
	}
	seedCheckUnchanged(t, l, "json dry run", before, qPIDs, execdPIDs)
	seedCheckJSONPlan(t, l, rj.Stdout)
	t.Logf("whole test %s", time.Since(start).Round(time.Millisecond))
}

// seedRunbookPath returns the absolute path of the seed runbook; sgerun
// runs with "/" as its working directory.
func seedRunbookPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(seedRunbookFile)
	if err != nil {
		t.Fatalf("runbook path: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("runbook: %v", err)
	}
	return p
}

var seedStampRe = regexp.MustCompile(`^\.sgerun-(\d{14})$`)

// seedCheckBootstrap checks that after names the stamped copies of the
// spools before named, with one stamp, and that no other line changed. It
// returns the stamp.
func seedCheckBootstrap(t *testing.T, l *lab.Lab, before, after string) string {
	t.Helper()
	if got := kv(before, "spooling_params"); got != l.SpoolDB() {
		t.Fatalf("bootstrap before the run: spooling_params %q, want %q", got, l.SpoolDB())
	}
	if got := kv(before, "qmaster_spool_dir"); got != l.QmasterSpoolDir() {
		t.Fatalf("bootstrap before the run: qmaster_spool_dir %q, want %q", got, l.QmasterSpoolDir())
	}
	sp, qs := kv(after, "spooling_params"), kv(after, "qmaster_spool_dir")
	m1 := seedStampRe.FindStringSubmatch(strings.TrimPrefix(sp, l.SpoolDB()))
	m2 := seedStampRe.FindStringSubmatch(strings.TrimPrefix(qs, l.QmasterSpoolDir()))
	if !strings.HasPrefix(sp, l.SpoolDB()) || !strings.HasPrefix(qs, l.QmasterSpoolDir()) || m1 == nil || m2 == nil || m1[1] != m2[1] {
		t.Fatalf("bootstrap after the run: spooling_params %q, qmaster_spool_dir %q; want %s.sgerun-STAMP and %s.sgerun-STAMP",
			sp, qs, l.SpoolDB(), l.QmasterSpoolDir())
	}
	bl, al := strings.Split(before, "\n"), strings.Split(after, "\n")
	if len(bl) != len(al) {
		t.Fatalf("bootstrap: %d lines before, %d after:\n%s", len(bl), len(al), after)
	}
	for i := range bl {
		if k := strings.Fields(bl[i]); len(k) > 0 && (k[0] == "spooling_params" || k[0] == "qmaster_spool_dir") {
			// the separator whitespace stays too
			old := kv(bl[i], k[0])
			if want := strings.Replace(bl[i], old, old+".sgerun-"+m1[1], 1); al[i] != want {
				t.Errorf("bootstrap line %d: %q, want %q", i+1, al[i], want)
			}
			continue
		}
		if al[i] != bl[i] {
			t.Errorf("bootstrap line %d changed: %q -> %q", i+1, bl[i], al[i])
		}
	}
	return m1[1]
}

// seedHeartbeat reads a qmaster heartbeat file.
func seedHeartbeat(t *testing.T, p string) int {
	t.Helper()
	s := strings.TrimSpace(readFile(t, p))
	n, err := strconv.Atoi(s)
	if err != nil {
		// SGE's own write is not atomic; a reader may see it half done.
		time.Sleep(100 * time.Millisecond)
		if n, err = strconv.Atoi(strings.TrimSpace(readFile(t, p))); err != nil {
			t.Fatalf("heartbeat %s: %q", p, s)
		}
	}
	return n
}

// seedSetHeartbeat overwrites the counter in place: "%05d\n" has a fixed
// length, so one write at offset 0 keeps the file (owner, mode, inode)
// that qmaster reopens at each beat.
func seedSetHeartbeat(t *testing.T, p string, n int) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte(fmt.Sprintf("%05d\n", n)), 0); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
}

// seedNextCheck is the next heartbeat value at which qmaster re-reads
// act_qmaster (a multiple of 20 above hb).
func seedNextCheck(hb int) int { return hb + 20 - hb%20 }

// seedStableTree hashes what a run of the seed runbook would change, and
// nothing that the cluster itself rewrites while the dry run happens:
//
//   - the cell's common dir (bootstrap, act_qmaster, the rc scripts), all
//     of it;
//   - the spool parent dir: which entries exist (a copy would add
//     qmaster.sgerun-* and spooldb.sgerun-*), the qmaster spool dir with
//     qmaster.pid (a qmaster started on the shadow with the old bootstrap
//     would rewrite it), and every execd's execd.pid (a softstop/start
//     would rewrite it).
//
// Left out: the partitioned master's qmaster is not fenced and keeps
// writing its spool through the shared filesystem, so heartbeat, messages,
// jobseqnum and arseqnum in the qmaster spool dir and the content of the
// BDB files (environment regions, logs and databases) change on their own;
// of the BDB files only their existence is compared. The execds' messages
// files are left out for the same reason.
func seedStableTree(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	spool := filepath.Dir(l.QmasterSpoolDir())
	for _, d := range []string{l.SpoolDB(), l.ExecdSpoolDir()} {
		if filepath.Dir(d) != spool {
			t.Fatalf("lab layout: %s is not in %s; hash it too", d, spool)
		}
	}
	tree := hashTree(t, l.CommonDir(), spool)
	for p, e := range tree {
		base := filepath.Base(p)
		switch {
		case filepath.Dir(p) == l.QmasterSpoolDir() && (base == "heartbeat" || base == "messages" || base == "jobseqnum" || base == "arseqnum"):
			delete(tree, p)
		case filepath.Dir(p) == l.SpoolDB():
			tree[p] = strings.Fields(e)[0] + " (BDB, content not compared)"
		case strings.HasPrefix(p, l.ExecdSpoolDir()+"/") && base == "messages":
			delete(tree, p)
		}
	}
	return tree
}

// seedCheckUnchanged checks the hashed tree and the daemons after a dry run.
func seedCheckUnchanged(t *testing.T, l *lab.Lab, what string, before map[string]string, qPIDs map[string][]int, execdPIDs map[string]int) {
	t.Helper()
	if d := diffTrees(before, seedStableTree(t, l)); len(d) > 0 {
		t.Errorf("%s changed the cluster:\n%s", what, strings.Join(d, "\n"))
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(l.QmasterSpoolDir()), "*.sgerun-*")); len(m) > 0 {
		t.Errorf("%s left spool copies: %v", what, m)
	}
	for h, want := range qPIDs {
		if got := pgrep(t, l, h, "sge_qmaster"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: sge_qmaster pids on %s %v, before %v", what, h, got, want)
		}
	}
	for h, want := range execdPIDs {
		if got := pgrep(t, l, h, "sge_execd"); len(got) != 1 || got[0] != want {
			t.Errorf("%s: sge_execd pids on %s %v, before %d", what, h, got, want)
		}
	}
}

// seedTextStep is one step of sgerun's text output: its status word and
// its "would HOSTS:" blocks (hosts as printed, folded).
type seedTextStep struct {
	status string
	kind   string
	would  map[string]string
}

var seedStepRe = regexp.MustCompile(`^\S+ (\S+) (.+) \[([a-z_]+)\] \d+ host\(s\)`)

// seedParseText splits sgerun's text output into steps.
func seedParseText(out string) map[string]*seedTextStep {
	stepsByName := map[string]*seedTextStep{}
	var cur *seedTextStep
	var hosts string
	var block []string
	flush := func() {
		if cur != nil && hosts != "" {
			cur.would[hosts] = strings.Join(block, "\n")
		}
		hosts, block = "", nil
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case seedStepRe.MatchString(line):
			flush()
			m := seedStepRe.FindStringSubmatch(line)
			cur = &seedTextStep{status: m[1], kind: m[3], would: map[string]string{}}
			stepsByName[m[2]] = cur
		case strings.HasPrefix(line, "  would ") && strings.HasSuffix(line, ":"):
			flush()
			hosts = strings.TrimSuffix(strings.TrimPrefix(line, "  would "), ":")
		case hosts != "" && strings.HasPrefix(line, "    "):
			block = append(block, strings.TrimPrefix(line, "    "))
		default:
			flush()
		}
	}
	flush()
	return stepsByName
}

// seedExpand expands a folded host list such as "e1-exec[1-3],e1-shadow".
func seedExpand(t *testing.T, folded string) []string {
	t.Helper()
	var out []string
	depth, from := 0, 0
	for i := 0; i <= len(folded); i++ {
		if i < len(folded) {
			switch folded[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		hs, err := inventory.ExpandRange(folded[from:i])
		if err != nil {
			t.Fatalf("host list %q: %v", folded, err)
		}
		out = append(out, hs...)
		from = i + 1
	}
	sort.Strings(out)
	return out
}

// seedWant is what the plan of one mutating step must hold, and on which
// hosts.
type seedWant struct {
	step  string
	hosts []string
	lines []string // regexps, matched against whole lines, in order
}

// seedWants lists what the plan of each mutating step of the seed runbook must hold.
func seedWants(l *lab.Lab) []seedWant {
	q := regexp.QuoteMeta
	stamp := `\d{14}`
	common := l.CommonDir()
	shadow := []string{l.Shadow()}
	execs := append([]string(nil), l.ExecHosts()...)
	sort.Strings(execs)
	return []seedWant{
		{"copy the qmaster spool dir", shadow, []string{
			`run: cp -a -- ` + q(l.QmasterSpoolDir()) + ` ` + q(l.QmasterSpoolDir()) + `\.sgerun-` + stamp}},
		{"copy the BDB spool", shadow, []string{
			`run: cp -a -- ` + q(l.SpoolDB()) + ` ` + q(l.SpoolDB()) + `\.sgerun-` + stamp}},
		{"point bootstrap at the copies", shadow, []string{
			`write: ` + q(common+"/bootstrap") + ` .*`,
			`  -spooling_params\s+` + q(l.SpoolDB()),
			`  \+spooling_params\s+` + q(l.SpoolDB()) + `\.sgerun-` + stamp,
			`  -qmaster_spool_dir\s+` + q(l.QmasterSpoolDir()),
			`  \+qmaster_spool_dir\s+` + q(l.QmasterSpoolDir()) + `\.sgerun-` + stamp}},
		{"write act_qmaster", shadow, []string{
			`write: ` + q(common+"/act_qmaster") + ` .*`,
			`  -` + q(l.Master()),
			`  \+` + q(l.Shadow())}},
		{"start qmaster on the shadow", shadow, []string{
			`run: sh -s`,
			`\s*SGE_ROOT=` + q(l.SGERoot()) + `; SGE_CELL=` + q(l.Cell()) + `; .*`,
			`\s*` + q(common+"/sgemaster") + ` -qmaster start`}},
		{"softstop and start every execd", execs, []string{
			`run: sh -s`,
			`\s*SGE_ROOT=` + q(l.SGERoot()) + `; SGE_CELL=` + q(l.Cell()) + `; .*`,
			`\s*` + q(common+"/sgeexecd") + ` softstop`,
			`\s*` + q(common+"/sgeexecd") + ` start`}},
	}
}

// seedMatchLines checks that text has lines matching res in order, and
// returns the stamps it names.
func seedMatchLines(text string, res []string) (stamps []string, err error) {
	lines := strings.Split(text, "\n")
	i := 0
	for _, r := range res {
		re := regexp.MustCompile(`^` + r + `$`)
		for i < len(lines) && !re.MatchString(lines[i]) {
			i++
		}
		if i == len(lines) {
			return nil, fmt.Errorf("no line matching %q (in order) in:\n%s", r, text)
		}
		stamps = append(stamps, regexp.MustCompile(`\.sgerun-(\d{14})`).FindAllString(lines[i], -1)...)
		i++
	}
	return stamps, nil
}

// seedDiffLines counts the changed lines of the unified diffs in a plan.
func seedDiffLines(text string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if (strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  ---")) ||
			(strings.HasPrefix(line, "  +") && !strings.HasPrefix(line, "  +++")) {
			n++
		}
	}
	return n
}

// seedCheckStamps checks that every planned path uses one stamp.
func seedCheckStamps(t *testing.T, what string, stamps []string) {
	t.Helper()
	if len(stamps) != 4 {
		t.Errorf("%s: stamped paths %v, want 4 (two copies, two bootstrap lines)", what, stamps)
	}
	for _, s := range stamps {
		if s != stamps[0] {
			t.Errorf("%s: stamped paths with different stamps: %v", what, stamps)
			return
		}
	}
}

// seedCheckTextPlan checks the text output of a dry run.
func seedCheckTextPlan(t *testing.T, l *lab.Lab, out string) {
	t.Helper()
	stepsByName := seedParseText(out)
	if !regexp.MustCompile(`(?m)^run \S+ planned$`).MatchString(out) {
		t.Errorf("dry run: no final \"run ~ planned\" line")
	}
	if s := stepsByName["read bootstrap"]; s == nil || s.status != "ok" || len(s.would) != 0 {
		t.Errorf("read bootstrap: %+v, want a read-only step that ran (ok) and planned nothing", s)
	}
	if s := stepsByName["wait for the new qmaster to answer qping"]; s == nil || s.status != "planned" || len(s.would) != 0 {
		t.Errorf("qping wait: %+v, want reported as planned (it depends on the planned start), not failed", s)
	}
	var stamps []string
	for _, w := range seedWants(l) {
		s := stepsByName[w.step]
		if s == nil {
			t.Errorf("text plan: no step %q in:\n%s", w.step, out)
			continue
		}
		if s.status != "planned" {
			t.Errorf("text plan: step %q is %q, want planned", w.step, s.status)
		}
		var covered []string
		for hosts, text := range s.would {
			hs := seedExpand(t, hosts)
			covered = append(covered, hs...)
			st, err := seedMatchLines(text, w.lines)
			if err != nil {
				t.Errorf("text plan of %q on %s: %v", w.step, hosts, err)
			}
			stamps = append(stamps, st...)
			if n := seedDiffLines(text); s.kind == "edit_kv" && n != 4 || s.kind == "put" && n != 2 {
				t.Errorf("text plan of %q: %d changed lines in the diff, want only the keys set:\n%s", w.step, n, text)
			}
		}
		sort.Strings(covered)
		if fmt.Sprint(covered) != fmt.Sprint(w.hosts) {
			t.Errorf("text plan of %q: for hosts %v (as printed: %v), want %v", w.step, covered, sortedKeys(s.would), w.hosts)
		}
	}
	seedCheckStamps(t, "text plan", stamps)
	if strings.Contains(out, "would "+l.Master()) {
		t.Errorf("text plan: something would run on the old master %s", l.Master())
	}
}

// seedCheckJSONPlan checks the JSON output of a dry run: the plan per host
// for every mutating step, every exec host listed on its own.
func seedCheckJSONPlan(t *testing.T, l *lab.Lab, out string) {
	t.Helper()
	var run ui.Report
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if !run.DryRun || run.Status != "planned" || run.ExitCode != 0 {
		t.Errorf("json: dry_run %v, status %q, exit_code %d; want true, planned, 0", run.DryRun, run.Status, run.ExitCode)
	}
	byName := map[string]int{}
	for i, s := range run.Steps {
		byName[s.Name] = i
		if s.Mutates && (s.Status != "planned" || len(s.Plan) == 0) {
			t.Errorf("json: mutating step %q: status %q with %d planned hosts; want planned, with a plan", s.Name, s.Status, len(s.Plan))
		}
		if !s.Mutates && len(s.Plan) > 0 {
			t.Errorf("json: read-only step %q has a plan: %v", s.Name, s.Plan)
		}
	}
	var stamps []string
	for _, w := range seedWants(l) {
		i, ok := byName[w.step]
		if !ok {
			t.Errorf("json: no step %q", w.step)
			continue
		}
		s := run.Steps[i]
		if got := sortedKeys(s.Plan); fmt.Sprint(got) != fmt.Sprint(w.hosts) {
			t.Errorf("json: plan of %q for hosts %v, want %v", w.step, got, w.hosts)
		}
		for _, h := range w.hosts {
			text := strings.Join(s.Plan[h], "\n")
			st, err := seedMatchLines(text, w.lines)
			if err != nil {
				t.Errorf("json: plan of %q on %s: %v", w.step, h, err)
			}
			stamps = append(stamps, st...)
		}
	}
	seedCheckStamps(t, "json plan", stamps)
}
