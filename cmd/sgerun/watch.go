package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
	"github.com/sgerun/sgerun/ui"
	"github.com/sgerun/sgerun/watch"
	"github.com/spf13/cobra"
)

func (a *app) watchCmd() *cobra.Command {
	var invPath, eventsPath, on string
	var interval, confirm time.Duration
	cmd := &cobra.Command{
		Use:   "watch [--inventory FILE] [--interval 5s] [--confirm 20s]",
		Short: "Detect a failed master and take over, unattended (a safer sge_shadowd)",
		Long: `watch runs the takeover's partition gate every interval, read-only: qping
status, TCP and SSH from the shadow and the witnesses, and the heartbeat age.
A hung master (port open, qping silent) counts as failed; a shadow that is
itself cut off never triggers anything. Only a failure that persists for the
whole confirmation period starts a takeover (with the inventory's hooks);
afterwards watch stands down until a person runs sgerun ack.

Every decision is printed as a JSON line with its evidence (journald picks it
up under systemd) and appended to STATE_DIR/watch/events.jsonl.
SIGTERM (or SIGINT) stops it cleanly; a takeover it started runs to its end
first (done, or rolled back), whatever further signals come: only SIGKILL
abandons one. SIGHUP reloads the inventory.`,
		Args: exactArgs(0, "no arguments (use --inventory)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			inv, err := loadInventory(invPath)
			if err != nil {
				return err
			}
			self, err := watchSelf(inv, on)
			if err != nil {
				return err
			}
			// The gate compiles now, not at the first check: a playbook
			// that cannot gate this inventory is an input error.
			if _, err := gateConfig(inv); err != nil {
				return err
			}
			cfg := watchConfig(inv, interval, confirm)
			if cfg.Interval <= 0 || cfg.Confirm < 0 {
				return usagef("--interval must be positive and --confirm not negative")
			}
			if eventsPath == "" {
				eventsPath = filepath.Join(a.stateDir, "watch", "events.jsonl")
			}
			log, err := openEventLog(eventsPath)
			if err != nil {
				return err
			}
			defer log.Close()
			var mu sync.Mutex
			current := func() *inventory.Inventory { mu.Lock(); defer mu.Unlock(); return inv }
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{})
			go func() {
				for range hup {
					reload <- struct{}{}
				}
			}()
			stopCtx, moreSigs, release := a.watchSignals(cmd.Context())
			defer release()
			marker := a.standDownPath(invPath)
			w := &watch.Watcher{
				Config: cfg,
				Probe:  func(ctx context.Context) watch.Observation { return a.watchProbe(ctx, current(), self) },
				Takeover: func(ctx context.Context) (string, int, error) {
					return a.watchTakeover(ctx, current(), self)
				},
				StandingDown: func(context.Context) (bool, error) {
					_, err := os.Stat(marker)
					if errors.Is(err, os.ErrNotExist) {
						return false, nil
					}
					return err == nil, err
				},
				MarkStandDown: func(runID string) error {
					if err := os.MkdirAll(filepath.Dir(marker), 0o700); err != nil {
						return err
					}
					data, _ := json.Marshal(map[string]any{"run_id": runID, "time": time.Now().UTC()})
					return os.WriteFile(marker, data, 0o600)
				},
				Reload: reload,
				ReloadFunc: func() (watch.Config, error) {
					next, err := inventory.Load(invPath)
					if err != nil {
						return watch.Config{}, err
					}
					if _, err := gateConfig(next); err != nil {
						return watch.Config{}, err
					}
					mu.Lock()
					inv = next
					mu.Unlock()
					return watchConfig(next, interval, confirm), nil
				},
				Signals: moreSigs,
				Emit:    func(e watch.Event) { log.emit(a, e) },
			}
			return w.Run(stopCtx)
		},
	}
	f := cmd.Flags()
	inventoryFlag(f, &invPath)
	f.DurationVar(&interval, "interval", 0, "time between checks (default: the inventory's watch.interval)")
	f.DurationVar(&confirm, "confirm", 0, "how long a failure must persist before a takeover (default: watch.confirm)")
	f.StringVar(&eventsPath, "events", "", "event log (default STATE_DIR/watch/events.jsonl)")
	f.StringVar(&on, "on", "", "the head this watch runs on (default: this machine's host name when it is a head); see Two heads in docs/watch.md")
	return cmd
}

// watchSignals takes SIGINT and SIGTERM over from the root command for
// watch's lifetime. The first cancels the returned context (watch stops,
// after a takeover it started has ended); later ones go to more, to be
// logged, and never exit the process. release gives the signals back.
func (a *app) watchSignals(parent context.Context) (ctx context.Context, more <-chan os.Signal, release func()) {
	a.ownSignals.Store(true)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	if parent.Err() != nil {
		cancel() // the signal came before watch took them over
	}
	fwd := make(chan os.Signal, 4)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if ctx.Err() == nil {
					cancel()
					continue
				}
				select {
				case fwd <- s:
				default: // a burst of signals: one logged is enough
				}
			case <-quit:
				return
			}
		}
	}()
	return ctx, fwd, func() {
		signal.Stop(sigs)
		close(quit)
		cancel()
	}
}

func watchConfig(inv *inventory.Inventory, interval, confirm time.Duration) watch.Config {
	cfg := watch.Config{Interval: inv.Watch.Interval, Confirm: inv.Watch.Confirm}
	if interval > 0 {
		cfg.Interval = interval
	}
	if confirm > 0 {
		cfg.Confirm = confirm
	}
	return cfg
}

// standDownPath is the marker a takeover by watch leaves until sgerun ack.
func (a *app) standDownPath(invPath string) string {
	abs, err := filepath.Abs(invPath)
	if err != nil {
		abs = invPath
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(a.stateDir, "watch", "standdown-"+hex.EncodeToString(sum[:8])+".json")
}

// gateConfig is the partition gate the takeover playbook runs against inv:
// its one sge_gate step, compiled and rendered as a takeover renders it, so
// that watch decides with exactly the takeover's gate and the
// inventory-to-gate mapping is written only there. Watch never forces the
// gate.
func gateConfig(inv *inventory.Inventory) (steps.GateConfig, error) {
	rb, err := loadPlaybook(takeoverPlaybook)
	if err != nil {
		return steps.GateConfig{}, err
	}
	p, err := plan.Compile(rb, inv, nil)
	if err != nil {
		return steps.GateConfig{}, err
	}
	var gates []plan.Step
	for _, st := range p.Steps() {
		if st.Def.Name == gateKindName {
			gates = append(gates, st)
		}
	}
	if len(gates) != 1 {
		return steps.GateConfig{}, usagef("watch: the %s playbook has %d %s steps, watch needs exactly one", takeoverPlaybook, len(gates), gateKindName)
	}
	st := &gates[0]
	_, spec, err := st.Spec(p.StepHostData(st, target.Controller, p.Data(plan.Run{ID: "watch"})))
	if err != nil {
		return steps.GateConfig{}, fmt.Errorf("%w: watch: %s step %q: %w", errUsage, takeoverPlaybook, st.Name, err)
	}
	cfg, ok := steps.GateConfigOf(spec)
	if !ok {
		return steps.GateConfig{}, usagef("watch: %s step %q is not a gate", takeoverPlaybook, st.Name)
	}
	cfg.Policy.Force = false
	return cfg, nil
}

// gateKindName is the step kind of the takeover's partition gate.
const gateKindName = "sge_gate"

// probeGate runs the takeover's partition gate once, read-only, over fresh
// connections (a connection from before a partition may hang).
func probeGate(ctx context.Context, inv *inventory.Inventory) watch.Observation {
	conn, err := target.NewSSH(inv)
	if err != nil {
		return watch.Observation{Err: err}
	}
	defer conn.Close()
	env := steps.Runtime{Reach: conn.Reach, Connect: func(ctx context.Context, host, address string) (target.Target, error) {
		return target.Connect(ctx, conn, host, address)
	}}
	cfg, err := gateConfig(inv)
	if err != nil {
		return watch.Observation{Err: err}
	}
	ev, err := steps.CollectGate(ctx, cfg, env)
	if err != nil {
		return watch.Observation{Err: err}
	}
	d := steps.DecideGate(ev, cfg.Policy)
	obs := watch.Observation{Verdict: d.Verdict, Reason: d.Reason, Decision: &d, Evidence: steps.GateData(ev, d)}
	if from, until, ok := ev.DownWindow(d); ok {
		obs.SeenFrom, obs.SeenUntil = from, until
	}
	return obs
}

// unattendedTakeover runs the takeover playbook as `takeover --yes` would,
// with the inventory's hooks, its progress on stderr.
func (a *app) unattendedTakeover(ctx context.Context, inv *inventory.Inventory, notes []string) (string, int, error) {
	rb, err := loadPlaybook(takeoverPlaybook)
	if err != nil {
		return "", exitCode(err), err
	}
	view := &ui.RunView{W: a.errOut, S: ui.NewStyles(a.errOut, true)}
	p, err := plan.Compile(rb, inv, nil)
	if err != nil {
		return "", exitCode(err), err
	}
	s := &engine.Session{Plan: p, Inventory: inv, StateDir: a.stateDir, LogDir: a.runsDir(),
		Args: []string{"sgerun", "watch"}, Observe: view.Event, Hooks: takeoverHooks(inv), Notes: notes}
	out, err := s.Start(ctx)
	return out.RunID, exitCode(err), err
}

// eventLog appends watch events to a file (fsynced) and prints them as JSON
// lines on stdout.
type eventLog struct {
	mu sync.Mutex
	f  *os.File
}

func openEventLog(path string) (*eventLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	return &eventLog{f: f}, nil
}

func (l *eventLog) emit(a *app, e watch.Event) {
	b, err := json.Marshal(e)
	if err != nil {
		b, _ = json.Marshal(watch.Event{Time: e.Time, Event: e.Event, Error: "encode event: " + err.Error()})
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = a.out.Write(b)
	if _, err := l.f.Write(b); err == nil {
		_ = l.f.Sync()
	}
}

func (l *eventLog) Close() error { return l.f.Close() }
