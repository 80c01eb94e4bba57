package sshtest

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestManyHosts checks that a thousand virtual hosts start cheaply, each
// with its own port and key.
func TestManyHosts(t *testing.T) {
	s := New(t, Options{Hosts: 1000})
	ports := map[int]bool{}
	keys := map[string]bool{}
	for _, h := range s.Hosts() {
		ports[h.Port] = true
		keys[string(h.HostKey.Marshal())] = true
	}
	if len(ports) != 1000 || len(keys) != 1000 {
		t.Fatalf("%d distinct ports, %d distinct keys, want 1000 each", len(ports), len(keys))
	}
	if s.Host("host999") == nil || s.Host("host1000") != nil {
		t.Errorf("host names are not host0..host999")
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := s.WriteKnownHosts(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	if lines != 1000 {
		t.Errorf("known_hosts has %d lines, want 1000", lines)
	}
}

// dialHost connects to h as user "u" with signer, trusting h's key.
func dialHost(t *testing.T, h *Host, signer ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial("tcp", h.Addr, &ssh.ClientConfig{
		User:            "u",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(h.HostKey),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", h.Name, err)
	}
	return c
}

// run runs cmd in a new session and returns stdout, stderr and the status.
func run(t *testing.T, c *ssh.Client, cmd string) (string, string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out, errOut strings.Builder
	sess.Stdout, sess.Stderr = &out, &errOut
	err = sess.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitStatus()
	case err != nil:
		t.Fatalf("run %q: %v", cmd, err)
	}
	return out.String(), errOut.String(), 0
}

// TestRules checks the rule-based handler on a Server started without a
// testing.TB, and that Close may be called twice.
func TestRules(t *testing.T) {
	signer, _ := NewUserKey(t)
	s, err := Start(Options{Hosts: 4, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		Handler: Rules{Fail: FailEvery(3, 3)}.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dialHost(t, s.Host("host1"), signer)
	defer c.Close()
	for _, tc := range []struct {
		cmd, out, errOut string
		code             int
	}{
		{"true", "", "", 0},
		{":", "", "", 0},
		{"false", "", "", 1},
		{"hostname", "host1\n", "", 0},
		{`echo "a  b" 'c' d`, "a  b c d\n", "", 0},
		{"echo -n x; echo y", "xy\n", "", 0},
		{"exit 7; echo no", "", "", 7},
		{"false && echo no; echo yes", "yes\n", "", 0},
		{"true && hostname", "host1\n", "", 0},
		{"sleep 0.01\nexit 2", "", "", 2},
		{"rm -rf /", "", "sshtest: rm: command not found\n", 127},
	} {
		out, errOut, code := run(t, c, tc.cmd)
		if out != tc.out || errOut != tc.errOut || code != tc.code {
			t.Errorf("%q: stdout %q stderr %q exit %d, want %q %q %d", tc.cmd, out, errOut, code,
				tc.out, tc.errOut, tc.code)
		}
	}
	for _, name := range []string{"host0", "host3"} {
		c := dialHost(t, s.Host(name), signer)
		out, errOut, code := run(t, c, "hostname")
		c.Close()
		if out != "" || errOut != "sshtest: "+name+": simulated failure\n" || code != 3 {
			t.Errorf("%s: stdout %q stderr %q exit %d, want a simulated failure", name, out, errOut, code)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRulesLatency checks that the per-host latency delays a command.
func TestRulesLatency(t *testing.T) {
	signer, _ := NewUserKey(t)
	s := New(t, Options{Hosts: 2, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		Handler: Rules{Delay: func(h *Host) time.Duration {
			return time.Duration(h.Index) * 200 * time.Millisecond
		}}.Handler()})
	for _, h := range s.Hosts() {
		c := dialHost(t, h, signer)
		start := time.Now()
		run(t, c, "true")
		took := time.Since(start)
		c.Close()
		if min := time.Duration(h.Index) * 200 * time.Millisecond; took < min {
			t.Errorf("%s answered in %s, want at least %s", h.Name, took, min)
		}
	}
}
