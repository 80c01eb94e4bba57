package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/status"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
)

// nagiosExit carries check's Nagios state as the process exit code.
type nagiosExit struct{ state int }

func (e nagiosExit) Error() string { return "check: " + status.StateName(e.state) }

func (a *app) gather(cmd *cobra.Command, invPath string) (*status.Report, time.Duration, error) {
	inv, err := loadInventory(invPath)
	if err != nil {
		return nil, 0, err
	}
	r, err := a.gatherInv(cmd.Context(), inv)
	if err != nil {
		return nil, 0, err
	}
	return r, inv.Policy.HeartbeatStale, nil
}

func (a *app) statusCmd() *cobra.Command {
	var invPath string
	cmd := &cobra.Command{
		Use:   "status [--inventory FILE]",
		Short: "Show where qmaster runs, act_qmaster, spool paths, heartbeat, pending fence and the last run",
		Args:  exactArgs(0, "no arguments (use --inventory)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			r, stale, err := a.gather(cmd, invPath)
			if err != nil {
				return err
			}
			runs, _ := journal.List(a.runsDir())
			if asJSON {
				out := map[string]any{"status": r}
				if len(runs) > 0 {
					out["last_run"] = runs[0]
				}
				return ui.WriteJSON(a.out, out)
			}
			a.renderStatus(r, stale, runs)
			return nil
		},
	}
	inventoryFlag(cmd.Flags(), &invPath)
	return cmd
}

func (a *app) renderStatus(r *status.Report, stale time.Duration, runs []journal.Summary) {
	s := a.styles()
	w := a.out
	fmt.Fprintf(w, "%s\n", s.Header.Render("sgerun status"))
	fmt.Fprintf(w, "act_qmaster        %s\n", orNone(r.ActQmaster))
	if h := r.Heads; h != nil {
		heads := fmt.Sprintf("preferred %s, active %s", h.Preferred, orNone(h.Active))
		if h.Differ {
			heads += s.Warn.Render(" (not the preferred head; sgerun takeback returns the role)")
		}
		fmt.Fprintf(w, "heads              %s\n", heads)
	}
	serving := orNone(strings.Join(r.Serving, ", "))
	fmt.Fprintf(w, "qmaster answering  %s\n", serving)
	running := orNone(strings.Join(r.Running, ", "))
	if r.SplitBrain {
		running = s.Failed.Render(running + "  SPLIT BRAIN: two qmasters")
	}
	fmt.Fprintf(w, "qmaster processes  %s\n", running)
	for _, h := range r.Hosts {
		state := fmt.Sprintf("qmaster pids %v, shadowd pids %v, qping %d, act_qmaster %s", h.QmasterPID, h.ShadowdPID, h.Qping, orNone(h.ActQmaster))
		if !h.Reachable {
			state = s.Warn.Render("unreachable: " + h.Error)
		} else if h.Via != "" {
			state += s.Warn.Render(" (via fence address " + h.Via + ")")
		}
		fmt.Fprintf(w, "  %-7s %-12s %s\n", h.Role, h.Name, state)
	}
	fmt.Fprintf(w, "qmaster_spool_dir  %s\nspooling_params    %s\n", orNone(r.QmasterSpoolDir), orNone(r.SpoolingParams))
	hb := "unknown"
	if r.HeartbeatAge >= 0 {
		hb = fmt.Sprintf("%ds ago", r.HeartbeatAge)
		if time.Duration(r.HeartbeatAge)*time.Second > stale {
			hb = s.Warn.Render(hb + " (stale)")
		}
	}
	fmt.Fprintf(w, "heartbeat          %s\n", hb)
	fmt.Fprintf(w, "exec hosts         %d of %d reporting", r.ExecReporting, r.ExecTotal)
	if len(r.NotReporting) > 0 {
		fmt.Fprintf(w, " (not: %s)", ui.Fold(r.NotReporting))
	}
	fmt.Fprintln(w)
	if x := r.ExecHosts; x != nil {
		src := x.Source + ", cache refreshed"
		if !x.Live {
			src = s.Warn.Render(fmt.Sprintf("the cache (%ds old) of %s", x.CacheAge, x.Source))
		}
		fmt.Fprintf(w, "exec host list     %d from SGE: %s\n", x.Count, src)
	}
	if p := r.PendingFence; p != nil {
		fmt.Fprintf(w, "pending fence      %s\n", s.Failed.Render(fmt.Sprintf("%s since %s (run %s): %s; resolve with sgerun fence",
			p.Master, p.Time.Local().Format(time.DateTime), p.RunID, p.Reason)))
	} else {
		fmt.Fprintf(w, "pending fence      none\n")
	}
	if l := r.LastTakeover; l != nil {
		ack := "acknowledged"
		if !l.Acked {
			ack = s.Warn.Render("not acknowledged (sgerun ack)")
		}
		fmt.Fprintf(w, "last takeover      %s -> %s at %s, run %s, %s\n", l.From, l.To, l.Time.Local().Format(time.DateTime), l.RunID, ack)
	}
	if len(runs) > 0 {
		last := runs[0]
		fmt.Fprintf(w, "last run           %s %s %s (%s)\n", last.RunID, last.Runbook, last.Status, last.Started.Local().Format(time.DateTime))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s %s\n", s.Warn.Render("problem:"), p)
	}
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) checkCmd() *cobra.Command {
	var invPath, format, promFile string
	cmd := &cobra.Command{
		Use:   "check [--inventory FILE] [--format nagios|json] [--prometheus FILE]",
		Short: "Monitoring check: Nagios exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) with perfdata",
		Long: `A Nagios/Icinga-compatible check of the qmaster role. CRITICAL when no qmaster
answers, when two qmasters run (split brain) or when a fence is pending;
WARNING when the heartbeat is stale, exec hosts do not report, master or
shadow is unreachable, the last takeover is not acknowledged, or the last
takeover run on this controller ended committed with failures (run exit 5:
the shadow serves, some hosts failed after the commit point). Its exit codes
are Nagios states, not sgerun's run exit codes.`,
		Args: exactArgs(0, "no arguments (use --inventory)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "nagios" && format != "json" {
				return usagef("--format %q: want nagios or json", format)
			}
			r, stale, err := a.gather(cmd, invPath)
			if err != nil {
				a.reported = true
				fmt.Fprintf(a.out, "SGERUN UNKNOWN - %v\n", err)
				return nagiosExit{status.Unknown}
			}
			last := a.lastTakeoverRun()
			v := status.Check(r, stale, last)
			if promFile != "" {
				if err := status.WritePrometheusFile(promFile, r, v, last); err != nil {
					return err
				}
			}
			if format == "json" {
				if err := ui.WriteJSON(a.out, v); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(a.out, v.Line())
			}
			if v.State != status.OK {
				a.reported = true
				return nagiosExit{v.State}
			}
			return nil
		},
	}
	inventoryFlag(cmd.Flags(), &invPath)
	cmd.Flags().StringVar(&format, "format", "nagios", "nagios (one line with perfdata) or json")
	cmd.Flags().StringVar(&promFile, "prometheus", "", "also write node_exporter textfile metrics to FILE (atomically)")
	return cmd
}

// lastTakeoverRun is the newest real (not dry) takeover in the journal.
func (a *app) lastTakeoverRun() *status.LastRun {
	runs, err := journal.List(a.runsDir())
	if err != nil {
		return nil
	}
	for _, r := range runs {
		if r.Runbook == takeoverPlaybook && !r.DryRun && r.Status != journal.StatusInterrupted {
			return &status.LastRun{Time: r.Started, Success: r.Status == journal.StatusOK, RunID: r.RunID, Status: r.Status}
		}
	}
	return nil
}
