package main

import (
	sgerun "github.com/sgerun/sgerun"
	"github.com/spf13/cobra"
)

// helpTopics are `sgerun help TOPIC` pages without a command.
func helpTopics() []*cobra.Command {
	return []*cobra.Command{
		{
			Use:   "exit-codes",
			Short: "What sgerun's exit codes mean and what each asks of you",
			Long: exitCodesHelp + `

What to do:
  0  look at sgerun status; acknowledge a takeover with sgerun ack
  1  the cluster is as before the run; read the failed step (sgerun show RUN_ID)
  2  fix the file:line:col printed; nothing ran
  3  read the reason: the master is not confirmed down, the shadow is cut off,
     the anti-flap window is open, a hook vetoed, or a lock is held.
     --force overrides a gate (journaled); a stale lock names the run to
     roll back or resume
  4  sgerun show RUN_ID lists what was done and undone; sgerun rollback RUN_ID
     retries the undo, sgerun resume RUN_ID finishes the run

sgerun check uses Nagios states instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.`,
		},
		{
			Use:   "inventory",
			Short: "The inventory file: every key with its type, default and meaning",
			Long: "Commands read --inventory FILE, else $SGERUN_INVENTORY, else " + systemInventory +
				"\n(the deb and rpm install this example there, mode 0600; man 5 sgerun-inventory).\n\n" +
				"The inventory, documented key by key (inventory.example.yaml):\n\n" + sgerun.InventoryExample,
		},
		{
			Use:   "runbooks",
			Short: "The runbook language: step keys, kinds, templates, dry-run, rollback, journal",
			Long:  sgerun.RunbookReference,
		},
	}
}
