package main

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/sshexec"
)

// Exit codes, documented in README.md and `sgerun help exit-codes`.
const (
	exitOK         = 0
	exitFailed     = 1 // a step failed and rollback completed
	exitInput      = 2 // usage, inventory or runbook error; nothing executed
	exitRefused    = 3 // refused by a safety gate (assert, lock held)
	exitIncomplete = 4 // rollback did not complete, or the run was interrupted
	exitCommitted  = 5 // past the commit point, some step failed; nothing rolled back
	// SSH failure classes, by errors.Is on sshexec's sentinels.
	exitUnreachable = 6 // a host could not be reached over SSH
	exitHostKey     = 7 // a host's key could not be verified
	exitAuth        = 8 // SSH authentication was refused
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
	case errors.Is(err, engine.ErrRollbackIncomplete), errors.Is(err, engine.ErrInterrupted):
		return exitIncomplete
	case errors.Is(err, engine.ErrCommittedWithFailures):
		return exitCommitted
	case errors.Is(err, diag.ErrInvalid), errors.Is(err, errUsage):
		return exitInput
	case errors.Is(err, engine.ErrRefused):
		return exitRefused
	case errors.Is(err, sshexec.ErrHostKey):
		return exitHostKey
	case errors.Is(err, sshexec.ErrAuth):
		return exitAuth
	case errors.Is(err, sshexec.ErrUnreachable):
		return exitUnreachable
	}
	return exitFailed
}

const exitCodesHelp = `Exit codes:
  0  success
  1  a step failed before the commit point and rollback completed
  2  usage, inventory or runbook error; nothing executed
  3  refused by a safety gate (assert, lock held)
  4  a step failed and rollback did not complete, or the run was
     interrupted; operator action needed (see sgerun show / rollback / resume)
  5  committed with failures: the run passed its commit point (for a
     takeover: the new qmaster answers), then some step failed on some
     hosts; nothing was rolled back. The failed hosts are listed; repair
     them (sgerun resume RUN_ID retries the failed steps)
  6  SSH: a host is unreachable (refused, timed out, proxy failed)
  7  SSH: a host key could not be verified (unknown, changed, revoked,
     or a certificate the known CA does not vouch for)
  8  SSH: authentication was refused (user, keys, certificates)`
