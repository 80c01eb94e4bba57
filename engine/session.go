package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/target"
)

// LockMaxAge is the age after which a held lock is reported stale.
const LockMaxAge = 6 * time.Hour

// Session runs one compiled plan end to end: lock, journal, connections,
// execution, rollback and the final run_end event.
type Session struct {
	// Plan is what Start and Resume run.
	Plan *plan.Plan
	// Inventory is where Rollback undoes a run's changes; Start and
	// Resume use the plan's.
	Inventory *inventory.Inventory
	DryRun    bool
	// StateDir holds the locks; LogDir the run directories.
	StateDir string
	LogDir   string
	// Force takes over a stale lock.
	Force bool
	// Observe sees every event after it is journaled (the UI).
	Observe func(journal.Event)
	// Connector overrides the SSH connector (tests).
	Connector target.Connector
	// Args is the command line, kept in the run's meta.
	Args []string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Hooks run around the run (takeover hooks from the inventory).
	Hooks RunHooks
	// Confirm asks the operator mid-run; nil when nobody can answer.
	Confirm func(ctx context.Context, question, answer string) (bool, error)
	// Notes are journaled (and shown) as note events right after the run
	// starts or resumes: decisions made before the run, such as which head
	// is active.
	Notes []string
}

// Outcome is how a run ended.
type Outcome struct {
	RunID  string
	Dir    string
	Status string
}

// Start locks and runs the plan as a new run.
func (s *Session) Start(ctx context.Context) (Outcome, error) {
	if s.Plan == nil {
		return Outcome{}, errors.New("start: no plan")
	}
	rb, inv := s.Plan.Runbook(), s.Plan.Inventory()
	now := s.now()
	meta := journal.Meta{
		RunID: journal.NewRunID(now), Runbook: rb.Name, RunbookFile: rb.File,
		Inventory: absPath(inv.File), Vars: s.Plan.Overrides(), DryRun: s.DryRun, Started: now.UTC(),
		PID: os.Getpid(), Args: s.Args,
	}
	meta.Controller, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		meta.User = u.Username
	}
	release := func() error { return nil }
	if runMode(s.DryRun).changes() {
		// Only a run that changes hosts excludes others.
		var err error
		release, err = journal.Acquire(journal.LockPath(s.StateDir, inv.File), journal.LockInfo{
			RunID: meta.RunID, Host: meta.Controller, PID: meta.PID, Time: now.UTC(), Inventory: meta.Inventory,
		}, s.Force, LockMaxAge)
		if err != nil {
			return Outcome{RunID: meta.RunID}, fmt.Errorf("%w: %w", ErrRefused, err)
		}
	}
	defer release()
	w, err := journal.Create(s.LogDir, meta, rb.Source)
	if err != nil {
		return Outcome{RunID: meta.RunID}, err
	}
	defer w.Close()
	run := plan.Run{ID: meta.RunID, Stamp: now.Format("20060102150405"), DryRun: s.DryRun, Time: now.UTC().Format(time.RFC3339)}
	return s.execute(ctx, w, meta, run, NewState(), journal.Event{Type: journal.RunStart, Step: -1,
		Message: fmt.Sprintf("runbook %s on %s", rb.Name, meta.Inventory)})
}

// Resume continues an interrupted run after its last completed step. The
// plan is compiled from the copy of the runbook saved in the run directory,
// with the run's own overrides (journal.Meta.Vars).
func (s *Session) Resume(ctx context.Context, dir string) (Outcome, error) {
	meta, events, err := journal.Read(dir)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{RunID: meta.RunID, Dir: dir}
	if sum := journal.Summarize(dir, meta, events); !Resumable(sum.Status) {
		return out, fmt.Errorf("run %s already ended (%s); nothing to resume", meta.RunID, sum.Status)
	}
	if meta.DryRun {
		return out, fmt.Errorf("run %s was a dry run; start a new one", meta.RunID)
	}
	if s.Plan == nil {
		return out, errors.New("resume: no plan")
	}
	w, release, err := s.reopen(s.Plan.Inventory(), meta, dir)
	if err != nil {
		return out, err
	}
	defer release()
	state := StateFromJournal(events)
	rechecked := recheck(s.Plan, state)
	msg := fmt.Sprintf("resumed by pid %d; %d step(s) already done", os.Getpid(), len(state.Done))
	if len(rechecked) > 0 {
		msg += "; checked again: " + strings.Join(rechecked, ", ")
	}
	run := plan.Run{ID: meta.RunID, Stamp: meta.Started.Local().Format("20060102150405"), Time: meta.Started.UTC().Format(time.RFC3339)}
	return s.execute(ctx, w, meta, run, state, journal.Event{Type: journal.Note, Step: -1, Message: msg})
}

// Resumable reports whether a run that ended with status can be resumed:
// an interrupted run, or one committed with failures (resume retries the
// steps that failed after the commit point).
func Resumable(status string) bool {
	return status == journal.StatusInterrupted || status == journal.StatusCommittedWithFailures
}

// recheck marks the done steps that read the world to decide (gates, locks,
// asserts: kinds with Recheck) as not done, so that a resumed run asks
// again instead of trusting an answer that may be hours old. A run past its
// commit point acted on its answers already; it checks nothing again. It
// returns the names of the steps that will run again.
func recheck(p *plan.Plan, state *State) []string {
	if state.Committed {
		return nil
	}
	var names []string
	for _, st := range p.Steps() {
		if st.Def.Recheck && state.Done[st.Index] {
			delete(state.Done, st.Index)
			names = append(names, st.Name)
		}
	}
	return names
}

// ErrCommitted refuses the rollback of a run that passed its commit point.
var ErrCommitted = errors.New("run passed its commit point")

// Rollback undoes every change of a run that is not undone yet, newest
// first, from the journal.
func (s *Session) Rollback(ctx context.Context, dir string) (Outcome, error) {
	meta, events, err := journal.Read(dir)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{RunID: meta.RunID, Dir: dir}
	if StateFromJournal(events).Committed && !s.Force {
		return out, fmt.Errorf("%w: %w: run %s passed its commit point (the new qmaster answered); "+
			"rolling it back would point the cluster at the old master again and stop the one that serves. "+
			"Repair forward (sgerun resume %s retries what failed), or use --force if you are sure",
			ErrRefused, ErrCommitted, meta.RunID, meta.RunID)
	}
	inv := s.Inventory
	if inv == nil && s.Plan != nil {
		inv = s.Plan.Inventory()
	}
	if inv == nil {
		return out, errors.New("rollback: no inventory")
	}
	w, release, err := s.reopen(inv, meta, dir)
	if err != nil {
		return out, err
	}
	defer release()
	conn, closeConn, err := s.connector(inv)
	if err != nil {
		return out, err
	}
	defer closeConn()
	e := &Engine{Inventory: inv, Connector: conn, Record: s.recorder(w)}
	items := PendingUndo(events)
	if _, err := e.Record(journal.Event{Type: journal.Note, Step: -1,
		Message: fmt.Sprintf("rollback requested by pid %d", os.Getpid())}); err != nil {
		return out, err
	}
	rerr := e.Rollback(ctx, items)
	out.Status = journal.StatusRolledBack
	if rerr != nil {
		out.Status = journal.StatusRollbackIncomplete
		rerr = fmt.Errorf("%w: %w", ErrRollbackIncomplete, rerr)
	}
	_, jerr := e.Record(journal.Event{Type: journal.RunEnd, Step: -1, Status: out.Status})
	return out, errors.Join(rerr, jerr)
}

// reopen takes the inventory's lock for an existing run and opens its
// journal for appending; release undoes both.
func (s *Session) reopen(inv *inventory.Inventory, meta journal.Meta, dir string) (*journal.Writer, func(), error) {
	unlock, err := s.lock(inv, meta)
	if err != nil {
		return nil, nil, err
	}
	w, err := journal.Open(dir)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return w, func() { w.Close(); unlock() }, nil
}

func (s *Session) lock(inv *inventory.Inventory, meta journal.Meta) (func() error, error) {
	host, _ := os.Hostname()
	path := journal.LockPath(s.StateDir, inv.File)
	info := journal.LockInfo{RunID: meta.RunID, Host: host, PID: os.Getpid(), Time: s.now().UTC(),
		Inventory: absPath(inv.File)}
	release, err := journal.Acquire(path, info, s.Force, LockMaxAge)
	var le *journal.LockedError
	if errors.As(err, &le) && le.Stale != "" && le.Info.RunID == meta.RunID {
		// The lock was left by this very run when it died: continuing or
		// undoing that run is what the lock protects, so take it over.
		release, err = journal.Acquire(path, info, true, LockMaxAge)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return release, nil
}

func (s *Session) execute(ctx context.Context, w *journal.Writer, meta journal.Meta, run plan.Run,
	state *State, first journal.Event) (Outcome, error) {
	out := Outcome{RunID: meta.RunID, Dir: w.Dir()}
	inv := s.Plan.Inventory()
	conn, closeConn, err := s.connector(inv)
	if err != nil {
		return out, err
	}
	defer closeConn()
	e := &Engine{Inventory: inv, Connector: conn, Record: s.recorder(w), DryRun: s.DryRun, Run: run, Confirm: s.Confirm}
	if _, err := e.Record(first); err != nil {
		return out, err
	}
	for _, n := range s.Notes {
		if _, err := e.Record(journal.Event{Type: journal.Note, Step: -1, Message: n}); err != nil {
			return out, err
		}
	}
	runErr := s.preHooks(ctx, e)
	if runErr == nil {
		runErr = e.Execute(ctx, s.Plan, state)
	}
	out.Status = StatusOf(runErr, !e.mode().changes())
	if errors.Is(runErr, ErrInterrupted) {
		// The run can be resumed: no run_end.
		return out, runErr
	}
	ev := journal.Event{Type: journal.RunEnd, Step: -1, Status: out.Status}
	if runErr != nil {
		ev.Error = runErr.Error()
	}
	if _, err := e.Record(ev); err != nil {
		return out, errors.Join(runErr, err)
	}
	s.postHooks(context.WithoutCancel(ctx), e, w.Dir(), runErr)
	return out, runErr
}

// StatusOf names how a run ended.
func StatusOf(err error, dry bool) string {
	switch {
	case err == nil && dry:
		return journal.StatusPlanned
	case err == nil:
		return journal.StatusOK
	case errors.Is(err, ErrInterrupted):
		return journal.StatusInterrupted
	case errors.Is(err, ErrRollbackIncomplete):
		return journal.StatusRollbackIncomplete
	case errors.Is(err, ErrCommittedWithFailures):
		return journal.StatusCommittedWithFailures
	case errors.Is(err, ErrRefused):
		return journal.StatusRefused
	}
	return journal.StatusFailed
}

func (s *Session) connector(inv *inventory.Inventory) (target.Connector, func(), error) {
	var conn target.Connector = s.Connector
	closer := func() {}
	if conn == nil {
		sc, err := target.NewSSH(inv)
		if err != nil {
			return nil, nil, err
		}
		conn, closer = sc, func() { sc.Close() }
	}
	return conn, closer, nil
}

// recorder journals an event, then shows it.
func (s *Session) recorder(w *journal.Writer) func(journal.Event) (journal.Event, error) {
	// Writes run concurrently, so that the hosts of a step share fsyncs
	// (journal group commit); Observe still sees every durable event once,
	// in sequence order, whichever goroutine delivers it.
	var mu sync.Mutex
	next := w.Seq() + 1
	pending := map[int]*journal.Event{} // by seq; nil: failed, skip it
	return func(ev journal.Event) (journal.Event, error) {
		ev, err := w.Write(ev)
		if ev.Seq < next {
			return ev, err // failed before it was given a sequence number
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			pending[ev.Seq] = nil
		} else {
			pending[ev.Seq] = &ev
		}
		for {
			p, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if p != nil && s.Observe != nil {
				s.Observe(*p)
			}
		}
		return ev, err
	}
}

func (s *Session) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
