// Package watch is sgerun's unattended detector: every interval it runs
// the takeover's partition gate read-only, and only when the master stays
// confirmed down for a whole confirmation period does it start a takeover.
// After a takeover it stands down until a person acknowledges it.
package watch

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/sgerun/sgerun/exitcode"
	"github.com/sgerun/sgerun/steps"
)

// Observation is one run of the gate.
type Observation struct {
	Verdict  string              // a steps.Verdict* value, or "" when the probe failed
	Reason   string              // the gate's reason
	Decision *steps.GateDecision // the gate's decision, nil when the probe failed
	Evidence map[string]any      // steps.GateData: votes, qping attempts, heartbeat age ...
	Err      error               // the probe could not run
	// SeenFrom and SeenUntil bound when the evidence of a master_down
	// verdict was taken (steps.GateEvidence.DownWindow); zero: the check's
	// own start and end.
	SeenFrom, SeenUntil time.Time
}

// Event is one decision, logged as a JSON line with its evidence.
type Event struct {
	Time     time.Time      `json:"time"`
	Event    string         `json:"event"`
	Verdict  string         `json:"verdict,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Since    *time.Time     `json:"failing_since,omitempty"`
	Confirm  string         `json:"confirm_remaining,omitempty"`
	RunID    string         `json:"run_id,omitempty"`
	ExitCode *int           `json:"exit_code,omitempty"`
	Error    string         `json:"error,omitempty"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// Event names.
const (
	EvStart         = "watch_start"
	EvHealthy       = "healthy"
	EvSuspect       = "suspect"     // the master looks down; confirmation running
	EvConfirmed     = "confirmed"   // down for the whole confirmation period
	EvNoTakeover    = "no_takeover" // the evidence forbids a takeover (shadow cut off, ...)
	EvProbeError    = "probe_error" // the gate could not run
	EvTakeoverStart = "takeover_start"
	EvTakeoverEnd   = "takeover_end"
	EvStandingDown  = "standing_down" // after a takeover, until acknowledged
	EvAcknowledged  = "acknowledged"
	EvReload        = "reload"
	// EvStopDeferred: a stop was asked for while a takeover runs; watch
	// stops when the run ends.
	EvStopDeferred = "stop_deferred"
	// EvSignalIgnored: a further SIGTERM/SIGINT during a takeover, which
	// still runs to its end (only SIGKILL abandons it).
	EvSignalIgnored = "signal_ignored"
	EvStop          = "watch_stop"
)

// Config are the watcher's timings.
type Config struct {
	// Interval between gate runs while the master looks well. Once a check
	// finds it down, checks follow SuspectInterval apart (or Interval, when
	// shorter) until the failure is confirmed or gone.
	Interval time.Duration
	// Confirm is how long the master must stay confirmed down before a
	// takeover starts: from the start of the first check's down evidence
	// (Observation.SeenFrom) to the end of the latest one's, over two
	// checks at least, with no check in between that found it otherwise.
	// A failure shorter than this (a flap) never acts.
	Confirm time.Duration
}

// SuspectInterval is the pause between the starts of two checks while a
// failure is being confirmed. A check that finds the master down has
// already paid for an SSH round trip to every voter; checking again soon
// costs little, and it ends the confirmation period close to its length
// instead of up to one Interval later.
const SuspectInterval = 2 * time.Second

// Watcher runs the detection loop. Its functions are its dependencies.
type Watcher struct {
	Config Config
	// Probe runs the partition gate once, read-only.
	Probe func(ctx context.Context) Observation
	// Takeover runs a takeover and returns its run id and exit code. Its
	// context is never cancelled by a stop: a run, once started, ends
	// (done, or rolled back) before watch stops.
	Takeover func(ctx context.Context) (runID string, exitCode int, err error)
	// StandingDown reports whether a takeover awaits acknowledgement.
	StandingDown func(ctx context.Context) (bool, error)
	// MarkStandDown records that a takeover was attempted.
	MarkStandDown func(runID string) error
	// Reload is signalled to reload the configuration (SIGHUP); it may
	// return new timings.
	Reload     <-chan struct{}
	ReloadFunc func() (Config, error)
	// Signals carries the stop signals that come after the first (the
	// first cancels Run's context). While a takeover runs each is logged
	// and otherwise ignored. Nil: none are reported.
	Signals <-chan os.Signal
	// Emit logs an event (stdout, journal).
	Emit func(Event)
	Now  func() time.Time
}

// Run loops until ctx ends (SIGTERM), then returns nil. When ctx ends
// during a takeover, the takeover runs to its end first.
func (w *Watcher) Run(ctx context.Context) error {
	now := w.Now
	if now == nil {
		now = time.Now
	}
	emit := func(e Event) {
		e.Time = now().UTC()
		w.Emit(e)
	}
	emit(Event{Event: EvStart, Reason: fmt.Sprintf("interval %s, confirm %s", w.Config.Interval, w.Config.Confirm)})
	var since time.Time // when the master was first seen down; zero when not
	downChecks := 0     // checks that found it down since then
	wasDown := false    // standing down at the last check
	tick := time.NewTimer(0)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			emit(Event{Event: EvStop, Reason: "signal"})
			return nil
		case <-w.Reload:
			if w.ReloadFunc != nil {
				cfg, err := w.ReloadFunc()
				if err != nil {
					emit(Event{Event: EvReload, Error: err.Error(), Reason: "kept the previous configuration"})
				} else {
					w.Config = cfg
					emit(Event{Event: EvReload, Reason: fmt.Sprintf("interval %s, confirm %s", cfg.Interval, cfg.Confirm)})
				}
			}
			continue
		case <-tick.C:
		}
		tick.Reset(w.Config.Interval)
		if w.StandingDown != nil {
			down, err := w.StandingDown(ctx)
			switch {
			case err != nil:
				emit(Event{Event: EvProbeError, Error: "stand-down state: " + err.Error()})
				continue
			case down:
				if !wasDown {
					emit(Event{Event: EvStandingDown, Reason: "a takeover happened; acknowledge it with sgerun ack"})
				}
				wasDown, since = true, time.Time{}
				continue
			case wasDown:
				emit(Event{Event: EvAcknowledged, Reason: "watching again"})
				wasDown = false
			}
		}
		// The gate's own run time varies (a slow first probe, fast ones
		// after): a failure is timed by the checks' own start and end, not
		// by the interval between them.
		began := now()
		obs := w.Probe(ctx)
		if ctx.Err() != nil {
			continue
		}
		ended := now()
		ev := Event{Verdict: obs.Verdict, Reason: obs.Reason, Evidence: obs.Evidence}
		switch {
		case obs.Err != nil:
			ev.Event, ev.Error = EvProbeError, obs.Err.Error()
			since = time.Time{}
		case obs.Verdict == steps.VerdictMasterDown:
			// A down vote's evidence spans its whole probe: a voter votes
			// down only when its qpings stayed silent to their end (a
			// master that answers meanwhile is up) or its TCP connect found
			// nobody there. The failure is timed from the start of the
			// first such check's down evidence to the end of this one's,
			// and needs two checks at least (one check proves nothing about
			// how long a failure lasts), unless Confirm is 0.
			from, until := began, ended
			if !obs.SeenFrom.IsZero() && !obs.SeenUntil.IsZero() {
				from, until = obs.SeenFrom, obs.SeenUntil
			}
			if since.IsZero() {
				since, downChecks = from, 0
			}
			downChecks++
			s := since.UTC()
			ev.Since = &s
			if left := w.Config.Confirm - until.Sub(since); left > 0 || (downChecks < 2 && w.Config.Confirm > 0) {
				left = max(left, 0)
				ev.Event, ev.Confirm = EvSuspect, left.Round(time.Second).String()
				if next := min(w.Config.Interval, SuspectInterval); next < w.Config.Interval {
					tick.Reset(max(0, next-ended.Sub(began)))
				}
				break
			}
			ev.Event = EvConfirmed
			emit(ev)
			if stop := w.takeover(ctx, emit); stop != nil {
				emit(*stop)
				return nil
			}
			since = time.Time{}
			continue
		case obs.Verdict == steps.VerdictHealthy || obs.Verdict == steps.VerdictAlreadyMaster:
			ev.Event = EvHealthy
			since = time.Time{}
		default:
			// The shadow is cut off, too few voters could judge (no_quorum),
			// or the anti-flap window is open or its record unreadable: the
			// evidence forbids acting, whatever it says of the master.
			ev.Event = EvNoTakeover
			since = time.Time{}
		}
		emit(ev)
	}
}

// takeover runs one takeover on a context a stop does not cancel, and
// waits for its end whatever signals come. When a stop was asked for
// meanwhile, it returns the watch_stop event to log.
func (w *Watcher) takeover(ctx context.Context, emit func(Event)) *Event {
	if ctx.Err() != nil {
		// asked to stop before the run began: no run is started
		return &Event{Event: EvStop, Reason: "signal, before the confirmed takeover started"}
	}
	emit(Event{Event: EvTakeoverStart})
	type result struct {
		id   string
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		id, code, err := w.Takeover(context.WithoutCancel(ctx))
		done <- result{id, code, err}
	}()
	stopping := ctx.Done()
	var r result
wait:
	for {
		select {
		case r = <-done:
			break wait
		case <-stopping:
			stopping = nil
			emit(Event{Event: EvStopDeferred,
				Reason: "stop asked for during a takeover: the run goes on to its end (done, or rolled back), then watch stops"})
		case sig := <-w.Signals:
			emit(Event{Event: EvSignalIgnored,
				Reason: fmt.Sprintf("%s during a takeover: the run goes on to its end; only SIGKILL abandons it", sig)})
		}
	}
	ev := Event{Event: EvTakeoverEnd, RunID: r.id, ExitCode: &r.code}
	if r.err != nil {
		ev.Error = r.err.Error()
	}
	emit(ev)
	if w.MarkStandDown != nil && r.code != exitcode.Refused {
		// Whatever happened (done, rolled back, incomplete), a person looks
		// before sgerun acts again. A refusal (exit 3) changed nothing.
		if err := w.MarkStandDown(r.id); err != nil {
			emit(Event{Event: EvProbeError, Error: "record stand-down: " + err.Error()})
		}
	}
	if ctx.Err() == nil {
		return nil
	}
	stop := ev
	stop.Event, stop.Error = EvStop, ""
	stop.Reason = fmt.Sprintf("signal, after takeover run %s ended (exit %d)", r.id, r.code)
	if r.err != nil {
		stop.Reason += ": " + r.err.Error()
	}
	return &stop
}
