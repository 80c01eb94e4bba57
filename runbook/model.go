// Package runbook is sgerun's runbook language: the model of a runbook (an
// ordered list of steps, each of a built-in kind, on hosts an inventory
// names), its strict parser and its templates. Package plan compiles a
// runbook against an inventory; package engine runs the plan.
package runbook

import (
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/steps"
	"go.yaml.in/yaml/v3"
)

// Runbook is a parsed runbook.
type Runbook struct {
	// File is the path (or embedded name) the runbook was read from.
	File        string
	Name        string
	Description string
	// Vars are the declared variables with their defaults. `--var k=v`
	// overrides declared variables only.
	Vars map[string]any
	// VarOrder lists the variable names in file order.
	VarOrder []string
	Steps    []*Step
	// Source is the runbook's text, kept in the journal so a run can be
	// resumed or rolled back exactly as it was written.
	Source []byte
}

// Step is one step of a runbook.
type Step struct {
	// Index is the step's 0-based position.
	Index int
	Name  string
	// On selects the hosts: roles, host names, pdsh ranges or "all".
	// Empty for controller-side kinds (local, assert).
	On []string
	// Kind is the built-in kind; Params its parameters as written.
	Kind   string
	Params *yaml.Node
	// When is an optional condition template; the step is skipped when it
	// renders "false".
	When string
	// Timeout bounds each host's attempt (0: none).
	Timeout time.Duration
	// TimeoutText is a templated timeout ("{{ .policy.qmaster_start_timeout }}"),
	// rendered for each host when the step runs.
	TimeoutText string
	// Retries is how many times a failed host is tried again.
	Retries int
	// RetryDelay is the pause between tries (default 2s).
	RetryDelay time.Duration
	// Parallel caps concurrent hosts (0: the inventory's policy.fanout).
	Parallel int
	// Tolerate is how many hosts may fail before the step fails.
	Tolerate inventory.Tolerance
	// TolerateText is a templated tolerate ("{{ .policy.exec_tolerate }}"),
	// rendered when the step runs.
	TolerateText string
	// Register names the result for later steps: {{ .reg.NAME }}.
	Register string
	// Undo is an explicit compensating action; kinds with an automatic
	// undo (put, edit_kv, copy_dir) need none.
	Undo *Undo
	// Commit makes this step the run's commit point: once it succeeds, no
	// later failure is rolled back automatically; the run goes on with
	// its remaining steps and ends committed with failures.
	Commit bool
	// Line and Col locate the step in the runbook.
	Line, Col int
}

// Undo is a step's explicit compensating action, itself a built-in kind.
type Undo struct {
	Kind   string
	Params *yaml.Node
}

// kindOf returns a runbook kind's descriptor; undo-only kinds are not
// runbook kinds.
func kindOf(name string) (steps.Kind, bool) {
	k, ok := steps.Kinds()[name]
	return k, ok && !k.UndoOnly
}
