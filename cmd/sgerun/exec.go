package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
)

// hostRun is one host's result of `sgerun exec`.
type hostRun struct {
	Host       string `json:"host"`
	ExitCode   int    `json:"exit_code"`
	Stdout     string `json:"stdout"`
	Stderr     string `json:"stderr"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

func (a *app) execCmd() *cobra.Command {
	var invPath string
	var on []string
	var fanout int
	cmd := &cobra.Command{
		Use:   "exec --inventory FILE --on ROLE|HOSTS [--fanout N] -- COMMAND",
		Short: "Run an ad-hoc command on many hosts in parallel; identical output is grouped",
		Long: `Run one shell command on the selected hosts, at most --fanout at a time, over
one SSH connection per host. Hosts with identical output are printed together,
as clush -b does. Exit status 1 when any host fails or exits non-zero.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				return usagef("give the command after --")
			}
			if len(on) == 0 {
				return usagef("--on is required (a role, host, range or list)")
			}
			inv, err := loadInventory(invPath)
			if err != nil {
				return err
			}
			if v, _, err := a.runView(cmd.Context(), inv, "", ""); err != nil {
				fmt.Fprintf(a.errOut, "warning: exec hosts from SGE: %v; the execd role holds only roles.execd.add\n", err)
			} else {
				inv = v
			}
			hosts, err := inv.Select(on)
			if err != nil {
				return usagef("--on: %v", err)
			}
			if fanout <= 0 {
				fanout = inv.Policy.Fanout
			}
			conn, err := runbook.NewSSHConnector(inv)
			if err != nil {
				return err
			}
			defer conn.Close()
			progress := a.execProgress(len(hosts), asJSON)
			results := fanOut(cmd.Context(), conn, hosts, fanout, strings.Join(args, " "), progress)
			return a.printExec(results, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&invPath, "inventory", "i", "", "inventory file (required)")
	f.StringSliceVar(&on, "on", nil, "hosts: roles, names, pdsh ranges or all (comma-separated)")
	f.IntVarP(&fanout, "fanout", "f", 0, "max hosts at once (default: policy.fanout)")
	return cmd
}

// fanOut runs cmd on hosts with a bounded pool of workers.
func fanOut(ctx context.Context, conn *runbook.SSHConnector, hosts []string, fanout int, cmd string,
	progress func(ok bool)) []hostRun {
	results := make([]hostRun, len(hosts))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(fanout, len(hosts))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				results[i] = runOne(ctx, conn, hosts[i], cmd)
				progress(results[i].Error == "" && results[i].ExitCode == 0)
			}
		}()
	}
	for i := range hosts {
		idx <- i
	}
	close(idx)
	wg.Wait()
	return results
}

func runOne(ctx context.Context, conn *runbook.SSHConnector, host, cmd string) hostRun {
	start := time.Now()
	r := hostRun{Host: host}
	var t steps.Target
	t, err := conn.Target(ctx, host)
	if err == nil {
		var out steps.Output
		out, err = t.Exec(ctx, cmd, nil)
		r.ExitCode, r.Stdout, r.Stderr = out.ExitCode, out.Stdout, out.Stderr
	}
	if err != nil {
		r.Error, r.ExitCode = err.Error(), 255
	}
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

// progressEvery is the least time between two redraws of the live
// progress line, so that a thousand hosts finishing at once cost a few
// dozen writes to the terminal, not a thousand.
const progressEvery = 50 * time.Millisecond

func (a *app) execProgress(total int, quiet bool) func(ok bool) {
	s := a.styles()
	var mu sync.Mutex
	done, failed := 0, 0
	var drawn time.Time
	return func(ok bool) {
		mu.Lock()
		defer mu.Unlock()
		done++
		if !ok {
			failed++
		}
		if quiet || !s.Live {
			return
		}
		now := time.Now()
		if done < total && now.Sub(drawn) < progressEvery {
			return
		}
		drawn = now
		fmt.Fprintf(a.errOut, "\r\x1b[K%d/%d done, %d failed, %d pending", done, total, failed, total-done)
		if done == total {
			fmt.Fprint(a.errOut, "\r\x1b[K")
		}
	}
}

func (a *app) printExec(results []hostRun, asJSON bool) error {
	failed := 0
	for _, r := range results {
		if r.Error != "" || r.ExitCode != 0 {
			failed++
		}
	}
	if asJSON {
		if err := ui.WriteJSON(a.out, map[string]any{"hosts": results, "failed": failed}); err != nil {
			return err
		}
	} else {
		s := a.styles()
		byHost := map[string]string{}
		for _, r := range results {
			text := r.Stdout + r.Stderr
			switch {
			case r.Error != "":
				text += "error: " + r.Error + "\n"
			case r.ExitCode != 0:
				text += fmt.Sprintf("exit status %d\n", r.ExitCode)
			}
			byHost[r.Host] = text
		}
		for _, g := range ui.Group(byHost) {
			head := fmt.Sprintf("%s (%d)", ui.Fold(g.Hosts), len(g.Hosts))
			line := strings.Repeat("-", min(len(head), 72))
			fmt.Fprintf(a.out, "%s\n%s\n%s\n%s", line, s.Host.Render(head), line, g.Text)
			if g.Text != "" && !strings.HasSuffix(g.Text, "\n") {
				fmt.Fprintln(a.out)
			}
		}
		fmt.Fprintf(a.out, "%d host(s), %d failed\n", len(results), failed)
	}
	if failed > 0 {
		a.reported = true
		return fmt.Errorf("%d of %d host(s) failed", failed, len(results))
	}
	return nil
}
