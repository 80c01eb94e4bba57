// Package testenv builds the test environments that the tests of several
// packages share: a cluster of sshtest hosts and the sgerun inventory that
// points at them.
package testenv

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/sgerun/sgerun/internal/sshtest"
	"github.com/sgerun/sgerun/inventory"
)

// Hermetic isolates a test from the developer's SSH setup: no agent and a
// HOME of its own, which it returns.
func Hermetic(t testing.TB) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", home)
	return home
}

// Options configure NewCluster.
type Options struct {
	// SSH configures the sshtest server; NewCluster sets its
	// AuthorizedKeys to the test user's key.
	SSH sshtest.Options
	// ConnectTimeout is the inventory's ssh.connect_timeout; 30s when zero.
	ConnectTimeout time.Duration
}

// Cluster is an sshtest server with its hosts (host0..hostN-1) and an
// inventory for them: login as the current user with a key of
// its own, the server's known_hosts, no ssh_config, master host0, shadow
// host1 and every host an execd.
type Cluster struct {
	// Server is the running sshtest server.
	Server *sshtest.Server
	// InventoryPath is the inventory file; InventoryText its content.
	InventoryPath, InventoryText string
	// KeyPath is the user's private key, KnownHosts the known_hosts file.
	KeyPath, KnownHosts string
}

// NewCluster starts the server and writes its inventory into a fresh
// temporary directory. It does not change the environment (see Hermetic).
func NewCluster(t testing.TB, o Options) *Cluster {
	t.Helper()
	signer, keyPath := sshtest.NewUserKey(t)
	o.SSH.AuthorizedKeys = []ssh.PublicKey{signer.PublicKey()}
	srv := sshtest.New(t, o.SSH)
	dir := t.TempDir()
	c := &Cluster{Server: srv, KeyPath: keyPath, KnownHosts: filepath.Join(dir, "known_hosts"),
		InventoryPath: filepath.Join(dir, "inventory.yaml")}
	if err := srv.WriteKnownHosts(c.KnownHosts); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	timeout := o.ConnectTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var b strings.Builder
	b.WriteString("cluster: {sge_root: /opt/sge}\n")
	fmt.Fprintf(&b, "ssh: {user: %s, identity_file: %s, known_hosts: %s, ssh_config: none, connect_timeout: %s}\n",
		u.Username, keyPath, c.KnownHosts, timeout)
	b.WriteString("hosts:\n")
	var names []string
	for _, h := range srv.Hosts() {
		fmt.Fprintf(&b, "  %s: {address: 127.0.0.1, port: %d}\n", h.Name, h.Port)
		names = append(names, h.Name)
	}
	fmt.Fprintf(&b, "roles: {master: host0, shadow: host1, execd: [%s]}\n", strings.Join(names, ", "))
	c.InventoryText = b.String()
	if err := os.WriteFile(c.InventoryPath, []byte(c.InventoryText), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// Inventory parses the cluster's inventory.
func (c *Cluster) Inventory(t testing.TB) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Load(c.InventoryPath)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}
