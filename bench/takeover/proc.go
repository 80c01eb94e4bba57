package takeover

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// proc is a command started in the lab.
type proc struct {
	done chan struct{}
	end  time.Time
	code int
	out  string
	err  error // could not run, or timed out
}

// start runs cmd (bash -c) as root on host (or lab.CtlHost) in its own
// process group, killed after timeout.
func (tr *trial) start(ctx context.Context, host string, timeout time.Duration, cmd string) *proc {
	p := &proc{done: make(chan struct{})}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	c, err := tr.l.Command(cctx, host, "", cmd)
	if err != nil {
		cancel()
		p.err, p.code, p.end = err, -1, time.Now()
		close(p.done)
		return p
	}
	var buf bytes.Buffer
	c.Stdout, c.Stderr = &buf, &buf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	go func() {
		defer cancel()
		defer close(p.done)
		err := c.Run()
		p.end = time.Now()
		p.out = buf.String()
		var ee *exec.ExitError
		switch {
		case cctx.Err() != nil:
			p.code, p.err = -1, fmt.Errorf("timed out after %s", timeout)
		case err == nil:
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		case errors.Is(err, exec.ErrWaitDelay):
		default:
			p.code, p.err = -1, err
		}
	}()
	return p
}

// sgerunState is the sgerun state directory (journals, locks) of the lab.
func (tr *trial) sgerunState() string { return filepath.Join(tr.l.StateDir(), "sgerun-state") }

// startSgerun starts sgerun with args in the controller namespace.
func (tr *trial) startSgerun(ctx context.Context, timeout time.Duration, args ...string) *proc {
	argv := append([]string{tr.cfg.Sgerun, "--no-color", "--state-dir", tr.sgerunState()}, args...)
	return tr.start(ctx, lab.CtlHost, timeout, shell.Join(argv...)+" </dev/null")
}

// sgerun runs sgerun with args and waits for it.
func (tr *trial) sgerun(ctx context.Context, timeout time.Duration, args ...string) (*proc, error) {
	p := tr.startSgerun(ctx, timeout, args...)
	<-p.done
	return p, p.err
}

// runIDs lists the run ids in the lab's sgerun state.
func (tr *trial) runIDs() map[string]bool {
	m, _ := filepath.Glob(filepath.Join(tr.sgerunState(), "runs", "*"))
	ids := map[string]bool{}
	for _, p := range m {
		ids[filepath.Base(p)] = true
	}
	return ids
}

func newIDs(before, after map[string]bool) []string {
	var out []string
	for id := range after {
		if !before[id] {
			out = append(out, id)
		}
	}
	return out
}

// steps reads a run's journal: each step's start (from the trial's t=0)
// and duration.
func (tr *trial) steps(runID string) ([]Step, error) {
	_, events, err := journal.Read(filepath.Join(tr.sgerunState(), "runs", runID))
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", runID, err)
	}
	started := map[int]time.Time{}
	var out []Step
	for _, e := range events {
		switch e.Type {
		case journal.StepStart:
			started[e.Step] = e.Time
		case journal.StepEnd:
			s, ok := started[e.Step]
			if !ok {
				s = e.Time
			}
			out = append(out, Step{Name: e.StepName, Status: e.Status,
				At: round3(s.Sub(tr.t.Start).Seconds()), Seconds: round3(e.Time.Sub(s).Seconds())})
		}
	}
	return out, nil
}

// watchProc is a running "sgerun watch" at its shipped defaults.
type watchProc struct {
	p      *proc
	cancel context.CancelFunc
	cmd    *exec.Cmd
	events string
	once   sync.Once
}

// watchEvent is the part of a watch event line the benchmark uses.
type watchEvent struct {
	Time     time.Time `json:"time"`
	Event    string    `json:"event"`
	RunID    string    `json:"run_id"`
	ExitCode *int      `json:"exit_code"`
	Error    string    `json:"error"`
}

// startWatch starts sgerun watch with the inventory's (shipped) timings.
func (tr *trial) startWatch(ctx context.Context) (*watchProc, error) {
	w := &watchProc{events: filepath.Join(tr.l.StateDir(), "watch-events.jsonl"), p: &proc{done: make(chan struct{})}}
	logf := filepath.Join(tr.l.StateDir(), "log", "watch.log")
	argv := []string{tr.cfg.Sgerun, "--state-dir", tr.sgerunState(), "watch", "--inventory", tr.l.InventoryPath(), "--events", w.events}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c, err := tr.l.Command(wctx, lab.CtlHost, "", "exec "+shell.Join(argv...)+" </dev/null >/dev/null 2>"+shell.Quote(logf))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch: %w", err)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	if err := c.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("watch: %w", err)
	}
	w.cmd, w.cancel = c, cancel
	go func() {
		defer close(w.p.done)
		w.p.err = c.Wait()
		w.p.end = time.Now()
	}()
	return w, nil
}

// events reads the watch's event file.
func (w *watchProc) eventsNow() []watchEvent {
	f, err := os.Open(w.events)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []watchEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var e watchEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event != "" {
			out = append(out, e)
		}
	}
	return out
}

func (w *watchProc) seen(event string) bool {
	for _, e := range w.eventsNow() {
		if e.Event == event {
			return true
		}
	}
	return false
}

// waitEvent waits up to timeout for a first event named event.
func (w *watchProc) waitEvent(ctx context.Context, event string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !w.seen(event) {
		select {
		case <-w.p.done:
			return fmt.Errorf("watch exited before %s: %v", event, w.p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s event within %s", event, timeout)
		}
	}
	return nil
}

// stop ends the watch: SIGTERM to its process group, SIGKILL after 15 s.
func (w *watchProc) stop() {
	w.once.Do(func() {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-w.p.done:
		case <-time.After(15 * time.Second):
			w.cancel()
			<-w.p.done
		}
		w.cancel()
	})
}

// watchMarks takes watch's confirmation, takeover start and end from its
// event log; the end is the trial's exit mark.
func (tr *trial) watchMarks(w *watchProc) {
	t := tr.t
	for _, e := range w.eventsNow() {
		t.WatchEvents = append(t.WatchEvents, fmt.Sprintf("%7.1f %s %s", e.Time.Sub(t.Start).Seconds(), e.Event, e.RunID))
		if e.Time.Before(t.Start) {
			continue
		}
		switch e.Event {
		case "confirmed":
			tr.mark(MarkConfirmed, e.Time)
		case "takeover_start":
			tr.mark(MarkTOStart, e.Time)
		case "takeover_end":
			if t.ExitCode == nil {
				tr.mark(MarkExit, e.Time)
				t.ExitCode = e.ExitCode
				t.RunID = e.RunID
				if e.ExitCode == nil || *e.ExitCode != 0 {
					t.fail("watch's takeover ended with exit %v: %s", e.ExitCode, e.Error)
				}
			}
		}
	}
	if t.ExitCode == nil {
		t.fail("watch logged no takeover_end")
	}
	if b, err := os.ReadFile(filepath.Join(tr.l.StateDir(), "log", "watch.log")); err == nil {
		t.Output = tail(string(b), 40)
	}
}
