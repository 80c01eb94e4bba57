package engine

import (
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"github.com/sgerun/sgerun/journal"
)

// newRulesCluster is newCluster with hosts that answer by sshtest.Rules
// (no process per command), so that a thousand hosts fit in a test.
func newRulesCluster(t *testing.T, n int, rules sshtest.Rules) *cluster {
	t.Helper()
	return newClusterWith(t, n, sshtest.Options{Handler: rules.Handler()}, 60*time.Second)
}

// TestThousandHostsOneConnectionEach runs the execd step's shape, a
// softstop step then a start step, on 1,000 simulated hosts: every host is
// dialled once and serves both steps over that connection, with at most
// ssh.max_handshakes handshakes at once.
func TestThousandHostsOneConnectionEach(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 hosts")
	}
	const n = 1000
	c := newRulesCluster(t, n, sshtest.Rules{})
	r := c.run(t, c.session(t, `
name: execd
description: softstop then start on every execd host
steps:
  - name: softstop
    on: execd
    run: "echo stop; hostname"
  - name: start
    on: execd
    run: "echo start; hostname"
`, nil))
	if r.err != nil {
		t.Fatalf("run: %v", r.err)
	}
	for _, h := range c.srv.Hosts() {
		if h.Handshakes() != 1 || h.Sessions() != 2 {
			t.Fatalf("%s: %d handshakes and %d sessions, want 1 and 2", h.Name, h.Handshakes(), h.Sessions())
		}
	}
	if peak := c.srv.PeakHandshakes(); peak > 32 {
		t.Errorf("%d handshakes at once, want at most ssh.max_handshakes (32)", peak)
	}
	ends := r.of(journal.HostEnd)
	if len(ends) != 2*n {
		t.Fatalf("%d host_end events, want %d", len(ends), 2*n)
	}
	for _, ev := range ends {
		word := []string{"stop", "start"}[ev.Step]
		if ev.Status != journal.StatusOK || ev.Output == nil || ev.Output.Stdout != word+"\n"+ev.Host+"\n" {
			t.Fatalf("step %d on %s: %+v", ev.Step, ev.Host, ev)
		}
	}
}
