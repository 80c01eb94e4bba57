// Package takeover is sgerun's takeover benchmark on the real-SGE lab: the
// seed's sgetakeover script, "sgerun takeover", sge_shadowd (30/30/30, set
// up by "sgerun shadow-setup") and "sgerun watch" at its shipped defaults,
// each on a fresh lab per round and scenario, timed from the invocation (or
// from the failure, for the detectors) to the points that matter to users:
// the new qmaster answering qping with status 0, every exec host reporting
// load to it, every job that was running still running, and the command's
// exit. It also measures the floor (qmaster start from a copied spool,
// execd registration after a restart) and jobs in transfer.
//
// Run it with bench/takeover.sh (see docs/performance.md); the CI version is
// TestQuickTakeover, correctness only.
package takeover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/bench"
	"github.com/sgerun/sgerun/lab"
)

// Scenario names: tool, then fault.
const (
	SeedCut      = "seed-cut"      // the seed's sgetakeover after a scheduler-network cut
	TakeoverCut  = "takeover-cut"  // sgerun takeover --yes after a scheduler-network cut
	TakeoverHang = "takeover-hang" // sgerun takeover --yes after a hang (SIGSTOP of qmaster)
	ShadowdHang  = "shadowd-hang"  // sge_shadowd 30/30/30 on a hang
	WatchCut     = "watch-cut"     // sgerun watch (shipped defaults) on a cut
	WatchHang    = "watch-hang"    // sgerun watch (shipped defaults) on a hang
	TransferCut  = "transfer-cut"  // sgerun takeover after a cut, jobs dispatched after the cut
	Floor        = "floor"         // qmaster start from a copied spool; execd start until it reports
)

// Scenarios returns every scenario, in the order of round 1.
func Scenarios() []string {
	return []string{SeedCut, TakeoverCut, TakeoverHang, ShadowdHang, WatchCut, WatchHang, TransferCut, Floor}
}

// Marks of a trial, in seconds from its t=0 (the invocation, or the
// failure for shadowd and watch).
const (
	MarkQping    = "qping0"   // qping -info <shadow> 6444 qmaster 1 says status 0
	MarkExecds   = "execds"   // every exec host reports load to the new master
	MarkJobs     = "jobs"     // the new master lists every job that ran as running
	MarkExit     = "exit"     // the command exited (watch: its takeover_end)
	MarkTransfer = "transfer" // every job dispatched after the cut runs
	// Watch only.
	MarkConfirmed = "confirmed"      // watch confirmed the failure
	MarkTOStart   = "takeover_start" // watch started its takeover
)

// Floor measurements (durations of each part, not times from t=0).
const (
	FloorCopy         = "copy"          // cp -a of the spool directory
	FloorSoftstop     = "softstop"      // sgeexecd softstop until sge_execd is gone, slowest host
	FloorQmasterStart = "qmaster_start" // sgemaster -qmaster start until qping status 0
	FloorExecdStart   = "execd_start"   // sgeexecd start (all hosts at once) until all report load
)

// Config describes a benchmark.
type Config struct {
	// Rounds is how many rounds to run (each scenario once per round).
	Rounds int `json:"rounds"`
	// Scenarios to run; empty: all.
	Scenarios []string `json:"scenarios"`
	// Sgerun is the sgerun binary.
	Sgerun string `json:"sgerun"`
	// ExecHosts per lab (default 3).
	ExecHosts int `json:"exec_hosts"`
	// Jobs running when the fault comes (default 6: every slot of 3 exec
	// hosts).
	Jobs int `json:"jobs"`
	// JobSleep is how long each job sleeps (default 90 s). sge_shadowd's
	// jobs sleep 150 s longer, so that they still run when it is done.
	JobSleep time.Duration `json:"job_sleep_ns"`
	// Quick shortens waits for correctness-only runs (no longer jobs for
	// shadowd).
	Quick bool `json:"quick"`
	// Poll is the pause between two samples (default 200 ms).
	Poll time.Duration `json:"poll_ns"`
	// Parallel is how many trials run at once, each on its own lab
	// (default 1). More than one shortens the run and lengthens the
	// figures: the trials share the CPUs.
	Parallel int `json:"parallel"`
	// NamePrefix starts every lab name (default "tk"); a random suffix
	// makes it unique.
	NamePrefix string `json:"-"`
	// Log receives progress lines; nil discards them.
	Log *slog.Logger `json:"-"`
}

func (c Config) normalize() (Config, error) {
	if c.Rounds <= 0 {
		c.Rounds = 1
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = Scenarios()
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios(), s) {
			return c, fmt.Errorf("unknown scenario %q (want one of %s)", s, strings.Join(Scenarios(), ", "))
		}
	}
	if c.Sgerun == "" {
		return c, errors.New("no sgerun binary")
	}
	if c.ExecHosts == 0 {
		c.ExecHosts = lab.DefaultExecHosts
	}
	if c.Jobs == 0 {
		c.Jobs = 2 * c.ExecHosts
	}
	if c.Jobs < 3 {
		c.Jobs = 3
	}
	if c.JobSleep == 0 {
		c.JobSleep = 90 * time.Second
	}
	if c.Parallel <= 0 {
		c.Parallel = 1
	}
	if c.Poll == 0 {
		c.Poll = 200 * time.Millisecond
	}
	if c.NamePrefix == "" {
		c.NamePrefix = "tk"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// Step is one step of an sgerun run, from its journal.
type Step struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"`
	At      float64 `json:"at"`      // start, seconds from the trial's t=0
	Seconds float64 `json:"seconds"` // step_start to step_end
}

// Sample is one observation of the witness (the first exec host).
type Sample struct {
	T        float64 `json:"t"`
	Act      string  `json:"act_qmaster"`
	Qping    int     `json:"qping"`    // status from the shadow's qmaster, -1 none
	Reported int     `json:"reported"` // exec hosts with load on the new master, -1 not asked
	Running  int     `json:"running"`  // of the trial's jobs, in state r on the new master, -1 not asked
	Transfer string  `json:"transfer,omitempty"`
}

// Trial is one scenario on one fresh lab.
type Trial struct {
	Scenario string    `json:"scenario"`
	Round    int       `json:"round"`
	Lab      string    `json:"lab"`
	Start    time.Time `json:"t0"`
	Fault    time.Time `json:"fault"`
	// Marks are seconds from t=0 (floor: durations of each part).
	Marks    map[string]float64 `json:"marks"`
	ExitCode *int               `json:"exit_code,omitempty"`
	RunID    string             `json:"run_id,omitempty"`
	Steps    []Step             `json:"steps,omitempty"`
	Jobs     []int              `json:"jobs"`
	// TransferJobs were submitted right before the cut and dispatched by
	// the old master after it; TransferStates is what the new master first
	// listed them as; TransferNamed says whether the tool's output names
	// every one of them.
	TransferJobs   []int          `json:"transfer_jobs,omitempty"`
	TransferStates map[int]string `json:"transfer_states,omitempty"`
	TransferNamed  bool           `json:"transfer_named,omitempty"`
	// JobExit is each job's exit_status in qacct; -1 none seen.
	JobExit map[int]int `json:"job_exit"`
	// Serving: at the end, act_qmaster names the shadow and its qmaster
	// answers qping with status 0.
	Serving bool     `json:"serving"`
	Errors  []string `json:"errors,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Output  string   `json:"output,omitempty"` // the tool's output (tail)
	// WatchEvents are watch's events: seconds from t=0, name, run id.
	WatchEvents []string `json:"watch_events,omitempty"`
	Samples     []Sample `json:"samples,omitempty"`
	Took        float64  `json:"took"` // the whole trial, lab up to down
}

// OK says whether the trial ended with the shadow serving and every job
// exit 0, without errors.
func (t *Trial) OK() bool {
	if !t.Serving || len(t.Errors) > 0 {
		return false
	}
	for _, c := range t.JobExit {
		if c != 0 {
			return false
		}
	}
	return true
}

// Problems lists why the trial is not OK.
func (t *Trial) Problems() []string {
	out := append([]string(nil), t.Errors...)
	if !t.Serving {
		out = append(out, "the shadow does not serve at the end")
	}
	for _, id := range sortedInts(t.JobExit) {
		if c := t.JobExit[id]; c != 0 {
			out = append(out, fmt.Sprintf("job %d: exit_status %d", id, c))
		}
	}
	return out
}

func (t *Trial) fail(format string, args ...any) {
	t.Errors = append(t.Errors, fmt.Sprintf(format, args...))
}

func (t *Trial) note(format string, args ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
}

// Result is a whole benchmark.
type Result struct {
	Config  Config        `json:"config"`
	Started time.Time     `json:"started"`
	Took    time.Duration `json:"took_ns"`
	Trials  []*Trial      `json:"trials"`
	// Machine is where it ran and which sgerun (set by the caller).
	Machine *bench.Machine `json:"machine,omitempty"`
}

// Run runs cfg.Rounds rounds of every selected scenario, cfg.Parallel at a
// time (default one), each on a fresh lab. Round i runs the scenario list rotated by i, so that
// no tool always runs first. A failed trial is recorded, not fatal; Run
// returns an error only for a bad config or when ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Started: time.Now()}
	n := len(cfg.Scenarios)
	slots := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for r := 0; r < cfg.Rounds; r++ {
		for i := 0; i < n; i++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if err := ctx.Err(); err != nil {
				wg.Wait()
				res.Took = time.Since(res.Started)
				return res, err
			}
			sc := cfg.Scenarios[(i+r)%n]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				cfg.Log.Info("trial start", "round", r+1, "scenario", sc)
				t := RunTrial(ctx, cfg, sc, r+1)
				mu.Lock()
				res.Trials = append(res.Trials, t)
				mu.Unlock()
				cfg.Log.Info("trial done", "round", r+1, "scenario", sc, "lab", t.Lab, "ok", t.OK(),
					"marks", formatMarks(t.Marks), "problems", strings.Join(t.Problems(), "; "))
			}()
		}
	}
	wg.Wait()
	res.Took = time.Since(res.Started)
	return res, ctx.Err()
}

// RunTrial runs one scenario on a fresh lab of its own (a unique name, so
// several may run at once) and removes the lab afterwards, also on failure.
func RunTrial(ctx context.Context, cfg Config, scenario string, round int) *Trial {
	t := &Trial{Scenario: scenario, Round: round, Marks: map[string]float64{}, JobExit: map[int]int{}}
	began := time.Now()
	defer func() { t.Took = time.Since(began).Seconds() }()
	cfg, err := cfg.normalize()
	if err != nil {
		t.fail("%v", err)
		return t
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.fail("lab name: %v", err)
		return t
	}
	name := cfg.NamePrefix + hex.EncodeToString(b)
	t.Lab = name
	stateDir := filepath.Join(lab.DefaultBaseDir, name)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if err := lab.DownByName(dctx, name, stateDir, cfg.Log); err != nil {
			t.fail("lab down: %v", err)
		}
	}()
	uctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	l, err := lab.Up(uctx, lab.Config{Name: name, StateDir: stateDir, ExecHosts: cfg.ExecHosts, Logger: cfg.Log})
	cancel()
	if err != nil {
		t.fail("lab up: %v", err)
		return t
	}
	tr := &trial{cfg: cfg, l: l, t: t, witness: l.ExecHosts()[0]}
	if scenario == Floor {
		err = tr.floor(ctx)
	} else {
		err = tr.run(ctx)
	}
	if err != nil {
		t.fail("%v", err)
	}
	return t
}

// trial is the state of one running trial.
type trial struct {
	cfg     Config
	l       *lab.Lab
	t       *Trial
	witness string
	mu      sync.Mutex // guards t.Marks and t.Notes while the tool runs
}

func (tr *trial) mark(name string, at time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if _, ok := tr.t.Marks[name]; !ok {
		tr.t.Marks[name] = round3(at.Sub(tr.t.Start).Seconds())
		tr.cfg.Log.Info("mark", "lab", tr.t.Lab, "scenario", tr.t.Scenario, "mark", name, "t", tr.t.Marks[name])
	}
}

// notef adds a note to the trial; it may be called from any goroutine.
func (tr *trial) notef(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.t.note(format, args...)
}

func (tr *trial) has(name string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	_, ok := tr.t.Marks[name]
	return ok
}

func (tr *trial) tool() string {
	tool, _, _ := strings.Cut(tr.t.Scenario, "-")
	return tool
}

func (tr *trial) hangs() bool { return strings.HasSuffix(tr.t.Scenario, "-hang") }

func (tr *trial) jobSleep() time.Duration {
	if tr.tool() == "shadowd" && !tr.cfg.Quick {
		return tr.cfg.JobSleep + 150*time.Second
	}
	return tr.cfg.JobSleep
}

// run is every scenario but the floor: prepare the tool, start jobs,
// inject the fault, run the tool and sample until every mark is in or the
// scenario's deadline passed, then collect its journal and the jobs' exit
// codes.
func (tr *trial) run(ctx context.Context) error {
	l, t := tr.l, tr.t
	var w *watchProc
	switch tr.tool() {
	case "shadowd":
		r, err := tr.sgerun(ctx, 5*time.Minute, "shadow-setup", "--inventory", l.InventoryPath(), "--yes")
		if err != nil || r.code != 0 {
			return fmt.Errorf("shadow-setup: exit %d: %w\n%s", r.code, err, tail(r.out, 20))
		}
	case "watch":
		var err error
		w, err = tr.startWatch(ctx)
		if err != nil {
			return err
		}
		defer w.stop()
		if err := w.waitEvent(ctx, "healthy", 2*time.Minute); err != nil {
			return fmt.Errorf("watch: %w", err)
		}
	}
	n := tr.cfg.Jobs
	if t.Scenario == TransferCut {
		n -= 2
	}
	jobs, err := tr.submit(ctx, n, tr.jobSleep(), 0)
	if err != nil {
		return err
	}
	t.Jobs = jobs
	if err := tr.waitRunning(ctx, jobs); err != nil {
		return err
	}
	if t.Scenario == TransferCut {
		// Eligible 3 s from now: the old master dispatches them after the
		// cut below, and spools them as in transfer.
		tj, err := tr.submit(ctx, 2, 10*time.Second, 3*time.Second)
		if err != nil {
			return err
		}
		t.TransferJobs = tj
	}

	if tr.tool() == "shadowd" || tr.tool() == "watch" {
		t.Start = time.Now()
	}
	if err := tr.fault(ctx); err != nil {
		return err
	}
	t.Fault = time.Now()
	if t.Start.IsZero() {
		t.Start = time.Now()
	}

	var cmd *proc
	before := tr.runIDs()
	switch tr.tool() {
	case "seed":
		p, err := writeSeedScript(l)
		if err != nil {
			return err
		}
		log := filepath.Join(l.StateDir(), "log", "sgetakeover.log")
		t.Start = time.Now()
		cmd = tr.start(ctx, l.Shadow(), 4*time.Minute, "sh "+p+" </dev/null >"+log+" 2>&1; rc=$?; cat "+log+"; exit $rc")
	case "takeover", "transfer":
		t.Start = time.Now()
		cmd = tr.startSgerun(ctx, 4*time.Minute, "takeover", "--inventory", l.InventoryPath(), "--yes")
	}

	deadline := 3 * time.Minute
	switch {
	case tr.tool() == "shadowd":
		deadline = 6 * time.Minute
	case t.Scenario == TransferCut:
		deadline = 7 * time.Minute // SGE re-sends a job in transfer after 300 s
	}
	want := []string{MarkQping, MarkExecds, MarkJobs}
	if len(t.TransferJobs) > 0 {
		want = append(want, MarkTransfer)
	}
	tr.sample(ctx, deadline, want, cmd, w)

	if cmd != nil {
		<-cmd.done
		if cmd.err != nil {
			t.fail("%s: %v", tr.tool(), cmd.err)
		}
		code := cmd.code
		t.ExitCode = &code
		tr.mark(MarkExit, cmd.end)
		t.Output = tail(cmd.out, 60)
		if code != 0 {
			t.fail("%s exited %d", tr.tool(), code)
		}
		if tr.tool() != "seed" {
			if ids := newIDs(before, tr.runIDs()); len(ids) == 1 {
				t.RunID = ids[0]
			} else {
				t.fail("new sgerun runs %v, want one", ids)
			}
		}
	}
	if w != nil {
		w.stop()
		tr.watchMarks(w)
	}
	if tr.tool() == "shadowd" {
		// Where shadowd's time went: its own log, beside the old spool.
		logs, _ := filepath.Glob(filepath.Join(l.QmasterSpoolDir(), "messages_shadowd*"))
		var b strings.Builder
		for _, p := range logs {
			if data, err := os.ReadFile(p); err == nil {
				fmt.Fprintf(&b, "%s:\n%s\n", filepath.Base(p), tail(string(data), 15))
			}
		}
		t.Output = b.String()
	}
	if t.RunID != "" {
		steps, err := tr.steps(t.RunID)
		if err != nil {
			t.fail("journal: %v", err)
		}
		t.Steps = steps
	}
	if len(t.TransferJobs) > 0 {
		out := t.Output
		named := true
		for _, id := range t.TransferJobs {
			if !strings.Contains(out, fmt.Sprint(id)) {
				named = false
			}
		}
		t.TransferNamed = named && strings.Contains(strings.ToLower(out), "transfer")
	}
	tr.finish(ctx, append(append([]int(nil), jobs...), t.TransferJobs...), tr.jobSleep())
	return nil
}

// fault cuts the master's scheduler network or hangs its qmaster.
func (tr *trial) fault(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if tr.hangs() {
		if err := tr.l.Hang(fctx, tr.l.Master()); err != nil {
			return fmt.Errorf("hang: %w", err)
		}
		return nil
	}
	if err := tr.l.Partition(fctx, tr.l.Master(), lab.NetSched); err != nil {
		return fmt.Errorf("cut: %w", err)
	}
	return nil
}

// sample polls the witness every cfg.Poll until every mark in want is in
// and the tool is done (or watch ended its takeover), or deadline from t=0
// passed.
func (tr *trial) sample(ctx context.Context, deadline time.Duration, want []string, cmd *proc, w *watchProc) {
	l, t := tr.l, tr.t
	shadow := l.Shadow()
	execs := l.ExecHosts()
	jobsEnded := false
	for {
		now := time.Now()
		s := Sample{T: round3(now.Sub(t.Start).Seconds()), Reported: -1, Running: -1}
		s.Act = readAct(l)
		// Each probe stops once its mark is in, so that the witness loads
		// the machine no more than it must while the tool runs.
		s.Qping = 0
		if !tr.has(MarkQping) {
			s.Qping = qping(ctx, l, tr.witness, shadow)
			if s.Qping == 0 {
				tr.mark(MarkQping, time.Now()) // when the answer came back
			}
		}
		if s.Qping == 0 && s.Act == shadow {
			if !tr.has(MarkExecds) {
				if rep, err := reported(ctx, l, tr.witness); err == nil {
					s.Reported = len(rep)
					if len(rep) == len(execs) {
						tr.mark(MarkExecds, time.Now())
					}
				}
			}
			needQstat := !tr.has(MarkJobs) || (len(t.TransferJobs) > 0 && !tr.has(MarkTransfer))
			states, qerr := map[int]string(nil), errors.New("not asked")
			if needQstat {
				states, qerr = qstat(ctx, l, tr.witness)
			}
			if qerr == nil {
				s.Running = 0
				for _, id := range t.Jobs {
					switch states[id] {
					case "r":
						s.Running++
					case "":
						// Ended before every job was seen running on the
						// new master: that point will never come.
						if !jobsEnded {
							jobsEnded = true
							t.note("job %d ended before the new master listed every job running (t=%.1f s)", id, s.T)
						}
					}
				}
				if s.Running == len(t.Jobs) {
					tr.mark(MarkJobs, time.Now())
				}
				if len(t.TransferJobs) > 0 {
					var parts []string
					run := 0
					for _, id := range t.TransferJobs {
						st := states[id]
						if st == "" {
							st = "gone"
						}
						parts = append(parts, fmt.Sprintf("%d:%s", id, st))
						if st == "r" {
							run++
						}
						if t.TransferStates == nil {
							t.TransferStates = map[int]string{}
						}
						if _, ok := t.TransferStates[id]; !ok {
							t.TransferStates[id] = st
						}
					}
					s.Transfer = strings.Join(parts, " ")
					if run == len(t.TransferJobs) {
						tr.mark(MarkTransfer, time.Now())
					}
				}
			}
		}
		t.Samples = append(t.Samples, s)
		done := true
		for _, m := range want {
			if !tr.has(m) && !(m == MarkJobs && jobsEnded) {
				done = false
			}
		}
		if cmd != nil {
			select {
			case <-cmd.done:
			default:
				done = false
			}
		}
		if w != nil && !w.seen("takeover_end") && tr.tool() == "watch" {
			done = false
		}
		if done {
			return
		}
		if time.Since(t.Start) > deadline || ctx.Err() != nil {
			var missing []string
			for _, m := range want {
				if !tr.has(m) {
					missing = append(missing, m)
				}
			}
			t.note("sampling stopped %s after t=0; never reached: %v", deadline, missing)
			if !tr.has(MarkQping) {
				t.fail("no qmaster on the shadow answered qping with status 0 within %s", deadline)
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(tr.cfg.Poll):
		}
	}
}

// finish waits for every job's exit_status in qacct (bounded by the jobs'
// sleep plus 2 minutes) and checks the shadow serves.
func (tr *trial) finish(ctx context.Context, jobs []int, sleep time.Duration) {
	l, t := tr.l, tr.t
	for _, id := range jobs {
		t.JobExit[id] = -1
	}
	deadline := time.Now().Add(sleep + 2*time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pending := 0
		for _, id := range jobs {
			if t.JobExit[id] >= 0 {
				continue
			}
			if c, ok := qacctExit(ctx, l, tr.witness, id); ok {
				t.JobExit[id] = c
			} else {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	for _, id := range jobs {
		if t.JobExit[id] < 0 {
			t.fail("job %d: no exit_status in qacct by %s", id, deadline.Format("15:04:05"))
		}
	}
	t.Serving = readAct(l) == l.Shadow() && qping(ctx, l, tr.witness, l.Shadow()) == 0
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

func formatMarks(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%.1fs", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WriteJSON writes the result with every sample to path.
func WriteJSON(path string, r *Result) error {
	b, err := marshalIndent(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// ReadJSON reads results written by WriteJSON and merges them into one:
// the first file's config (rounds: the most of any), every trial, the
// earliest start and the summed durations.
func ReadJSON(paths ...string) (*Result, error) {
	var out *Result
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read result: %w", err)
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		if out == nil {
			out = &r
			continue
		}
		if r.Config.JobSleep != out.Config.JobSleep {
			out.Config.JobSleep = 0 // differs: the report says so
		}
		out.Trials = append(out.Trials, r.Trials...)
		out.Took += r.Took
		out.Config.Rounds = max(out.Config.Rounds, r.Config.Rounds)
		if r.Started.Before(out.Started) {
			out.Started = r.Started
		}
	}
	if out == nil {
		return nil, errors.New("no result files")
	}
	return out, nil
}
