package engine

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"golang.org/x/crypto/ssh"
)

// hermetic isolates a test from the developer's SSH setup.
func hermetic(t *testing.T) {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", t.TempDir())
}

// cluster is an sshtest server with n virtual hosts (host0..hostN-1) and an
// inventory that points at them: master host0, shadow host1, every host an
// execd.
type cluster struct {
	srv     *sshtest.Server
	inv     *inventory.Inventory
	invPath string
	state   string // the state dir (locks, runs)
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterWith(t, n, sshtest.Options{SFTP: true}, 30*time.Second)
}

// newClusterWith starts n hosts with opts (the user key is added) and
// writes the inventory, with every host an execd.
func newClusterWith(t *testing.T, n int, opts sshtest.Options, connectTimeout time.Duration) *cluster {
	t.Helper()
	hermetic(t)
	signer, keyPath := sshtest.NewUserKey(t)
	opts.Hosts = n
	opts.AuthorizedKeys = []ssh.PublicKey{signer.PublicKey()}
	srv := sshtest.New(t, opts)
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
	fmt.Fprintf(&b, "ssh: {user: %s, identity_file: %s, known_hosts: %s, ssh_config: none, connect_timeout: %s}\n",
		u.Username, keyPath, kh, connectTimeout)
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

// runResult is what one session run produced.
type runResult struct {
	out    Outcome
	err    error
	events []journal.Event
}

// of returns the events of one type.
func (r runResult) of(typ string) []journal.Event {
	var out []journal.Event
	for _, ev := range r.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// step returns the step_end (or step_skip) event of step i.
func (r runResult) step(t *testing.T, i int) journal.Event {
	t.Helper()
	for _, ev := range r.events {
		if (ev.Type == journal.StepEnd || ev.Type == journal.StepSkip) && ev.Step == i {
			return ev
		}
	}
	t.Fatalf("no end of step %d in the journal", i)
	return journal.Event{}
}

// run starts a session and reads back its journal.
func (c *cluster) run(t *testing.T, s *Session) runResult {
	t.Helper()
	out, err := s.Start(context.Background())
	r := runResult{out: out, err: err}
	if out.Dir == "" {
		t.Fatalf("run made no journal: %v", err)
	}
	_, r.events, _ = journal.Read(out.Dir)
	return r
}

// eventLog collects observed events, safe for concurrent use.
type eventLog struct {
	mu     sync.Mutex
	events []journal.Event
}

func (l *eventLog) add(ev journal.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}
