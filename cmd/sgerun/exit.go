package main

import (
	"errors"
	"fmt"
	"os/exec"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/exitcode"
	"github.com/sgerun/sgerun/sshexec"
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
		return exitcode.OK
	case errors.As(err, &ne):
		return ne.state
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		// lab exec / lab ctl: the command's own exit status
		return ee.ExitCode()
	case errors.Is(err, engine.ErrRollbackIncomplete), errors.Is(err, engine.ErrInterrupted):
		return exitcode.Incomplete
	case errors.Is(err, engine.ErrCommittedWithFailures):
		return exitcode.Committed
	case errors.Is(err, diag.ErrInvalid), errors.Is(err, errUsage):
		return exitcode.Input
	case errors.Is(err, engine.ErrRefused):
		return exitcode.Refused
	case errors.Is(err, sshexec.ErrHostKey):
		return exitcode.HostKey
	case errors.Is(err, sshexec.ErrAuth):
		return exitcode.Auth
	case errors.Is(err, sshexec.ErrUnreachable):
		return exitcode.Unreachable
	}
	return exitcode.Failed
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
