package runbook

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"golang.org/x/crypto/ssh"
)

// newRulesCluster is newCluster with hosts that answer by sshtest.Rules
// (no process per command), so that a thousand hosts fit in a test.
func newRulesCluster(t *testing.T, n int, rules sshtest.Rules) *cluster {
	t.Helper()
	hermetic(t)
	signer, keyPath := sshtest.NewUserKey(t)
	srv := sshtest.New(t, sshtest.Options{Hosts: n, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		Handler: rules.Handler()})
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := srv.WriteKnownHosts(kh); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: {sge_root: /opt/sge}\n")
	fmt.Fprintf(&b, "ssh: {user: %s, identity_file: %s, known_hosts: %s, ssh_config: none, connect_timeout: 60s}\n",
		u.Username, keyPath, kh)
	b.WriteString("hosts:\n")
	for _, h := range srv.Hosts() {
		fmt.Fprintf(&b, "  %s: {address: 127.0.0.1, port: %d}\n", h.Name, h.Port)
	}
	fmt.Fprintf(&b, "roles: {master: host0, shadow: host1, execd: [\"host[0-%d]\"]}\n", n-1)
	b.WriteString("policy: {fanout: 64}\n")
	invPath := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(invPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Load(invPath)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{srv: srv, inv: inv, invPath: invPath, state: filepath.Join(dir, "state")}
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
