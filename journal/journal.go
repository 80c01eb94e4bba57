// Package journal keeps the durable record of sgerun runs: one directory per
// run holding meta.json, the runbook as it ran, and journal.jsonl, an
// append-only, fsynced event log. It also holds the per-inventory run lock.
package journal

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/internal/version"
	"github.com/sgerun/sgerun/target"
)

// FormatVersion is the version of the journal format this binary writes
// and understands: meta.json, journal.jsonl and their fields. It goes up
// when a change would make an older sgerun misread a run (a new event
// type that resume or rollback must act on, a changed meaning); added
// fields that an older binary may ignore keep it. Journals written before
// the format was recorded read as format 1.
const FormatVersion = 1

// ErrFormatTooNew is returned for a run journal written by a newer sgerun
// in a format this binary does not know: resuming or rolling it back could
// miss changes it recorded.
var ErrFormatTooNew = errors.New("journal format too new")

// Event types, in the order a run writes them.
const (
	RunStart  = "run_start"
	StepStart = "step_start"
	StepSkip  = "step_skip"
	HostStart = "host_start"
	HostEnd   = "host_end"
	StepEnd   = "step_end"
	// UndoPrepared carries the undo of a change about to be made, written
	// before the change (write-ahead).
	UndoPrepared  = "undo_prepared"
	RollbackStart = "rollback_start"
	UndoStart     = "undo_start"
	UndoEnd       = "undo_end"
	RollbackEnd   = "rollback_end"
	// Commit marks the run's commit point: the step carrying `commit: true`
	// succeeded, and no later failure is rolled back automatically.
	Commit = "commit"
	Note   = "note"
	RunEnd = "run_end"
)

// Statuses of hosts, steps and runs.
const (
	StatusOK                 = "ok"
	StatusFailed             = "failed"
	StatusSkipped            = "skipped"
	StatusRefused            = "refused"
	StatusPlanned            = "planned" // dry run: would have been done
	StatusTolerated          = "tolerated"
	StatusRolledBack         = "rolled_back"
	StatusRollbackIncomplete = "rollback_incomplete"
	StatusInterrupted        = "interrupted"
	// StatusCommittedWithFailures ends a run that passed its commit point
	// and then had failures: they are listed, nothing was rolled back.
	StatusCommittedWithFailures = "committed_with_failures"
	// StatusCorrupt: the run's journal has a bad line (List; Summary.Error
	// names it).
	StatusCorrupt = "corrupt"
)

// Event is one line of the journal.
type Event struct {
	Seq        int            `json:"seq"`
	Time       time.Time      `json:"time"`
	Type       string         `json:"type"`
	Step       int            `json:"step"`
	StepName   string         `json:"step_name,omitempty"`
	Kind       string         `json:"kind,omitempty"`
	Host       string         `json:"host,omitempty"`
	Status     string         `json:"status,omitempty"`
	Mutates    bool           `json:"mutates,omitempty"`
	Attempt    int            `json:"attempt,omitempty"`
	Output     *target.Output `json:"output,omitempty"`
	DurationMS int64          `json:"duration_ms,omitempty"`
	Error      string         `json:"error,omitempty"`
	// Warnings are lines the operator must see with a step's result.
	Warnings   []string           `json:"warnings,omitempty"`
	Undo       *target.UndoRecord `json:"undo,omitempty"`
	Data       map[string]any     `json:"data,omitempty"`
	Plan       []string           `json:"plan,omitempty"`
	Registered map[string]any     `json:"registered,omitempty"`
	Hosts      []string           `json:"hosts,omitempty"`
	Failed     []string           `json:"failed,omitempty"`
	Message    string             `json:"message,omitempty"`
	Undone     *UndoRef           `json:"undone,omitempty"`
}

// UndoRef points an undo event at the host_end event it reverts.
type UndoRef struct {
	Seq  int    `json:"seq"`
	Step int    `json:"step"`
	Host string `json:"host"`
}

// Meta describes a run; it is written once when the run starts.
type Meta struct {
	RunID       string            `json:"run_id"`
	Runbook     string            `json:"runbook"`
	RunbookFile string            `json:"runbook_file"`
	Inventory   string            `json:"inventory"`
	Vars        map[string]string `json:"vars,omitempty"`
	DryRun      bool              `json:"dry_run"`
	Started     time.Time         `json:"started"`
	Controller  string            `json:"controller"`
	PID         int               `json:"pid"`
	User        string            `json:"user"`
	Args        []string          `json:"args,omitempty"`
	// Format is the journal's FormatVersion (0 in journals written
	// before it was recorded: format 1).
	Format int `json:"format,omitempty"`
	// SgerunVersion is the version of the sgerun that started the run.
	SgerunVersion string `json:"sgerun_version,omitempty"`
}

// CheckFormat returns an ErrFormatTooNew error when meta's journal is in a
// format newer than FormatVersion.
func CheckFormat(meta Meta) error {
	if meta.Format <= FormatVersion {
		return nil
	}
	by := meta.SgerunVersion
	if by == "" {
		by = "unknown"
	}
	return fmt.Errorf("%w: run %s has journal format %d (written by sgerun %s); this sgerun %s knows format %d at most: use that sgerun or a newer one",
		ErrFormatTooNew, meta.RunID, meta.Format, by, version.String(), FormatVersion)
}

// Files inside a run directory.
const (
	MetaFile    = "meta.json"
	RunbookFile = "runbook.yaml"
	EventsFile  = "journal.jsonl"
)

// NewRunID returns a sortable, unique run id like 20261125-043512-a1b2c3.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// Writer appends events to a run's journal. Every Write is fsynced before
// it returns, so a SIGKILL loses at most the events being written.
//
// Concurrent Writes share fsyncs (group commit): while one fsync runs,
// the events written meanwhile wait for the next, which covers them all. A
// thousand hosts finishing a step at once thus cost a few dozen fsyncs,
// not a thousand serialized ones, and each Write still returns only once
// its own event is on disk.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	dir string
	seq int
	now func() time.Time

	sync    func() error // f.Sync; tests count calls
	synced  int          // the last seq known durable
	syncing bool         // an fsync is running (without mu)
	syncErr error        // a failed fsync fails every later Write
	done    *sync.Cond   // broadcast when an fsync ends
}

// Create makes the run directory under base and writes meta and the runbook
// source. It stamps meta with the journal format and the binary's version.
func Create(base string, meta Meta, source []byte) (*Writer, error) {
	meta.Format, meta.SgerunVersion = FormatVersion, version.String()
	dir := filepath.Join(base, meta.RunID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create run dir: %w", err)
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode meta: %w", err)
	}
	if err := writeSynced(filepath.Join(dir, MetaFile), append(mb, '\n')); err != nil {
		return nil, err
	}
	if err := writeSynced(filepath.Join(dir, RunbookFile), source); err != nil {
		return nil, err
	}
	return Open(dir)
}

// Open opens an existing run's journal for appending (resume, rollback).
// It refuses a journal in a newer format (ErrFormatTooNew).
func Open(dir string) (*Writer, error) {
	meta, events, err := Read(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		if ferr := CheckFormat(meta); ferr != nil {
			return nil, ferr
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, EventsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := dropTornTail(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	w := &Writer{f: f, dir: dir, now: time.Now, sync: f.Sync}
	w.done = sync.NewCond(&w.mu)
	if n := len(events); n > 0 {
		w.seq = events[n-1].Seq
	}
	w.synced = w.seq
	return w, nil
}

// Dir is the run directory.
func (w *Writer) Dir() string { return w.dir }

// Write stamps ev with a sequence number and time, appends it and returns
// once it is fsynced (possibly by an fsync shared with concurrent Writes).
// After a failed fsync every Write fails: what reached the disk is then
// unknown.
func (w *Writer) Write(ev Event) (Event, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.syncErr != nil {
		return ev, w.syncErr
	}
	w.seq++
	ev.Seq = w.seq
	if ev.Time.IsZero() {
		ev.Time = w.now().UTC()
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return ev, fmt.Errorf("encode event: %w", err)
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return ev, fmt.Errorf("write journal: %w", err)
	}
	for w.synced < ev.Seq {
		if w.syncErr != nil {
			return ev, w.syncErr
		}
		if w.syncing {
			w.done.Wait()
			continue
		}
		// Lead an fsync for everything written so far; Writes that come
		// while it runs wait for the next one.
		w.syncing = true
		upTo := w.seq
		w.mu.Unlock()
		err := w.sync()
		w.mu.Lock()
		w.syncing = false
		if err != nil {
			w.syncErr = fmt.Errorf("sync journal: %w", err)
		} else {
			w.synced = max(w.synced, upTo)
		}
		w.done.Broadcast()
	}
	return ev, nil
}

// Seq returns the sequence number of the last event written (or being
// written).
func (w *Writer) Seq() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq
}

// Close closes the journal file.
func (w *Writer) Close() error { return w.f.Close() }

// ErrCorrupt marks a journal line that is neither a whole event nor the
// torn tail a crash leaves; the error names the file and line.
var ErrCorrupt = errors.New("corrupt journal")

// Read loads a run's meta and events. A torn last line (a write cut by a
// crash: the file's last line, with no newline after it, that is not a
// whole event) is ignored. Any other line that is not an event is an error
// wrapping ErrCorrupt that names the line (path:line). Lines have no
// length limit.
func Read(dir string) (Meta, []Event, error) {
	var meta Meta
	mb, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return meta, nil, fmt.Errorf("read run meta: %w", err)
	}
	if err := json.Unmarshal(mb, &meta); err != nil {
		return meta, nil, fmt.Errorf("decode run meta: %w", err)
	}
	path := filepath.Join(dir, EventsFile)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return meta, nil, nil
	}
	if err != nil {
		return meta, nil, fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	events, err := readEvents(bufio.NewReader(f), path)
	return meta, events, err
}

// readEvents decodes one event per line of r; name is the file's name in
// errors.
func readEvents(r *bufio.Reader, name string) ([]Event, error) {
	var events []Event
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return events, fmt.Errorf("read journal %s:%d: %w", name, n, err)
		}
		last := errors.Is(err, io.EOF)
		if len(bytes.TrimSpace(line)) > 0 {
			var ev Event
			if derr := json.Unmarshal(line, &ev); derr != nil {
				if last {
					return events, nil // torn tail: no newline after it
				}
				return events, fmt.Errorf("%w: %s:%d: %w", ErrCorrupt, name, n, derr)
			}
			events = append(events, ev)
		}
		if last {
			return events, nil
		}
	}
}

// Summary is one line of `sgerun history`.
type Summary struct {
	Meta
	Dir      string
	Status   string
	Ended    time.Time
	Steps    int
	LastStep string
	// Error says why the journal could not be read to its end (status
	// corrupt).
	Error string `json:",omitempty"`
}

// Summarize condenses a run's events.
func Summarize(dir string, meta Meta, events []Event) Summary {
	s := Summary{Meta: meta, Dir: dir, Status: StatusInterrupted}
	for _, ev := range events {
		switch ev.Type {
		case StepEnd, StepSkip:
			s.Steps++
			s.LastStep = ev.StepName
		case RunEnd:
			s.Status, s.Ended = ev.Status, ev.Time
		}
	}
	return s
}

// List returns every run under base, newest first.
func List(base string) ([]Summary, error) {
	entries, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []Summary
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(base, e.Name())
		meta, events, err := Read(dir)
		if errors.Is(err, ErrCorrupt) {
			// listed, not hidden: what was read, and where it broke
			sum := Summarize(dir, meta, events)
			sum.Status, sum.Error = StatusCorrupt, err.Error()
			out = append(out, sum)
			continue
		}
		if err != nil {
			continue
		}
		out = append(out, Summarize(dir, meta, events))
	}
	// Newest first by start time: run ids only have whole seconds, and two
	// runs can start within one.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].RunID > out[j].RunID
	})
	return out, nil
}

// Find resolves a run id (or a unique prefix of one) under base.
func Find(base, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return "", fmt.Errorf("bad run id %q", id)
	}
	if fi, err := os.Stat(filepath.Join(base, id)); err == nil && fi.IsDir() {
		return filepath.Join(base, id), nil
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return "", fmt.Errorf("find run %s: %w", id, err)
	}
	var match []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), id) {
			match = append(match, e.Name())
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("no run %q in %s", id, base)
	case 1:
		return filepath.Join(base, match[0]), nil
	}
	return "", fmt.Errorf("run id %q is ambiguous (%s)", id, strings.Join(match, ", "))
}

// dropTornTail cuts a last line that a crash left without its newline, so
// that the next event starts a line of its own instead of being glued to
// the fragment (and lost with it when the journal is read).
func dropTornTail(f *os.File) error {
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return nil
	}
	if err := f.Truncate(int64(bytes.LastIndexByte(data, '\n') + 1)); err != nil {
		return fmt.Errorf("cut torn journal tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open run dir: %w", err)
	}
	defer d.Close()
	_ = d.Sync() // not every filesystem supports syncing a directory
	return nil
}
