package sshexec

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// testEnv is a hermetic setup: a temp HOME, no agent, a user key and an
// sshtest.Server whose host keys are in a temp known_hosts file.
type testEnv struct {
	t          *testing.T
	srv        *sshtest.Server
	signer     ssh.Signer
	keyPath    string
	home       string
	knownHosts string
}

func newEnv(t *testing.T, opts sshtest.Options) *testEnv {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	home := t.TempDir()
	t.Setenv("HOME", home)
	signer, keyPath := sshtest.NewUserKey(t)
	opts.AuthorizedKeys = append(opts.AuthorizedKeys, signer.PublicKey())
	srv := sshtest.New(t, opts)
	kh := filepath.Join(home, "known_hosts")
	if err := srv.WriteKnownHosts(kh); err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, srv: srv, signer: signer, keyPath: keyPath, home: home, knownHosts: kh}
}

// config returns a Config using the env's key and known_hosts, no agent
// and no ssh_config.
func (e *testEnv) config() Config {
	return Config{
		User:            "tester",
		IdentityFiles:   []string{e.keyPath},
		KnownHostsFiles: []string{e.knownHosts},
		SSHConfigFile:   "none",
		AgentSocket:     "none",
		ConnectTimeout:  5 * time.Second,
		Home:            e.home,
	}
}

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func hostFor(h *sshtest.Host) Host {
	return Host{Name: h.Name, Address: "127.0.0.1", Port: h.Port}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
