package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// commandSpec is the shared shape of run, script and local.
type commandSpec struct {
	Cmd      string `yaml:"cmd"`
	ReadOnly bool   `yaml:"readonly"`
	// OKCodes lists exit codes counted as success (default [0]).
	OKCodes []int `yaml:"ok_codes"`
	// Shell runs a script; default "sh -s".
	Shell string `yaml:"shell"`
	// script is true for the script kind: Cmd is sent over stdin.
	script bool
}

func (s *commandSpec) Mutates() bool { return !s.ReadOnly }

func (s *commandSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	cmd, stdin := s.Cmd, []byte(nil)
	if s.script {
		cmd, stdin = s.Shell, []byte(s.Cmd)
		if cmd == "" {
			cmd = "sh -s"
		}
	}
	run := t.Exec
	if s.ReadOnly {
		run = t.Query
	}
	out, err := run(ctx, cmd, stdin)
	res := Result{Output: out, Changed: !s.ReadOnly, Warning: warnings(out.Stdout)}
	if s.script {
		res.Output.Cmd = cmd + " <<script\n" + s.Cmd + "\nscript"
	}
	if err != nil {
		return res, err
	}
	if !okCode(out.ExitCode, s.OKCodes) {
		return res, fmt.Errorf("exit status %d%s", out.ExitCode, lastLine(out.Stderr))
	}
	return res, nil
}

// WarningPrefix starts a line of a command's stdout that the operator must
// see with the step's result (Result.Warning), not only in -v output.
const WarningPrefix = "sgerun-warning: "

// warnings collects the WarningPrefix lines of stdout.
func warnings(stdout string) string {
	var ws []string
	for _, line := range strings.Split(stdout, "\n") {
		if w, ok := strings.CutPrefix(strings.TrimSpace(line), WarningPrefix); ok {
			ws = append(ws, w)
		}
	}
	return strings.Join(ws, "\n")
}

func okCode(code int, ok []int) bool {
	if len(ok) == 0 {
		return code == 0
	}
	for _, c := range ok {
		if c == code {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}

// newCommand accepts a scalar (the command) or a mapping.
func newCommand(node *yaml.Node, script bool) (Spec, error) {
	s := &commandSpec{script: script}
	if node != nil && node.Kind == yaml.ScalarNode {
		s.Cmd = node.Value
	} else if err := decodeStrict(node, s); err != nil {
		return nil, err
	}
	if strings.TrimSpace(s.Cmd) == "" {
		return nil, posErr(node, "command is empty")
	}
	return s, nil
}

func runKind() Kind {
	return Kind{
		Name:      "run",
		Doc:       "run a shell command on each host (mutating unless readonly: true)",
		ShellKeys: []string{"", "cmd", "shell"},
		New:       func(n *yaml.Node) (Spec, error) { return newCommand(n, false) },
	}
}

func scriptKind() Kind {
	return Kind{
		Name:      "script",
		Doc:       "send a multi-line script to `sh -s` over stdin (mutating unless readonly: true)",
		ShellKeys: []string{"", "cmd", "shell"},
		New:       func(n *yaml.Node) (Spec, error) { return newCommand(n, true) },
	}
}

func localKind() Kind {
	return Kind{
		Name:      "local",
		Doc:       "run a shell command on the controller (mutating unless readonly: true)",
		Local:     true,
		ShellKeys: []string{"", "cmd", "shell"},
		New:       func(n *yaml.Node) (Spec, error) { return newCommand(n, false) },
	}
}
