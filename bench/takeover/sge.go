package takeover

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
)

// probeTimeout bounds one probe command (a hung qmaster holds qping for
// its own 5 s time-out).
const probeTimeout = 8 * time.Second

// readAct returns the host act_qmaster names (the file is shared by every
// lab host), or "".
func readAct(l *lab.Lab) string {
	b, err := os.ReadFile(filepath.Join(l.CommonDir(), "act_qmaster"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// qping returns the status of target's qmaster asked from host from, or -1.
func qping(ctx context.Context, l *lab.Lab, from, target string) int {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	st, err := l.QpingStatus(cctx, from, target)
	if err != nil {
		return -1
	}
	return st
}

// reported returns the exec hosts for which qhost, run on from, shows a
// load value.
func reported(ctx context.Context, l *lab.Lab, from string) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, _, err := l.Exec(cctx, from, "qhost")
	if err != nil {
		return nil, fmt.Errorf("qhost: %w", err)
	}
	execs := l.ExecHosts()
	missing := sge.NotReporting(out, execs)
	var rep []string
	for _, h := range execs {
		if !slices.Contains(missing, h) {
			rep = append(rep, h)
		}
	}
	return rep, nil
}

// qstat returns job id -> state of every job qstat -u '*' lists on from.
func qstat(ctx context.Context, l *lab.Lab, from string) (map[int]string, error) {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, _, err := l.Exec(cctx, from, "qstat -u '*'")
	if err != nil {
		return nil, fmt.Errorf("qstat: %w", err)
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
		jobs[id] = f[4]
	}
	return jobs, nil
}

// qacctExit returns the exit_status qacct lists for a job, if any yet.
func qacctExit(ctx context.Context, l *lab.Lab, from string, id int) (int, bool) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, _, err := l.Exec(cctx, from, "qacct -j "+strconv.Itoa(id))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "exit_status" {
			c, err := strconv.Atoi(f[1])
			return c, err == nil
		}
	}
	return 0, false
}

// submit submits n jobs as the lab's user from the witness, each a job
// script that sleeps for sleep; with after > 0 they become eligible only
// that long from now (qsub -a).
func (tr *trial) submit(ctx context.Context, n int, sleep, after time.Duration) ([]int, error) {
	l := tr.l
	dir, err := os.MkdirTemp(l.WorkDir(), "jobs-")
	if err != nil {
		return nil, fmt.Errorf("job dir: %w", err)
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		return nil, fmt.Errorf("job dir: %w", err)
	}
	script := filepath.Join(dir, "job.sh")
	body := "#!/bin/sh\nsleep " + strconv.Itoa(int(sleep.Seconds())) + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return nil, fmt.Errorf("job script: %w", err)
	}
	cmd := ""
	for i := 0; i < n; i++ {
		q := shell.Join("qsub", "-terse", "-N", "tk"+strconv.Itoa(i), "-o", "/dev/null", "-e", "/dev/null")
		if after > 0 {
			at := time.Now().Add(after).Add(time.Second - 1).Truncate(time.Second)
			q += " -a " + at.UTC().Format("200601021504.05")
		}
		cmd += q + " " + shell.Quote(script) + "\n"
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, _, err := l.ExecAs(cctx, tr.witness, l.User(), "set -e\nexport TZ=UTC\n"+cmd)
	if err != nil {
		return nil, fmt.Errorf("qsub: %w", err)
	}
	var ids []int
	for _, f := range strings.Fields(out) {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("qsub: job id %q: %w", f, err)
		}
		ids = append(ids, id)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("qsub: %d job ids for %d jobs: %q", len(ids), n, out)
	}
	return ids, nil
}

// waitRunning waits until the master lists every job as running.
func (tr *trial) waitRunning(ctx context.Context, jobs []int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		states, err := qstat(ctx, tr.l, tr.witness)
		if err == nil {
			all := true
			for _, id := range jobs {
				if states[id] != "r" {
					all = false
				}
			}
			if all {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("jobs %v not all running after 2 min: %v (%v)", jobs, states, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func marshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
