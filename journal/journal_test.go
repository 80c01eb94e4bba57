package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJournalRoundTripAndTornTail(t *testing.T) {
	base := t.TempDir()
	meta := Meta{RunID: NewRunID(time.Now()), Runbook: "rb", Started: time.Now().UTC()}
	w, err := Create(base, meta, []byte("name: rb\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ev, err := w.Write(Event{Type: StepEnd, Step: i, StepName: "s", Status: StatusOK})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != i+1 || ev.Time.IsZero() {
			t.Fatalf("event %d stamped %+v", i, ev)
		}
	}
	w.Close()
	dir := filepath.Join(base, meta.RunID)
	// A SIGKILL in the middle of a write leaves half a line.
	f, err := os.OpenFile(filepath.Join(dir, EventsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"type":"step_st`)
	f.Close()

	got, events, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != meta.RunID || len(events) != 3 || events[2].Seq != 3 {
		t.Fatalf("read %s with %d events", got.RunID, len(events))
	}
	if src, _ := os.ReadFile(filepath.Join(dir, RunbookFile)); string(src) != "name: rb\n" {
		t.Errorf("runbook copy = %q", src)
	}
	if s := Summarize(dir, got, events); s.Status != StatusInterrupted || s.Steps != 3 {
		t.Errorf("summary %+v", s)
	}

	// Reopening continues the sequence after the last whole event, on a
	// line of its own.
	w, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := w.Write(Event{Type: RunEnd, Step: -1, Status: StatusOK})
	w.Close()
	if err != nil || ev.Seq != 4 {
		t.Fatalf("seq after reopen = %d, %v", ev.Seq, err)
	}
	_, events, _ = Read(dir)
	if len(events) != 4 || events[3].Type != RunEnd {
		t.Errorf("after a torn tail and a new write: %d events, last %+v", len(events), events[len(events)-1])
	}
	if s := Summarize(dir, got, events); s.Status != StatusOK {
		t.Errorf("status %s after run_end", s.Status)
	}
}

func TestFind(t *testing.T) {
	base := t.TempDir()
	for _, id := range []string{"20260101-000000-aaaaaa", "20260101-000000-abbbbb", "20260202-000000-cccccc"} {
		os.MkdirAll(filepath.Join(base, id), 0o700)
	}
	if d, err := Find(base, "20260202"); err != nil || filepath.Base(d) != "20260202-000000-cccccc" {
		t.Errorf("prefix: %s %v", d, err)
	}
	if _, err := Find(base, "20260101-000000-a"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous: %v", err)
	}
	for _, bad := range []string{"", "..", "../x", "a/b"} {
		if _, err := Find(base, bad); err == nil {
			t.Errorf("Find(%q) accepted", bad)
		}
	}
}

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestLock(t *testing.T) {
	host, _ := os.Hostname()
	path := filepath.Join(t.TempDir(), "locks", "x.lock")
	me := LockInfo{RunID: "run-a", Host: host, PID: os.Getpid(), Time: time.Now()}

	release, err := Acquire(path, me, false, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Live holder: refused, force or not.
	other := LockInfo{RunID: "run-b", Host: host, PID: os.Getpid(), Time: time.Now()}
	for _, force := range []bool{false, true} {
		_, err = Acquire(path, other, force, time.Hour)
		var le *LockedError
		if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.Stale != "" {
			t.Fatalf("force=%v: live lock: %v", force, err)
		}
		if !strings.Contains(err.Error(), "another run holds") || !strings.Contains(err.Error(), "run-a") {
			t.Errorf("message %q", err)
		}
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("released lock still there: %v", err)
	}

	// Dead holder: stale, reported without --force, taken over with it.
	dead := LockInfo{RunID: "run-dead", Host: host, PID: deadPID(t), Time: time.Now()}
	b, _ := json.Marshal(dead)
	os.WriteFile(path, b, 0o600)
	_, err = Acquire(path, other, false, time.Hour)
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(le.Stale, "is not running") {
		t.Fatalf("dead pid: %v", err)
	}
	if !strings.Contains(err.Error(), "stale lock") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("stale message %q", err)
	}
	release, err = Acquire(path, other, true, time.Hour)
	if err != nil {
		t.Fatalf("--force on a stale lock: %v", err)
	}
	if held, ok := ReadLock(path); !ok || held.RunID != "run-b" {
		t.Errorf("lock holder after takeover: %+v", held)
	}
	// Releasing someone else's lock does nothing.
	stolen := LockInfo{RunID: "run-c", Host: host, PID: os.Getpid(), Time: time.Now()}
	if err := releaseIfOurs(path, stolen); err != nil {
		t.Fatal(err)
	}
	if _, ok := ReadLock(path); !ok {
		t.Error("another run's release removed the lock")
	}
	release()

	// Old lock of a live process: stale by age.
	old := LockInfo{RunID: "run-old", Host: host, PID: os.Getpid(), Time: time.Now().Add(-2 * time.Hour)}
	b, _ = json.Marshal(old)
	os.WriteFile(path, b, 0o600)
	if _, err = Acquire(path, other, false, time.Hour); !errors.As(err, &le) || !strings.Contains(le.Stale, "older than") {
		t.Errorf("old lock: %v", err)
	}
	// Garbage: stale, unreadable.
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err = Acquire(path, other, false, time.Hour); !errors.As(err, &le) || !strings.Contains(le.Stale, "unreadable") {
		t.Errorf("garbage lock: %v", err)
	}
	// Another host's lock with a pid unknown here is not stale.
	remote := LockInfo{RunID: "run-r", Host: host + "-elsewhere", PID: deadPID(t), Time: time.Now()}
	b, _ = json.Marshal(remote)
	os.WriteFile(path, b, 0o600)
	if _, err = Acquire(path, other, true, time.Hour); !errors.As(err, &le) || le.Stale != "" {
		t.Errorf("remote lock: %v", err)
	}
}

// writeRun makes a run directory whose journal.jsonl holds body.
func writeRun(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	mb, _ := json.Marshal(Meta{RunID: "20260101-000000-aaaaaa", Runbook: "rb"})
	if err := os.WriteFile(filepath.Join(dir, MetaFile), mb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, EventsFile), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func eventLine(t *testing.T, ev Event) string {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func TestReadBadMiddleLineNamesIt(t *testing.T) {
	body := eventLine(t, Event{Seq: 1, Type: RunStart, Step: -1}) +
		eventLine(t, Event{Seq: 2, Type: StepStart}) +
		`{"seq":3,"type":"step_en` + "\n" + // line 3: cut, then more lines
		eventLine(t, Event{Seq: 4, Type: RunEnd, Step: -1, Status: StatusOK})
	dir := writeRun(t, body)
	_, events, err := Read(dir)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	want := filepath.Join(dir, EventsFile) + ":3:"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %q, want it to name %s", err, want)
	}
	if len(events) != 2 {
		t.Errorf("%d events before the bad line, want 2", len(events))
	}
	// A journal that cannot be read is not reopened for appending either.
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open: err = %v, want ErrCorrupt", err)
	}
}

func TestReadBadLastLineWithNewlineIsAnError(t *testing.T) {
	// A write is one event and its newline: a whole line that does not
	// decode is not a torn write.
	body := eventLine(t, Event{Seq: 1, Type: RunStart, Step: -1}) + "not json\n"
	_, _, err := Read(writeRun(t, body))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), EventsFile+":2:") {
		t.Fatalf("err = %v, want ErrCorrupt naming line 2", err)
	}
}

func TestReadLongLine(t *testing.T) {
	big := strings.Repeat("x", 1<<20+17) // over 1 MiB, over bufio's default sizes
	body := eventLine(t, Event{Seq: 1, Type: RunStart, Step: -1}) +
		eventLine(t, Event{Seq: 2, Type: Note, Step: -1, Message: big}) +
		eventLine(t, Event{Seq: 3, Type: RunEnd, Step: -1, Status: StatusOK})
	_, events, err := Read(writeRun(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[1].Message != big || events[2].Type != RunEnd {
		t.Fatalf("read %d events; the long one has %d bytes", len(events), len(events[min(1, len(events)-1)].Message))
	}
}

func TestReadTornLastLine(t *testing.T) {
	for name, tail := range map[string]string{
		"cut json":      `{"seq":3,"type":"run_e`,
		"cut in a key":  `{"se`,
		"one brace":     `{`,
		"garbage bytes": "\x00\x00\x00",
	} {
		t.Run(name, func(t *testing.T) {
			body := eventLine(t, Event{Seq: 1, Type: RunStart, Step: -1}) +
				eventLine(t, Event{Seq: 2, Type: StepStart}) + tail
			_, events, err := Read(writeRun(t, body))
			if err != nil {
				t.Fatalf("torn tail: %v", err)
			}
			if len(events) != 2 || events[1].Seq != 2 {
				t.Fatalf("read %d events, want the 2 before the torn tail", len(events))
			}
		})
	}
	// A last line that lost only its newline is a whole event.
	body := eventLine(t, Event{Seq: 1, Type: RunStart, Step: -1}) +
		strings.TrimSuffix(eventLine(t, Event{Seq: 2, Type: RunEnd, Step: -1, Status: StatusOK}), "\n")
	if _, events, err := Read(writeRun(t, body)); err != nil || len(events) != 2 {
		t.Fatalf("whole last event without newline: %d events, %v", len(events), err)
	}
}

// TestLockContendersNeverSeeAHalfWrittenLock races runs for one lock, as
// three concurrent takeovers do. Exactly one must win each round, and every
// other must be told that a live run holds the lock: a contender that read
// the lock between its holder's create and write used to call it stale
// ("unreadable lock file") and ask for --force.
func TestLockContendersNeverSeeAHalfWrittenLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "x.lock")
	host, _ := os.Hostname()
	const rounds, contenders = 200, 6
	for r := 0; r < rounds; r++ {
		type outcome struct {
			release func() error
			err     error
		}
		start := make(chan struct{})
		results := make(chan outcome, contenders)
		for c := 0; c < contenders; c++ {
			info := LockInfo{RunID: fmt.Sprintf("run-%d-%d", r, c), Host: host, PID: os.Getpid(), Time: time.Now()}
			go func() {
				<-start
				rel, err := Acquire(path, info, false, time.Hour)
				results <- outcome{rel, err}
			}()
		}
		close(start)
		var winners []func() error
		for c := 0; c < contenders; c++ {
			o := <-results
			if o.err == nil {
				winners = append(winners, o.release)
				continue
			}
			var le *LockedError
			if !errors.As(o.err, &le) || le.Stale != "" {
				t.Fatalf("round %d: a contender was not told a live run holds the lock: %v", r, o.err)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d contenders took the lock, want 1", r, len(winners))
		}
		if err := winners[0](); err != nil {
			t.Fatal(err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
	if len(left) != 0 {
		t.Errorf("files left in the lock dir: %v", left)
	}
}
