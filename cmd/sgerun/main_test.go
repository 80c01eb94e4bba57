package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"github.com/sgerun/sgerun/internal/testenv"
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
	home := testenv.Hermetic(t)
	t.Setenv("NO_COLOR", "1")
	c := testenv.NewCluster(t, testenv.Options{SSH: sshtest.Options{Hosts: o.hosts, SFTP: true, Handler: o.handler}})
	return &env{t: t, srv: c.Server, inv: c.InventoryPath, state: filepath.Join(filepath.Dir(c.InventoryPath), "state"),
		home: home, work: t.TempDir(), invText: c.InventoryText}
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
