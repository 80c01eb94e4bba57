// Package engine runs a compiled plan (package plan) on its hosts: step by
// step, hosts in parallel, every event journaled before and after, with
// rollback of recorded changes in reverse order on failure. A Session wraps
// one run end to end: lock, journal, hooks, engine.
package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// Errors a run ends with; the CLI maps them to exit codes.
var (
	// ErrStepFailed: a step failed beyond its tolerance and rollback
	// completed (exit 1).
	ErrStepFailed = errors.New("step failed")
	// ErrRefused: a safety gate refused (exit 3). It is steps.ErrRefused.
	ErrRefused = steps.ErrRefused
	// ErrRollbackIncomplete: a step failed and at least one undo failed;
	// an operator must look (exit 4).
	ErrRollbackIncomplete = errors.New("rollback incomplete")
	// ErrInterrupted: the run was cancelled part-way; nothing was undone
	// automatically (exit 4).
	ErrInterrupted = errors.New("interrupted")
	// ErrCommittedWithFailures: the run passed its commit point, then a
	// later step failed on some host; nothing was rolled back and every
	// remaining step still ran (exit 5).
	ErrCommittedWithFailures = errors.New("committed with failures")
)

// env returns what steps see of the engine.
func (e *Engine) env() steps.Runtime {
	return steps.Runtime{Reach: e.Connector.Reach, Connect: e.connect, Confirm: e.Confirm}
}

// mode is what differs between a real run and a dry run. It is picked in
// one place (runMode); the rest of the engine and the session ask it.
type mode interface {
	// apply performs spec on t. A dry run returns the plan lines of what
	// the step would change.
	apply(ctx context.Context, spec steps.Spec, t target.Target, env steps.Runtime) (steps.Result, []string, error)
	// changes reports whether steps change hosts; false when changes are
	// only planned, so that nothing is undone, committed or journaled
	// ahead.
	changes() bool
}

// runMode is the one place that decides between a real and a dry run.
func runMode(dry bool) mode {
	if dry {
		return dryMode{}
	}
	return wetMode{}
}

// mode is the engine's run mode.
func (e *Engine) mode() mode { return runMode(e.DryRun) }

// wetMode performs steps.
type wetMode struct{}

func (wetMode) apply(ctx context.Context, spec steps.Spec, t target.Target, env steps.Runtime) (steps.Result, []string, error) {
	res, err := spec.Do(ctx, t, env)
	return res, nil, err
}

func (wetMode) changes() bool { return true }

// dryMode runs steps on targets that record mutations (see target.Dry), through
// Plan when a kind has one. Nobody is asked to confirm and nothing is
// journaled ahead: nothing changes.
type dryMode struct{}

func (dryMode) apply(ctx context.Context, spec steps.Spec, t target.Target, env steps.Runtime) (steps.Result, []string, error) {
	p := target.NewPlan(t.Name())
	env.Prepare, env.Confirm = nil, nil
	if connect := env.Connect; connect != nil {
		env.Connect = func(ctx context.Context, host, address string) (target.Target, error) {
			real, err := connect(ctx, host, address)
			if err != nil {
				return nil, err
			}
			return target.Dry(real, p), nil
		}
	}
	t = target.Dry(t, p)
	var res steps.Result
	var err error
	if pl, ok := spec.(steps.Planner); ok {
		res, err = pl.Plan(ctx, t, env)
	} else {
		res, err = spec.Do(ctx, t, env)
	}
	return res, p.Lines(), err
}

func (dryMode) changes() bool { return false }

func (e *Engine) connect(ctx context.Context, host, address string) (target.Target, error) {
	return target.Connect(ctx, e.Connector, host, address)
}

// Engine executes a compiled plan, and rolls back recorded changes.
type Engine struct {
	// Inventory bounds Rollback's parallelism (policy.fanout); Execute
	// uses its plan's inventory.
	Inventory *inventory.Inventory
	Connector target.Connector
	// Record writes an event durably (the journal) and returns it stamped.
	// An error stops the run: nothing may happen that is not recorded.
	Record func(journal.Event) (journal.Event, error)
	// DryRun records mutations instead of performing them; read-only
	// steps still run (see mode).
	DryRun bool
	// Run is the run's identity for templates.
	Run plan.Run
	// Confirm asks the operator mid-run (see steps.Runtime.Confirm); nil when
	// nobody can answer.
	Confirm func(ctx context.Context, question, answer string) (bool, error)
}

// State is what a run knows between steps; a resumed run rebuilds it from
// the journal.
type State struct {
	// Registered holds the registered results by name.
	Registered map[string]plan.Registered
	// Done marks steps that ended.
	Done map[int]bool
	// HostsDone holds, for a step that was interrupted, the hosts that had
	// finished it, with their results.
	HostsDone map[int]map[string]HostResult
	// Undo lists the completed changes, oldest first.
	Undo []UndoItem
	// Committed is set once the run passed its commit point (a step with
	// commit: true succeeded): from then on nothing is rolled back.
	Committed bool
	// Failures lists what failed after the commit point, step by step.
	Failures []StepFailure
}

// StepFailure is a step that failed, on some hosts, after the commit point.
type StepFailure struct {
	Step string
	// Hosts maps each failed host to its error.
	Hosts map[string]string
	// Tolerated is true when the failures were within the step's
	// tolerance.
	Tolerated bool
}

// failuresSummary lists the failures for the run's final error.
func failuresSummary(fs []StepFailure) string {
	var parts []string
	for _, f := range fs {
		hosts := make([]string, 0, len(f.Hosts))
		for _, h := range sortedHostKeys(f.Hosts) {
			hosts = append(hosts, h+": "+firstLine(f.Hosts[h]))
		}
		within := ""
		if f.Tolerated {
			within = ", within its tolerance"
		}
		parts = append(parts, fmt.Sprintf("%q on %d host(s)%s (%s)", f.Step, len(f.Hosts), within, strings.Join(hosts, "; ")))
	}
	return strings.Join(parts, "; ")
}

func sortedHostKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Registered: map[string]plan.Registered{}, Done: map[int]bool{}, HostsDone: map[int]map[string]HostResult{}}
}

// UndoItem is one completed change and how to revert it.
type UndoItem struct {
	Seq      int // the host_end event
	Step     int
	StepName string
	Host     string
	Record   target.UndoRecord
}

// HostResult is the outcome of a step on one host.
type HostResult struct {
	Host   string
	Result steps.Result
	Err    string
	OK     bool
	Plan   []string
	cause  error
}

// Execute runs the steps of p that state has not done yet. On a failure
// beyond tolerance it rolls back every recorded change in reverse order.
func (e *Engine) Execute(ctx context.Context, p *plan.Plan, state *State) error {
	data := p.Data(e.Run)
	reg := make(map[string]any, len(state.Registered))
	for name, r := range state.Registered {
		reg[name] = r.Map()
	}
	data["reg"] = reg
	register := func(name string, r plan.Registered) map[string]any {
		state.Registered[name] = r
		reg[name] = r.Map()
		return map[string]any{name: reg[name]}
	}
	m := e.mode()
	planned := false // a dry run planned a change
	all := p.Steps()
	for i := range all {
		st := &all[i]
		if state.Done[st.Index] {
			continue
		}
		if ctx.Err() != nil {
			return e.interrupted(st)
		}
		if st.When != "" {
			ok, err := st.Templates().RenderCond(st.Name, st.When, data)
			if err != nil {
				if ferr := e.fail(ctx, st, state, fmt.Errorf("step %q: when: %w", st.Name, err), nil); ferr != nil {
					return ferr
				}
				continue
			}
			if !ok {
				ev := journal.Event{Type: journal.StepSkip, Step: st.Index, StepName: st.Name,
					Kind: st.Kind, Status: journal.StatusSkipped, Message: "when: condition is false",
					Data: map[string]any{"when": st.When}}
				if st.Register != "" {
					// As Ansible does: a skipped step still registers, with
					// skipped true and empty output, so later steps can
					// choose between alternatives.
					r := registered(nil, nil, nil, nil)
					r.Skipped = true
					ev.Registered = register(st.Register, r)
				}
				if _, err := e.Record(ev); err != nil {
					return err
				}
				state.Done[st.Index] = true
				continue
			}
		}
		results, err := e.runStep(ctx, p, st, data, state)
		if err != nil {
			return err // journal failure
		}
		if ctx.Err() != nil {
			return e.interrupted(st)
		}
		var failed, succeeded []string
		var refused, stop error
		for _, h := range st.Hosts {
			r := results[h]
			if errors.Is(r.cause, steps.ErrStopRun) {
				stop = r.cause
			}
			if r.OK {
				succeeded = append(succeeded, h)
				continue
			}
			failed = append(failed, h)
			if errors.Is(r.cause, steps.ErrRefused) {
				refused = fmt.Errorf("step %q: %w", st.Name, r.cause)
			}
		}
		advisory := planned && st.ReadOnly
		tol, err := st.Tolerance(data)
		if err != nil {
			if ferr := e.fail(ctx, st, state, fmt.Errorf("step %q: %w", st.Name, err), nil); ferr != nil {
				return ferr
			}
			continue
		}
		allowed := tol.Allowed(len(st.Hosts))
		status := journal.StatusOK
		switch {
		case len(failed) == 0:
		case advisory:
			status = journal.StatusPlanned
		case refused != nil:
			status = journal.StatusRefused
		case len(failed) <= allowed:
			status = journal.StatusTolerated
		default:
			status = journal.StatusFailed
		}
		if !m.changes() && !st.ReadOnly {
			planned = true
			if status == journal.StatusOK {
				status = journal.StatusPlanned
			}
		}
		var evReg map[string]any
		if st.Register != "" {
			evReg = register(st.Register, registered(st.Hosts, results, failed, succeeded))
		}
		ev := journal.Event{Type: journal.StepEnd, Step: st.Index, StepName: st.Name, Kind: st.Kind,
			Status: status, Mutates: !st.ReadOnly, Hosts: st.Hosts, Failed: failed}
		for _, h := range st.Hosts {
			for _, w := range strings.Split(results[h].Result.Warning, "\n") {
				if w != "" {
					ev.Warnings = append(ev.Warnings, w)
				}
			}
		}
		ev.Registered = evReg
		if advisory {
			ev.Message = "dry run: this check depends on changes that were only planned"
		}
		if stop != nil {
			ev.Message = "run ends here: " + strings.TrimPrefix(stop.Error(), steps.ErrStopRun.Error()+": ")
		}
		if _, err := e.Record(ev); err != nil {
			return err
		}
		hostErrs := func() map[string]string {
			m := make(map[string]string, len(failed))
			for _, h := range failed {
				m[h] = results[h].Err
			}
			return m
		}
		switch status {
		case journal.StatusRefused:
			if err := e.fail(ctx, st, state, refused, hostErrs()); err != nil {
				return err
			}
			continue
		case journal.StatusFailed:
			if err := e.fail(ctx, st, state, fmt.Errorf("%w: %q failed on %d of %d host(s) (%s), tolerated %d: %s",
				ErrStepFailed, st.Name, len(failed), len(st.Hosts), strings.Join(failed, ", "), allowed,
				results[failed[0]].Err), hostErrs()); err != nil {
				return err
			}
			continue
		case journal.StatusTolerated:
			if state.Committed {
				// Within tolerance, but after the commit point every
				// failed host is reported in the run's outcome.
				state.Failures = append(state.Failures, StepFailure{Step: st.Name, Hosts: hostErrs(), Tolerated: true})
			}
		}
		state.Done[st.Index] = true
		if st.Commit && m.changes() && !state.Committed {
			state.Committed = true
			if _, err := e.Record(journal.Event{Type: journal.Commit, Step: st.Index, StepName: st.Name, Status: journal.StatusOK,
				Message: "commit point passed: no later failure is rolled back automatically"}); err != nil {
				return err
			}
		}
		if stop != nil {
			return e.stopped(ctx, state)
		}
	}
	if len(state.Failures) > 0 {
		return fmt.Errorf("%w: %s", ErrCommittedWithFailures, failuresSummary(state.Failures))
	}
	return nil
}

// stopped ends a run that found nothing to do (a stop step, or a gate that
// finds the wanted state already there): what the run changed before it
// found out, such as a lock it took, is undone, and the run ends
// successfully. Past the commit point nothing is undone.
func (e *Engine) stopped(ctx context.Context, state *State) error {
	if state.Committed || len(state.Undo) == 0 {
		if len(state.Failures) > 0 {
			return fmt.Errorf("%w: %s", ErrCommittedWithFailures, failuresSummary(state.Failures))
		}
		return nil
	}
	if _, err := e.Record(journal.Event{Type: journal.Note, Step: -1,
		Message: fmt.Sprintf("nothing to do: undoing the %d change(s) this run made before it found out", len(state.Undo))}); err != nil {
		return err
	}
	if err := e.Rollback(ctx, state.Undo); err != nil {
		return fmt.Errorf("%w: %w", ErrRollbackIncomplete, err)
	}
	state.Undo = nil
	return nil
}

// interrupted records that the run stopped at st without undoing anything.
func (e *Engine) interrupted(st *plan.Step) error {
	_, _ = e.Record(journal.Event{Type: journal.Note, Step: st.Index, StepName: st.Name,
		Status: journal.StatusInterrupted, Message: "cancelled; nothing was undone automatically"})
	return fmt.Errorf("%w at step %q: run `sgerun rollback` or `sgerun resume` with this run id", ErrInterrupted, st.Name)
}

// fail handles a step that failed (hosts: the failed hosts and their
// errors). Before the commit point it rolls back and returns the error the
// run ends with. After it, nothing is rolled back: the failure is recorded
// and fail returns nil, so that the run goes on with its next step.
func (e *Engine) fail(ctx context.Context, st *plan.Step, state *State, cause error, hosts map[string]string) error {
	if !e.mode().changes() {
		return cause // nothing to roll back
	}
	if ctx.Err() != nil {
		return e.interrupted(st)
	}
	if state.Committed {
		if hosts == nil {
			hosts = map[string]string{target.Controller: cause.Error()}
		}
		state.Failures = append(state.Failures, StepFailure{Step: st.Name, Hosts: hosts})
		_, err := e.Record(journal.Event{Type: journal.Note, Step: st.Index, StepName: st.Name, Status: journal.StatusFailed,
			Error:   cause.Error(),
			Message: "after the commit point: not rolled back; the run goes on with its next step"})
		return err
	}
	if err := e.Rollback(ctx, state.Undo); err != nil {
		return fmt.Errorf("%w: %w (after: %w)", ErrRollbackIncomplete, err, cause)
	}
	return cause
}

// runStep runs st on its hosts with bounded parallelism and records each
// host before and after.
func (e *Engine) runStep(ctx context.Context, p *plan.Plan, st *plan.Step, data map[string]any, state *State) (map[string]HostResult, error) {
	if _, err := e.Record(journal.Event{Type: journal.StepStart, Step: st.Index, StepName: st.Name,
		Kind: st.Kind, Mutates: !st.ReadOnly, Hosts: st.Hosts}); err != nil {
		return nil, err
	}
	results := make(map[string]HostResult, len(st.Hosts))
	var todo []string
	for _, h := range st.Hosts {
		if r, ok := state.HostsDone[st.Index][h]; ok {
			results[h] = r
			continue
		}
		todo = append(todo, h)
	}
	workers := st.Parallel
	if workers == 0 {
		workers = p.Inventory().Policy.Fanout
	}
	workers = max(1, min(workers, len(todo)))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	queue := make(chan string)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range queue {
				r, items, err := e.runHost(ctx, p, st, h, data)
				mu.Lock()
				results[h] = r
				state.Undo = append(state.Undo, items...)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, h := range todo {
		queue <- h
	}
	close(queue)
	wg.Wait()
	return results, firstErr
}

// runHost runs one step on one host. The returned error is a journal
// failure only; step failures are in the HostResult.
func (e *Engine) runHost(ctx context.Context, p *plan.Plan, st *plan.Step, host string, data map[string]any) (HostResult, []UndoItem, error) {
	kind := st.Def
	m := e.mode()
	hr := HostResult{Host: host}
	hdata := p.StepHostData(st, host, data)
	start := time.Now()
	rendered, spec, err := st.Spec(hdata)
	var timeout time.Duration
	if err == nil {
		timeout, err = st.HostTimeout(hdata)
	}
	startEv := journal.Event{Type: journal.HostStart, Step: st.Index, StepName: st.Name, Kind: st.Kind,
		Host: host, Mutates: !st.ReadOnly}
	if rendered != nil {
		startEv.Data = map[string]any{"params": nodeValue(rendered)}
	}
	if _, jerr := e.Record(startEv); jerr != nil {
		return hr, nil, jerr
	}
	var res steps.Result
	var planLines []string
	// Undo records a step journals before it changes anything: they
	// count when the host fails after a change (a partial copy).
	var prepared []UndoItem
	var jerrPrepare error
	prepare := func(rec *target.UndoRecord) error {
		ev, err := e.Record(journal.Event{Type: journal.UndoPrepared, Step: st.Index, StepName: st.Name,
			Kind: rec.Kind, Host: host, Undo: rec})
		if err != nil {
			jerrPrepare = err
			return err
		}
		prepared = append(prepared, UndoItem{Seq: ev.Seq, Step: st.Index, StepName: st.Name, Host: host, Record: *rec})
		return nil
	}
	if err == nil && st.Undo != nil && m.changes() && !st.ReadOnly && !mentions(st.Undo.Params, ".result") {
		// An explicit undo that needs no result is journaled before the
		// step runs: a timeout, a kill or a failure part-way (a qmaster
		// start that hangs) still leaves its undo.
		var rec *target.UndoRecord
		if rec, err = e.undoRecord(st, steps.Result{}, hdata); err == nil && rec != nil {
			err = prepare(rec)
		}
	}
	attempts := 0
	if err == nil {
		for attempt := 0; attempt <= st.Retries; attempt++ {
			attempts = attempt + 1
			var t target.Target
			t, err = e.target(ctx, kind, host)
			if err == nil {
				res, planLines, err = e.do(ctx, m, timeout, spec, t, prepare)
			}
			if err == nil || errors.Is(err, steps.ErrRefused) || errors.Is(err, steps.ErrStopRun) || ctx.Err() != nil || attempt == st.Retries {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(st.RetryDelay):
			}
		}
	}
	if errors.Is(err, steps.ErrStopRun) {
		hr.cause, err = err, nil
	}
	hr.Result, hr.Plan, hr.OK = res, planLines, err == nil
	end := journal.Event{Type: journal.HostEnd, Step: st.Index, StepName: st.Name, Kind: st.Kind, Host: host,
		Mutates: !st.ReadOnly, Attempt: attempts, DurationMS: time.Since(start).Milliseconds(),
		Data: res.Data, Plan: planLines, Status: journal.StatusOK}
	if res.Output != (target.Output{}) {
		out := res.Output
		end.Output = &out
	}
	if err != nil {
		hr.Err, hr.cause = err.Error(), err
		end.Error, end.Status = hr.Err, journal.StatusFailed
		if errors.Is(err, steps.ErrRefused) {
			end.Status = journal.StatusRefused
		}
	} else if !m.changes() && !st.ReadOnly {
		end.Status = journal.StatusPlanned
	}
	var item *UndoItem
	if err == nil && m.changes() && !st.ReadOnly {
		rec, uerr := e.undoRecord(st, res, hdata)
		if uerr != nil {
			end.Message = "undo not recorded: " + uerr.Error()
		}
		end.Undo = rec
		if rec != nil {
			item = &UndoItem{Step: st.Index, StepName: st.Name, Host: host, Record: *rec}
		}
	}
	ev, jerr := e.Record(end)
	if jerr == nil {
		jerr = jerrPrepare
	}
	switch {
	case item != nil:
		// The finished step's undo stands for the records prepared ahead.
		item.Seq = ev.Seq
		return hr, []UndoItem{*item}, jerr
	case err != nil:
		return hr, prepared, jerr
	}
	return hr, nil, jerr
}

func (e *Engine) target(ctx context.Context, kind steps.Kind, host string) (target.Target, error) {
	if kind.Local {
		return e.Connector.Local(), nil
	}
	t, err := e.Connector.Target(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", host, err)
	}
	return t, nil
}

// do applies a spec in mode m with the step's timeout (0: none),
// returning a dry run's plan lines.
func (e *Engine) do(ctx context.Context, m mode, timeout time.Duration, spec steps.Spec, t target.Target,
	prepare func(*target.UndoRecord) error) (steps.Result, []string, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	env := e.env()
	env.Prepare = prepare
	res, lines, err := m.apply(ctx, spec, t, env)
	if err != nil && timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return res, lines, err
}

// undoRecord returns the step's explicit undo, rendered for this host, or
// the kind's automatic one.
func (e *Engine) undoRecord(st *plan.Step, res steps.Result, hdata map[string]any) (*target.UndoRecord, error) {
	if st.Undo == nil {
		return res.Undo, nil
	}
	ukind := steps.Kinds()[st.Undo.Kind]
	udata := maps.Clone(hdata)
	udata["result"] = outcome(HostResult{Result: res, OK: true}).Map()
	rendered, err := st.Templates().RenderParams(st.Name+" undo", ukind, st.Undo.Params, udata)
	if err != nil {
		return nil, err
	}
	params, ok := nodeValue(rendered).(map[string]any)
	if !ok {
		params = map[string]any{"cmd": rendered.Value}
	}
	return &target.UndoRecord{Kind: st.Undo.Kind, Params: params}, nil
}

// Rollback reverts items newest first. Items of one step run in parallel
// (bounded by the fanout); steps run one after another. Every undo is
// journaled. It returns an error when any undo failed.
func (e *Engine) Rollback(ctx context.Context, items []UndoItem) error {
	if _, err := e.Record(journal.Event{Type: journal.RollbackStart, Step: -1,
		Message: fmt.Sprintf("%d change(s) to undo", len(items))}); err != nil {
		return err
	}
	var failures []string
	for end := len(items); end > 0; {
		begin := end - 1
		for begin > 0 && items[begin-1].Step == items[end-1].Step {
			begin--
		}
		failures = append(failures, e.undoGroup(ctx, items[begin:end])...)
		end = begin
	}
	status := journal.StatusRolledBack
	var err error
	if len(failures) > 0 {
		status = journal.StatusRollbackIncomplete
		err = fmt.Errorf("%d undo(s) failed: %s", len(failures), strings.Join(failures, "; "))
	}
	if _, jerr := e.Record(journal.Event{Type: journal.RollbackEnd, Step: -1, Status: status}); jerr != nil {
		return errors.Join(err, jerr)
	}
	return err
}

func (e *Engine) undoGroup(ctx context.Context, group []UndoItem) []string {
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, max(1, e.Inventory.Policy.Fanout))
	for i := len(group) - 1; i >= 0; i-- {
		it := group[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.undoOne(ctx, it); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s on %s: %v", it.StepName, it.Host, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failures
}

func (e *Engine) undoOne(ctx context.Context, it UndoItem) error {
	ref := &journal.UndoRef{Seq: it.Seq, Step: it.Step, Host: it.Host}
	rec := it.Record
	if _, err := e.Record(journal.Event{Type: journal.UndoStart, Step: it.Step, StepName: it.StepName,
		Kind: rec.Kind, Host: it.Host, Undo: &rec, Undone: ref}); err != nil {
		return err
	}
	start := time.Now()
	res, err := e.applyUndo(ctx, it)
	ev := journal.Event{Type: journal.UndoEnd, Step: it.Step, StepName: it.StepName, Kind: rec.Kind,
		Host: it.Host, Undone: ref, Status: journal.StatusOK, DurationMS: time.Since(start).Milliseconds()}
	if res.Output != (target.Output{}) {
		out := res.Output
		ev.Output = &out
	}
	if err != nil {
		ev.Status, ev.Error = journal.StatusFailed, err.Error()
	}
	if _, jerr := e.Record(ev); jerr != nil {
		return errors.Join(err, jerr)
	}
	return err
}

func (e *Engine) applyUndo(ctx context.Context, it UndoItem) (steps.Result, error) {
	kind, ok := steps.Kinds()[it.Record.Kind]
	if !ok {
		return steps.Result{}, fmt.Errorf("unknown undo kind %q", it.Record.Kind)
	}
	var node yaml.Node
	if err := node.Encode(it.Record.Params); err != nil {
		return steps.Result{}, fmt.Errorf("undo params: %w", err)
	}
	spec, err := kind.New(&node)
	if err != nil {
		return steps.Result{}, fmt.Errorf("undo params: %w", err)
	}
	host := it.Host
	if kind.Local {
		host = target.Controller
	}
	t, err := e.target(ctx, kind, host)
	if err != nil {
		return steps.Result{}, err
	}
	res, _, err := wetMode{}.apply(ctx, spec, t, e.env())
	return res, err
}

// mentions reports whether any scalar under n contains text.
func mentions(n *yaml.Node, text string) bool {
	if n == nil {
		return false
	}
	if strings.Contains(n.Value, text) {
		return true
	}
	for _, c := range n.Content {
		if mentions(c, text) {
			return true
		}
	}
	return false
}

// nodeValue decodes a node into plain Go values for the journal.
func nodeValue(n *yaml.Node) any {
	var v any
	if err := n.Decode(&v); err != nil {
		return n.Value
	}
	return v
}

// outcome is a host's result as later steps see it.
func outcome(r HostResult) plan.Outcome {
	return plan.Outcome{Stdout: r.Result.Stdout, Stderr: r.Result.Stderr, RC: r.Result.ExitCode, OK: r.OK,
		Changed: r.Result.Changed, Data: r.Result.Data, Error: r.Err}
}

// registered is what {{ .reg.NAME }} holds: the first host's result at
// the top level, every host under .hosts, and the failed and succeeded
// host lists.
func registered(hosts []string, results map[string]HostResult, failed, succeeded []string) plan.Registered {
	r := plan.Registered{Hosts: make(map[string]plan.Outcome, len(hosts)),
		Failed: append([]string{}, failed...), Succeeded: append([]string{}, succeeded...)}
	for _, h := range hosts {
		r.Hosts[h] = outcome(results[h])
	}
	if len(hosts) > 0 {
		r.Outcome = r.Hosts[hosts[0]]
	}
	return r
}
