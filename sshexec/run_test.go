package sshexec

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestRunExitErrorAndOutput(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	c, err := newPool(t, e.config()).Client(testCtx(t), hostFor(e.srv.Hosts()[0]))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = c.Run(testCtx(t), "echo out; echo first >&2; echo oops >&2; exit 3", nil, &out, &errOut)
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError", err)
	}
	if ee.Code != 3 || ee.Stderr != "first\noops\n" || ee.Error() != "exit status 3: oops" {
		t.Errorf("ExitError = %+v (%q), want code 3, stderr first/oops, message \"exit status 3: oops\"", ee, ee.Error())
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		t.Errorf("a failed command reads as a connect error: %v", err)
	}
	if out.String() != "out\n" || errOut.String() != "first\noops\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}

	out.Reset()
	if err := c.Run(testCtx(t), "tr a-z A-Z", strings.NewReader("hello"), &out, nil); err != nil {
		t.Fatalf("run with stdin: %v", err)
	}
	if out.String() != "HELLO" {
		t.Errorf("stdout = %q, want HELLO", out.String())
	}
}

func TestCancelKillsRemoteCommand(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	c, err := newPool(t, e.config()).Client(testCtx(t), hostFor(h))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	marker := filepath.Join(dir, "marker")
	cmd := "echo $$ > " + pidFile + "; sleep 30; touch " + marker

	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if data, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(data), "\n") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	err = c.Run(ctx, cmd, nil, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Run took %s after cancel", d)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	gone := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			gone = true
			break
		}
	}
	if !gone {
		t.Fatalf("remote process %d still exists after cancel", pid)
	}
	if sigs := h.Signals(); !slices.Equal(sigs, []string{"INT", "KILL"}) {
		t.Errorf("signals received = %v, want [INT KILL]", sigs)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("command ran past the cancel")
	}
	// The connection survives the cancel.
	if err := c.Run(testCtx(t), "true", nil, nil, nil); err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

func TestJumpHost(t *testing.T) {
	e := newEnv(t, sshtest.Options{Names: []string{"bastion", "target", "target2"}, AllowTCPForward: true})
	bastion, tgt, tgt2 := e.srv.Host("bastion"), e.srv.Host("target"), e.srv.Host("target2")
	// The targets are known by names only the bastion resolves.
	lines := knownhosts.Line([]string{bastion.Addr}, bastion.HostKey) + "\n" +
		knownhosts.Line([]string{"target"}, tgt.HostKey) + "\n" +
		knownhosts.Line([]string{"target2"}, tgt2.HostKey) + "\n"
	if err := os.WriteFile(e.knownHosts, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Jump = "tester@" + bastion.Addr
	p := newPool(t, cfg)
	for _, name := range []string{"target", "target2"} {
		c, err := p.Client(testCtx(t), Host{Name: name})
		if err != nil {
			t.Fatalf("connect %s through bastion: %v", name, err)
		}
		var out bytes.Buffer
		if err := c.Run(testCtx(t), "echo hi", nil, &out, nil); err != nil || out.String() != "hi\n" {
			t.Fatalf("run on %s: %v, %q", name, err, out.String())
		}
	}
	if n := bastion.DirectTCPIP(); n != 2 {
		t.Errorf("bastion forwarded %d connections, want 2", n)
	}
	if bastion.Handshakes() != 1 || tgt.Handshakes() != 1 || tgt2.Handshakes() != 1 {
		t.Errorf("handshakes bastion=%d target=%d target2=%d, want 1 each",
			bastion.Handshakes(), tgt.Handshakes(), tgt2.Handshakes())
	}
	if p.Handshakes() != 3 {
		t.Errorf("pool handshakes = %d, want 3", p.Handshakes())
	}
	if bastion.Sessions() != 0 {
		t.Errorf("commands ran on the bastion")
	}
}

// TestJumpChain: two bastions, as ProxyJump "outer,inner": the outer is
// reached directly, the inner only through the outer, the targets only
// through the inner. Each hop is one pooled connection.
func TestJumpChain(t *testing.T) {
	e := newEnv(t, sshtest.Options{Names: []string{"outer", "inner", "target", "target2"}, AllowTCPForward: true})
	outer, inner := e.srv.Host("outer"), e.srv.Host("inner")
	tgt, tgt2 := e.srv.Host("target"), e.srv.Host("target2")
	lines := knownhosts.Line([]string{outer.Addr}, outer.HostKey) + "\n" +
		knownhosts.Line([]string{"inner"}, inner.HostKey) + "\n" +
		knownhosts.Line([]string{"target"}, tgt.HostKey) + "\n" +
		knownhosts.Line([]string{"target2"}, tgt2.HostKey) + "\n"
	if err := os.WriteFile(e.knownHosts, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Jump = "tester@" + outer.Addr + ", inner"
	p := newPool(t, cfg)
	for _, name := range []string{"target", "target2"} {
		c, err := p.Client(testCtx(t), Host{Name: name})
		if err != nil {
			t.Fatalf("connect %s through outer,inner: %v", name, err)
		}
		var out bytes.Buffer
		if err := c.Run(testCtx(t), "hostname", nil, &out, nil); err != nil {
			t.Fatalf("run on %s: %v", name, err)
		}
	}
	if outer.DirectTCPIP() != 1 || inner.DirectTCPIP() != 2 {
		t.Errorf("forwarded: outer %d (want 1: to inner), inner %d (want 2: to each target)",
			outer.DirectTCPIP(), inner.DirectTCPIP())
	}
	for _, h := range []*sshtest.Host{outer, inner, tgt, tgt2} {
		if h.Handshakes() != 1 {
			t.Errorf("%s: %d handshakes, want 1", h.Name, h.Handshakes())
		}
	}
	if outer.Sessions() != 0 || inner.Sessions() != 0 {
		t.Errorf("commands ran on a bastion")
	}

	// An unknown inner bastion stops the chain before any target.
	if err := os.WriteFile(e.knownHosts, []byte(knownhosts.Line([]string{outer.Addr}, outer.HostKey)+"\n"+
		knownhosts.Line([]string{"target"}, tgt.HostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newPool(t, cfg).Client(testCtx(t), Host{Name: "target"})
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "inner") {
		t.Errorf("err = %v, want ErrUnknownHost naming the inner jump host", err)
	}
	if tgt.Handshakes() != 1 {
		t.Errorf("reached the target through an unverified inner bastion")
	}
}

func TestJumpHostKeyChecked(t *testing.T) {
	e := newEnv(t, sshtest.Options{Names: []string{"bastion", "target"}, AllowTCPForward: true})
	bastion, tgt := e.srv.Host("bastion"), e.srv.Host("target")
	// Only the target is known: the bastion must be refused.
	line := knownhosts.Line([]string{"target"}, tgt.HostKey) + "\n"
	if err := os.WriteFile(e.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Jump = bastion.Addr
	_, err := newPool(t, cfg).Client(testCtx(t), Host{Name: "target"})
	if !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), "jump host") {
		t.Fatalf("err = %v, want ErrUnknownHost for the jump host", err)
	}
	if tgt.Handshakes() != 0 || bastion.DirectTCPIP() != 0 {
		t.Errorf("reached the target through an unverified bastion")
	}
}

func TestConnectTimeout(t *testing.T) {
	e := newEnv(t, sshtest.Options{})
	// A listener that never accepts: TCP connects, SSH never answers.
	port, err := netListen(t)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.ConnectTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = newPool(t, cfg).Client(testCtx(t), Host{Name: "silent", Address: "127.0.0.1", Port: port})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnreachable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %s", d)
	}
}
