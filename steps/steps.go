// Package steps holds sgerun's built-in step kinds. A kind turns the
// parameters written in a runbook into an action on one target.Target.
// Steps never talk SSH themselves: a Target is all they see, and a dry run
// hands them a Target that records mutations instead of performing them.
package steps

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/yamlx"
)

// ErrRefused marks a failure that is a deliberate refusal by a safety check
// (a failed assert) rather than a broken command. The CLI maps it to exit 3.
var ErrRefused = errors.New("refused")

// Runtime is what a step may need from the engine beyond its target:
// callbacks into the run (reach or connect another host, journal an undo
// ahead, ask the operator). In a dry run the engine hands a Runtime whose
// Connect targets record too, and without Prepare and Confirm.
type Runtime struct {
	// Reach checks SSH reachability of an inventory host from the controller.
	Reach func(ctx context.Context, host string) error
	// Prepare journals the undo of a change before the change is made
	// (write-ahead), so that a crash between the change and the end of the
	// step still leaves `sgerun rollback` what it needs. Nil in dry runs
	// and tests: then nothing is journaled ahead.
	Prepare func(rec *target.UndoRecord) error
	// Connect returns the target of another inventory host, for kinds that
	// gather evidence from several hosts. A non-empty address dials that
	// address instead of the host's own (its fence network).
	Connect func(ctx context.Context, host, address string) (target.Target, error)
	// Confirm asks the operator a question mid-run and reports whether
	// they typed answer. Nil when nobody can answer (--yes, watch, cron):
	// then a step that needs a yes refuses.
	Confirm func(ctx context.Context, question, answer string) (bool, error)
}

// ErrStopRun ends a run early and successfully (the stop kind), e.g. when
// a takeover finds the shadow already serving as master.
var ErrStopRun = errors.New("stop run")

// Result is what a step did on one host.
type Result struct {
	target.Output
	// Data holds kind-specific values, visible to later steps through
	// register (see each kind's DataKeys).
	Data map[string]any `json:"data,omitempty"`
	// Undo reverts the change on this host; nil when nothing needs undoing.
	Undo *target.UndoRecord `json:"undo,omitempty"`
	// Changed is false when the step found the host already as wanted.
	Changed bool `json:"changed"`
	// Warning is a line the operator must see in the step's result, such
	// as a takeover going on without a fence.
	Warning string `json:"warning,omitempty"`
}

// Spec is one step's parameters, rendered for one host.
type Spec interface {
	// Mutates reports whether the step changes a host.
	Mutates() bool
	// Do performs the step on t.
	Do(ctx context.Context, t target.Target, env Runtime) (Result, error)
}

// Planner is an optional ability of a Spec: in a dry run the engine calls
// Plan instead of Do, with a Target that records mutations instead of
// performing them. A kind implements it when its dry run must differ from
// Do on a recording target, e.g. to skip checks of a change that was only
// planned. Kinds without it run Do on the recording target.
type Planner interface {
	Plan(ctx context.Context, t target.Target, env Runtime) (Result, error)
}

// Kind describes one built-in step kind.
type Kind struct {
	Name string
	// Doc is a one-line description for help output.
	Doc string
	// Local kinds run on the controller and take no `on:`.
	Local bool
	// ShellKeys lists the parameter keys whose values are shell text; "" is
	// the scalar shorthand. Templates in them must quote every value.
	ShellKeys []string
	// CondKeys lists the parameter keys holding conditions: a bare
	// expression ("eq .reg.x.rc 0") or a template rendering true/false.
	CondKeys []string
	// DataKeys lists the keys a registered result's data holds.
	DataKeys []string
	// UndoOnly kinds appear in undo records, not in runbooks.
	UndoOnly bool
	// Recheck kinds read the world to decide whether the run may go on
	// (gates, locks, asserts): a resumed run runs them again.
	Recheck bool
	// New decodes rendered parameters.
	New func(params *yaml.Node) (Spec, error)
}

// Kinds returns the built-in step kinds by name. The map is fresh on every
// call.
func Kinds() map[string]Kind {
	list := []Kind{
		runKind(), scriptKind(), localKind(), putKind(), editKVKind(), copyDirKind(),
		waitKind(), probeKind(), assertKind(), restoreFileKind(), removeDirKind(), gateKind(), lockFileKind(), unlockFileKind(), fenceKind(), stopKind(), reachableKind(),
		// the SGE operations of the takeover and takeback playbooks
		sgeBootstrapKind(), sgeCopySpoolKind(), sgeRemoveSpoolCopyKind(), sgeCommonSharedKind(),
		sgeStartQmasterKind(), sgeStopQmasterKind(), sgeShutdownQmasterKind(), sgeRestartExecdKind(), sgeExecdReportingKind(),
		sgeListJobsKind(), sgeJobsKnownKind(), sgeJobsAccountedKind(), sgeJobsInTransferKind(), sgeRestoreAutostartKind(),
	}
	m := make(map[string]Kind, len(list))
	for _, k := range list {
		m[k.Name] = k
	}
	return m
}

// KindNames lists the kinds a runbook may use, sorted.
func KindNames() []string {
	var names []string
	for name, k := range Kinds() {
		if !k.UndoOnly {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// decodeStrict decodes a mapping node into v with yamlx, refusing unknown
// keys; the first problem is returned as a *PosError with Shape set.
func decodeStrict(node *yaml.Node, v any) error {
	if node == nil || node.Kind != yaml.MappingNode {
		pe := &PosError{Msg: "parameters must be a mapping", Shape: true}
		if node != nil {
			pe.Line, pe.Col = node.Line, node.Column
		}
		return pe
	}
	l := &diag.List{}
	if _, ok := (yamlx.Decoder{List: l, Root: "parameters"}).Decode(node, v); ok {
		return nil
	}
	_ = l.Err() // sorts by position
	e := l.Errors[0]
	return &PosError{Line: e.Line, Col: e.Col, Msg: e.Msg, Shape: true}
}

// PosError is a parameter error at a position inside the runbook.
type PosError struct {
	Line, Col int
	Msg       string
	// Shape is true for errors of structure (unknown keys, wrong types),
	// which do not depend on the values templates render at run time.
	Shape bool
}

func (e *PosError) Error() string { return e.Msg }

func posErr(n *yaml.Node, format string, args ...any) error {
	return &PosError{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// require returns an error naming key when value is empty.
func require(node *yaml.Node, key, value string) error {
	if value == "" {
		return posErr(node, "%q is required", key)
	}
	return nil
}

// prepare journals rec ahead of a change when the engine asks for it.
func (env Runtime) prepare(rec *target.UndoRecord) error {
	if env.Prepare == nil {
		return nil
	}
	if err := env.Prepare(rec); err != nil {
		return fmt.Errorf("journal undo: %w", err)
	}
	return nil
}
