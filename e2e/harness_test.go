package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// sgerunBin is the sgerun binary TestMain built, and sgerunBuildErr why
// it could not be built. Both are set once, before any test runs.
var (
	sgerunBin      string
	sgerunBuildErr error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain builds sgerun once (unless -short) and runs the tests.
func runMain(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "sgerun-e2e-bin-")
		if err != nil {
			sgerunBuildErr = fmt.Errorf("temp dir: %w", err)
		} else {
			defer os.RemoveAll(dir)
			sgerunBin, sgerunBuildErr = buildSgerun(dir)
		}
	}
	before := bootLinks()
	code := m.Run()
	if after := bootLinks(); !slices.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "e2e: the tests changed this machine's boot links (/etc/rc?.d), which only lab hosts' private copies may see:\nbefore %v\nafter  %v\n", before, after)
		return 1
	}
	return code
}

// buildSgerun builds ./cmd/sgerun of this module into dir.
func buildSgerun(dir string) (string, error) {
	bin := filepath.Join(dir, "sgerun")
	c := exec.Command("go", "build", "-o", bin, "./cmd/sgerun")
	c.Dir = ".." // the module root; go test runs in the package directory
	out, err := c.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/sgerun: %w: %s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// requireLab skips under -short and fails when the machine cannot run a
// lab (not root, packages missing).
func requireLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("e2e tests need root (run them as root, or with -short to skip them)")
	}
	for _, p := range []string{"/usr/lib/gridengine/sge_qmaster", "/usr/sbin/sshd", "/usr/sbin/ip", "/usr/bin/nsenter"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("e2e prerequisite missing: %s (run .ci/install-deps)", p)
		}
	}
}

// labName returns a fresh, unique lab instance name.
func labName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random name: %v", err)
	}
	return "e" + hex.EncodeToString(b)
}

// parallelLab lets a lab test run beside others (go test -parallel bounds
// how many): each has its own namespaces, addresses and cell, and most of
// their time is spent waiting on SGE, not on the CPU. Under -short it skips.
func parallelLab(t *testing.T) {
	t.Helper()
	requireLab(t)
	t.Parallel()
}

// upLab brings up a lab with a unique name and registers its Down as a
// cleanup that runs even when the test fails. When the test failed, the
// lab's status is logged first.
func upLab(t *testing.T, execHosts int) *lab.Lab {
	t.Helper()
	return upLabWith(t, lab.Config{ExecHosts: execHosts})
}

// upLabWith is upLab with more of the lab's configuration (its name and
// state dir are the test's).
func upLabWith(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	requireLab(t)
	name := labName(t)
	stateDir := filepath.Join(lab.DefaultBaseDir, name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			if l, err := lab.Open(name); err == nil {
				if st, err := l.Status(ctx, ""); err == nil {
					t.Logf("lab status at failure:\n%s", formatStatus(st))
				}
			}
		}
		if err := lab.DownByName(ctx, name, stateDir, nil); err != nil {
			t.Errorf("lab down %s: %v", name, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	cfg.Name, cfg.StateDir = name, stateDir
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("lab %s up in %s", name, time.Since(start).Round(time.Millisecond))
	return l
}

// formatStatus renders a status compactly for test logs.
func formatStatus(st *lab.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "act_qmaster=%s spooling_params=%s qmaster_spool_dir=%s\n", st.ActQmaster, st.SpoolingParams, st.QmasterSpoolDir)
	for _, h := range st.Hosts {
		fmt.Fprintf(&b, "%s up=%v links=%v daemons=%v err=%v\n", h.Name, h.Up, h.Links, h.Daemons, h.Err)
	}
	fmt.Fprintf(&b, "qstat -f (from %s, err %v):\n%s", st.From, st.QstatErr, st.Qstat)
	return b.String()
}

// Result is the outcome of one command run by runSgerun.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// runSgerun runs the sgerun binary with args inside the lab's controller
// namespace, with the lab's sgerun state. The test fails when the binary
// could not be built, could not be run or timed out.
func runSgerun(t *testing.T, l *lab.Lab, timeout time.Duration, args ...string) Result {
	t.Helper()
	if sgerunBin == "" {
		t.Fatalf("sgerun binary not available: %v", sgerunBuildErr)
	}
	// Each lab keeps its own sgerun state (journals, locks), so that tests
	// running side by side do not see each other's runs.
	r, err := runSgerunAt(l, sgerunState(l), timeout, args...)
	if err != nil {
		t.Fatalf("sgerun %v: %v", args, err)
	}
	return r
}

// runSgerunAt runs sgerun with the state dir stateDir in the controller
// namespace and, unlike runSgerun, may be called from any goroutine. A
// non-zero exit is no error; a time-out is.
func runSgerunAt(l *lab.Lab, stateDir string, timeout time.Duration, args ...string) (Result, error) {
	if sgerunBin == "" {
		return Result{}, fmt.Errorf("sgerun binary not available: %v", sgerunBuildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append([]string{sgerunBin, "--state-dir", stateDir}, args...)
	c, err := l.Command(ctx, lab.CtlHost, "", shell.Join(argv...))
	if err != nil {
		return Result{}, err
	}
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	c.WaitDelay = 5 * time.Second
	err = c.Run()
	r := Result{Stdout: o.String(), Stderr: e.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case ctx.Err() == nil:
		return r, err
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("timed out after %s\n%s", timeout, formatResult(r))
	}
	return r, nil
}

// sgerunState is the sgerun state directory (journals, locks) of a lab.
func sgerunState(l *lab.Lab) string { return filepath.Join(l.StateDir(), "sgerun-state") }

// runIDs lists the run ids in the lab's sgerun state.
func runIDs(t *testing.T, l *lab.Lab) map[string]bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(sgerunState(l), "runs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range m {
		ids[filepath.Base(p)] = true
	}
	return ids
}

// newRunID returns the one run id that is not in before.
func newRunID(t *testing.T, l *lab.Lab, before map[string]bool) string {
	t.Helper()
	var ids []string
	for id := range runIDs(t, l) {
		if !before[id] {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("new runs %v, want exactly one", ids)
	}
	return ids[0]
}

// Job is a job submitted by submitJobs.
type Job struct {
	ID     int
	Marker string // written by the job when it ends
}

// submitJobs submits n jobs as the lab's ordinary user from host. Each
// runs a job script file that sleeps for sleep and then writes its marker
// file (job id and host name).
func submitJobs(t *testing.T, l *lab.Lab, host string, n int, sleep time.Duration) []Job {
	t.Helper()
	dir, err := os.MkdirTemp(l.WorkDir(), "jobs-")
	if err != nil {
		t.Fatalf("job dir: %v", err)
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatalf("job dir: %v", err)
	}
	script := filepath.Join(dir, "job.sh")
	body := "#!/bin/sh\nsleep " + strconv.Itoa(int(sleep.Seconds())) + "\n" +
		"echo \"$JOB_ID $(hostname)\" > " + shell.Quote(dir) + "/done.$JOB_ID\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatalf("job script: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var jobs []Job
	for i := 0; i < n; i++ {
		cmd := shell.Join("qsub", "-terse", "-N", "e2e"+strconv.Itoa(i), "-o", "/dev/null", "-e", "/dev/null", script)
		out, _, err := l.ExecAs(ctx, host, l.User(), cmd)
		if err != nil {
			t.Fatalf("qsub on %s: %v", host, err)
		}
		id, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("qsub on %s: job id %q: %v", host, out, err)
		}
		jobs = append(jobs, Job{ID: id, Marker: filepath.Join(dir, "done."+strconv.Itoa(id))})
	}
	return jobs
}

// waitMarkers waits until every job has written its marker.
func waitMarkers(t *testing.T, jobs []Job, timeout time.Duration) {
	t.Helper()
	waitUntil(t, timeout, 500*time.Millisecond, "job markers", func() (bool, error) {
		var missing []int
		for _, j := range jobs {
			if _, err := os.Stat(j.Marker); err != nil {
				missing = append(missing, j.ID)
			}
		}
		if len(missing) > 0 {
			return false, fmt.Errorf("jobs without marker: %v", missing)
		}
		return true, nil
	})
}

// jobExitStatus polls "qacct -j id" on host until it lists exit_status
// (accounting is flushed periodically) and returns it.
func jobExitStatus(t *testing.T, l *lab.Lab, host string, id int, timeout time.Duration) int {
	t.Helper()
	code := -1
	waitUntil(t, timeout, time.Second, fmt.Sprintf("qacct of job %d", id), func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		out, _, err := l.Exec(ctx, host, "qacct -j "+strconv.Itoa(id))
		if err != nil {
			return false, err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "exit_status" {
				code, err = strconv.Atoi(f[1])
				return err == nil, err
			}
		}
		return false, errors.New("no exit_status yet")
	})
	return code
}

// waitUntil polls cond every interval until it returns true; the test
// fails when timeout passes first, with cond's last error.
func waitUntil(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(interval)
	}
}

// qpingStatus returns the "status:" of "qping -info target 6444 qmaster
// 1" run on host from, or -1 when no status came back.
func qpingStatus(l *lab.Lab, from, target string) int {
	st, err := l.QpingStatus(context.Background(), from, target)
	if err != nil {
		return -1
	}
	return st
}

// hashTree records every entry under roots: path -> "mode size sha256"
// (directories and symlinks without content hash; a symlink's target
// instead). Compare two calls with diffTrees.
func hashTree(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			entry := fmt.Sprintf("%v %d", info.Mode(), info.Size())
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				entry += " -> " + target
			case info.Mode().IsRegular():
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					return err
				}
				entry += " " + hex.EncodeToString(h.Sum(nil))
			}
			out[p] = entry
			return nil
		})
		if err != nil {
			t.Fatalf("hash %s: %v", root, err)
		}
	}
	return out
}

// diffTrees lists the paths added, removed or changed between two
// hashTree results, sorted.
func diffTrees(before, after map[string]string) []string {
	var d []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			d = append(d, "removed "+p)
		case a != b:
			d = append(d, "changed "+p+": "+b+" => "+a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "added "+p)
		}
	}
	sort.Strings(d)
	return d
}

// labTrace is what identifies a lab's leftovers after Down.
type labTrace struct {
	name     string
	stateDir string
	netns    map[string]bool // "net:[inode]" of the lab's namespaces
}

// traceLab records the lab's namespace identities while it is up.
func traceLab(t *testing.T, l *lab.Lab) labTrace {
	t.Helper()
	tr := labTrace{name: l.Name(), stateDir: l.StateDir(), netns: map[string]bool{}}
	for _, ns := range append([]string{l.Controller()}, hostNamespaces(l)...) {
		link, err := nsLink(ns)
		if err != nil {
			t.Fatalf("namespace %s: %v", ns, err)
		}
		tr.netns[link] = true
	}
	return tr
}

// hostNamespaces returns the network namespace of every lab host.
func hostNamespaces(l *lab.Lab) []string {
	var out []string
	for _, h := range l.Hosts() {
		out = append(out, h.Namespace())
	}
	return out
}

// nsLink returns "net:[inode]" of a named network namespace, the form
// /proc/<pid>/ns/net links to.
func nsLink(ns string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("net:[%d]", st.Ino), nil
}

// leftovers lists everything of the traced lab that still exists:
// namespaces, hosts files, the state directory, interfaces named after it
// in the root namespace, and processes in its namespaces or naming it.
func leftovers(tr labTrace) []string {
	var out []string
	if b, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, tr.name+"-") {
				out = append(out, "namespace "+line)
			}
		}
	}
	if m, _ := filepath.Glob("/etc/netns/" + tr.name + "-*"); len(m) > 0 {
		out = append(out, fmt.Sprintf("netns config %v", m))
	}
	if _, err := os.Stat(tr.stateDir); err == nil {
		out = append(out, "state dir "+tr.stateDir)
	}
	if b, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, tr.name) {
				out = append(out, "root interface "+line)
			}
		}
	}
	ents, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
			continue
		}
		link, _ := os.Readlink("/proc/" + e.Name() + "/ns/net")
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		cl := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		if tr.netns[link] || strings.Contains(cl, "sgerun-lab-init:"+tr.name+"-") || strings.Contains(cl, tr.stateDir+"/") {
			out = append(out, "process "+e.Name()+": "+cl)
		}
	}
	return out
}
