package main

import (
	"fmt"
	"strings"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
	"github.com/spf13/cobra"
)

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s", what)
		}
		return nil
	}
}

func parseVars(kv []string) (map[string]string, error) {
	vars := map[string]string{}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usagef("--var %q: want name=value", s)
		}
		vars[k] = v
	}
	return vars, nil
}

// loadRun reads what run and validate need: the inventory, the runbook and
// the --var overrides.
func loadRun(invPath, file string, vars []string) (*inventory.Inventory, *runbook.Runbook, map[string]string, error) {
	overrides, err := parseVars(vars)
	if err != nil {
		return nil, nil, nil, err
	}
	inv, err := loadInventory(invPath)
	if err != nil {
		return nil, nil, nil, err
	}
	rb, err := runbook.Load(file)
	if err != nil {
		return nil, nil, nil, err
	}
	return inv, rb, overrides, nil
}

func (a *app) runCmd() *cobra.Command {
	var invPath string
	var vars []string
	var dry, force bool
	cmd := &cobra.Command{
		Use:   "run RUNBOOK [--inventory FILE] [--dry-run] [--var k=v]...",
		Short: "Run a runbook",
		Long: `Run a runbook against an inventory. With --dry-run, read-only steps run for
real and every mutating step is printed per host with the exact command or
file diff it would send; nothing changes on any host.

` + exitCodesHelp,
		Args: exactArgs(1, "one RUNBOOK file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			inv, rb, overrides, err := loadRun(invPath, args[0], vars)
			if err != nil {
				return err
			}
			inv, notes, err := a.runView(cmd.Context(), inv, headsIgnored, "") // exec hosts from SGE
			if err != nil {
				return err
			}
			p, err := plan.Compile(rb, inv, overrides)
			if err != nil {
				return err
			}
			s, _ := a.session(inv, p, asJSON)
			s.DryRun, s.Force, s.Notes = dry, force, notes
			out, err := s.Start(cmd.Context())
			return a.finish(out, asJSON, err)
		},
	}
	f := cmd.Flags()
	inventoryFlag(f, &invPath)
	f.StringArrayVar(&vars, "var", nil, "set a declared runbook variable, name=value (repeatable)")
	f.BoolVarP(&dry, "dry-run", "n", false, "run read-only steps, print every change, change nothing")
	f.BoolVar(&force, "force", false, "take over a stale lock")
	return cmd
}

func (a *app) validateCmd() *cobra.Command {
	var invPath string
	var vars []string
	cmd := &cobra.Command{
		Use:   "validate RUNBOOK [--inventory FILE]",
		Short: "Check a runbook and an inventory without connecting anywhere",
		Args:  exactArgs(1, "one RUNBOOK file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, rb, overrides, err := loadRun(invPath, args[0], vars)
			if err != nil {
				return err
			}
			p, err := plan.Compile(rb, inv, overrides)
			if err != nil {
				return err
			}
			mut := 0
			for _, st := range p.Steps() {
				if !st.ReadOnly {
					mut++
				}
			}
			fmt.Fprintf(a.out, "%s: %d steps (%d mutating), inventory %s: %d hosts; ok\n",
				rb.File, len(rb.Steps), mut, inv.File, len(inv.Hosts))
			return nil
		},
	}
	inventoryFlag(cmd.Flags(), &invPath)
	cmd.Flags().StringArrayVar(&vars, "var", nil, "set a declared runbook variable, name=value")
	return cmd
}
