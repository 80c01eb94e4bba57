package sshexec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestHostKeyMismatchRefused(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	other, _ := sshtest.NewUserKey(t)
	line := knownhosts.Line([]string{h.Addr}, other.PublicKey()) + "\n"
	if err := os.WriteFile(e.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tofu := range []bool{false, true} {
		cfg := e.config()
		cfg.TOFU = tofu
		p := newPool(t, cfg)
		_, err := p.Client(testCtx(t), hostFor(h))
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Fatalf("tofu=%v: err = %v, want ErrHostKeyMismatch", tofu, err)
		}
		var ce *ConnectError
		if !errors.As(err, &ce) || ce.Host != h.Name {
			t.Errorf("tofu=%v: err %v is not a *ConnectError for %s", tofu, err, h.Name)
		}
		if !strings.Contains(err.Error(), "host key mismatch") {
			t.Errorf("error %q does not say host key mismatch", err)
		}
	}
	if n := h.Sessions(); n != 0 {
		t.Errorf("server opened %d sessions after a mismatch, want 0", n)
	}
	got, _ := os.ReadFile(e.knownHosts)
	if string(got) != line {
		t.Errorf("known_hosts changed after a mismatch:\n%s", got)
	}
}

func TestUnknownHostAndTOFU(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	kh := filepath.Join(e.home, "sub", "known_hosts") // does not exist yet

	cfg := e.config()
	cfg.KnownHostsFiles = []string{kh}
	p := newPool(t, cfg)
	_, err := p.Client(testCtx(t), hostFor(h))
	if !errors.Is(err, ErrUnknownHost) {
		t.Fatalf("without TOFU: err = %v, want ErrUnknownHost", err)
	}
	for _, want := range []string{h.Addr[len("127.0.0.1:"):], kh, "ssh-keyscan", "TOFU"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if h.Sessions() != 0 {
		t.Errorf("sessions ran on an unknown host")
	}

	cfg.TOFU = true
	p = newPool(t, cfg)
	c, err := p.Client(testCtx(t), hostFor(h))
	if err != nil {
		t.Fatalf("with TOFU: %v", err)
	}
	if err := c.Run(testCtx(t), "true", nil, nil, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	data, err := os.ReadFile(kh)
	if err != nil {
		t.Fatalf("known_hosts not written: %v", err)
	}
	want := knownhosts.Line([]string{h.Addr}, h.HostKey) + "\n"
	if string(data) != want {
		t.Errorf("known_hosts = %q, want %q", data, want)
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode = %v, want 0600", st.Mode().Perm())
	}

	// A fresh pool without TOFU now verifies against the appended line.
	cfg.TOFU = false
	p = newPool(t, cfg)
	if _, err := p.Client(testCtx(t), hostFor(h)); err != nil {
		t.Fatalf("after TOFU, strict connect: %v", err)
	}
}

func TestHashedKnownHosts(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	line := knownhosts.HashHostname(knownhosts.Normalize(h.Addr)) + " " + string(ssh.MarshalAuthorizedKey(h.HostKey))
	if err := os.WriteFile(e.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPool(t, e.config())
	c, err := p.Client(testCtx(t), hostFor(h))
	if err != nil {
		t.Fatalf("connect with hashed entry: %v", err)
	}
	if err := c.Run(testCtx(t), "true", nil, nil, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
}
