package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sgerun/sgerun/lab"
	"github.com/sgerun/sgerun/shell"
)

// labOptions are the flags shared by every lab verb.
type labOptions struct {
	name     string
	stateDir string
}

// labOpen opens the instance the flags select.
func (o *labOptions) labOpen(cmd *cobra.Command) (*lab.Lab, error) {
	var (
		l   *lab.Lab
		err error
	)
	if o.stateDir != "" {
		l, err = lab.OpenDir(o.stateDir)
	} else {
		l, err = lab.Open(o.name)
	}
	if err != nil {
		return nil, err
	}
	l.SetLogger(labLogger(cmd.ErrOrStderr()))
	return l, nil
}

// labLogger logs progress lines to w.
func labLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newLabCmd returns "sgerun lab" and its verbs.
func newLabCmd() *cobra.Command {
	o := &labOptions{}
	c := &cobra.Command{
		Use:   "lab",
		Short: "Create, inspect, break and destroy a local rehearsal Grid Engine cluster",
		Long: `lab runs a real Grid Engine cluster (master, shadow and exec hosts, each a
Linux network+PID+UTS namespace with its own sshd) on this machine, so that a
takeover can be rehearsed with sgerun against real daemons. It needs root.

  sgerun lab up                       build it (idempotent)
  sgerun lab ctl -- sgerun ... --inventory /run/sgerun-lab/sgelab/inventory.yaml
  sgerun lab partition master         break it
  sgerun lab status                   look at it
  sgerun lab down                     remove everything`,
		SilenceUsage: true,
	}
	c.PersistentFlags().StringVar(&o.name, "name", lab.DefaultName, "lab instance name (prefix of namespaces and host names)")
	c.PersistentFlags().StringVar(&o.stateDir, "state-dir", "", "state directory (default "+lab.DefaultBaseDir+"/<name>)")
	c.AddCommand(
		labUpCmd(o), labDownCmd(o), labStatusCmd(o), labInventoryCmd(o),
		labPartitionCmd(o), labHostVerb(o, "heal", "Bring both of a host's interfaces up again", (*lab.Lab).Heal),
		labHostVerb(o, "hang", "SIGSTOP the host's sge_qmaster", (*lab.Lab).Hang),
		labHostVerb(o, "resume", "SIGCONT the host's sge_qmaster", (*lab.Lab).Resume),
		labHostVerb(o, "kill", "Crash a host: SIGKILL its init, ending all its processes", (*lab.Lab).Kill),
		labHostVerb(o, "boot", "Start a killed host again (init, sshd, execd; not qmaster)", (*lab.Lab).Boot),
		labExecCmd(o), labCtlCmd(o),
	)
	return c
}

func labUpCmd(o *labOptions) *cobra.Command {
	var (
		execHosts int
		fence     string
		spooling  string
		local     bool
	)
	c := &cobra.Command{
		Use:   "up",
		Short: "Build the lab, or repair it; a healthy lab is left as it is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			if !cmd.Flags().Changed("fence-command") {
				fence = labDefaultFence(o)
			}
			l, err := lab.Up(cmd.Context(), lab.Config{
				Name: o.name, StateDir: o.stateDir, ExecHosts: execHosts,
				FenceCommand: fence, Spooling: spooling, LocalCommon: local, Logger: labLogger(cmd.ErrOrStderr()),
			})
			if err != nil {
				return fmt.Errorf("lab up: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "lab %s is up (%s)\n", l.Name(), time.Since(start).Round(100*time.Millisecond))
			fmt.Fprintf(w, "  master %s, shadow %s, exec %s\n", l.Master(), l.Shadow(), strings.Join(l.ExecHosts(), " "))
			fmt.Fprintf(w, "  SGE_ROOT=%s SGE_CELL=%s\n", l.SGERoot(), l.Cell())
			fmt.Fprintf(w, "  inventory %s\n", l.InventoryPath())
			fmt.Fprintf(w, "  run sgerun with: sgerun lab --name %s ctl -- sgerun <verb> --inventory %s\n", l.Name(), l.InventoryPath())
			return nil
		},
	}
	c.Flags().IntVar(&execHosts, "exec-hosts", lab.DefaultExecHosts, "number of exec hosts")
	c.Flags().StringVar(&spooling, "spooling", lab.SpoolingBDB, "qmaster spooling method: berkeleydb or classic (flat files)")
	c.Flags().BoolVar(&local, "local-common", false, "give every SGE host its own common/ (as Debian installs it), not one shared")
	c.Flags().StringVar(&fence, "fence-command", "", "cluster.fence_command of the generated inventory (default: this binary's \"lab kill\" of $SGERUN_FENCE_HOST)")
	return c
}

// labDefaultFence is the inventory's fence command: this very binary
// crashing the old master host with "lab kill".
func labDefaultFence(o *labOptions) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	args := []string{exe, "lab", "--name", o.name}
	if o.stateDir != "" {
		args = append(args, "--state-dir", o.stateDir)
	}
	return shell.Join(append(args, "kill")...) + ` "$SGERUN_FENCE_HOST"`
}

func labDownCmd(o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the lab and remove its namespaces and state directory",
		Long: `down works from the instance's name alone: it kills every process inside the
lab's namespaces, deletes the namespaces "<name>-*" (with their veths and
bridges) and /etc/netns/<name>-*, and removes the state directory. It also
cleans up after a crash that left no state file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.DownByName(cmd.Context(), o.name, o.stateDir, labLogger(cmd.ErrOrStderr())); err != nil {
				return fmt.Errorf("lab down: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s is down\n", o.name)
			return nil
		},
	}
}

func labInventoryCmd(o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inventory",
		Short: "Print the generated sgerun inventory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := o.labOpen(cmd)
			if err != nil {
				return err
			}
			b, err := l.Inventory()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
}

func labStatusCmd(o *labOptions) *cobra.Command {
	var from string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show daemons, links, act_qmaster, bootstrap spool paths, qstat -f and qhost",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := o.labOpen(cmd)
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context(), from)
			if err != nil {
				return err
			}
			return labWriteStatus(cmd.OutOrStdout(), st)
		},
	}
	c.Flags().StringVar(&from, "from", "", "host to run qstat/qhost on (default the master host; \"ctl\" is the controller)")
	return c
}

// labWriteStatus renders a lab status as text.
func labWriteStatus(w io.Writer, st *lab.Status) error {
	fmt.Fprintf(w, "lab %s  SGE_ROOT=%s  SGE_CELL=%s\n", st.Name, st.SGERoot, st.Cell)
	fmt.Fprintf(w, "act_qmaster        %s\n", st.ActQmaster)
	fmt.Fprintf(w, "spooling_params    %s\n", st.SpoolingParams)
	fmt.Fprintf(w, "qmaster_spool_dir  %s\n\n", st.QmasterSpoolDir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tROLE\tSCHED\tFILE\tDAEMONS (pid in host, state)")
	for _, h := range st.Hosts {
		links := map[lab.Net]string{lab.NetSched: "?", lab.NetFile: "?"}
		for _, ln := range h.Links {
			links[ln.Net] = "down"
			if ln.Up {
				links[ln.Net] = "up"
			}
		}
		var ds []string
		for _, d := range h.Daemons {
			ds = append(ds, fmt.Sprintf("%s(%d,%s)", d.Name, d.PID, d.State))
		}
		sort.Strings(ds)
		daemons := strings.Join(ds, " ")
		if !h.Up {
			daemons = "HOST DOWN (killed)"
		}
		if h.Err != nil {
			daemons += " error: " + h.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s %s\t%s\n", h.Name, h.Role,
			h.SchedAddr, links[lab.NetSched], h.FileAddr, links[lab.NetFile], daemons)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range []struct {
		title, out string
		err        error
	}{{"qstat -f", st.Qstat, st.QstatErr}, {"qhost", st.Qhost, st.QhostErr}} {
		fmt.Fprintf(w, "\n--- %s (from %s)\n", v.title, st.From)
		if v.err != nil {
			fmt.Fprintf(w, "error: %v\n", v.err)
		}
		fmt.Fprint(w, v.out)
	}
	return nil
}

func labPartitionCmd(o *labOptions) *cobra.Command {
	var net string
	c := &cobra.Command{
		Use:   "partition HOST",
		Short: "Take a host's link down inside its namespace (default: scheduler network)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.labOpen(cmd)
			if err != nil {
				return err
			}
			return l.Partition(cmd.Context(), args[0], lab.Net(net))
		},
	}
	c.Flags().StringVar(&net, "net", string(lab.NetSched), "network to cut: sched, file or all")
	return c
}

// labHostVerb builds a verb that takes one host and calls fn.
func labHostVerb(o *labOptions, name, short string, fn func(*lab.Lab, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " HOST",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.labOpen(cmd)
			if err != nil {
				return err
			}
			return fn(l, cmd.Context(), args[0])
		},
	}
}

func labExecCmd(o *labOptions) *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   "exec HOST -- CMD [ARG...]",
		Short: "Run a command inside a lab host (or \"ctl\") with SGE_ROOT/SGE_CELL set",
		Long: `exec runs a command inside a lab host's namespaces with SGE_ROOT, SGE_CELL and
the SGE ports set. One argument is a shell command line (run by bash -c, so
pipes work); several arguments are one command and its exact arguments.
The exit code is the command's.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return labRun(cmd, o, args[0], user, args[1:])
		},
	}
	c.Flags().StringVar(&user, "user", "", "run as this user instead of root")
	// Flags after HOST belong to the command, as with ssh.
	c.Flags().SetInterspersed(false)
	return c
}

func labCtlCmd(o *labOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "ctl -- CMD [ARG...]",
		Short: "Run a command in the controller namespace, e.g. sgerun against the lab",
		Long: `ctl runs a command in the controller namespace, which reaches every lab host
on both lab networks and resolves their names; SGE_ROOT and SGE_CELL are set.
Same argument rules as exec.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return labRun(cmd, o, lab.CtlHost, "", args)
		},
	}
	c.Flags().SetInterspersed(false)
	return c
}

// labRun runs args on host with the command's stdio; one argument is a
// shell command line, several are quoted word by word.
func labRun(cmd *cobra.Command, o *labOptions, host, user string, args []string) error {
	l, err := o.labOpen(cmd)
	if err != nil {
		return err
	}
	if len(args) > 1 && args[0] == "--" {
		args = args[1:] // "exec HOST -- CMD": the separator is not part of the command
	}
	line := args[0]
	if len(args) > 1 {
		line = shell.Join(args...)
	}
	c, err := l.Command(cmd.Context(), host, user, line)
	if err != nil {
		return err
	}
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if err := c.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			// The error keeps ExitCode() for the caller's exit status.
			return fmt.Errorf("on %s: command exited %d: %w", host, ee.ExitCode(), ee)
		}
		return fmt.Errorf("on %s: %w", host, err)
	}
	return nil
}
