package ui

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/journal"
)

// syncBuffer is a bytes.Buffer safe for the ticker's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func liveStyles() Styles {
	s := NewStyles(&bytes.Buffer{}, true)
	s.Live = true
	return s
}

// screen replays \r and erase-to-end-of-line the way a terminal does and
// returns the lines left on screen.
func screen(out string) []string {
	var lines []string
	var cur []rune
	col := 0
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b[K"):
			cur = cur[:col]
			i += 3
		case out[i] == '\r':
			col = 0
			i++
		case out[i] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
			i++
		default:
			r := []rune(out[i:])[0]
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
			i += len(string(r))
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

func TestRunViewProgressLine(t *testing.T) {
	var out syncBuffer
	v := &RunView{W: &out, S: liveStyles()}
	hosts := []string{"e1", "e2", "e3"}
	start := time.Now()
	v.Event(journal.Event{Type: journal.StepStart, StepName: "softstop execd", Kind: "shell", Hosts: hosts, Time: start})
	progress := regexp.MustCompile(`^▸ softstop execd  (\d)/3 done, (\d) failed, (\d) pending  \d+s$`)
	last := func() string { l := screen(out.String()); return l[len(l)-1] }
	if m := progress.FindStringSubmatch(last()); m == nil || m[1] != "0" {
		t.Fatalf("after step start the screen ends with %q", last())
	}
	v.Event(journal.Event{Type: journal.HostEnd, StepName: "softstop execd", Host: "e1", Status: journal.StatusFailed, Error: "exit status 3"})
	lines := screen(out.String())
	if len(lines) != 2 || lines[0] != "  ✗ e1: exit status 3" {
		t.Fatalf("a failed host's line goes above the progress line: %q", lines)
	}
	if m := progress.FindStringSubmatch(lines[1]); m == nil || m[1] != "1" || m[2] != "1" || m[3] != "2" {
		t.Fatalf("progress after one failure: %q", lines[1])
	}
	// The elapsed time keeps counting while no host finishes.
	time.Sleep(ProgressTick + 300*time.Millisecond)
	if l := last(); !strings.HasSuffix(l, "  1s") {
		t.Errorf("after %v without events the line is %q, want the elapsed time 1s", ProgressTick, l)
	}
	for _, h := range hosts[1:] {
		v.Event(journal.Event{Type: journal.HostEnd, StepName: "softstop execd", Host: h, Status: journal.StatusOK})
	}
	v.Event(journal.Event{Type: journal.StepEnd, StepName: "softstop execd", Kind: "shell", Status: journal.StatusFailed,
		Hosts: hosts, Failed: []string{"e1"}, Time: start.Add(2 * time.Second)})
	lines = screen(out.String())
	want := []string{"  ✗ e1: exit status 3", "✗ failed softstop execd [shell] 3 host(s), 1 failed 2s"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("after the step's result line the screen is\n%q\nwant\n%q", lines, want)
	}
	// The ticker is stopped: nothing is drawn after the step ended.
	n := len(out.String())
	time.Sleep(ProgressTick + 300*time.Millisecond)
	if len(out.String()) != n {
		t.Errorf("output after the step ended: %q", out.String()[n:])
	}
}

func TestRunViewPlainOutputHasNoControls(t *testing.T) {
	var out bytes.Buffer
	v := &RunView{W: &out, S: NewStyles(&out, false)} // not a terminal
	hosts := []string{"e1", "e2"}
	v.Event(journal.Event{Type: journal.StepStart, StepName: "s", Kind: "shell", Hosts: hosts})
	v.Event(journal.Event{Type: journal.HostEnd, Host: "e1", Status: journal.StatusOK})
	v.Event(journal.Event{Type: journal.HostEnd, Host: "e2", Status: journal.StatusOK})
	v.Event(journal.Event{Type: journal.StepEnd, StepName: "s", Kind: "shell", Status: journal.StatusOK, Hosts: hosts})
	if strings.ContainsAny(out.String(), "\r\x1b") {
		t.Errorf("plain output has control characters: %q", out.String())
	}
}

func TestProgressTruncatedAndThrottled(t *testing.T) {
	var out bytes.Buffer
	p := newProgressLine(&out, liveStyles())
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	p.mu.Lock()
	defer p.mu.Unlock()
	p.begin(strings.Repeat("x", 30), 1000)
	out.Reset()
	for range 500 {
		p.count(false)
	}
	if out.Len() != 0 {
		t.Errorf("500 hosts in the same instant redrew: %q", out.String())
	}
	now = now.Add(progressEvery)
	p.count(false)
	if got := screen(out.String()); len(got) != 1 || !strings.Contains(got[0], "501/1000 done, 0 failed, 499 pending  0s") {
		t.Errorf("redraw after %v: %q", progressEvery, got)
	}
	p.end()
	if text := progressText(3, 1, 10, 65*time.Second+400*time.Millisecond); text != "3/10 done, 1 failed, 7 pending  1m5s" {
		t.Errorf("progressText = %q", text)
	}
}

func TestRunViewAsideHoldsTheLine(t *testing.T) {
	var out syncBuffer
	v := &RunView{W: &out, S: liveStyles()}
	hosts := []string{"e1", "e2"}
	v.Event(journal.Event{Type: journal.StepStart, StepName: "fence", Kind: "fence", Hosts: hosts})
	v.Aside(func() {
		if l := screen(out.String()); len(l) != 0 && l[len(l)-1] != "" {
			t.Errorf("the progress line is on screen during the question: %q", l)
		}
		n := len(out.String())
		time.Sleep(ProgressTick + 300*time.Millisecond)
		if len(out.String()) != n {
			t.Errorf("redrawn during the question: %q", out.String()[n:])
		}
	})
	if l := screen(out.String()); !strings.HasPrefix(l[len(l)-1], "▸ fence  0/2 done") {
		t.Errorf("the progress line is not back after the question: %q", l)
	}
	v.Close()
}
