package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/internal/version"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
	// view is the run view of the command's session, if any.
	view *ui.RunView
	// inBuf reads the operator's answers from in; promptMu keeps two
	// questions from interleaving.
	inBuf    *bufio.Reader
	promptMu sync.Mutex
	// ownSignals is set by a command that handles SIGINT and SIGTERM
	// itself (watch, which never abandons a takeover it started): a second
	// interrupt then does not exit the process.
	ownSignals atomic.Bool
}

func newApp(in io.Reader, out, errOut io.Writer) *app {
	return &app{in: in, out: out, errOut: errOut, inBuf: bufio.NewReader(in)}
}

// stdin is the buffered reader of the operator's answers.
func (a *app) stdin() *bufio.Reader { return a.inBuf }

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sgerun",
		Short: "Fail a Grid Engine qmaster over to its shadow host, safely, over SSH",
		Long: `sgerun runs declarative YAML runbooks over SSH against the hosts of an
SGE cluster: with a real dry-run, automatic rollback and a durable journal.

Files and defaults (the deb and rpm packages install both):
  --inventory  $SGERUN_INVENTORY, else ` + systemInventory + `
               (sgerun help inventory; man 5 sgerun-inventory)
  --state-dir  $SGERUN_STATE_DIR, else ` + systemStateDir + ` as root,
               else $XDG_STATE_HOME/sgerun or ~/.local/state/sgerun:
               locks and run journals (runs/)
  NO_COLOR     plain output, no live progress line (also --no-color)

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
		// Every command's --inventory defaults to $SGERUN_INVENTORY, then
		// the head node's /etc/sgerun/inventory.yaml; resolving it here
		// gives the commands one path, for the stand-down marker too.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.stateDir == "" {
				a.stateDir = defaultStateDir(os.Getenv, os.Geteuid())
				if a.stateDir == systemStateDir {
					if note := legacyStateNote(systemStateDir, userStateDir(os.Getenv)); note != "" {
						fmt.Fprintln(a.errOut, note)
					}
				}
			}
			return resolveInventoryFlag(cmd, os.Getenv, systemInventory)
		},
	}
	root.SetVersionTemplate(version.Get().Text())
	root.SetIn(a.in)
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	pf := root.PersistentFlags()
	// The defaults are resolved when a command runs, not here, so that the
	// help and the man pages read the same for everyone who builds them.
	pf.StringVar(&a.stateDir, "state-dir", "",
		"directory for locks and run journals (default $SGERUN_STATE_DIR, then "+systemStateDir+
			" as root, else ~/.local/state/sgerun)")
	pf.StringVar(&a.logDir, "log-dir", "", "directory for run journals (default STATE_DIR/runs)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	pf.BoolVar(&a.noColor, "no-color", false, "plain output (also NO_COLOR=1)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "show every host's output")
	root.AddCommand(a.failoverCmds()...)
	root.AddCommand(a.statusCmd(), a.checkCmd(), a.watchCmd())
	root.AddCommand(helpTopics()...)
	root.AddCommand(a.runCmd(), a.validateCmd(), a.execCmd(), a.historyCmd(), a.showCmd(),
		a.rollbackCmd(), a.resumeCmd(), a.playbookShowCmd(), newLabCmd())
	root.AddCommand(a.versionCmd(), a.genCmd())
	return root
}

// Where a head node keeps sgerun's files (the deb and rpm packages create
// both; the contrib systemd units use them).
const (
	// systemInventory is the inventory used when neither --inventory nor
	// $SGERUN_INVENTORY names one.
	systemInventory = "/etc/sgerun/inventory.yaml"
	// systemStateDir is the state dir of a run as root.
	systemStateDir = "/var/lib/sgerun"
)

// inventoryUsage is the --inventory flag's help, the same on every command.
const inventoryUsage = "inventory file (default $SGERUN_INVENTORY, then " + systemInventory + ")"

// inventoryFlag registers a command's --inventory flag.
func inventoryFlag(f *pflag.FlagSet, p *string) {
	f.StringVarP(p, "inventory", "i", "", inventoryUsage)
}

// resolveInventoryFlag sets cmd's --inventory, when it has one and it was
// not given, to $SGERUN_INVENTORY, else to system (systemInventory); a
// missing default is a usage error that says where sgerun looked.
func resolveInventoryFlag(cmd *cobra.Command, getenv func(string) string, system string) error {
	f := cmd.Flags().Lookup("inventory")
	if f == nil || f.Changed || f.Value.Type() != "string" {
		return nil
	}
	p := getenv("SGERUN_INVENTORY")
	if p == "" {
		p = system
	}
	if _, err := os.Stat(p); err != nil {
		from := system
		if getenv("SGERUN_INVENTORY") != "" {
			from = "$SGERUN_INVENTORY " + p
		}
		if errors.Is(err, os.ErrNotExist) {
			return usagef("no inventory: --inventory not given and %s does not exist (see sgerun help inventory)", from)
		}
		return usagef("inventory %s: %v", from, err)
	}
	if err := f.Value.Set(p); err != nil {
		return fmt.Errorf("set --inventory: %w", err)
	}
	return nil
}

// defaultStateDir is --state-dir's default: $SGERUN_STATE_DIR, then
// /var/lib/sgerun for root (the head node's, which the packages create),
// then the user's XDG state dir.
func defaultStateDir(getenv func(string) string, euid int) string {
	if d := getenv("SGERUN_STATE_DIR"); d != "" {
		return d
	}
	if euid == 0 {
		return systemStateDir
	}
	return userStateDir(getenv)
}

// userStateDir is a user's state dir, and root's before sgerun defaulted
// to /var/lib/sgerun for root.
func userStateDir(getenv func(string) string) string {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sgerun")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "sgerun")
	}
	return filepath.Join(home, ".local", "state", "sgerun")
}

// legacyStateNote tells root, once per command, where the journals of an
// older sgerun are when the new default state dir has none: status,
// history and rollback read only the state dir, and would miss a pending
// fence or an interrupted run recorded there.
func legacyStateNote(system, legacy string) string {
	if _, err := os.Stat(filepath.Join(system, "runs")); err == nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(legacy, "runs")); err != nil {
		return ""
	}
	return fmt.Sprintf("sgerun: note: %s holds the run journals of an older sgerun; as root the state dir is now %s: "+
		"move them (mkdir -p %s && mv %s/* %s/) or pass --state-dir %s", legacy, system, system, legacy, system, legacy)
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
		return nil, usagef("no inventory: give --inventory FILE or set SGERUN_INVENTORY")
	}
	return inventory.Load(path)
}

// session builds a session for inv (and p, when it runs one) wired to the
// journal and the UI.
func (a *app) session(inv *inventory.Inventory, p *plan.Plan, asJSON bool) (*engine.Session, *ui.RunView) {
	s := &engine.Session{Plan: p, Inventory: inv, StateDir: a.stateDir, LogDir: a.runsDir(), Args: os.Args}
	var view *ui.RunView
	if !asJSON {
		view = &ui.RunView{W: a.out, S: a.styles(), Verbose: a.verbose}
		a.view = view
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
func (a *app) finish(out engine.Outcome, asJSON bool, err error) error {
	if a.view != nil {
		// A run that stopped without its end event leaves no progress
		// line behind the error.
		a.view.Close()
	}
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
