package watch

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sgerun/sgerun/steps"
)

// harness fakes the gate, the takeover and the clock: each probe moves the
// clock by half the confirmation period.
type harness struct {
	mu        sync.Mutex
	now       time.Time
	verdicts  []string // consumed one per probe; the last repeats
	takeovers int
	standDown bool
	events    []Event
	cancel    context.CancelFunc
	maxProbes int
	probes    int
}

func (h *harness) watcher(cfg Config) *Watcher {
	return &Watcher{
		Config: cfg,
		Now:    func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now },
		Probe: func(context.Context) Observation {
			h.mu.Lock()
			defer h.mu.Unlock()
			v := h.verdicts[0]
			if len(h.verdicts) > 1 {
				h.verdicts = h.verdicts[1:]
			}
			return Observation{Verdict: v, Reason: v}
		},
		Takeover: func(context.Context) (string, int, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.takeovers++
			return "run1", 0, nil
		},
		StandingDown: func(context.Context) (bool, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			// one call per loop: count checks here, so that standing down
			// still ends the test
			h.probes++
			if h.probes >= h.maxProbes {
				h.cancel()
			}
			return h.standDown, nil
		},
		MarkStandDown: func(string) error { h.mu.Lock(); defer h.mu.Unlock(); h.standDown = true; return nil },
		Emit:          func(e Event) { h.mu.Lock(); defer h.mu.Unlock(); h.events = append(h.events, e) },
	}
}

func run(t *testing.T, cfg Config, probes int, verdicts ...string) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{now: time.Unix(0, 0), verdicts: verdicts, cancel: cancel, maxProbes: probes}
	cfg.Interval = time.Millisecond // real waiting between checks
	w := h.watcher(cfg)
	w.Probe = wrapStep(w.Probe, h, cfg.Confirm/2)
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop")
	}
	return h
}

func wrapStep(p func(context.Context) Observation, h *harness, step time.Duration) func(context.Context) Observation {
	return func(ctx context.Context) Observation {
		o := p(ctx)
		h.mu.Lock()
		h.now = h.now.Add(step - time.Millisecond)
		h.mu.Unlock()
		return o
	}
}

const (
	down    = steps.VerdictMasterDown
	healthy = steps.VerdictHealthy
	cutOff  = steps.VerdictShadowCutOff
)

func TestConfirmedFailureTakesOverOnce(t *testing.T) {
	h := run(t, Config{Confirm: 20 * time.Second}, 10, down)
	if h.takeovers != 1 {
		t.Fatalf("takeovers = %d, want exactly 1 (then stand down)", h.takeovers)
	}
	if !has(h.events, EvSuspect) || !has(h.events, EvConfirmed) || !has(h.events, EvStandingDown) {
		t.Errorf("events %v lack suspect/confirmed/standing_down", names(h.events))
	}
}

func TestFlapShorterThanConfirmNeverActs(t *testing.T) {
	// down for one probe (half the confirmation period), then healthy, repeatedly
	var vs []string
	for i := 0; i < 20; i++ {
		vs = append(vs, down, healthy)
	}
	h := run(t, Config{Confirm: 20 * time.Second}, 40, vs...)
	if h.takeovers != 0 {
		t.Fatalf("takeovers = %d during a flap shorter than the confirmation", h.takeovers)
	}
}

func TestShadowCutOffNeverActs(t *testing.T) {
	h := run(t, Config{Confirm: 20 * time.Second}, 12, cutOff)
	if h.takeovers != 0 {
		t.Fatalf("took over with the shadow cut off")
	}
	n := 0
	for _, e := range h.events {
		if e.Event == EvNoTakeover && e.Verdict == cutOff {
			n++
		}
	}
	if n < 3 {
		t.Errorf("%d no_takeover events, want one per check (≥3)", n)
	}
}

// TestConfirmTimedFromCheckStart: checks start an interval apart, but the
// first gate run is slow and the later ones fast. A failure seen at checks
// one confirmation period apart is confirmed at that check, not one
// interval later.
func TestConfirmTimedFromCheckStart(t *testing.T) {
	const interval = 10 * time.Second
	var (
		mu     sync.Mutex
		now    time.Time
		checks int
		at     = -1 // check at which the takeover started
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &Watcher{
		Config: Config{Interval: time.Millisecond, Confirm: 2 * interval},
		Now:    func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		StandingDown: func(context.Context) (bool, error) {
			// the timer fired: check number `checks` begins
			mu.Lock()
			defer mu.Unlock()
			now = time.Unix(0, 0).Add(time.Duration(checks) * interval)
			if checks == 6 {
				cancel()
			}
			return false, nil
		},
		Probe: func(context.Context) Observation {
			mu.Lock()
			defer mu.Unlock()
			took := time.Second
			if checks == 0 {
				took = 5 * time.Second
			}
			now = now.Add(took)
			checks++
			return Observation{Verdict: down}
		},
		Takeover: func(context.Context) (string, int, error) {
			mu.Lock()
			defer mu.Unlock()
			if at < 0 {
				at = checks
			}
			return "run1", 0, nil
		},
		Emit: func(Event) {},
	}
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// checks 1, 2, 3 begin at 0 s, 10 s, 20 s and end 5 s, 11 s, 21 s:
	// the third confirms (down from 0 s to 21 s).
	if at != 3 {
		t.Fatalf("takeover after check %d, want after check 3 (failure seen at 0 s and 20 s, confirm 20 s)", at)
	}
}

// slowChecks runs a watcher whose every check takes took on the fake
// clock, back to back (a hung master's checks outlast the interval), with
// verdicts consumed one per check (the last repeats). It returns the
// check after which the takeover started (0: none) and the events.
func slowChecks(t *testing.T, confirm, took time.Duration, checks int, verdicts ...string) (int, []Event) {
	t.Helper()
	return slowChecksSeen(t, confirm, took, nil, checks, verdicts...)
}

// slowChecksSeen is slowChecks with the down evidence of each check taken
// at seen(start of the check), when seen is not nil.
func slowChecksSeen(t *testing.T, confirm, took time.Duration, seen func(began time.Time) (from, until time.Time), checks int, verdicts ...string) (int, []Event) {
	t.Helper()
	var (
		mu     sync.Mutex
		now    = time.Unix(0, 0)
		n, at  int
		events []Event
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &Watcher{
		Config: Config{Interval: time.Millisecond, Confirm: confirm},
		Now:    func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Probe: func(context.Context) Observation {
			mu.Lock()
			defer mu.Unlock()
			began := now
			now = now.Add(took)
			v := verdicts[min(n, len(verdicts)-1)]
			n++
			if n == checks {
				cancel()
			}
			o := Observation{Verdict: v}
			if seen != nil {
				o.SeenFrom, o.SeenUntil = seen(began)
			}
			return o
		},
		Takeover: func(context.Context) (string, int, error) {
			mu.Lock()
			defer mu.Unlock()
			if at == 0 {
				at = n
			}
			cancel()
			return "run1", 0, nil
		},
		Emit: func(e Event) { mu.Lock(); defer mu.Unlock(); events = append(events, e) },
	}
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return at, events
}

// TestConfirmCountsToTheEndOfTheCheck: a hung master's checks take 13 s
// each (qping 3 s, then 9 s), back to back. The first finds it down from
// 0 s to 13 s, the second to 26 s: a 20 s confirmation is reached at the
// end of the second, not one check (13 s) later.
func TestConfirmCountsToTheEndOfTheCheck(t *testing.T) {
	at, evs := slowChecks(t, 20*time.Second, 13*time.Second, 6, down)
	if at != 2 {
		t.Fatalf("takeover after check %d, want after check 2 (down from 0 s to 26 s, confirm 20 s); events %v", at, names(evs))
	}
	var c Event
	for _, e := range evs {
		if e.Event == EvConfirmed {
			c = e
		}
	}
	if c.Since == nil || c.Time.Sub(*c.Since) < 20*time.Second {
		t.Errorf("confirmed event %+v: want failing_since at least the confirmation period before it", c)
	}
}

// TestConfirmCountsTheEvidenceNotTheCheck: every check takes 10 s (an
// unreachable witness holds it up), but the down votes' evidence is taken
// from 0.5 s to 1.5 s into each. The master is seen down from 0.5 s to
// 11.5 s after two checks, 21.5 s after three: the third confirms, not the
// second (whose end is 20 s after the first began).
func TestConfirmCountsTheEvidenceNotTheCheck(t *testing.T) {
	seen := func(b time.Time) (time.Time, time.Time) {
		return b.Add(500 * time.Millisecond), b.Add(1500 * time.Millisecond)
	}
	at, evs := slowChecksSeen(t, 20*time.Second, 10*time.Second, seen, 6, down)
	if at != 3 {
		t.Fatalf("takeover after check %d, want after check 3 (down evidence from 0.5 s to 21.5 s); events %v", at, names(evs))
	}
}

// TestOneCheckNeverConfirms: a single check longer than the confirmation
// period (a hang's 13 s against 5 s) does not confirm; the next one does.
func TestOneCheckNeverConfirms(t *testing.T) {
	at, evs := slowChecks(t, 5*time.Second, 13*time.Second, 6, down)
	if at != 2 {
		t.Fatalf("takeover after check %d, want after check 2: one check proves nothing about how long a failure lasts; events %v", at, names(evs))
	}
}

// TestSlowFlapNeverActs: checks of 13 s alternate down and up (a master
// that answered during the second check is up). No two down checks follow
// each other, so no failure lasts 20 s, and nothing acts.
func TestSlowFlapNeverActs(t *testing.T) {
	if at, evs := slowChecks(t, 20*time.Second, 13*time.Second, 12, down, healthy, down, healthy, down, healthy, down, healthy, down, healthy, down, healthy); at != 0 {
		t.Fatalf("takeover after check %d during a flap; events %v", at, names(evs))
	}
	// one check short of the confirmation: 0 s to 19 s down, then up
	if at, evs := slowChecks(t, 20*time.Second, 9500*time.Millisecond, 6, down, down, healthy); at != 0 {
		t.Fatalf("takeover after check %d with the master down for 19 s of a 20 s confirmation; events %v", at, names(evs))
	}
}

// TestSuspectChecksComeSooner: the interval is an hour, but once a check
// finds the master down the next follows SuspectInterval later, on the
// real clock.
func TestSuspectChecksComeSooner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var starts []time.Time
	w := &Watcher{
		Config: Config{Interval: time.Hour, Confirm: time.Hour},
		Probe: func(context.Context) Observation {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, time.Now())
			if len(starts) == 3 {
				cancel()
			}
			return Observation{Verdict: down}
		},
		Takeover: func(context.Context) (string, int, error) {
			t.Error("takeover before the confirmation")
			return "", 0, nil
		},
		Emit: func(Event) {},
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3*SuspectInterval + 2*time.Second):
		t.Fatalf("%d check(s) in %s, want 3: suspect checks should follow %s apart", len(starts), 3*SuspectInterval+2*time.Second, SuspectInterval)
	}
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < SuspectInterval-100*time.Millisecond || d > SuspectInterval+time.Second {
			t.Errorf("checks %d and %d began %s apart, want about %s", i, i+1, d, SuspectInterval)
		}
	}
}

func has(evs []Event, name string) bool {
	for _, e := range evs {
		if e.Event == name {
			return true
		}
	}
	return false
}

func names(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Event)
	}
	return out
}

// TestStopDuringTakeoverWaitsForTheRun: a SIGTERM (Run's context
// cancelled) and then a second signal arrive while a takeover runs. The
// takeover's context stays live, the watcher logs both and keeps waiting,
// and it stops only once the run ends, with the run's outcome in
// watch_stop.
func TestStopDuringTakeoverWaitsForTheRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		events   []Event
		marked   string
		started  = make(chan struct{})
		release  = make(chan struct{})
		runCtxOK = make(chan bool, 1)
	)
	sigs := make(chan os.Signal, 1)
	emitted := make(chan string, 64)
	w := &Watcher{
		Config: Config{Interval: time.Millisecond, Confirm: 0},
		Probe:  func(context.Context) Observation { return Observation{Verdict: down} },
		Takeover: func(rctx context.Context) (string, int, error) {
			close(started)
			<-release
			runCtxOK <- rctx.Err() == nil
			return "run7", 0, nil
		},
		MarkStandDown: func(id string) error { mu.Lock(); defer mu.Unlock(); marked = id; return nil },
		Signals:       sigs,
		Emit: func(e Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			emitted <- e.Event
		},
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no takeover started")
	}
	cancel() // the first SIGTERM
	waitEvent(t, emitted, EvStopDeferred)
	sigs <- syscall.SIGINT // a second signal
	waitEvent(t, emitted, EvSignalIgnored)
	select {
	case err := <-done:
		t.Fatalf("watcher returned (%v) while its takeover still ran", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v after a stop during a takeover, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watcher did not stop after its takeover ended")
	}
	if !<-runCtxOK {
		t.Error("the takeover's context was cancelled by the stop")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{EvTakeoverStart, EvStopDeferred, EvSignalIgnored, EvTakeoverEnd, EvStop}
	got := names(events)
	if len(got) < len(want) {
		t.Fatalf("events %v, want them to end with %v", got, want)
	}
	if tail := got[len(got)-len(want):]; !equal(tail, want) {
		t.Fatalf("events %v, want them to end with %v", got, want)
	}
	last := events[len(events)-1]
	if last.RunID != "run7" || last.ExitCode == nil || *last.ExitCode != 0 {
		t.Errorf("watch_stop = %+v, want run7 with exit 0", last)
	}
	if marked != "run7" {
		t.Errorf("stand-down marked for %q, want run7", marked)
	}
}

func waitEvent(t *testing.T, ch <-chan string, name string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-ch:
			if e == name {
				return
			}
		case <-deadline:
			t.Fatalf("no %s event", name)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStopBeforeTakeoverStartsNone: a stop that comes while the probe
// that confirms the failure runs starts no takeover.
func TestStopBeforeTakeoverStartsNone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	takeovers := 0
	var events []Event
	w := &Watcher{
		Config: Config{Interval: time.Millisecond, Confirm: 0},
		Probe: func(context.Context) Observation {
			cancel() // SIGTERM while the gate runs; it still answers
			return Observation{Verdict: down}
		},
		Takeover: func(context.Context) (string, int, error) { takeovers++; return "run1", 0, nil },
		Emit:     func(e Event) { events = append(events, e) },
	}
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if takeovers != 0 || has(events, EvTakeoverStart) {
		t.Fatalf("%d takeovers after a stop, events %v", takeovers, names(events))
	}
	if got := names(events); got[len(got)-1] != EvStop {
		t.Errorf("events %v, want watch_stop last", got)
	}
}
