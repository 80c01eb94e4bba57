// Package ui renders sgerun's output: run progress, plans, history and
// grouped command output. Every lipgloss style lives in this file; render
// functions take an io.Writer.
package ui

import (
	"io"
	"os"

	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-isatty"
	"github.com/muesli/termenv"
)

// Styles are the text styles of one output.
type Styles struct {
	OK, Failed, Skipped, Planned, Refused, Warn lipgloss.Style
	Step, Host, Dim, Header, Cmd                lipgloss.Style
	// Progress is the step name on the live progress line.
	Progress lipgloss.Style
	// Live is true when the output is a terminal that can redraw a
	// progress line: not with --no-color, NO_COLOR or TERM=dumb, which
	// ask for plain text.
	Live bool
	tty  *os.File // the terminal, for its width
}

// NewStyles returns styles for w: colored when w is a terminal and
// NO_COLOR is unset, plain otherwise.
func NewStyles(w io.Writer, noColor bool) Styles {
	var tty *os.File
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		tty = f
	}
	plain := tty == nil || noColor || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb"
	r := lipgloss.NewRenderer(w)
	if plain {
		r.SetColorProfile(termenv.Ascii)
	}
	return Styles{
		OK:       r.NewStyle().Foreground(lipgloss.Color("2")).Bold(true),
		Failed:   r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		Skipped:  r.NewStyle().Foreground(lipgloss.Color("8")),
		Planned:  r.NewStyle().Foreground(lipgloss.Color("6")).Bold(true),
		Refused:  r.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		Warn:     r.NewStyle().Foreground(lipgloss.Color("3")),
		Step:     r.NewStyle().Bold(true),
		Host:     r.NewStyle().Foreground(lipgloss.Color("4")),
		Dim:      r.NewStyle().Foreground(lipgloss.Color("8")),
		Header:   r.NewStyle().Bold(true).Underline(true),
		Cmd:      r.NewStyle().Foreground(lipgloss.Color("5")),
		Progress: r.NewStyle().Bold(true),
		Live:     !plain,
		tty:      tty,
	}
}

// status returns the mark and style of a status.
func (s Styles) status(status string) string {
	switch status {
	case "ok":
		return s.OK.Render("✓ ok")
	case "failed", "rollback_incomplete":
		return s.Failed.Render("✗ " + status)
	case "skipped":
		return s.Skipped.Render("- skipped")
	case "planned":
		return s.Planned.Render("~ planned")
	case "refused":
		return s.Refused.Render("! refused")
	case "tolerated":
		return s.Warn.Render("✓ tolerated")
	case "rolled_back":
		return s.Warn.Render("↺ rolled back")
	case "interrupted":
		return s.Refused.Render("‖ interrupted")
	case "committed_with_failures":
		return s.Warn.Render("⚠ committed with failures")
	}
	return status
}
