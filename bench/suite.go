package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SSHDRounds are the execd step on real sshd: a softstop and a start, each
// printing what it stands for and the address the host was reached at, so
// that an answer from the wrong host is caught.
var SSHDRounds = []string{
	"set -- $SSH_CONNECTION; echo softstop $3",
	"set -- $SSH_CONNECTION; echo start $3",
}

// SSHDExpect is host i's answer to round r of SSHDRounds.
func SSHDExpect(r, i int) HostResult {
	return HostResult{Stdout: fmt.Sprintf("%s %s\n", []string{"softstop", "start"}[r], SSHDAddr(i))}
}

// SimRounds is the one command of the simulated-cluster case.
var SimRounds = []string{"hostname"}

// SimFailEvery and SimFailCode: every 100th simulated host fails, so the
// check also covers how each tool reports exit codes.
const (
	SimFailEvery = 100
	SimFailCode  = 3
)

// SimExpect returns host i's answer to the simulated case's rounds.
func SimExpect(o SimOptions) func(r, i int) HostResult {
	return func(_, i int) HostResult {
		if o.SimFails(i) {
			return HostResult{Code: o.FailCode}
		}
		return HostResult{Stdout: SimName(o.Prefix, i) + "\n"}
	}
}

// Config is a whole benchmark.
type Config struct {
	// Bin is the sgerun binary; Work a scratch directory.
	Bin, Work string
	// Runs is how many times each tool runs in each case.
	Runs int
	// RealHosts (sshd) and SimHosts (simulated).
	RealHosts, SimHosts int
	// Port is sshd's port on every loopback address.
	Port int
	// User is the login user on sshd (default: the current user).
	User string
	// Fanout of every tool.
	Fanout int
	// SimFanouts are more fanouts for sgerun exec on the simulated hosts.
	SimFanouts []int
	// SimPdsh adds pdsh to the simulated case.
	SimPdsh bool
	// RSSRuns is how many /usr/bin/time -v runs measure sgerun's peak RSS
	// on the simulated hosts (0: none).
	RSSRuns int
	Log     io.Writer
}

// Row is one tool's figures in a case.
type Row struct {
	Label string
	Stats
}

// CaseResult is one case's rows, in the order of its tools.
type CaseResult struct {
	Name   string
	Hosts  int
	Rounds []string
	Fanout int
	Rows   []Row
}

// Row returns the row whose label starts with prefix, if any.
func (c CaseResult) Row(prefix string) (Row, bool) {
	for _, r := range c.Rows {
		if strings.HasPrefix(r.Label, prefix) {
			return r, true
		}
	}
	return Row{}, false
}

// Result is a finished benchmark.
type Result struct {
	Config  Config
	Started time.Time
	Took    time.Duration
	Real    CaseResult // the execd step on real sshd
	Sim     CaseResult // one command on simulated hosts
	SimRun  CaseResult // the two-step runbook on simulated hosts (sgerun only)
	RSS     []Row      // sgerun's peak RSS on simulated hosts
}

func collect(c Case, samples map[string][]Sample) CaseResult {
	cr := CaseResult{Name: c.Name, Hosts: len(c.Cluster.Names), Rounds: c.Rounds, Fanout: c.Fanout}
	for _, t := range c.Tools {
		cr.Rows = append(cr.Rows, Row{Label: t.Label(), Stats: Summarize(samples[t.Label()])})
	}
	return cr
}

// RunSuite runs the whole benchmark: real sshd first, then the simulated
// cluster. Every server it starts is stopped before it returns.
func RunSuite(ctx context.Context, cfg Config) (*Result, error) {
	res := &Result{Config: cfg, Started: time.Now()}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.RealHosts > 0 {
		dir := filepath.Join(cfg.Work, "sshd")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		cl, err := StartSSHD(SSHDOptions{Hosts: cfg.RealHosts, Port: cfg.Port, Dir: dir, User: cfg.User})
		if err != nil {
			return nil, err
		}
		c := Case{Name: fmt.Sprintf("execd step, %d sshd hosts", cfg.RealHosts), Cluster: cl,
			Rounds: SSHDRounds, Expect: SSHDExpect, Fanout: cfg.Fanout,
			Tools: []Tool{SgerunRun{Bin: cfg.Bin, Dir: dir}, Pdsh{}, Clush{}}}
		samples, err := Measure(ctx, c, cfg.Runs, cfg.Log)
		if cerr := cl.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		res.Real = collect(c, samples)
	}
	if cfg.SimHosts > 0 {
		dir := filepath.Join(cfg.Work, "sim")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		o := SimOptions{Hosts: cfg.SimHosts, Dir: dir, FailEvery: SimFailEvery, FailCode: SimFailCode}
		cl, err := StartSim(o)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		tools := []Tool{SgerunExec{Bin: cfg.Bin, Dir: dir}}
		for _, f := range cfg.SimFanouts {
			if f != cfg.Fanout {
				tools = append(tools, SgerunExec{Bin: cfg.Bin, Dir: dir, Fanout: f})
			}
		}
		tools = append(tools, Clush{})
		if cfg.SimPdsh {
			tools = append(tools, Pdsh{})
		}
		c := Case{Name: fmt.Sprintf("one command, %d simulated hosts", cfg.SimHosts), Cluster: cl,
			Rounds: SimRounds, Expect: SimExpect(o), Fanout: cfg.Fanout, Tools: tools}
		samples, err := Measure(ctx, c, cfg.Runs, cfg.Log)
		if err != nil {
			return nil, err
		}
		res.Sim = collect(c, samples)

		two := Case{Name: fmt.Sprintf("two-step runbook, %d simulated hosts", cfg.SimHosts), Cluster: cl,
			Rounds: []string{"hostname", "hostname"}, Expect: SimExpect(o), Fanout: cfg.Fanout,
			Tools: []Tool{SgerunRun{Bin: cfg.Bin, Dir: dir}}}
		samples, err = Measure(ctx, two, cfg.Runs, cfg.Log)
		if err != nil {
			return nil, err
		}
		res.SimRun = collect(two, samples)

		if cfg.RSSRuns > 0 {
			timev := []string{"/usr/bin/time", "-v"}
			for _, t := range []Tool{SgerunExec{Bin: cfg.Bin, Dir: dir, Wrap: timev}, SgerunRun{Bin: cfg.Bin, Dir: dir, Wrap: timev}} {
				rc := c
				if _, ok := t.(SgerunRun); ok {
					rc = two
				}
				rc.Tools = []Tool{t}
				samples, err := Measure(ctx, rc, cfg.RSSRuns, cfg.Log)
				if err != nil {
					return nil, err
				}
				res.RSS = append(res.RSS, Row{Label: t.Label(), Stats: Summarize(samples[t.Label()])})
			}
		}
	}
	res.Took = time.Since(res.Started)
	return res, nil
}
