package e2e

// Helpers shared by the scenario files (takeover, faults, watch, seed):
// reading the cell's files, listing daemons, cutting and healing networks,
// hashing the spool tree and the checks built on them.

import (
	"context"
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

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/sshexec"
)

// takeoverLockName is the lock file the takeover playbook keeps next to the spools.
const takeoverLockName = ".sgerun-takeover.lock"

// ------------------------------------------------------------------ cell files

// bootstrapPath is the cell's bootstrap file (shared by every lab host).
func bootstrapPath(l *lab.Lab) string { return filepath.Join(l.CommonDir(), "bootstrap") }

// actQmasterPath is the cell's act_qmaster file (shared by every lab host).
func actQmasterPath(l *lab.Lab) string { return filepath.Join(l.CommonDir(), "act_qmaster") }

// readFile returns the content of p; the test fails when it cannot be read.
func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// actQmaster returns the host act_qmaster names, without white space.
func actQmaster(t *testing.T, l *lab.Lab) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, actQmasterPath(l)))
}

// kv returns the value of the first line "key value" in text such as
// bootstrap, or "".
func kv(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			return f[1]
		}
	}
	return ""
}

// bootstrap reads bootstrap's key/value lines (the last of a repeated key
// wins).
func bootstrap(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(readFile(t, bootstrapPath(l)), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// sharedDirs are the directories holding the qmaster and BDB spools,
// where takeover puts its copies and its lock.
func sharedDirs(l *lab.Lab) []string {
	a, b := filepath.Dir(l.QmasterSpoolDir()), filepath.Dir(l.SpoolDB())
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// takeoverLeftovers lists spool copies and takeover locks in sharedDirs.
func takeoverLeftovers(l *lab.Lab) []string {
	var out []string
	for _, d := range sharedDirs(l) {
		m, _ := filepath.Glob(filepath.Join(d, "*.sgerun-*"))
		out = append(out, m...)
		if _, err := os.Stat(filepath.Join(d, takeoverLockName)); err == nil {
			out = append(out, filepath.Join(d, takeoverLockName))
		}
	}
	return out
}

// waitSeqnums waits for a fresh qmaster's first write of jobseqnum and
// arseqnum (about 15 s after it starts; then only when a number changes),
// so that it cannot show up as a change in a tree comparison.
func waitSeqnums(t *testing.T, l *lab.Lab) {
	t.Helper()
	waitUntil(t, time.Minute, 500*time.Millisecond, "qmaster's first jobseqnum/arseqnum", func() (bool, error) {
		for _, f := range []string{"jobseqnum", "arseqnum"} {
			if _, err := os.Stat(filepath.Join(l.QmasterSpoolDir(), f)); err != nil {
				return false, err
			}
		}
		return true, nil
	})
}

// ------------------------------------------------------------------ spool tree

// treeNoise matches what a running qmaster (and execd) rewrite on their
// own, so that a tree hash taken before and after a refused or dry run
// compares only what sgerun could have changed: the heartbeat (rewritten
// every 30 s), the daemons' messages logs, and the Berkeley DB
// environment's region files (__db.*) and transaction logs (log.*), which
// change whenever the qmaster touches the database, even without a write
// to its records.
var treeNoise = regexp.MustCompile(`^(heartbeat|messages|__db\.\d+|log\.\d+)$`)

// spoolTree hashes common/ and the directory holding the spools (both
// spools, the execd spools, and where sgerun puts its copies, lock and
// records), without treeNoise. Compare two calls with diffTrees.
//
// The BDB data files (sge, sge_job) are compared by their records, not
// their bytes: about a minute after it starts, and now and then after, the
// qmaster checkpoints its database environment, which writes cached pages
// into the data files (seen: sge grew from 20480 to 28672 bytes with a
// byte-identical db_dump). A change to any record still shows.
func spoolTree(t *testing.T, l *lab.Lab) map[string]string {
	t.Helper()
	tree := hashTree(t, l.CommonDir(), filepath.Dir(l.QmasterSpoolDir()))
	admin := bootstrap(t, l)["admin_user"]
	if admin == "" {
		t.Fatalf("bootstrap names no admin_user")
	}
	for p := range tree {
		switch {
		case treeNoise.MatchString(filepath.Base(p)):
			delete(tree, p)
		case filepath.Dir(p) == l.SpoolDB() && strings.HasPrefix(filepath.Base(p), "sge"):
			tree[p] = "bdb records " + dbDumpHash(t, l, admin, p)
		}
	}
	return tree
}

// dbDumpHash returns the sha256 of "db_dump -p" of a BDB file, run as the
// SGE admin user (a root db_dump could leave root-owned environment files
// the qmaster cannot open) in the controller namespace.
func dbDumpHash(t *testing.T, l *lab.Lab, admin, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := shell.Join("db_dump", "-p", "-h", filepath.Dir(file), file) + " | sha256sum"
	out, _, err := l.ExecAs(ctx, lab.CtlHost, admin, "set -o pipefail; "+cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return strings.Fields(out)[0]
}

// checkNothingChanged wants a run that must not act (what: "refused
// takeover", "dry run", ...) to have left the spoolTree as before, act_qmaster
// naming the master and no qmaster on the shadow.
func checkNothingChanged(t *testing.T, l *lab.Lab, what string, before, after map[string]string) {
	t.Helper()
	if d := diffTrees(before, after); len(d) > 0 {
		t.Errorf("%s changed files:\n%s", what, strings.Join(d, "\n"))
	}
	if a := actQmaster(t, l); a != l.Master() {
		t.Errorf("%s: act_qmaster %q, want %s", what, a, l.Master())
	}
	if pids := qmasterPIDs(t, l, l.Shadow()); len(pids) > 0 {
		t.Errorf("%s: qmaster %v on the shadow", what, pids)
	}
}

// ------------------------------------------------------------------ daemons

// pgrep returns the sorted pids of the processes named name on host, in the
// host's own PID namespace (so never another host's); none: pgrep exits 1.
func pgrep(t *testing.T, l *lab.Lab, host, name string) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := l.Exec(ctx, host, "pgrep -x "+shell.Quote(name))
	var ee *sshexec.ExitError
	if errors.As(err, &ee) && ee.Code == 1 {
		return nil
	}
	if err != nil {
		t.Fatalf("pgrep %s on %s: %v", name, host, err)
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		p, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pgrep %s on %s: %q", name, host, out)
		}
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}

// rcLinkRE matches a runlevel link of gridengine-master: S starts, K stops.
var rcLinkRE = regexp.MustCompile(`^([SK])[0-9]+gridengine-master$`)

// qmasterAutostart says whether host boots its qmaster: "enabled" or
// "disabled" by the runlevel-2 link of /etc/init.d/gridengine-master, as
// that host sees its /etc/rc2.d (each lab host has its own).
func qmasterAutostart(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := l.Exec(ctx, host, "ls /etc/rc2.d")
	if err != nil {
		t.Fatalf("ls /etc/rc2.d on %s: %v", host, err)
	}
	var state []string
	for _, f := range strings.Fields(out) {
		if m := rcLinkRE.FindStringSubmatch(f); m != nil {
			state = append(state, map[string]string{"S": "enabled", "K": "disabled"}[m[1]])
		}
	}
	if len(state) != 1 {
		t.Fatalf("/etc/rc2.d on %s: want one gridengine-master link, got %v in %q", host, state, out)
	}
	return state[0]
}

// fencedAutostart returns the record of the autostart a fence turned off
// on host, in that host's own sgerun state directory, and whether there
// is one.
func fencedAutostart(t *testing.T, l *lab.Lab, host string) (string, bool) {
	t.Helper()
	h, err := l.Host(host)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(l.HostStateDir(h), "fenced-autostart"))
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// bootLinks lists this machine's /etc/rc?.d entries: the lab hosts have
// their own, so no test may change these.
func bootLinks() []string {
	links, _ := filepath.Glob("/etc/rc[0-6S].d/*")
	return links
}

// qmasterPIDs lists the sge_qmaster processes on host.
func qmasterPIDs(t *testing.T, l *lab.Lab, host string) []int {
	t.Helper()
	return pgrep(t, l, host, "sge_qmaster")
}

// onePID returns the pid of the one process named name on host.
func onePID(t *testing.T, l *lab.Lab, host, name string) int {
	t.Helper()
	pids := pgrep(t, l, host, name)
	if len(pids) != 1 {
		t.Fatalf("%s on %s: pids %v, want exactly one", name, host, pids)
	}
	return pids[0]
}

// waitQping waits until qping from from to target's qmaster says status 0.
func waitQping(t *testing.T, l *lab.Lab, from, target string, timeout time.Duration) {
	t.Helper()
	waitUntil(t, timeout, time.Second, "qmaster on "+target+" to answer qping from "+from, func() (bool, error) {
		st := qpingStatus(l, from, target)
		return st == 0, fmt.Errorf("status %d", st)
	})
}

// ------------------------------------------------------------------ network

// partition cuts host off net; the test fails when that fails.
func partition(t *testing.T, l *lab.Lab, host string, net lab.Net) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Partition(ctx, host, net); err != nil {
		t.Fatalf("partition %s (%s): %v", host, net, err)
	}
}

// heal reconnects host to every network; the test fails when that fails.
func heal(t *testing.T, l *lab.Lab, host string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.Heal(ctx, host); err != nil {
		t.Fatalf("heal %s: %v", host, err)
	}
}

// healQuiet heals a host in a cleanup, ignoring errors (the lab may be
// down already).
func healQuiet(l *lab.Lab, host string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = l.Heal(ctx, host)
}

// hang stops host's qmaster (SIGSTOP) within ctx and returns when; a
// cleanup resumes it when the test ends.
func hang(ctx context.Context, t *testing.T, l *lab.Lab, host string) time.Time {
	t.Helper()
	if err := l.Hang(ctx, host); err != nil {
		t.Fatalf("hang %s: %v", host, err)
	}
	start := time.Now()
	t.Cleanup(func() {
		rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer rcancel()
		_ = l.Resume(rctx, host)
	})
	return start
}

// ------------------------------------------------------------------ jobs

// qstatJobs runs "qstat -u '*'" on host and returns job id -> state, only
// the jobs whose state is exactly state when state is not empty.
func qstatJobs(l *lab.Lab, host, state string) (map[int]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := l.Exec(ctx, host, "qstat -u '*'")
	if err != nil {
		return nil, err
	}
	jobs := map[int]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		if state == "" || f[4] == state {
			jobs[id] = f[4]
		}
	}
	return jobs, nil
}

// waitRunning waits until qstat on host shows every job in state r.
func waitRunning(t *testing.T, l *lab.Lab, host string, jobs []Job, timeout time.Duration) {
	t.Helper()
	waitUntil(t, timeout, time.Second, "jobs in state r", func() (bool, error) {
		running, err := qstatJobs(l, host, "r")
		if err != nil {
			return false, err
		}
		for _, j := range jobs {
			if _, ok := running[j.ID]; !ok {
				return false, fmt.Errorf("job %d not in state r (running: %v)", j.ID, running)
			}
		}
		return true, nil
	})
}

// markersDone counts the jobs whose marker exists.
func markersDone(jobs []Job) int {
	n := 0
	for _, j := range jobs {
		if _, err := os.Stat(j.Marker); err == nil {
			n++
		}
	}
	return n
}

// checkJobsExitZero waits up to timeout for the jobs' markers and wants
// exit_status 0 for each in qacct, asked on host.
func checkJobsExitZero(t *testing.T, l *lab.Lab, host string, jobs []Job, timeout time.Duration) {
	t.Helper()
	waitMarkers(t, jobs, timeout)
	for _, j := range jobs {
		if code := jobExitStatus(t, l, host, j.ID, time.Minute); code != 0 {
			t.Errorf("job %d: exit_status %d, want 0", j.ID, code)
		}
	}
}

// ------------------------------------------------------------------ runs

// runDir is the journal directory of a run in the lab's sgerun state.
func runDir(l *lab.Lab, runID string) string { return filepath.Join(sgerunState(l), "runs", runID) }

// runStatus is the run's status as sgerun history reports it.
func runStatus(t *testing.T, l *lab.Lab, runID string) string {
	t.Helper()
	dir := runDir(l, runID)
	meta, events, err := journal.Read(dir)
	if err != nil {
		t.Fatalf("journal of run %s: %v", runID, err)
	}
	return journal.Summarize(dir, meta, events).Status
}

// ------------------------------------------------------------------ text

// formatResult renders a Result for a failure message.
func formatResult(r Result) string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
