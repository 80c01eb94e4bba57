package status

import (
	"fmt"
	"testing"
)

type classErr string

func (e classErr) Error() string { return "ssh connect: " + string(e) }
func (e classErr) Class() string { return string(e) }

func TestSSHClass(t *testing.T) {
	if got := sshClass(fmt.Errorf("m1: %w", classErr("host_key"))); got != "host_key" {
		t.Errorf("sshClass = %q, want host_key", got)
	}
	if got := sshClass(fmt.Errorf("plain")); got != "" {
		t.Errorf("sshClass(plain) = %q", got)
	}
}
