package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
)

// app holds the CLI's streams and global flags; commands are built from it
// so that nothing lives in package-level state.
type app struct {
	in       io.Reader
	out      io.Writer
	errOut   io.Writer
	stateDir string
	logDir   string
	output   string
	noColor  bool
	verbose  bool
	// reported is set when a command already printed its error.
	reported bool
	// endShown is set when the run view printed a run's end with its error.
	endShown bool
	// ownSignals is set by a command that handles SIGINT and SIGTERM
	// itself (watch, which never abandons a takeover it started): a second
	// interrupt then does not exit the process.
	ownSignals atomic.Bool
}

func newApp(in io.Reader, out, errOut io.Writer) *app {
	return &app{in: in, out: out, errOut: errOut}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sgerun",
		Short: "Fail a Grid Engine qmaster over to its shadow host, safely, over SSH",
		Long: `sgerun runs declarative YAML runbooks over SSH against the hosts of an
SGE cluster: with a real dry-run, automatic rollback and a durable journal.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.stateDir, "state-dir", defaultStateDir(), "directory for locks and run journals")
	pf.StringVar(&a.logDir, "log-dir", "", "directory for run journals (default STATE_DIR/runs)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	pf.BoolVar(&a.noColor, "no-color", false, "plain output (also NO_COLOR=1)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "show every host's output")
	root.AddCommand(a.failoverCmds()...)
	root.AddCommand(a.statusCmd(), a.checkCmd(), a.watchCmd())
	root.AddCommand(helpTopics()...)
	root.AddCommand(a.runCmd(), a.validateCmd(), a.execCmd(), a.historyCmd(), a.showCmd(),
		a.rollbackCmd(), a.resumeCmd(), a.playbookShowCmd(), newLabCmd())
	return root
}

func defaultStateDir() string {
	if d := os.Getenv("SGERUN_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sgerun")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "sgerun")
	}
	return filepath.Join(home, ".local", "state", "sgerun")
}

func (a *app) runsDir() string {
	if a.logDir != "" {
		return a.logDir
	}
	return filepath.Join(a.stateDir, "runs")
}

func (a *app) json() (bool, error) {
	switch a.output {
	case "text":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usagef("--output %q: want text or json", a.output)
}

func (a *app) styles() ui.Styles { return ui.NewStyles(a.out, a.noColor) }

func loadInventory(path string) (*inventory.Inventory, error) {
	if path == "" {
		return nil, usagef("--inventory is required")
	}
	return inventory.Load(path)
}

// session builds a runbook session wired to the journal and the UI.
func (a *app) session(inv *inventory.Inventory, rb *runbook.Runbook, asJSON bool) (*runbook.Session, *ui.RunView) {
	s := &runbook.Session{Inventory: inv, Runbook: rb, StateDir: a.stateDir, LogDir: a.runsDir(), Args: os.Args}
	var view *ui.RunView
	if !asJSON {
		view = &ui.RunView{W: a.out, S: a.styles(), Verbose: a.verbose}
		s.Observe = func(ev journal.Event) {
			view.Event(ev)
			if ev.Type == journal.RunEnd && ev.Error != "" {
				a.endShown = true
			}
		}
	}
	return s, view
}

// finish prints a run's JSON report when asked and returns err.
func (a *app) finish(out runbook.Outcome, asJSON bool, err error) error {
	shown := a.endShown
	if asJSON && out.Dir != "" {
		meta, events, rerr := journal.Read(out.Dir)
		if rerr == nil {
			shown = true
			r := ui.BuildReport(meta, events)
			r.ExitCode, r.Dir = exitCode(err), out.Dir
			if err != nil {
				r.Error = err.Error()
			}
			if werr := ui.WriteJSON(a.out, r); werr != nil {
				return werr
			}
		}
	}
	if err != nil && out.Dir != "" {
		fmt.Fprintf(a.errOut, "run id: %s (sgerun show %s)\n", out.RunID, out.RunID)
		// The run view or the JSON report already carries the error; an
		// error before the run started (lock, validation) is printed by
		// main.
		a.reported = shown
	}
	return err
}
