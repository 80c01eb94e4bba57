package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
)

func (a *app) historyCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List past runs, newest first",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			runs, err := journal.List(a.runsDir())
			if err != nil {
				return err
			}
			if limit > 0 && len(runs) > limit {
				runs = runs[:limit]
			}
			if asJSON {
				return ui.WriteJSON(a.out, runs)
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN ID\tRUNBOOK\tSTARTED\tSTATUS\tSTEPS\tDRY RUN")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\n", r.RunID, r.Runbook, r.Started.Local().Format(time.DateTime),
					r.Status, r.Steps, r.DryRun)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many runs (0: all)")
	return cmd
}

func (a *app) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show what a run did, step by step and host by host",
		Args:  exactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			dir, err := journal.Find(a.runsDir(), args[0])
			if err != nil {
				return err
			}
			meta, events, err := journal.Read(dir)
			if err != nil {
				return err
			}
			if asJSON {
				return ui.WriteJSON(a.out, ui.BuildReport(meta, events))
			}
			fmt.Fprintf(a.out, "run %s: runbook %s, inventory %s, started %s by %s@%s (pid %d), dry run %v\n",
				meta.RunID, meta.Runbook, meta.Inventory, meta.Started.Local().Format(time.DateTime),
				meta.User, meta.Controller, meta.PID, meta.DryRun)
			if err := journal.CheckFormat(meta); err != nil {
				fmt.Fprintf(a.errOut, "sgerun: warning: %v; showing what this version understands\n", err)
			}
			view := &ui.RunView{W: a.out, S: a.styles(), Verbose: a.verbose}
			for _, ev := range events {
				view.Event(ev)
			}
			if s := journal.Summarize(dir, meta, events); s.Status == journal.StatusInterrupted {
				fmt.Fprintf(a.out, "run did not finish: `sgerun resume %s` continues it, `sgerun rollback %s` undoes it\n",
					meta.RunID, meta.RunID)
			}
			return nil
		},
	}
}

func (a *app) rollbackCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rollback RUN_ID",
		Short: "Undo, newest first, every change a run made that is not undone yet",
		Args:  exactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.continueRun(cmd, args[0], force, true)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "take over a stale lock; roll back a run that passed its commit point")
	return cmd
}

func (a *app) resumeCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "resume RUN_ID",
		Short: "Continue an interrupted run after its last completed step, or retry what failed after a commit point",
		Args:  exactArgs(1, "one RUN_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.continueRun(cmd, args[0], force, false)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "take over a stale lock")
	return cmd
}

// continueRun resumes or rolls back a run recorded in the journal, with the
// inventory and runbook the run used.
func (a *app) continueRun(cmd *cobra.Command, id string, force, rollback bool) error {
	asJSON, err := a.json()
	if err != nil {
		return err
	}
	dir, err := journal.Find(a.runsDir(), id)
	if err != nil {
		return usagef("%v", err)
	}
	meta, events, err := journal.Read(dir)
	if err != nil {
		return err
	}
	// A newer sgerun may have journaled what this one cannot undo or skip
	// correctly: refuse before anything connects.
	if err := journal.CheckFormat(meta); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if sum := journal.Summarize(dir, meta, events); !rollback && !engine.Resumable(sum.Status) {
		return usagef("run %s already ended (%s); nothing to resume", meta.RunID, sum.Status)
	}
	inv, err := loadInventory(meta.Inventory)
	if err != nil {
		return err
	}
	inv, notes, err := a.resumeView(cmd.Context(), inv, events)
	if err != nil {
		return err
	}
	rb, err := runbook.Load(dir + "/" + journal.RunbookFile)
	if err != nil {
		return err
	}
	s, _ := a.session(inv, nil, asJSON)
	s.Force, s.Notes = force, notes
	var out engine.Outcome
	if rollback {
		out, err = s.Rollback(cmd.Context(), dir)
	} else {
		// The run's own overrides, against the runbook it saved.
		if s.Plan, err = plan.Compile(rb, inv, meta.Vars); err != nil {
			return err
		}
		out, err = s.Resume(cmd.Context(), dir)
	}
	return a.finish(out, asJSON, err)
}
