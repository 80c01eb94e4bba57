// Package sshexec owns every SSH connection sgerun makes: it resolves each
// host as OpenSSH does (by asking `ssh -G`), dials it (directly, through a
// ProxyCommand or a ProxyJump chain), checks its key against known_hosts
// as OpenSSH does, authenticates with ssh-agent, identity files and
// certificates, runs commands and moves files over SFTP. No other package
// imports golang.org/x/crypto/ssh.
//
// A Pool keeps one connection per host for its whole life; every command
// and file operation on that host opens a new session on it.
//
// Errors are classified, not parsed: a *ConnectError (wrapping
// ErrUnreachable, ErrHostKey, ErrAuth, ErrConfig or a context error) means
// no connection could be made; an *ExitError means a command ran and
// failed.
package sshexec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Pool dials hosts and keeps one connection per Host.Name. It is safe for
// concurrent use.
type Pool struct {
	s          *settings
	hostKeys   hostKeys
	keys       keyCache
	sem        chan struct{}
	handshakes atomic.Int64

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[string]*entry
}

// entry is one connection of the Pool, being dialled or established.
type entry struct {
	done chan struct{} // closed when c or err is set
	c    *Client
	err  error
}

// NewPool checks cfg and returns an empty Pool. It does not dial; ssh_config
// and known_hosts are read when a host is first used.
func NewPool(cfg Config) (*Pool, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		s:      s,
		sem:    make(chan struct{}, s.MaxHandshakes),
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[string]*entry),
	}, nil
}

// Client returns the connection to h, dialling it on first use. Later
// calls with the same h.Name return the same *Client, whatever the other
// fields of h. Concurrent callers for one host share one dial. A failed
// dial is not remembered: the next call dials again; so is a connection
// that broke.
//
// The dial itself is bounded by Config.ConnectTimeout, not by ctx: if ctx
// ends first, Client returns ctx's error and the dial finishes in the
// background for the next caller.
func (p *Pool) Client(ctx context.Context, h Host) (*Client, error) {
	if h.Name == "" {
		return nil, errors.New("ssh connect: host has no name")
	}
	return p.get(ctx, h.Name, h.Name, func(dctx context.Context) (*Client, error) {
		return p.connect(dctx, h)
	})
}

// Handshakes returns the number of SSH handshakes the Pool started, jump
// hosts included.
func (p *Pool) Handshakes() int64 { return p.handshakes.Load() }

// Close closes every connection and stops dials in progress. Clients
// obtained from the Pool stop working.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	p.cancel()
	var errs []error
	for _, e := range conns {
		select {
		case <-e.done:
			if e.c != nil {
				if err := e.c.close(); err != nil {
					errs = append(errs, err)
				}
			}
		default: // the dial sees the cancelled context and cleans up
		}
	}
	p.wg.Wait()
	return errors.Join(errs...)
}

// get returns the connection stored under key, dialling it if needed;
// name is the host name for errors.
func (p *Pool) get(ctx context.Context, key, name string, dial func(context.Context) (*Client, error)) (*Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, &ConnectError{Host: name, Err: ErrClosed}
	}
	e := p.conns[key]
	if e == nil {
		e = &entry{done: make(chan struct{})}
		p.conns[key] = e
		p.wg.Add(1)
		go p.dial(key, name, e, dial)
	}
	p.mu.Unlock()
	select {
	case <-e.done:
		return e.c, e.err
	case <-ctx.Done():
		return nil, &ConnectError{Host: name, Err: ctx.Err()}
	}
}

func (p *Pool) dial(key, name string, e *entry, dial func(context.Context) (*Client, error)) {
	defer p.wg.Done()
	c, err := dial(p.ctx)
	p.mu.Lock()
	if err == nil && p.closed {
		_ = c.close()
		err = &ConnectError{Host: name, Addr: c.addr, Err: ErrClosed}
		c = nil
	}
	e.c, e.err = c, err
	if err != nil && p.conns[key] == e {
		delete(p.conns, key)
	}
	if err == nil {
		p.wg.Add(1)
		go p.watch(key, e)
	}
	// Under the lock, so that Close either sees the entry done or sees
	// the dial still running (which then finds the Pool closed).
	close(e.done)
	p.mu.Unlock()
}

// watch forgets a connection once it breaks, so the next Client call
// dials again, and sends keepalives while it lives.
func (p *Pool) watch(key string, e *entry) {
	defer p.wg.Done()
	stop := make(chan struct{})
	if p.s.Keepalive > 0 {
		go e.c.keepalive(p.s.Keepalive, stop)
	}
	_ = e.c.ssh.Wait()
	close(stop)
	p.mu.Lock()
	if p.conns[key] == e {
		delete(p.conns, key)
	}
	p.mu.Unlock()
	_ = e.c.close()
}

// connect resolves h, dials it (through its proxy or jump hosts if any)
// and authenticates.
func (p *Pool) connect(ctx context.Context, h Host) (*Client, error) {
	t, err := p.resolveHost(ctx, h)
	if err != nil {
		return nil, &ConnectError{Host: h.Name, Err: err}
	}
	return p.dialTarget(ctx, t, 0)
}

// dialTarget connects to a resolved target. With ProxyJump "a,b,c" it
// connects to c through "a,b" (one pooled connection per chain), then to
// the target through c; with ProxyCommand it speaks SSH over the command's
// stdin and stdout.
func (p *Pool) dialTarget(ctx context.Context, t target, depth int) (*Client, error) {
	fail := func(err error) (*Client, error) {
		return nil, &ConnectError{Host: t.name, Addr: t.addr(), Err: err}
	}
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	switch {
	case t.opts.proxyJump != "":
		if depth >= maxHops {
			return fail(fmt.Errorf("%w: jump chain longer than %d hops (a loop in ProxyJump?)", ErrConfig, maxHops))
		}
		chain := t.opts.proxyJump
		outer, last := "", chain
		if i := strings.LastIndexByte(chain, ','); i >= 0 {
			outer, last = chain[:i], chain[i+1:]
		}
		last = strings.TrimSpace(last)
		bastion, err := p.get(ctx, "\x00jump "+chain, last, func(dctx context.Context) (*Client, error) {
			jt, err := p.resolveHop(dctx, last, outer)
			if err != nil {
				return nil, &ConnectError{Host: last, Err: err}
			}
			return p.dialTarget(dctx, jt, depth+1)
		})
		if err != nil {
			return fail(fmt.Errorf("jump host %s: %w", chain, err))
		}
		dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			return bastion.ssh.DialContext(ctx, "tcp", addr)
		}
	case t.opts.proxyCommand != "":
		command, err := expandProxyCommand(t.opts.proxyCommand, t.opts)
		if err != nil {
			return fail(err)
		}
		dialer = func(context.Context, string) (net.Conn, error) {
			return startProxy(command)
		}
	}

	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	sc, err := p.handshake(ctx, t, dialer)
	if err != nil {
		return fail(err)
	}
	return newClient(t, sc, p.s.MaxSessions), nil
}

func (p *Pool) handshake(ctx context.Context, t target, dial func(context.Context, string) (net.Conn, error)) (*ssh.Client, error) {
	addr := t.addr()
	algos, err := t.check.algorithms(t.opts.hostKeyAlgos)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, t.connectTimeout)
	defer cancel()
	timedOut := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if hctx.Err() != nil {
			return fmt.Errorf("%w: timed out after %s: %w", ErrUnreachable, t.connectTimeout, hctx.Err())
		}
		return err
	}
	// Dial first: as with ssh, an unreachable host is reported as such
	// even when no key could be offered to it.
	conn, err := dial(hctx, addr)
	if err != nil {
		return nil, timedOut(fmt.Errorf("%w: dial: %w", ErrUnreachable, err))
	}
	cr, err := p.credentials(t)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	defer cr.closer()
	stop := context.AfterFunc(hctx, func() { _ = conn.Close() })

	hostKeyErr := make(chan error, 1)
	cfg := &ssh.ClientConfig{
		User:              t.opts.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(cr.signers...)},
		HostKeyAlgorithms: algos,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := t.check.check(hostname, remote, key)
			if err != nil {
				select {
				case hostKeyErr <- err:
				default:
				}
			}
			return err
		},
	}
	p.handshakes.Add(1)
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		// The timeout closed conn, maybe after the handshake succeeded.
		if err == nil {
			_ = c.Close()
		}
		return nil, timedOut(fmt.Errorf("%w: ssh handshake: connection closed", ErrUnreachable))
	}
	if err != nil {
		_ = conn.Close()
		select {
		case hkErr := <-hostKeyErr:
			return nil, hkErr
		default:
		}
		// x/crypto has no typed errors for these.
		msg := err.Error()
		switch {
		case strings.Contains(msg, "unable to authenticate"):
			return nil, fmt.Errorf("%w: user %s: %w%s", ErrAuth, t.opts.user, err, cr.hint())
		case strings.Contains(msg, "no common algorithm for host key"):
			return nil, fmt.Errorf("%w: %s offers no host key of the types accepted (%s): %w",
				ErrHostKey, addr, strings.Join(algos, ","), err)
		}
		if pc, ok := conn.(*proxyConn); ok {
			err = fmt.Errorf("%w (%s)", err, pc.why())
		}
		if isAuthLimit(msg) {
			return nil, fmt.Errorf("%w: user %s: the server closed the connection during authentication "+
				"(too many keys offered? set IdentitiesOnly yes and an IdentityFile for this host): %w%s",
				ErrAuth, t.opts.user, err, cr.hint())
		}
		return nil, timedOut(fmt.Errorf("%w: ssh handshake: %w", ErrUnreachable, err))
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// isAuthLimit recognises sshd dropping a client that offered more keys
// than MaxAuthTries; x/crypto reports it as a handshake failure.
func isAuthLimit(msg string) bool {
	return strings.Contains(msg, "Too many authentication failures") ||
		strings.Contains(msg, "disconnect, reason 2")
}

func (t target) host() Host {
	return Host{Name: t.name, Address: t.opts.hostname, Port: t.opts.port, User: t.opts.user}
}

// keepalive sends keepalive@openssh.com every interval and closes the
// connection when three intervals pass without an answer.
func (c *Client) keepalive(interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		timer := time.NewTimer(3 * interval)
		select {
		case err := <-answered:
			timer.Stop()
			if err != nil {
				_ = c.ssh.Close()
				return
			}
		case <-timer.C:
			_ = c.ssh.Close()
			return
		case <-stop:
			timer.Stop()
			return
		}
	}
}
