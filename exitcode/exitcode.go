// Package exitcode names sgerun's process exit codes, documented in
// README.md and `sgerun help exit-codes`. The CLI maps errors onto them;
// watch reads a takeover's code back. (`sgerun check` exits with Nagios
// states instead; see package status.)
package exitcode

const (
	// OK: success (a dry run that planned everything included).
	OK = 0
	// Failed: a step failed before the commit point and rollback
	// completed.
	Failed = 1
	// Input: usage, inventory or runbook error; nothing executed.
	Input = 2
	// Refused: refused by a safety gate (assert, lock held, pre hook).
	// Nothing changed.
	Refused = 3
	// Incomplete: rollback did not complete, or the run was interrupted;
	// an operator must look.
	Incomplete = 4
	// Committed: past the commit point some step failed; nothing was
	// rolled back.
	Committed = 5
	// Unreachable: a host could not be reached over SSH.
	Unreachable = 6
	// HostKey: a host's key could not be verified.
	HostKey = 7
	// Auth: SSH authentication was refused.
	Auth = 8
	// Interrupted: a second Ctrl-C ended the process at once (128+SIGINT).
	Interrupted = 130
)
