package main

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/runbook"
)

// Exit codes, documented in README.md and `sgerun help exit-codes`.
const (
	exitOK         = 0
	exitFailed     = 1 // a step failed and rollback completed
	exitInput      = 2 // usage, inventory or runbook error; nothing executed
	exitRefused    = 3 // refused by a safety gate (assert, lock held)
	exitIncomplete = 4 // rollback did not complete, or the run was interrupted
	exitCommitted  = 5 // past the commit point, some step failed; nothing rolled back
)

// errUsage marks command-line mistakes (exit 2).
var errUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// exitCode maps a run's error to the documented exit code.
func exitCode(err error) int {
	var ne nagiosExit
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ne):
		return ne.state
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		// lab exec / lab ctl: the command's own exit status
		return ee.ExitCode()
	case errors.Is(err, runbook.ErrRollbackIncomplete), errors.Is(err, runbook.ErrInterrupted):
		return exitIncomplete
	case errors.Is(err, runbook.ErrCommittedWithFailures):
		return exitCommitted
	case errors.Is(err, diag.ErrInvalid), errors.Is(err, errUsage):
		return exitInput
	case errors.Is(err, runbook.ErrRefused):
		return exitRefused
	}
	return exitFailed
}

const exitCodesHelp = `Exit codes:
  0  success
  1  a step failed and rollback completed
  2  usage, inventory or runbook error; nothing executed
  3  refused by a safety gate (assert, lock held)
  4  a step failed and rollback did not complete, or the run was
     interrupted; operator action needed (see sgerun show / rollback / resume)
  5  committed with failures: the run passed its commit point (for a
     takeover: the new qmaster answers), then some step failed on some
     hosts; nothing was rolled back. The failed hosts are listed; repair
     them (sgerun resume RUN_ID retries the failed steps)`
