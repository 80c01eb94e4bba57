package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// stderrTailMax is how much of a command's stderr ExitError keeps.
const stderrTailMax = 64 << 10

// outputGrace is how long Run waits, after cancelling a command, for its
// output to stop arriving before it stops forwarding it.
const outputGrace = time.Second

// Client is the connection to one host, shared by every caller of
// Pool.Client for that host. It is safe for concurrent use. Each Run opens
// a new session; file operations share one SFTP session.
type Client struct {
	host     Host
	addr     string
	ssh      *ssh.Client
	sessions chan struct{} // bounds concurrent Run sessions

	closeOnce sync.Once
	closeErr  error

	sftpMu sync.Mutex
	sftp   *sftp.Client
}

func newClient(t target, sc *ssh.Client, maxSessions int) *Client {
	return &Client{host: t.host(), addr: t.addr(), ssh: sc, sessions: make(chan struct{}, maxSessions)}
}

// Host returns the host this Client is connected to, with Address, Port
// and User as resolved.
func (c *Client) Host() Host { return c.host }

func (c *Client) close() error {
	c.closeOnce.Do(func() {
		c.sftpMu.Lock()
		if c.sftp != nil {
			_ = c.sftp.Close()
			c.sftp = nil
		}
		c.sftpMu.Unlock()
		if err := c.ssh.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			c.closeErr = fmt.Errorf("ssh close %s: %w", c.host.Name, err)
		}
	})
	return c.closeErr
}

// connErr reports that the connection failed under an operation.
func (c *Client) connErr(op string, err error) error {
	return &ConnectError{Host: c.host.Name, Addr: c.addr, Err: fmt.Errorf("%w: %s: %w", ErrUnreachable, op, err)}
}

// Run runs cmd on the host in a new session, through the remote user's
// shell as ssh(1) does (quote arguments with package shell), copying stdin to it
// (nil: none) and its output to stdout and stderr (nil: discarded).
//
// A command that exits non-zero, or is killed by a signal, yields an error
// wrapping *ExitError, with the last part of stderr. When ctx ends, Run
// sends INT then KILL to the remote command, closes the session and
// returns an error wrapping ctx.Err(). A connection that broke yields a
// *ConnectError.
//
// At most Config.MaxSessions commands run at once on one Client; more
// wait for a free session.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run on %s: %w", c.host.Name, err)
	}
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return fmt.Errorf("run on %s: %w", c.host.Name, ctx.Err())
	}
	sess, err := c.newSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()

	tail := &tailBuffer{max: stderrTailMax}
	outGate := &gateWriter{w: stdout}
	errGate := &gateWriter{w: tail}
	if stderr != nil {
		errGate.w = io.MultiWriter(stderr, tail)
	}
	if stdout != nil {
		sess.Stdout = outGate
	}
	sess.Stderr = errGate
	var stdinPipe io.WriteCloser
	if stdin != nil {
		// Copy stdin ourselves: Session.Wait would otherwise wait for a
		// reader that may never end.
		if stdinPipe, err = sess.StdinPipe(); err != nil {
			return fmt.Errorf("run on %s: stdin: %w", c.host.Name, err)
		}
	}
	if err := sess.Start(cmd); err != nil {
		return fmt.Errorf("run on %s: start: %w", c.host.Name, err)
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(stdinPipe, stdin)
			_ = stdinPipe.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	select {
	case err := <-done:
		return c.runErr(err, tail)
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGINT)
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
		select {
		case <-done:
		case <-time.After(outputGrace):
		}
		outGate.shut()
		errGate.shut()
		return fmt.Errorf("run on %s: %w", c.host.Name, ctx.Err())
	}
}

func (c *Client) runErr(err error, tail *tailBuffer) error {
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitStatus()
		if ee.Signal() != "" && code == 0 {
			code = -1
		}
		return fmt.Errorf("run on %s: %w", c.host.Name, &ExitError{Code: code, Signal: ee.Signal(), Stderr: tail.String()})
	}
	var em *ssh.ExitMissingError
	if errors.As(err, &em) {
		return c.connErr("command ended without exit status", err)
	}
	return fmt.Errorf("run on %s: %w", c.host.Name, err)
}

// newSession opens a session, giving up when ctx ends.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.ssh.NewSession()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			var oce *ssh.OpenChannelError
			if errors.As(r.err, &oce) {
				return nil, fmt.Errorf("open session on %s: %w", c.host.Name, r.err)
			}
			return nil, c.connErr("open session", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				_ = r.s.Close()
			}
		}()
		return nil, fmt.Errorf("open session on %s: %w", c.host.Name, ctx.Err())
	}
}

// gateWriter forwards to w until shut, then drops writes, so that nothing
// reaches the caller's writers after Run returned.
type gateWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.w == nil {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gateWriter) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}
