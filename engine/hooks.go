package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/target"
)

// DefaultHookTimeout bounds one hook command when RunHooks.Timeout is unset.
const DefaultHookTimeout = time.Minute

// RunHooks are site commands run on the controller around a run, with sh -c.
// Their output goes to the journal.
type RunHooks struct {
	// Pre runs before the first step; a non-zero exit (or a time-out)
	// vetoes the run: it is refused (exit 3) and nothing changes.
	Pre []string
	// PostOK and PostFail run after the run ended, successfully or not,
	// with the run's JSON summary on stdin (for mail, chat, a ticket).
	PostOK, PostFail []string
	// Timeout bounds each command.
	Timeout time.Duration
	// Environ is added to each command's environment, as "KEY=value"
	// strings.
	Environ []string
	// Summary renders the JSON summary of the run in dir.
	Summary func(dir string) ([]byte, error)
}

// HookEvent is the journal event type of a hook command.
const HookEvent = "hook"

// runHooks runs cmds one after another and journals each; it returns the
// first failure.
func (s *Session) runHooks(ctx context.Context, record func(journal.Event) (journal.Event, error),
	phase string, cmds []string, stdin []byte) error {
	timeout := s.Hooks.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	local := &target.Local{Environ: s.Hooks.Environ}
	var first error
	for _, cmd := range cmds {
		start := time.Now()
		hctx, cancel := context.WithTimeout(ctx, timeout)
		out, err := local.Exec(hctx, cmd, stdin)
		timedOut := hctx.Err() != nil
		cancel()
		ev := journal.Event{Type: HookEvent, Step: -1, StepName: phase, Kind: "hook", Host: target.Controller,
			Output: &out, Status: journal.StatusOK, DurationMS: time.Since(start).Milliseconds()}
		switch {
		case timedOut:
			err = fmt.Errorf("%s hook timed out after %s: %s", phase, timeout, cmd)
		case err == nil && out.ExitCode != 0:
			err = fmt.Errorf("%s hook exited %d: %s", phase, out.ExitCode, cmd)
		case err != nil:
			err = fmt.Errorf("%s hook: %w", phase, err)
		}
		if err != nil {
			ev.Status, ev.Error = journal.StatusFailed, err.Error()
			if first == nil {
				first = err
			}
		}
		if _, jerr := record(ev); jerr != nil {
			return jerr
		}
		if err != nil && phase == "pre" {
			return err
		}
	}
	return first
}

// preHooks runs the veto hooks; a veto ends the run as refused.
func (s *Session) preHooks(ctx context.Context, e *Engine) error {
	if len(s.Hooks.Pre) == 0 {
		return nil
	}
	if !e.mode().changes() {
		_, err := e.Record(journal.Event{Type: journal.Note, Step: -1,
			Message: fmt.Sprintf("dry run: %d pre hook(s) not run", len(s.Hooks.Pre))})
		return err
	}
	if err := s.runHooks(ctx, e.Record, "pre", s.Hooks.Pre, nil); err != nil {
		return fmt.Errorf("%w: vetoed: %w", ErrRefused, err)
	}
	return nil
}

// postHooks hands the run's summary to the post hooks; their failures are
// journaled but do not change how the run ended.
func (s *Session) postHooks(ctx context.Context, e *Engine, dir string, runErr error) {
	cmds := s.Hooks.PostOK
	phase := "post_ok"
	if runErr != nil {
		cmds, phase = s.Hooks.PostFail, "post_failure"
	}
	if len(cmds) == 0 || !e.mode().changes() {
		return
	}
	var summary []byte
	if s.Hooks.Summary != nil {
		var err error
		if summary, err = s.Hooks.Summary(dir); err != nil {
			summary = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
		}
	}
	_ = s.runHooks(ctx, e.Record, phase, cmds, summary)
}
