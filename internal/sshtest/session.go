package sshtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Session is what a Handler sees of one exec request.
type Session interface {
	// Stdin reads what the client sends; it returns io.EOF when the
	// client closes its side.
	Stdin() io.Reader
	// Stdout writes to the client's standard output.
	Stdout() io.Writer
	// Stderr writes to the client's standard error.
	Stderr() io.Writer
	// Signals delivers the names of signals the client sends ("INT",
	// "KILL", ...). Signals arriving while the buffer is full are
	// recorded on the Host but not delivered.
	Signals() <-chan string
	// User is the authenticated user name.
	User() string
	// Context is cancelled when the channel closes or the server stops.
	Context() context.Context
}

type session struct {
	ch   ssh.Channel
	sigs chan string
	user string
	ctx  context.Context
}

func (s *session) Stdin() io.Reader         { return s.ch }
func (s *session) Stdout() io.Writer        { return s.ch }
func (s *session) Stderr() io.Writer        { return s.ch.Stderr() }
func (s *session) Signals() <-chan string   { return s.sigs }
func (s *session) User() string             { return s.user }
func (s *session) Context() context.Context { return s.ctx }

func (h *Host) serveSession(nc ssh.NewChannel, user string) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	h.sessions.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess := &session{ch: ch, sigs: make(chan string, 16), user: user, ctx: ctx}
	started := false
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			started = true
			_ = req.Reply(true, nil)
			go h.runExec(sess, p.Command)
		case "subsystem":
			var p struct{ Name string }
			if started || !h.srv.opts.SFTP || ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			started = true
			_ = req.Reply(true, nil)
			go serveSFTP(ch)
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) != nil {
				_ = req.Reply(false, nil)
				continue
			}
			h.mu.Lock()
			h.signals = append(h.signals, p.Signal)
			h.mu.Unlock()
			select {
			case sess.sigs <- p.Signal:
			default:
			}
			_ = req.Reply(true, nil)
		case "env":
			_ = req.Reply(true, nil)
		default:
			_ = req.Reply(false, nil)
		}
	}
}

func (h *Host) runExec(sess *session, cmd string) {
	handler := h.srv.opts.Handler
	if handler == nil {
		handler = runShell
	}
	code := handler(h, cmd, sess)
	_ = sess.ch.CloseWrite()
	_, _ = sess.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
	_ = sess.ch.Close()
}

func serveSFTP(ch ssh.Channel) {
	defer ch.Close()
	srv, err := sftp.NewServer(ch)
	if err != nil {
		return
	}
	_ = srv.Serve()
	_ = srv.Close()
}

func signalByName(name string) (syscall.Signal, bool) {
	switch name {
	case "ABRT":
		return syscall.SIGABRT, true
	case "ALRM":
		return syscall.SIGALRM, true
	case "HUP":
		return syscall.SIGHUP, true
	case "INT":
		return syscall.SIGINT, true
	case "KILL":
		return syscall.SIGKILL, true
	case "PIPE":
		return syscall.SIGPIPE, true
	case "QUIT":
		return syscall.SIGQUIT, true
	case "TERM":
		return syscall.SIGTERM, true
	case "USR1":
		return syscall.SIGUSR1, true
	case "USR2":
		return syscall.SIGUSR2, true
	}
	return 0, false
}

// runShell is the default Handler: it runs cmd with `sh -c` in a process
// group of its own, so that a signal request reaches every process it
// started.
func runShell(h *Host, cmd string, s Session) int {
	c := exec.Command("sh", "-c", cmd)
	c.Stdout = s.Stdout()
	c.Stderr = s.Stderr()
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Copy stdin ourselves: exec.Cmd would otherwise wait for the client
	// to close stdin before Wait returns.
	stdin, err := c.StdinPipe()
	if err != nil {
		_, _ = io.WriteString(s.Stderr(), "sshtest: "+err.Error()+"\n")
		return 255
	}
	if err := c.Start(); err != nil {
		_, _ = io.WriteString(s.Stderr(), "sshtest: "+err.Error()+"\n")
		return 127
	}
	pgid := c.Process.Pid
	h.addPgid(pgid)
	defer h.removePgid(pgid)
	go func() {
		_, _ = io.Copy(stdin, s.Stdin())
		_ = stdin.Close()
	}()
	exited := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case name := <-s.Signals():
				if sig, ok := signalByName(name); ok {
					_ = syscall.Kill(-pgid, sig)
				}
			case <-exited:
				return
			}
		}
	}()
	err = c.Wait()
	close(exited)
	wg.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		return 255
	}
	return 0
}

func (h *Host) serveDirectTCPIP(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip payload")
		return
	}
	addr := net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
	if target := h.srv.byName[p.Host]; target != nil {
		addr = target.Addr
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = conn.Close()
		return
	}
	h.directTCPIP.Add(1)
	go ssh.DiscardRequests(reqs)
	// SSH needs no half-close: when either direction ends, tear down both.
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(conn, ch)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(ch, conn)
		done <- struct{}{}
	}()
	<-done
	_ = ch.Close()
	_ = conn.Close()
	<-done
}
