package ui

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"
)

// ProgressTick is how often the live progress line redraws while no host
// finishes, so that its elapsed time keeps counting.
const ProgressTick = time.Second

// progressEvery is the least time between two redraws for finished hosts,
// so that a thousand hosts finishing at once cost a few dozen writes to the
// terminal, not a thousand.
const progressEvery = 50 * time.Millisecond

// progressLine is the one updating line of a running step: its name, hosts
// done, failed and total, and the elapsed time. It is drawn only on a live
// terminal (Styles.Live), truncated to the terminal's width so that it never
// wraps, and erased before any other line is printed and when the step
// ends. The caller holds mu around every method except the ticker's.
type progressLine struct {
	mu     sync.Mutex
	w      io.Writer
	s      Styles
	now    func() time.Time
	active bool
	name   string
	total  int
	done   int
	failed int
	start  time.Time
	drawn  bool      // the line is on screen
	last   time.Time // when it was last drawn
	stop   chan struct{}
}

func newProgressLine(w io.Writer, s Styles) *progressLine {
	return &progressLine{w: w, s: s, now: time.Now}
}

// begin starts a step's line and its ticker; it draws nothing for a single
// host, whose step ends with its result line soon enough.
func (p *progressLine) begin(name string, total int) {
	p.end()
	if !p.s.Live || total <= 1 {
		return
	}
	p.active, p.name, p.total, p.done, p.failed, p.start = true, name, total, 0, 0, p.now()
	p.stop = make(chan struct{})
	go p.tick(p.stop)
	p.draw(true)
}

// count records a finished host and redraws, at most every progressEvery
// (and always for the last host).
func (p *progressLine) count(failed bool) {
	if !p.active {
		return
	}
	p.done++
	if failed {
		p.failed++
	}
	p.draw(p.done == p.total)
}

// draw puts the line on screen, unless force is false and it was drawn less
// than progressEvery ago.
func (p *progressLine) draw(force bool) {
	if !p.active {
		return
	}
	now := p.now()
	if !force && p.drawn && now.Sub(p.last) < progressEvery {
		return
	}
	line := p.s.Progress.Render("▸ "+p.name) + "  " + p.s.Dim.Render(progressText(p.done, p.failed, p.total, now.Sub(p.start)))
	if width := p.s.width(); width > 1 {
		// One column short of the edge: a full line would wrap on some
		// terminals, and \r then returns to the wrong row.
		line = ansi.Truncate(line, width-1, "…")
	}
	fmt.Fprint(p.w, "\r"+line+ansi.EraseLineRight)
	p.drawn, p.last = true, now
}

// progressText is the line's counts and elapsed time.
func progressText(done, failed, total int, elapsed time.Duration) string {
	return fmt.Sprintf("%d/%d done, %d failed, %d pending  %s", done, total, failed, total-done,
		elapsed.Truncate(time.Second))
}

// erase removes the line from the screen; the next draw puts it back.
func (p *progressLine) erase() {
	if p.drawn {
		fmt.Fprint(p.w, "\r"+ansi.EraseLineRight)
		p.drawn = false
	}
}

// end erases the line for good and stops the ticker.
func (p *progressLine) end() {
	p.erase()
	if p.active {
		close(p.stop)
		p.active = false
	}
}

func (p *progressLine) tick(stop <-chan struct{}) {
	t := time.NewTicker(ProgressTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			select {
			case <-stop:
			default:
				p.draw(true)
			}
			p.mu.Unlock()
		}
	}
}

// Progress is the live progress line of one many-host operation outside a
// runbook (sgerun exec). It is safe for concurrent use; it draws only when
// its Styles are Live.
type Progress struct{ p *progressLine }

// NewProgress returns a progress line for w.
func NewProgress(w io.Writer, s Styles) *Progress { return &Progress{p: newProgressLine(w, s)} }

// Start shows the line for name on total hosts.
func (pr *Progress) Start(name string, total int) {
	pr.p.mu.Lock()
	defer pr.p.mu.Unlock()
	pr.p.begin(name, total)
}

// Done counts one finished host.
func (pr *Progress) Done(failed bool) {
	pr.p.mu.Lock()
	defer pr.p.mu.Unlock()
	pr.p.count(failed)
}

// Stop erases the line; what is printed next starts on a clean line.
func (pr *Progress) Stop() {
	pr.p.mu.Lock()
	defer pr.p.mu.Unlock()
	pr.p.end()
}

// width is the terminal's width in columns, or 0 when unknown.
func (s Styles) width() int {
	if s.tty == nil {
		return 0
	}
	w, _, err := term.GetSize(s.tty.Fd())
	if err != nil {
		return 0
	}
	return w
}

// Shorten cuts s to at most n columns, ending it with "…" when cut.
func Shorten(s string, n int) string { return ansi.Truncate(s, n, "…") }
