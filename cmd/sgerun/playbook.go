package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/playbooks"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
)

// playbookSpec describes a first-class command backed by an embedded
// playbook.
type playbookSpec struct {
	name  string
	use   string
	short string
	long  string
	// confirm names the role whose host the operator types to confirm.
	confirm string
	// flags maps boolean flags onto playbook variables.
	flags []playbookFlag
	// heads says how the run follows roles.heads.
	heads headsUse
	// retarget adds --to HOST, the head to move the role to.
	retarget bool
	// force is the usage of --force; "" for taking over a stale lock only.
	force string
	// hooks runs the inventory's takeover hooks around the run.
	hooks bool
	// acknowledges clears watch's stand-down mark (a person looked).
	acknowledges bool
}

// takeoverPlaybook is the embedded playbook watch runs and status reports
// on.
const takeoverPlaybook = "takeover"

type playbookFlag struct {
	name, variable, usage string
}

func loadPlaybook(name string) (*runbook.Runbook, error) {
	file, data, err := playbooks.Source(name)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return runbook.Parse(file, data)
}

// playbookCmd builds a command that runs an embedded playbook.
func (a *app) playbookCmd(p playbookSpec) *cobra.Command {
	var invPath, to string
	var dry, yes, force bool
	var vars []string
	flagVals := make([]bool, len(p.flags))
	cmd := &cobra.Command{
		Use:   p.use,
		Short: p.short,
		Long:  p.long + "\n\nThe steps are the embedded playbook `sgerun playbook show " + p.name + "`.\n\n" + exitCodesHelp,
		Args:  exactArgs(0, "no arguments (use --inventory)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			overrides, err := parseVars(vars)
			if err != nil {
				return err
			}
			for i, f := range p.flags {
				if flagVals[i] {
					overrides[f.variable] = "true"
				}
			}
			if force {
				overrides["force"] = "true"
			}
			inv, err := loadInventory(invPath)
			if err != nil {
				return err
			}
			// Which head serves, and which exec hosts SGE knows, are the
			// cluster's to say (heads.go).
			inv, notes, err := a.runView(cmd.Context(), inv, p.heads, to)
			if err != nil {
				return err
			}
			rb, err := loadPlaybook(p.name)
			if err != nil {
				return err
			}
			pl, err := plan.Compile(rb, inv, overrides)
			if err != nil {
				return err
			}
			if !dry && !yes && p.confirm != "" {
				if err := a.confirm(inv, p); err != nil {
					return err
				}
			}
			s, _ := a.session(inv, pl, asJSON)
			s.DryRun, s.Force, s.Notes = dry, force, notes
			if !dry && !yes && p.confirm != "" {
				// The operator is at the terminal (confirm checked it): a
				// step may ask them mid-run (an unfenced takeover).
				s.Confirm = a.askTyped
			}
			if p.hooks {
				s.Hooks = takeoverHooks(inv)
			}
			if p.acknowledges && !dry {
				// A person looked: sgerun watch may act again.
				if err := os.Remove(a.standDownPath(invPath)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			out, err := s.Start(cmd.Context())
			return a.finish(out, asJSON, err)
		},
	}
	f := cmd.Flags()
	inventoryFlag(f, &invPath)
	f.BoolVarP(&dry, "dry-run", "n", false, "run the probes, print every change per host, change nothing")
	f.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (cron, monitors)")
	if p.confirm == "" {
		// Nothing to confirm, but scripts pass --yes to every changing
		// command: accept it (hidden) instead of failing with exit 2.
		_ = f.MarkHidden("yes")
	}
	f.StringArrayVar(&vars, "var", nil, "set a playbook variable, name=value")
	for i, pf := range p.flags {
		f.BoolVar(&flagVals[i], pf.name, false, pf.usage)
	}
	forceUsage := p.force
	if forceUsage == "" {
		forceUsage = "take over a stale lock"
	}
	f.BoolVar(&force, "force", false, forceUsage)
	if p.retarget {
		f.StringVar(&to, "to", "", "the head to move the qmaster role to (default: the head that is not active)")
	}
	return cmd
}

// confirm asks the operator to type the target host's name.
func (a *app) confirm(inv *inventory.Inventory, p playbookSpec) error {
	hosts := inv.Role(p.confirm)
	if len(hosts) != 1 {
		return usagef("the inventory needs exactly one %s host", p.confirm)
	}
	in, ok := a.in.(*os.File)
	if !ok || !isatty.IsTerminal(in.Fd()) {
		return usagef("%s changes the cluster; run it with --yes when nobody can answer a prompt, or --dry-run first", p.name)
	}
	fmt.Fprintf(a.out, "%s will make changes on the cluster in %s.\nType the %s host's name (%s) to go on: ",
		p.name, inv.File, p.confirm, hosts[0])
	line, _ := a.stdin().ReadString('\n')
	if strings.TrimSpace(line) != hosts[0] {
		return usagef("not confirmed; nothing was done")
	}
	return nil
}

// askTyped asks question and reports whether the operator typed answer.
func (a *app) askTyped(_ context.Context, question, answer string) (bool, error) {
	a.promptMu.Lock()
	defer a.promptMu.Unlock()
	var line string
	var err error
	ask := func() {
		fmt.Fprintf(a.out, "\n%s", question)
		line, err = a.stdin().ReadString('\n')
	}
	if a.view != nil {
		// No progress line redrawn over the question while it waits.
		a.view.Aside(ask)
	} else {
		ask()
	}
	if err != nil && line == "" {
		return false, fmt.Errorf("read answer: %w", err)
	}
	return strings.TrimSpace(line) == answer, nil
}

func (a *app) failoverCmds() []*cobra.Command {
	return []*cobra.Command{
		a.playbookCmd(playbookSpec{
			name:  takeoverPlaybook,
			use:   "takeover [--inventory FILE] [--to HOST] [--dry-run] [--yes] [--force] [--unfenced]",
			short: "Make the shadow host the qmaster, safely",
			long: `Make the shadow role the active qmaster: a quorum of shadow and witnesses must
find the master unreachable (qping retried, TCP), no voter may still reach it,
the shadow must not be the one cut off, and the anti-flap window must be
closed. Then, under a lock on the shared filesystem and after a re-check, the
old master is fenced (its qmaster and shadowd SIGKILLed over its own address
or its fence address, autostart disabled, or fence_command), the now quiescent
spool is copied to fresh timestamped paths, recovered and verified, bootstrap
and act_qmaster are pointed at the shadow and qmaster is started there.

The commit point is the new qmaster answering qping. A failure before it rolls
everything back; after it nothing is rolled back: every execd is soft-stopped
and started, hosts that fail (unreachable ones too) are listed and the run
ends "committed with failures" (exit 5).

When no way to fence works, the takeover asks at the terminal; with --yes it
refuses (exit 3, nothing changed) unless --unfenced is given or the
inventory's policy.allow_unfenced is true.

With roles.heads in the inventory the role moves from the active head (as
act_qmaster names it) to the other one, whichever that is; --to HOST names the
target (with roles.master/shadow too). How that was decided is journaled.`,
			confirm: "shadow",
			flags: []playbookFlag{{name: "unfenced", variable: "unfenced",
				usage: "go on when the old master cannot be fenced (you powered it off, or accept the risk); journaled"}},
			heads:    headsToward,
			retarget: true,
			force:    "proceed although the master looks alive or the anti-flap window is open (journaled); also takes over a stale lock",
			hooks:    true,
		}),
		a.playbookCmd(playbookSpec{
			name:  "takeback",
			use:   "takeback [--inventory FILE] [--restore-spool] [--dry-run] [--yes]",
			short: "Return the qmaster role to the original master (sgemaster -migrate semantics)",
			long: `Give the qmaster role back to the master role's host, as sgemaster -migrate
does: the host must be an admin host; qconf -km stops the current qmaster;
sgerun waits until qping fails and the spool's lock file appears, starts
qmaster on the master and verifies it. With --restore-spool the current spool
is first copied back next to the original location and bootstrap points there.
After a crash there is no lock file and takeback refuses: use a takeover in the
reverse direction (sgerun takeover --to the preferred head; with roles.heads a
plain takeover goes there).`,
			confirm: "master",
			flags:   []playbookFlag{{name: "restore-spool", variable: "restore_spool", usage: "copy the spool back to the original filesystem location"}},
		}),
		a.playbookCmd(playbookSpec{
			name:  "shadow-setup",
			use:   "shadow-setup [--inventory FILE] [--var check_interval=30] ...",
			short: "Configure and start SGE's own sge_shadowd on master and shadow",
			long: `Write shadow_masters and the sge_shadowd timing environment
(SGE_CHECK_INTERVAL, SGE_GET_ACTIVE_INTERVAL, SGE_DELAY_TIME; 30 s each by
default, as the seed tunes them), start sge_shadowd on both hosts and check it
runs. Prefer it when a dead or hung master host is the failure you expect:
sge_shadowd never acts while the heartbeat advances, so it does not help when
the scheduler network is cut while the spool filesystem stays up.`,
		}),
		a.playbookCmd(playbookSpec{
			name:  "fence",
			use:   "fence [--inventory FILE] [--confirm]",
			short: "Resolve a pending fence of the old master",
			long: `A takeover that could not stop the old master (no fence network, no
fence_command) records a pending fence; status and check report it until it is
resolved. fence retries: it stops the old qmaster over the fence address and
disables its autostart, or runs fence_command. With --confirm you state that
the old master is already off (for example powered off by hand).`,
			flags: []playbookFlag{{name: "confirm", variable: "confirm", usage: "the old master is off already; clear the pending fence"}},
			heads: headsFence,
		}),
		a.playbookCmd(playbookSpec{
			name:  "ack",
			use:   "ack [--inventory FILE]",
			short: "Acknowledge the last takeover (closes the anti-flap window)",
			long: `A second takeover within policy.antiflap of the last one is refused (exit 3),
as orchestrator and MHA do, until a person acknowledges the last one.`,
			heads:        headsToward,
			acknowledges: true,
		}),
	}
}

func (a *app) playbookShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbook",
		Short: "List or print the embedded playbooks",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the embedded playbooks",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			for _, n := range playbooks.Names() {
				rb, err := loadPlaybook(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%-14s %s\n", n, rb.Description)
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "show NAME",
		Short: "Print a playbook's YAML (copy it to adapt it, then use sgerun run)",
		Args:  exactArgs(1, "one playbook NAME"),
		RunE: func(_ *cobra.Command, args []string) error {
			_, data, err := playbooks.Source(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			_, err = a.out.Write(data)
			return err
		},
	})
	return cmd
}

// takeoverHooks maps the inventory's hooks onto a takeover run: the run's
// JSON report goes to post_takeover / post_failure on stdin.
func takeoverHooks(inv *inventory.Inventory) engine.RunHooks {
	env := []string{"SGERUN_INVENTORY=" + inv.File}
	if m := inv.Role(inventory.RoleMaster); len(m) == 1 {
		env = append(env, "SGERUN_MASTER="+m[0])
	}
	if sh := inv.Role(inventory.RoleShadow); len(sh) == 1 {
		env = append(env, "SGERUN_SHADOW="+sh[0])
	}
	return engine.RunHooks{
		Pre:      inv.Hooks.PreTakeover,
		PostOK:   inv.Hooks.PostTakeover,
		PostFail: inv.Hooks.PostFailure,
		Timeout:  inv.Hooks.Timeout,
		Environ:  env,
		Summary:  reportJSON,
	}
}

// reportJSON renders the JSON report of the run in dir.
func reportJSON(dir string) ([]byte, error) {
	meta, events, err := journal.Read(dir)
	if err != nil {
		return nil, err
	}
	r := ui.BuildReport(meta, events)
	r.Dir = dir
	return json.Marshal(r)
}
