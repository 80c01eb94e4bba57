package main

import (
	"fmt"
	"testing"

	"github.com/sgerun/sgerun/exitcode"
	"github.com/sgerun/sgerun/sshexec"
)

func TestExitCodeSSHClasses(t *testing.T) {
	wrap := func(err error) error {
		return fmt.Errorf("step \"probe\": m1: %w", &sshexec.ConnectError{Host: "m1", Err: err})
	}
	for _, tt := range []struct {
		err  error
		want int
	}{
		{wrap(fmt.Errorf("%w: dial: refused", sshexec.ErrUnreachable)), exitcode.Unreachable},
		{wrap(fmt.Errorf("%w: %w: changed", sshexec.ErrHostKey, sshexec.ErrHostKeyMismatch)), exitcode.HostKey},
		{wrap(fmt.Errorf("%w: %w: new", sshexec.ErrHostKey, sshexec.ErrUnknownHost)), exitcode.HostKey},
		{wrap(fmt.Errorf("%w: user root", sshexec.ErrAuth)), exitcode.Auth},
		{fmt.Errorf("3 of 9 host(s) failed: %w", wrap(sshexec.ErrAuth)), exitcode.Auth},
	} {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	for _, c := range []int{exitcode.Unreachable, exitcode.HostKey, exitcode.Auth} {
		if c == 5 {
			t.Errorf("exit code 5 is reserved")
		}
	}
}
