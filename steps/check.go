package steps

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// waitSpec polls a read-only command until it succeeds.
type waitSpec struct {
	Cmd      string        `yaml:"cmd"`
	Match    string        `yaml:"match"`
	Interval time.Duration `yaml:"interval"`
	Deadline time.Duration `yaml:"deadline"`
	re       *regexp.Regexp
}

func (s *waitSpec) Mutates() bool { return false }

// Do polls until the condition holds or the deadline passes.
func (s *waitSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return s.poll(ctx, t, false)
}

// Plan tries once: in a dry run the change a wait waits for was only
// planned, so polling until the deadline would only delay the plan.
func (s *waitSpec) Plan(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return s.poll(ctx, t, true)
}

func (s *waitSpec) poll(ctx context.Context, t target.Target, once bool) (Result, error) {
	start := time.Now()
	deadline := start.Add(s.Deadline)
	attempts := 0
	for {
		attempts++
		out, err := t.Query(ctx, s.Cmd, nil)
		res := Result{Output: out, Data: map[string]any{"attempts": attempts, "match": ""}}
		if err != nil {
			return res, err
		}
		m, ok := matches(s.re, out)
		res.Data["match"] = m
		if ok {
			return res, nil
		}
		if once || !time.Now().Add(s.Interval).Before(deadline) {
			return res, fmt.Errorf("condition not met after %d attempt(s) in %s, deadline %s (last exit status %d%s)",
				attempts, time.Since(start).Round(100*time.Millisecond), s.Deadline, out.ExitCode, lastLine(out.Stderr+"\n"+out.Stdout))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(s.Interval):
		}
	}
}

// matches reports whether out succeeded and, when re is set, its stdout
// matched; it returns the first capture group (or the whole match).
func matches(re *regexp.Regexp, out target.Output) (string, bool) {
	if out.ExitCode != 0 {
		return "", false
	}
	if re == nil {
		return "", true
	}
	m := re.FindStringSubmatch(out.Stdout)
	if m == nil {
		return "", false
	}
	if len(m) > 1 {
		return m[1], true
	}
	return m[0], true
}

func compileMatch(n *yaml.Node, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, posErr(n, "bad match regexp: %v", err)
	}
	return re, nil
}

func waitKind() Kind {
	return Kind{
		Name:      "wait",
		Doc:       "poll a read-only command (and optional stdout regexp) until it succeeds, every interval until the deadline",
		ShellKeys: []string{"cmd"},
		DataKeys:  []string{"attempts", "match"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &waitSpec{Interval: 2 * time.Second, Deadline: time.Minute}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := require(n, "cmd", s.Cmd); err != nil {
				return nil, err
			}
			if s.Interval <= 0 || s.Deadline <= 0 {
				return nil, posErr(n, "interval and deadline must be positive")
			}
			var err error
			s.re, err = compileMatch(n, s.Match)
			return s, err
		},
	}
}

// probeSpec runs read-only checks and records each result.
type probeSpec struct {
	// TCP is "host:port", connected to from the target host.
	TCP string `yaml:"tcp"`
	// SSH is an inventory host whose SSH reachability the controller checks.
	SSH string `yaml:"ssh"`
	// Cmd is a read-only command; it passes on exit 0 and, with Match, when
	// stdout matches.
	Cmd   string `yaml:"cmd"`
	Match string `yaml:"match"`
	// Timeout bounds each check (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// Require makes the step fail when any check fails (default true). Set
	// it to false to collect evidence for a later assert.
	Require *bool `yaml:"require"`
	re      *regexp.Regexp
}

func (s *probeSpec) Mutates() bool { return false }

func (s *probeSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	res := Result{Data: map[string]any{"ok": true}}
	var failed []string
	record := func(name string, ok bool, detail string) {
		res.Data[name] = ok
		if !ok {
			res.Data["ok"] = false
			failed = append(failed, name+": "+detail)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, s.Timeout+2*time.Second)
	defer cancel()
	if s.TCP != "" {
		host, port, _ := net.SplitHostPort(s.TCP)
		secs := strconv.Itoa(int(s.Timeout.Seconds() + 0.999))
		cmd := "timeout " + secs + " bash -c 'exec 3<>/dev/tcp/\"$0\"/\"$1\"' " + shell.Quote(host) + " " + shell.Quote(port)
		out, err := t.Query(cctx, cmd, nil)
		switch {
		case err != nil:
			return res, err
		default:
			record("tcp", out.ExitCode == 0, fmt.Sprintf("connect %s from %s failed (exit %d)", s.TCP, t.Name(), out.ExitCode))
		}
	}
	if s.SSH != "" {
		if env.Reach == nil {
			record("ssh", false, "no SSH transport")
		} else if err := env.Reach(cctx, s.SSH); err != nil {
			record("ssh", false, err.Error())
		} else {
			record("ssh", true, "")
		}
	}
	if s.Cmd != "" {
		out, err := t.Query(cctx, s.Cmd, nil)
		if err != nil {
			return res, err
		}
		res.Output = out
		m, ok := matches(s.re, out)
		res.Data["match"] = m
		record("cmd", ok, fmt.Sprintf("exit %d%s", out.ExitCode, lastLine(out.Stderr)))
	}
	if len(failed) > 0 && (s.Require == nil || *s.Require) {
		return res, fmt.Errorf("probe failed: %s", strings.Join(failed, "; "))
	}
	return res, nil
}

func probeKind() Kind {
	return Kind{
		Name:      "probe",
		Doc:       "read-only checks: tcp connect from the host, ssh reachability from the controller, a command matched by regexp",
		ShellKeys: []string{"cmd"},
		DataKeys:  []string{"ok", "tcp", "ssh", "cmd", "match"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &probeSpec{Timeout: 5 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if s.TCP == "" && s.SSH == "" && s.Cmd == "" {
				return nil, posErr(n, "probe needs tcp, ssh or cmd")
			}
			if s.TCP != "" {
				host, port, err := net.SplitHostPort(s.TCP)
				if p, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || p < 1 || p > 65535 {
					return nil, posErr(n, "tcp %q must be host:port", s.TCP)
				}
			}
			if s.Timeout <= 0 {
				return nil, posErr(n, "timeout must be positive")
			}
			var err error
			s.re, err = compileMatch(n, s.Match)
			return s, err
		},
	}
}

// assertSpec fails the run when its rendered condition is false.
type assertSpec struct {
	That string `yaml:"that"`
	Msg  string `yaml:"msg"`
}

func (s *assertSpec) Mutates() bool { return false }

func (s *assertSpec) Do(context.Context, target.Target, Runtime) (Result, error) {
	switch strings.TrimSpace(s.That) {
	case "true":
		return Result{Data: map[string]any{"ok": true}}, nil
	case "false":
		msg := s.Msg
		if msg == "" {
			msg = "assertion failed"
		}
		return Result{Data: map[string]any{"ok": false}}, fmt.Errorf("%w: %s", ErrRefused, msg)
	}
	return Result{}, fmt.Errorf("assert condition rendered %q, want true or false", s.That)
}

func assertKind() Kind {
	return Kind{
		Name:     "assert",
		Recheck:  true,
		Doc:      "fail the run (exit 3) with msg when the condition `that` over registered values is false",
		Local:    true,
		CondKeys: []string{"that"},
		DataKeys: []string{"ok"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &assertSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, require(n, "that", s.That)
		},
	}
}
