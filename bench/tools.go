package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/journal"
)

// HostResult is what one host answered to one command.
type HostResult struct {
	Stdout string
	Code   int
}

// Run is one measured invocation of a tool: every round of a case.
type Run struct {
	// Wall is the time from starting the tool's first process to the end
	// of its last.
	Wall time.Duration
	// ClientCPU is the user and system time of the tool's processes and
	// of every process they waited for (ssh clients).
	ClientCPU time.Duration
	// MaxRSSKB is the largest resident set of the tool's processes.
	MaxRSSKB int64
	// Rounds holds each round's result by host name.
	Rounds []map[string]HostResult
}

// Tool runs commands on every host of a Cluster, at most fanout at a time.
type Tool interface {
	// Label names the tool as the table shows it.
	Label() string
	// Run runs the rounds one after another, each on every host.
	Run(ctx context.Context, c *Cluster, rounds []string, fanout int) (Run, error)
}

// proc is one finished process.
type proc struct {
	stdout, stderr []byte
	cpu            time.Duration
	maxRSSKB       int64
}

var timeRSS = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)

// runProc runs a command to completion with stdin from /dev/null. A
// non-zero exit is not an error: the caller checks the hosts' results.
func runProc(ctx context.Context, env []string, name string, args ...string) (proc, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	p := proc{stdout: out.Bytes(), stderr: errOut.Bytes()}
	if ps := cmd.ProcessState; ps != nil {
		p.cpu = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			p.maxRSSKB = ru.Maxrss
		}
	}
	// Under /usr/bin/time -v, take its figure (the same ru_maxrss).
	if m := timeRSS.FindSubmatch(p.stderr); m != nil {
		p.maxRSSKB, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	if ctx.Err() != nil {
		return p, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	return p, nil
}

// rounds runs one process per round and collects their results.
func rounds(ctx context.Context, rs []string, one func(cmd string) (proc, map[string]HostResult, error)) (Run, error) {
	var r Run
	start := time.Now()
	for _, cmd := range rs {
		p, res, err := one(cmd)
		if err != nil {
			return r, err
		}
		r.ClientCPU += p.cpu
		r.MaxRSSKB = max(r.MaxRSSKB, p.maxRSSKB)
		r.Rounds = append(r.Rounds, res)
	}
	r.Wall = time.Since(start)
	return r, ctx.Err()
}

// Pdsh is `pdsh -R ssh -f N -w ^HOSTS CMD`, once per round, with
// PDSH_SSH_ARGS_APPEND="-F CONFIG" so that ssh reads the cluster's config.
type Pdsh struct{}

func (Pdsh) Label() string { return "pdsh -R ssh" }

var pdshExit = regexp.MustCompile(`^pdsh@[^:]*: (\S+): ssh exited with exit code (\d+)$`)

func (Pdsh) Run(ctx context.Context, c *Cluster, rs []string, fanout int) (Run, error) {
	return rounds(ctx, rs, func(cmd string) (proc, map[string]HostResult, error) {
		p, err := runProc(ctx, []string{"PDSH_SSH_ARGS_APPEND=-F " + c.Files.SSHConfig, "SSH_AUTH_SOCK="},
			"pdsh", "-R", "ssh", "-f", strconv.Itoa(fanout), "-w", "^"+c.Files.HostList, cmd)
		if err != nil {
			return p, nil, err
		}
		return p, parsePrefixed(c.Names, p.stdout, p.stderr, pdshExit), nil
	})
}

// Clush is `clush -f N --hostfile HOSTS -o "-F CONFIG" CMD`, once per round.
type Clush struct{}

func (Clush) Label() string { return "clush" }

var clushExit = regexp.MustCompile(`^clush: (\S+): exited with exit code (\d+)$`)

func (Clush) Run(ctx context.Context, c *Cluster, rs []string, fanout int) (Run, error) {
	return rounds(ctx, rs, func(cmd string) (proc, map[string]HostResult, error) {
		p, err := runProc(ctx, []string{"SSH_AUTH_SOCK="}, "clush", "--nostdin", "-f", strconv.Itoa(fanout),
			"--hostfile", c.Files.HostList, "-o", "-F "+c.Files.SSHConfig, cmd)
		if err != nil {
			return p, nil, err
		}
		return p, parsePrefixed(c.Names, p.stdout, p.stderr, clushExit), nil
	})
}

// parsePrefixed reads "host: line" output, as pdsh and clush print it, and
// the tool's exit code lines on stderr (exit matches host and code). A host
// with no exit code line exited 0.
func parsePrefixed(names []string, stdout, stderr []byte, exit *regexp.Regexp) map[string]HostResult {
	res := make(map[string]HostResult, len(names))
	out := map[string]*strings.Builder{}
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		host, line, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			host, line = strings.TrimSuffix(sc.Text(), ":"), ""
		}
		if out[host] == nil {
			out[host] = &strings.Builder{}
		}
		out[host].WriteString(line + "\n")
	}
	codes := map[string]int{}
	sc = bufio.NewScanner(bytes.NewReader(stderr))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		if m := exit.FindStringSubmatch(sc.Text()); m != nil {
			codes[m[1]], _ = strconv.Atoi(m[2])
		}
	}
	for host, b := range out {
		res[host] = HostResult{Stdout: b.String(), Code: codes[host]}
	}
	for host, code := range codes {
		if _, ok := res[host]; !ok {
			res[host] = HostResult{Code: code}
		}
	}
	for _, h := range names {
		if _, ok := res[h]; !ok {
			res[h] = HostResult{}
		}
	}
	return res
}

// SgerunExec is `sgerun exec --on all -f N -o json -- CMD`, once per round.
type SgerunExec struct {
	Bin string
	// Dir is a scratch directory (the state dir).
	Dir string
	// Fanout, when set, replaces the case's fanout.
	Fanout int
	// Wrap, when set, runs sgerun under these words (e.g. /usr/bin/time -v).
	Wrap []string
}

func (t SgerunExec) Label() string {
	if t.Fanout > 0 {
		return fmt.Sprintf("sgerun exec -f %d", t.Fanout)
	}
	return "sgerun exec"
}

func (t SgerunExec) Run(ctx context.Context, c *Cluster, rs []string, fanout int) (Run, error) {
	if t.Fanout > 0 {
		fanout = t.Fanout
	}
	return rounds(ctx, rs, func(cmd string) (proc, map[string]HostResult, error) {
		args := append(append([]string{}, t.Wrap...), t.Bin, "--state-dir", filepath.Join(t.Dir, "state"),
			"exec", "-i", c.Files.Inventory, "--on", "all", "-f", strconv.Itoa(fanout), "-o", "json", "--", cmd)
		p, err := runProc(ctx, sgerunEnv, args[0], args[1:]...)
		if err != nil {
			return p, nil, err
		}
		var got struct {
			Hosts []struct {
				Host     string `json:"host"`
				ExitCode int    `json:"exit_code"`
				Stdout   string `json:"stdout"`
				Error    string `json:"error"`
			} `json:"hosts"`
		}
		if err := json.Unmarshal(p.stdout, &got); err != nil {
			return p, nil, fmt.Errorf("sgerun exec: json: %w\nstderr:\n%s", err, p.stderr)
		}
		res := make(map[string]HostResult, len(got.Hosts))
		for _, h := range got.Hosts {
			code := h.ExitCode
			if h.Error != "" {
				code = 255
			}
			res[h.Host] = HostResult{Stdout: h.Stdout, Code: code}
		}
		return p, res, nil
	})
}

var sgerunEnv = []string{"SSH_AUTH_SOCK=", "NO_COLOR=1"}

// SgerunRun is `sgerun run` of a runbook with one step per round, all on
// every host over one connection per host; the results are read back
// from the run's journal.
type SgerunRun struct {
	Bin string
	Dir string
	// Wrap, when set, runs sgerun under these words.
	Wrap []string
}

func (t SgerunRun) Label() string { return "sgerun run" }

// Runbook returns a runbook with one `run` step per round, each on every
// execd host, fanout at a time, tolerating 10% failed hosts.
func Runbook(rs []string, fanout int) string {
	var b strings.Builder
	b.WriteString("name: bench\ndescription: one step per round, every execd host, one connection per host\nsteps:\n")
	for i, cmd := range rs {
		q, _ := json.Marshal(cmd)
		fmt.Fprintf(&b, "  - name: round %d\n    on: execd\n    parallel: %d\n    tolerate: 10%%\n    run: {cmd: %s}\n",
			i+1, fanout, q)
	}
	return b.String()
}

func (t SgerunRun) Run(ctx context.Context, c *Cluster, rs []string, fanout int) (Run, error) {
	rbPath := filepath.Join(t.Dir, "bench-runbook.yaml")
	if err := os.WriteFile(rbPath, []byte(Runbook(rs, fanout)), 0o600); err != nil {
		return Run{}, err
	}
	start := time.Now()
	args := append(append([]string{}, t.Wrap...), t.Bin, "--state-dir", filepath.Join(t.Dir, "state"),
		"run", rbPath, "-i", c.Files.Inventory, "-o", "json")
	p, err := runProc(ctx, sgerunEnv, args[0], args[1:]...)
	r := Run{Wall: time.Since(start), ClientCPU: p.cpu, MaxRSSKB: p.maxRSSKB}
	if err != nil {
		return r, err
	}
	var rep struct {
		Dir    string `json:"dir"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(p.stdout, &rep); err != nil || rep.Dir == "" {
		return r, fmt.Errorf("sgerun run: no report (%v)\nstdout:\n%s\nstderr:\n%s", err, p.stdout, p.stderr)
	}
	_, events, err := journal.Read(rep.Dir)
	if err != nil {
		return r, fmt.Errorf("sgerun run: %w", err)
	}
	r.Rounds = make([]map[string]HostResult, len(rs))
	for i := range r.Rounds {
		r.Rounds[i] = map[string]HostResult{}
	}
	for _, ev := range events {
		if ev.Type != journal.HostEnd || ev.Step < 0 || ev.Step >= len(rs) {
			continue
		}
		hr := HostResult{Code: 255}
		if ev.Output != nil {
			hr = HostResult{Stdout: ev.Output.Stdout, Code: ev.Output.ExitCode}
		}
		r.Rounds[ev.Step][ev.Host] = hr
	}
	// A run that failed beyond tolerance stops early; the check reports
	// the missing hosts.
	return r, os.RemoveAll(rep.Dir)
}
