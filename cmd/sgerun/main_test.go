package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// binPath is the sgerun binary built once for the tests that need a real
// process (signals, locks held by another process).
var binPath string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "sgerun-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sgerun")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sgerun:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one hermetic test environment: an sshtest server, an inventory
// for it, a state dir and a HOME of its own.
type env struct {
	t       *testing.T
	srv     *sshtest.Server
	inv     string
	state   string
	home    string
	work    string
	invText string
}

type envOptions struct {
	hosts   int
	handler func(h *sshtest.Host, cmd string, s sshtest.Session) int
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	home := t.TempDir()
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", home)
	t.Setenv("NO_COLOR", "1")
	signer, keyPath := sshtest.NewUserKey(t)
	srv := sshtest.New(t, sshtest.Options{Hosts: o.hosts, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		SFTP: true, Handler: o.handler})
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
	b.WriteString("cluster: {sge_root: /opt/sge}\n")
	fmt.Fprintf(&b, "ssh: {user: %s, identity_file: %s, known_hosts: %s, ssh_config: none, connect_timeout: 30s}\n",
		u.Username, keyPath, kh)
	b.WriteString("hosts:\n")
	var names []string
	for _, h := range srv.Hosts() {
		fmt.Fprintf(&b, "  %s: {address: 127.0.0.1, port: %d}\n", h.Name, h.Port)
		names = append(names, h.Name)
	}
	fmt.Fprintf(&b, "roles: {master: host0, shadow: host1, execd: [%s]}\n", strings.Join(names, ", "))
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, inv: inv, state: filepath.Join(dir, "state"), home: home, work: t.TempDir(),
		invText: b.String()}
}

// result is one finished sgerun process.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// command returns an sgerun process with the env's state dir.
func (e *env) command(args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.Command(binPath, append([]string{"--state-dir", e.state}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+e.home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// sgerun runs the binary to completion.
func (e *env) sgerun(args ...string) result {
	e.t.Helper()
	cmd, stdout, stderr := e.command(args...)
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("sgerun %v: %v", args, err)
	}
	return r
}

// file writes a file under the env's work dir and returns its path.
func (e *env) file(name, text string) string {
	e.t.Helper()
	p := filepath.Join(e.work, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) handshakes() int64 {
	var n int64
	for _, h := range e.srv.Hosts() {
		n += h.Handshakes()
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
