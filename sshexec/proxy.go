package sshexec

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// expandProxyCommand expands ProxyCommand's tokens as OpenSSH does: %h
// the address, %p the port, %r the user, %n the destination as given,
// %% a percent sign.
func expandProxyCommand(cmd string, o options) (string, error) {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != '%' {
			b.WriteByte(cmd[i])
			continue
		}
		i++
		if i == len(cmd) {
			return "", fmt.Errorf("%w: ProxyCommand %q ends in %%", ErrConfig, cmd)
		}
		switch cmd[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(o.hostname)
		case 'p':
			b.WriteString(strconv.Itoa(o.port))
		case 'r':
			b.WriteString(o.user)
		case 'n':
			b.WriteString(o.host)
		default:
			return "", fmt.Errorf("%w: ProxyCommand %q: unknown token %%%c", ErrConfig, cmd, cmd[i])
		}
	}
	return b.String(), nil
}

// proxyConn is a net.Conn over a ProxyCommand's stdin and stdout.
type proxyConn struct {
	command string
	cmd     *exec.Cmd
	r       io.ReadCloser
	w       io.WriteCloser
	stderr  *tailBuffer
	once    sync.Once
}

// startProxy runs command through the user's shell, as OpenSSH does
// ("exec COMMAND" with $SHELL -c, /bin/sh if unset).
func startProxy(command string) (*proxyConn, error) {
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, "-c", "exec "+command)
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("proxy command: %w", err)
	}
	r, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("proxy command: %w", err)
	}
	tail := &tailBuffer{max: 4 << 10}
	cmd.Stderr = tail
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start proxy command %q: %w", ErrUnreachable, command, err)
	}
	return &proxyConn{command: command, cmd: cmd, r: r, w: w, stderr: tail}, nil
}

func (c *proxyConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *proxyConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close closes the pipes and ends the proxy process (by its pid).
func (c *proxyConn) Close() error {
	c.once.Do(func() {
		_ = c.w.Close()
		done := make(chan struct{})
		go func() {
			_ = c.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(200 * time.Millisecond):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
	return nil
}

// why describes the proxy and how it ended, for errors; call it after
// Close.
func (c *proxyConn) why() string {
	msg := fmt.Sprintf("through ProxyCommand %q", c.command)
	if st := c.cmd.ProcessState; st != nil {
		msg += ", which ended with " + st.String()
	}
	if s := lastLine(c.stderr.String()); s != "" {
		msg += ": " + s
	}
	return msg
}

type proxyAddr string

func (a proxyAddr) Network() string { return "proxy" }
func (a proxyAddr) String() string  { return string(a) }

func (c *proxyConn) LocalAddr() net.Addr              { return proxyAddr("proxy") }
func (c *proxyConn) RemoteAddr() net.Addr             { return proxyAddr("proxy") }
func (c *proxyConn) SetDeadline(time.Time) error      { return errNoDeadline }
func (c *proxyConn) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (c *proxyConn) SetWriteDeadline(time.Time) error { return errNoDeadline }

var errNoDeadline = errors.New("proxy command connection has no deadlines")
