package sshexec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
)

func TestSSHConfig(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1, Users: []string{"u"}})
	h := e.srv.Hosts()[0]
	if err := os.MkdirAll(filepath.Join(e.home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("Host alias\n  HostName 127.0.0.1\n  Port %d\n  User u\n  IdentityFile %s\n\nHost *\n  User nobody\n",
		h.Port, e.keyPath)
	if err := os.WriteFile(filepath.Join(e.home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.User = ""
	cfg.IdentityFiles = nil
	cfg.SSHConfigFile = filepath.Join(e.home, ".ssh", "config")
	p := newPool(t, cfg)
	c, err := p.Client(testCtx(t), Host{Name: "alias"})
	if err != nil {
		t.Fatalf("connect via ssh_config: %v", err)
	}
	want := Host{Name: "alias", Address: "127.0.0.1", Port: h.Port, User: "u"}
	if c.Host() != want {
		t.Errorf("Host() = %+v, want %+v", c.Host(), want)
	}
	if users := h.Users(); len(users) != 1 || users[0] != "u" {
		t.Errorf("server saw users %v, want [u]", users)
	}

	// Explicit Host fields win over ssh_config.
	_, err = newPool(t, cfg).Client(testCtx(t), Host{Name: "alias", User: "someone"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("explicit user: err = %v, want ErrAuth (server only accepts u)", err)
	}
	// So do Config fields that are set.
	cfg.User = "someone"
	_, err = newPool(t, cfg).Client(testCtx(t), Host{Name: "alias"})
	if !errors.Is(err, ErrAuth) {
		t.Errorf("Config.User: err = %v, want ErrAuth", err)
	}
}

func TestParseJump(t *testing.T) {
	tests := []struct {
		in   string
		want Host
		bad  bool
	}{
		{in: "bastion", want: Host{Name: "bastion"}},
		{in: "admin@bastion", want: Host{Name: "bastion", User: "admin"}},
		{in: "admin@bastion:2222", want: Host{Name: "bastion", User: "admin", Port: 2222}},
		{in: "[::1]:2222", want: Host{Name: "::1", Port: 2222}},
		{in: "bastion:0", bad: true},
		{in: "admin@", bad: true},
	}
	for _, tt := range tests {
		got, err := parseJump(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("parseJump(%q) = %+v, %v; want %+v, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestNewPoolErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, cfg := range []Config{
		{Port: -1},
		{MaxHandshakes: -1},
		{SSHConfigFile: filepath.Join(t.TempDir(), "missing")},
	} {
		if _, err := NewPool(cfg); err == nil {
			t.Errorf("NewPool(%+v) succeeded", cfg)
		}
	}
}
