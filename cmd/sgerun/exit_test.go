package main

import (
	"fmt"
	"testing"

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
		{wrap(fmt.Errorf("%w: dial: refused", sshexec.ErrUnreachable)), exitUnreachable},
		{wrap(fmt.Errorf("%w: %w: changed", sshexec.ErrHostKey, sshexec.ErrHostKeyMismatch)), exitHostKey},
		{wrap(fmt.Errorf("%w: %w: new", sshexec.ErrHostKey, sshexec.ErrUnknownHost)), exitHostKey},
		{wrap(fmt.Errorf("%w: user root", sshexec.ErrAuth)), exitAuth},
		{fmt.Errorf("3 of 9 host(s) failed: %w", wrap(sshexec.ErrAuth)), exitAuth},
	} {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	for _, c := range []int{exitUnreachable, exitHostKey, exitAuth} {
		if c == 5 {
			t.Errorf("exit code 5 is reserved")
		}
	}
}
