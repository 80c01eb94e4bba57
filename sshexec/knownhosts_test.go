package sshexec

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestWildMatch(t *testing.T) {
	for _, tt := range []struct {
		p, s string
		want bool
	}{
		{"*", "[h]:2222", true}, {"h", "h", true}, {"h", "[h]:2222", false}, {"127.0.0.?", "127.0.0.1", true},
		{"*.lab", "gc01.lab", true}, {"*.lab", "gc01.lab.x", false}, {"[h]:*", "[h]:22", true}, {"a*b*c", "aXbYc", true},
		{"", "", true}, {"?", "", false},
	} {
		if got := wildMatch(tt.p, tt.s); got != tt.want {
			t.Errorf("wildMatch(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func newKey(t *testing.T) (ssh.PublicKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey(), s
}

func authLine(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

// TestHostCheck checks known_hosts lookups as OpenSSH does them, without a
// server: the fidelity suite proves the same against real ssh.
func TestHostCheck(t *testing.T) {
	hostKey, _ := newKey(t)
	other, _ := newKey(t)
	caPub, caSigner := newKey(t)
	cert := &ssh.Certificate{Key: hostKey, CertType: ssh.HostCert, ValidPrincipals: []string{"qm.lab"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, caSigner); err != nil {
		t.Fatal(err)
	}
	hashed := knownhosts.HashHostname("[qm.lab]:2222")
	for _, tt := range []struct {
		name, known, alias string
		port               int
		key                ssh.PublicKey
		want               error // nil: accepted
	}{
		{name: "plain", known: "[qm.lab]:2222 " + authLine(hostKey), port: 2222, key: hostKey},
		{name: "port 22 bare", known: "qm.lab " + authLine(hostKey), port: 22, key: hostKey},
		{name: "port-less at 2222", known: "qm.lab " + authLine(hostKey), port: 2222, key: hostKey},
		{name: "port-less other key at 2222 is unknown", known: "qm.lab " + authLine(other), port: 2222, key: hostKey, want: ErrUnknownHost},
		{name: "changed", known: "[qm.lab]:2222 " + authLine(other), port: 2222, key: hostKey, want: ErrHostKeyMismatch},
		{name: "wildcard", known: "* " + authLine(hostKey), port: 2222, key: hostKey},
		{name: "negated", known: "!qm.lab,*.lab " + authLine(hostKey), port: 22, key: hostKey, want: ErrUnknownHost},
		{name: "hashed", known: hashed + " " + authLine(hostKey), port: 2222, key: hostKey},
		{name: "case-insensitive", known: "QM.LAB " + authLine(hostKey), port: 22, key: hostKey},
		{name: "alias", known: "qm-alias " + authLine(hostKey), alias: "qm-alias", port: 2222, key: hostKey},
		{name: "alias ignores address", known: "[qm.lab]:2222 " + authLine(hostKey), alias: "qm-alias", port: 2222, key: hostKey, want: ErrUnknownHost},
		{name: "revoked", known: "* " + authLine(hostKey) + "\n@revoked * " + authLine(hostKey), port: 22, key: hostKey, want: ErrHostKeyMismatch},
		{name: "cert-authority", known: "@cert-authority *.lab " + authLine(caPub), port: 2222, key: cert},
		{name: "cert-authority and plain key", known: "@cert-authority *.lab " + authLine(other) + "\nqm.lab " + authLine(hostKey), port: 22, key: cert},
		{name: "untrusted CA", known: "@cert-authority *.lab " + authLine(other), port: 22, key: cert, want: ErrUnknownHost},
		{name: "wrong principal", known: "@cert-authority * " + authLine(caPub), alias: "db.lab", port: 22, key: cert, want: ErrHostKeyMismatch},
		{name: "revoked CA", known: "@cert-authority * " + authLine(caPub) + "\n@revoked * " + authLine(caPub), port: 22, key: cert, want: ErrHostKeyMismatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if err := os.WriteFile(kh, []byte(tt.known+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			o := options{hostname: "qm.lab", port: tt.port, hostKeyAlias: tt.alias, userKnownHosts: []string{kh}}
			c := newHostCheck(&hostKeys{}, o, false)
			err := c.check("", nil, tt.key)
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != nil && (!errors.Is(err, tt.want) || !errors.Is(err, ErrHostKey)):
				t.Errorf("err = %v, want %v and ErrHostKey", err, tt.want)
			}
			if err != nil && strings.Contains(tt.known, "@cert-authority") && strings.Contains(err.Error(), "ssh-keygen -R") {
				t.Errorf("hint would delete a CA line: %v", err)
			}
		})
	}
}

func TestTOFUHashed(t *testing.T) {
	hostKey, _ := newKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	o := options{hostname: "qm.lab", port: 2222, userKnownHosts: []string{kh}, hashKnownHosts: true, strictHostKeys: "ask"}
	k := &hostKeys{}
	if err := newHostCheck(k, o, true).check("", nil, hostKey); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(kh)
	if err != nil || !strings.HasPrefix(string(data), "|1|") {
		t.Fatalf("known_hosts = %q, %v; want a hashed entry", data, err)
	}
	if err := newHostCheck(k, o, false).check("", nil, hostKey); err != nil {
		t.Errorf("the recorded key is not found: %v", err)
	}
	// StrictHostKeyChecking yes in ssh_config turns TOFU off.
	o.strictHostKeys = "yes"
	o.userKnownHosts = []string{filepath.Join(t.TempDir(), "kh")}
	if err := newHostCheck(k, o, true).check("", nil, hostKey); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("StrictHostKeyChecking yes with TOFU: err = %v, want ErrUnknownHost", err)
	}
}

func TestExpandTokens(t *testing.T) {
	s := &settings{home: "/home/u", defaultUser: "u", uid: "1000", localHost: "ctl.example"}
	o := options{host: "qm", hostname: "10.0.0.1", port: 2222, user: "sge", hostKeyAlias: "qm-key"}
	for in, want := range map[string]string{
		"~/.ssh/id_%h":        "/home/u/.ssh/id_10.0.0.1",
		"%d/%u/%r@%n:%p":      "/home/u/u/sge@qm:2222",
		"%k-%L-%l-%i-%%":      "qm-key-ctl-ctl.example-1000-%",
		"/keys/${SGERUN_KEY}": "/keys/k",
	} {
		t.Setenv("SGERUN_KEY", "k")
		got, err := s.expandTokens(in, o)
		if err != nil || got != want {
			t.Errorf("expandTokens(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := s.expandTokens("%z", o); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown token: err = %v, want ErrConfig", err)
	}
	pc, err := expandProxyCommand("ssh -W %h:%p -l %r %n %%", o)
	if err != nil || pc != "ssh -W 10.0.0.1:2222 -l sge qm %" {
		t.Errorf("expandProxyCommand = %q, %v", pc, err)
	}
}

func TestFallbackParserRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"match":   "Match host x\n  Port 1\n",
		"include": "Include other\n",
		"typo":    "Host x\n  Prot 22\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		fp, err := newFallbackParser(p, true, dir, "u")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fp.resolve(query{dest: "x"}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
}

func TestConnectErrorClass(t *testing.T) {
	for want, err := range map[string]error{
		"host_key":    fmt.Errorf("%w: %w: x", ErrHostKey, ErrUnknownHost),
		"auth":        fmt.Errorf("%w: x", ErrAuth),
		"unreachable": fmt.Errorf("%w: x", ErrUnreachable),
		"config":      fmt.Errorf("%w: x", ErrConfig),
		"":            context.Canceled,
	} {
		if got := (&ConnectError{Host: "h", Err: err}).Class(); got != want {
			t.Errorf("Class(%v) = %q, want %q", err, got, want)
		}
	}
}
