package ui

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/sgerun/sgerun/journal"
)

// RunView renders a run's events as they happen (or replays a journal for
// `sgerun show`). It is safe for concurrent use.
//
// While a step runs on more than one host and the output is a live
// terminal, one line below the results shows the step, its hosts done,
// failed and total, and the elapsed time; it is erased before any other
// line is printed and when the step's result line is.
type RunView struct {
	W       io.Writer
	S       Styles
	Verbose bool
	once    sync.Once
	// p is the progress line; its mutex serializes all of the view's
	// output, the ticker's redraws included.
	p   *progressLine
	cur *stepView
}

type stepView struct {
	name    string
	kind    string
	hosts   int
	start   time.Time
	plans   map[string]string
	outputs map[string]string
}

// Event renders one event.
func (v *RunView) Event(ev journal.Event) {
	v.once.Do(func() { v.p = newProgressLine(v.W, v.S) })
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	switch ev.Type {
	case journal.RunStart:
		fmt.Fprintf(v.W, "%s %s\n", v.S.Header.Render("sgerun"), ev.Message)
	case journal.StepStart:
		v.cur = &stepView{name: ev.StepName, kind: ev.Kind, hosts: len(ev.Hosts), start: ev.Time,
			plans: map[string]string{}, outputs: map[string]string{}}
		v.p.begin(ev.StepName, len(ev.Hosts))
	case journal.HostEnd:
		v.hostEnd(ev)
	case journal.StepEnd:
		v.stepEnd(ev)
	case journal.StepSkip:
		v.clear()
		fmt.Fprintf(v.W, "%s %s %s\n", v.S.status(journal.StatusSkipped), v.S.Step.Render(ev.StepName), v.S.Dim.Render("("+ev.Message+")"))
	case journal.RollbackStart:
		v.clear()
		fmt.Fprintf(v.W, "%s %s\n", v.S.Warn.Render("↺ rollback:"), ev.Message)
	case journal.UndoEnd:
		v.clear()
		mark := v.S.OK.Render("  ↺ undone")
		if ev.Status != journal.StatusOK {
			mark = v.S.Failed.Render("  ✗ undo failed")
		}
		fmt.Fprintf(v.W, "%s %s on %s (%s)%s\n", mark, ev.StepName, v.S.Host.Render(ev.Host), ev.Kind, errSuffix(ev.Error))
	case journal.RollbackEnd:
		fmt.Fprintf(v.W, "%s\n", v.S.status(ev.Status))
	case "hook":
		v.clear()
		mark := v.S.OK.Render("✓ hook")
		if ev.Status != journal.StatusOK {
			mark = v.S.Failed.Render("✗ hook")
		}
		cmd := ""
		if ev.Output != nil {
			cmd = ev.Output.Cmd
		}
		fmt.Fprintf(v.W, "%s %s: %s%s\n", mark, ev.StepName, cmd, errSuffix(ev.Error))
	case journal.Note:
		v.clear()
		fmt.Fprintf(v.W, "%s\n", v.S.Dim.Render("note: "+ev.Message))
	case journal.RunEnd:
		v.p.end()
		fmt.Fprintf(v.W, "run %s\n", v.S.status(ev.Status))
		if ev.Error != "" {
			fmt.Fprintf(v.W, "%s\n", ev.Error)
		}
	}
}

func (v *RunView) hostEnd(ev journal.Event) {
	c := v.cur
	if c == nil {
		return
	}
	if len(ev.Plan) > 0 {
		c.plans[ev.Host] = strings.Join(ev.Plan, "\n")
	}
	failed := ev.Status == journal.StatusFailed || ev.Status == journal.StatusRefused
	if failed {
		v.clear()
		fmt.Fprintf(v.W, "  %s %s: %s\n", v.S.Failed.Render("✗"), v.S.Host.Render(ev.Host), ev.Error)
		if ev.Output != nil && strings.TrimSpace(ev.Output.Stderr) != "" {
			fmt.Fprintf(v.W, "%s\n", renderLines(v.S.Dim, indentLines(tail(ev.Output.Stderr, 5), "      ")))
		}
	} else if v.Verbose && ev.Output != nil && ev.Output.Stdout != "" {
		c.outputs[ev.Host] = ev.Output.Stdout
	}
	v.p.count(failed)
}

func (v *RunView) stepEnd(ev journal.Event) {
	v.p.end()
	c := v.cur
	dur := ""
	if c != nil && !c.start.IsZero() {
		dur = ev.Time.Sub(c.start).Round(10 * time.Millisecond).String()
	}
	counts := fmt.Sprintf("%d host(s)", len(ev.Hosts))
	if n := len(ev.Failed); n > 0 {
		counts += fmt.Sprintf(", %d failed", n)
	}
	fmt.Fprintf(v.W, "%s %s %s %s\n", v.S.status(ev.Status), v.S.Step.Render(ev.StepName),
		v.S.Dim.Render("["+ev.Kind+"]"), v.S.Dim.Render(counts+" "+dur))
	if ev.Message != "" {
		fmt.Fprintf(v.W, "  %s\n", v.S.Dim.Render(ev.Message))
	}
	for _, w := range ev.Warnings {
		fmt.Fprintf(v.W, "  %s\n", v.S.Warn.Render("⚠ "+w))
	}
	if c != nil {
		v.groups(c.plans, "would ")
		v.groups(c.outputs, "")
	}
	v.cur = nil
}

// groups prints identical texts once with the hosts that produced them.
func (v *RunView) groups(byHost map[string]string, prefix string) {
	for _, g := range Group(byHost) {
		fmt.Fprintf(v.W, "  %s%s:\n%s\n", prefix, v.S.Host.Render(Fold(g.Hosts)), renderLines(v.S.Cmd, indentLines(g.Text, "    ")))
	}
}

// Close erases the progress line and stops its ticker, for a run that
// ended without a run_end event (an error before it, an interrupt).
func (v *RunView) Close() {
	v.once.Do(func() { v.p = newProgressLine(v.W, v.S) })
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	v.p.end()
}

// Aside runs fn, a question to the operator, with the progress line off the
// screen and the view's output and redraws held until fn returns.
func (v *RunView) Aside(fn func()) {
	v.once.Do(func() { v.p = newProgressLine(v.W, v.S) })
	v.p.mu.Lock()
	defer v.p.mu.Unlock()
	v.p.erase()
	fn()
	v.p.draw(true)
}

// clear erases the progress line before another line is printed; the next
// host or tick draws it again.
func (v *RunView) clear() { v.p.erase() }

// renderLines styles each line on its own, so that lipgloss does not pad a
// block to its widest line.
func renderLines(st lipgloss.Style, s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = st.Render(l)
	}
	return strings.Join(lines, "\n")
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indentLines(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// TextGroup is a text and the hosts that produced it.
type TextGroup struct {
	Hosts []string
	Text  string
}

// Group groups hosts by identical text, largest group first, as `clush -b`
// does.
func Group(byHost map[string]string) []TextGroup {
	idx := map[string]int{}
	var groups []TextGroup
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		t := byHost[h]
		i, ok := idx[t]
		if !ok {
			i = len(groups)
			idx[t] = i
			groups = append(groups, TextGroup{Text: t})
		}
		groups[i].Hosts = append(groups[i].Hosts, h)
	}
	sort.SliceStable(groups, func(i, j int) bool { return len(groups[i].Hosts) > len(groups[j].Hosts) })
	return groups
}
