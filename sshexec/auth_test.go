package sshexec

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// startAgent serves keyring on a unix socket in a temp dir.
func startAgent(t *testing.T, keyring agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen agent: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(keyring, c)
			}()
		}
	}()
	return sock
}

func TestAgentAuth(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	agentKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, sshtest.Options{Hosts: 1, AuthorizedKeys: []ssh.PublicKey{agentKey.PublicKey()}})
	h := e.srv.Hosts()[0]
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := startAgent(t, keyring)

	cfg := e.config()
	cfg.IdentityFiles = nil // and HOME has no ~/.ssh: only the agent can help
	cfg.AgentSocket = sock
	c, err := newPool(t, cfg).Client(testCtx(t), hostFor(h))
	if err != nil {
		t.Fatalf("connect with agent: %v", err)
	}
	if err := c.Run(testCtx(t), "true", nil, nil, nil); err != nil {
		t.Fatalf("run: %v", err)
	}

	// Without the agent there is nothing to offer.
	cfg.AgentSocket = "none"
	_, err = newPool(t, cfg).Client(testCtx(t), hostFor(h))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("without agent: err = %v, want ErrAuth", err)
	}
}

func TestEncryptedKey(t *testing.T) {
	signer, encPath := sshtest.NewEncryptedUserKey(t, "secret")
	e := newEnv(t, sshtest.Options{Hosts: 1, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	h := e.srv.Hosts()[0]
	cfg := e.config()
	cfg.IdentityFiles = []string{encPath}

	_, err := newPool(t, cfg).Client(testCtx(t), hostFor(h))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	for _, want := range []string{encPath, "passphrase-protected", "ssh-add"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// As ssh, the host is dialled before the credentials are gathered (an
	// unreachable host is reported as unreachable), but the connection is
	// closed before any SSH handshake.
	if h.Handshakes() > 1 {
		t.Errorf("%d handshakes although no credential was usable", h.Handshakes())
	}

	// Once the key is in the agent, the same configuration works.
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: decrypt(t, encPath, "secret")}); err != nil {
		t.Fatal(err)
	}
	cfg.AgentSocket = startAgent(t, keyring)
	if _, err := newPool(t, cfg).Client(testCtx(t), hostFor(h)); err != nil {
		t.Fatalf("with the key in the agent: %v", err)
	}
}

func TestMissingExplicitIdentityAndRetry(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	p := newPool(t, e.config())
	bad := hostFor(h)
	bad.IdentityFile = filepath.Join(e.home, "nope")
	_, err := p.Client(testCtx(t), bad)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want ErrAuth naming the missing file", err)
	}
	// The failure is not cached: the next call for the same name dials.
	if _, err := p.Client(testCtx(t), hostFor(h)); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestWrongKeyIsAuthError(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	_, otherPath := sshtest.NewUserKey(t)
	cfg := e.config()
	cfg.IdentityFiles = []string{otherPath}
	_, err := newPool(t, cfg).Client(testCtx(t), hostFor(h))
	if !errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrAuth only", err)
	}
}

func decrypt(t *testing.T, path, passphrase string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKeyWithPassphrase(data, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return key
}
