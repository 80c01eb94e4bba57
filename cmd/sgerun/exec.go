package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/sshexec"
	"github.com/sgerun/sgerun/target"
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
	// ErrorClass is "unreachable", "host_key", "auth" or "config" when
	// the connection failed for that reason.
	ErrorClass string `json:"error_class,omitempty"`
	err        error
}

// sshClass names the SSH failure class of err, or "".
func sshClass(err error) string {
	var ce *sshexec.ConnectError
	if errors.As(err, &ce) {
		return ce.Class()
	}
	switch {
	case errors.Is(err, sshexec.ErrHostKey):
		return "host_key"
	case errors.Is(err, sshexec.ErrAuth):
		return "auth"
	case errors.Is(err, sshexec.ErrUnreachable):
		return "unreachable"
	}
	return ""
}

func (a *app) execCmd() *cobra.Command {
	var invPath string
	var on []string
	var fanout int
	cmd := &cobra.Command{
		Use:   "exec [--inventory FILE] --on ROLE|HOSTS [--fanout N] -- COMMAND",
		Short: "Run an ad-hoc command on many hosts in parallel; identical output is grouped",
		Long: `Run one shell command on the selected hosts, at most --fanout at a time, over
one SSH connection per host. Hosts with identical output are printed together,
as clush -b does. Exit status 1 when any host fails or exits non-zero; 7, 8
or 6 when a host's key could not be verified, authentication was refused or
a host was unreachable (in that order); -o json gives each host's
error_class.`,
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
			if v, _, err := a.runView(cmd.Context(), inv, headsIgnored, ""); err != nil {
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
			conn, err := target.NewSSH(inv)
			if err != nil {
				return err
			}
			defer conn.Close()
			// The live line shows hosts done, failed and pending while the
			// command runs (a terminal only; not with -o json or NO_COLOR),
			// and is gone before the grouped output is printed.
			s := a.styles()
			if asJSON {
				s.Live = false
			}
			progress := ui.NewProgress(a.out, s)
			progress.Start("exec "+ui.Shorten(strings.Join(args, " "), 40), len(hosts))
			results := fanOut(cmd.Context(), conn, hosts, fanout, strings.Join(args, " "),
				func(ok bool) { progress.Done(!ok) })
			progress.Stop()
			return a.printExec(results, asJSON)
		},
	}
	f := cmd.Flags()
	inventoryFlag(f, &invPath)
	f.StringSliceVar(&on, "on", nil, "hosts: roles, names, pdsh ranges or all (comma-separated)")
	f.IntVarP(&fanout, "fanout", "f", 0, "max hosts at once (default: policy.fanout)")
	return cmd
}

// fanOut runs cmd on hosts with a bounded pool of workers.
func fanOut(ctx context.Context, conn *target.SSH, hosts []string, fanout int, cmd string,
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

func runOne(ctx context.Context, conn *target.SSH, host, cmd string) hostRun {
	start := time.Now()
	r := hostRun{Host: host}
	var t target.Target
	t, err := conn.Target(ctx, host)
	if err == nil {
		var out target.Output
		out, err = t.Exec(ctx, cmd, nil)
		r.ExitCode, r.Stdout, r.Stderr = out.ExitCode, out.Stdout, out.Stderr
	}
	if err != nil {
		r.Error, r.ExitCode, r.err = err.Error(), 255, err
		r.ErrorClass = sshClass(err)
	}
	r.DurationMS = time.Since(start).Milliseconds()
	return r
}

func (a *app) printExec(results []hostRun, asJSON bool) error {
	failed := 0
	// The first SSH failure of the most telling class decides the exit
	// code: host key (7), then authentication (8), then unreachable (6).
	var classErr error
	rank := map[string]int{"host_key": 3, "auth": 2, "unreachable": 1}
	for _, r := range results {
		if r.Error != "" || r.ExitCode != 0 {
			failed++
		}
		if rank[r.ErrorClass] > rank[sshClass(classErr)] {
			classErr = r.err
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
		if classErr != nil {
			return fmt.Errorf("%d of %d host(s) failed: %w", failed, len(results), classErr)
		}
		return fmt.Errorf("%d of %d host(s) failed", failed, len(results))
	}
	return nil
}
