package journal

import (
	"strings"
	"testing"
	"time"
)

// Two runs started within one second: run ids tie on the second, so the
// newest must be found by start time, not by the ids' random suffix.
func TestListNewestFirstWithinASecond(t *testing.T) {
	base := t.TempDir()
	t0 := time.Date(2026, 11, 25, 6, 53, 36, 100e6, time.UTC)
	for _, r := range []struct {
		id string
		at time.Time
	}{{"20261125-065336-ffffff", t0}, {"20261125-065336-000000", t0.Add(500 * time.Millisecond)}} {
		w, err := Create(base, Meta{RunID: r.id, Started: r.at}, []byte("name: x\n"))
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	runs, err := List(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].RunID != "20261125-065336-000000" {
		t.Fatalf("newest run = %v, want the one started last", runs[0].RunID)
	}
}

// A run whose journal has a bad line is listed as corrupt, with the line
// named, not left out.
func TestListShowsACorruptRun(t *testing.T) {
	base := t.TempDir()
	w, err := Create(base, Meta{RunID: "20261125-065336-aaaaaa", Started: time.Now()}, []byte("name: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(Event{Type: RunStart, Step: -1}); err != nil {
		t.Fatal(err)
	}
	w.f.WriteString("garbage\n")
	if _, err := w.Write(Event{Type: RunEnd, Step: -1, Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	runs, err := List(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != StatusCorrupt || !strings.Contains(runs[0].Error, EventsFile+":2:") {
		t.Fatalf("runs %+v, want one corrupt run naming line 2", runs)
	}
}
