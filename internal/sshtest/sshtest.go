// Package sshtest runs in-process SSH servers on 127.0.0.1 for hermetic
// tests of code that talks SSH.
//
// One Server holds any number of virtual hosts. Each host has its own
// listener on 127.0.0.1:0 and its own ed25519 host key, and counts the
// handshakes, sessions, signals and forwarded connections it handled, so
// tests can assert how a client behaved. By default a command runs for real
// through `sh -c` on the local machine; Options.Handler replaces that, and
// Rules is a handler that answers a few commands (true, echo, hostname,
// sleep, exit) without starting a process, with latency and failures per
// host. New ties a Server to a test; Start and Close serve one outside of
// tests (bench/simhosts).
//
// The per-host cost is one listener, one accept goroutine and one host key,
// so a Server with a thousand hosts is cheap.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Options configures a Server.
type Options struct {
	// Hosts is the number of virtual hosts, named host0..hostN-1. It is
	// ignored when Names is set.
	Hosts int
	// Names, when set, gives one virtual host per name.
	Names []string
	// AuthorizedKeys are the user keys the hosts accept.
	AuthorizedKeys []ssh.PublicKey
	// Password, when not empty, is also accepted for any user.
	Password string
	// Users, when not empty, restricts the user names that may log in.
	Users []string
	// Handler runs one exec request and returns its exit status. When
	// nil, the command runs locally with `sh -c`; signal requests are sent
	// to its process group.
	Handler func(h *Host, cmd string, s Session) int
	// SFTP serves the "sftp" subsystem over the real local filesystem.
	SFTP bool
	// AllowTCPForward serves direct-tcpip channels, so a host can act as a
	// jump host. A destination equal to the name of a host of the same
	// Server is connected to that host's listener, whatever the port, so a
	// target can be given by a name only the jump host can resolve.
	AllowTCPForward bool
	// HandshakeDelay slows down each successful user authentication, so
	// that tests can observe how many handshakes a client runs at once.
	HandshakeDelay time.Duration
}

// Server is a set of virtual SSH hosts. A Server from New is closed by the
// Cleanup of the testing.TB given to New; one from Start by Close.
type Server struct {
	opts       Options
	authorized map[string]bool
	users      map[string]bool
	hosts      []*Host
	byName     map[string]*Host

	inflight atomic.Int64
	peak     atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]*Host
	wg     sync.WaitGroup
}

// Host is one virtual host of a Server.
type Host struct {
	// Name is the host's logical name (host0, host1, ... or Options.Names).
	Name string
	// Index is the host's position in Server.Hosts.
	Index int
	// Addr is the listening address, "127.0.0.1:port".
	Addr string
	// Port is the listening port.
	Port int
	// HostKey is the host's public ed25519 key.
	HostKey ssh.PublicKey

	srv    *Server
	signer ssh.Signer
	ln     net.Listener

	handshakes  atomic.Int64
	sessions    atomic.Int64
	directTCPIP atomic.Int64

	mu      sync.Mutex
	signals []string
	users   []string
	pgids   map[int]struct{}
}

// New starts a Server with the virtual hosts described by opts. It fails
// the test if a host cannot be started. t.Cleanup closes every listener and
// connection and kills the processes the default handler started.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

// Start starts a Server with the virtual hosts described by opts, outside
// of a test (see bench/simhosts). Close stops it.
func Start(opts Options) (*Server, error) {
	names := opts.Names
	if len(names) == 0 {
		names = make([]string, opts.Hosts)
		for i := range names {
			names[i] = "host" + strconv.Itoa(i)
		}
	}
	s := &Server{
		opts:       opts,
		authorized: make(map[string]bool, len(opts.AuthorizedKeys)),
		users:      make(map[string]bool, len(opts.Users)),
		byName:     make(map[string]*Host, len(names)),
		conns:      make(map[net.Conn]*Host),
	}
	for _, k := range opts.AuthorizedKeys {
		s.authorized[string(k.Marshal())] = true
	}
	for _, u := range opts.Users {
		s.users[u] = true
	}
	for i, name := range names {
		h, err := s.startHost(name, i)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("start host %s: %w", name, err)
		}
		s.hosts = append(s.hosts, h)
		s.byName[name] = h
	}
	return s, nil
}

// Close stops the Server: it closes every listener and connection, kills
// the processes the default handler started and waits for its goroutines.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.close()
	return nil
}

func (s *Server) startHost(name string, index int) (*Host, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key signer: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	h := &Host{
		Name:    name,
		Index:   index,
		Addr:    ln.Addr().String(),
		Port:    ln.Addr().(*net.TCPAddr).Port,
		HostKey: signer.PublicKey(),
		srv:     s,
		signer:  signer,
		ln:      ln,
		pgids:   make(map[int]struct{}),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		h.acceptLoop()
	}()
	return h, nil
}

// Hosts returns the virtual hosts in creation order.
func (s *Server) Hosts() []*Host { return s.hosts }

// Host returns the virtual host with the given name, or nil.
func (s *Server) Host(name string) *Host { return s.byName[name] }

// PeakHandshakes returns the largest number of handshakes that were in
// flight at once across all hosts. A handshake is in flight from the
// moment its TCP connection is accepted until the user is authenticated
// (or the handshake fails).
func (s *Server) PeakHandshakes() int64 { return s.peak.Load() }

// WriteKnownHosts writes one known_hosts line per host, "[127.0.0.1]:port
// key", to path (mode 0600), replacing the file.
func (s *Server) WriteKnownHosts(path string) error {
	var b bytes.Buffer
	for _, h := range s.hosts {
		b.WriteString(knownhosts.Line([]string{h.Addr}, h.HostKey))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write known_hosts: %w", err)
	}
	return nil
}

func (s *Server) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, h := range s.hosts {
		_ = h.ln.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
	for _, h := range s.hosts {
		h.killAll()
	}
	s.wg.Wait()
}

func (s *Server) track(c net.Conn, h *Host) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = h
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *Server) handshakeStarted() {
	n := s.inflight.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// Handshakes returns the number of connections the host accepted, each of
// which started an SSH handshake.
func (h *Host) Handshakes() int64 { return h.handshakes.Load() }

// Sessions returns the number of session channels the host opened (exec
// and sftp alike).
func (h *Host) Sessions() int64 { return h.sessions.Load() }

// DirectTCPIP returns the number of direct-tcpip (port forwarding)
// channels the host accepted.
func (h *Host) DirectTCPIP() int64 { return h.directTCPIP.Load() }

// DropConnections closes every connection the host has accepted, as a
// crashed or rebooted host would. The listener stays open.
func (h *Host) DropConnections() {
	h.srv.mu.Lock()
	var mine []net.Conn
	for c, owner := range h.srv.conns {
		if owner == h {
			mine = append(mine, c)
		}
	}
	h.srv.mu.Unlock()
	for _, c := range mine {
		_ = c.Close()
	}
}

// Signals returns the names of the signals received ("INT", "KILL", ...),
// in order of arrival.
func (h *Host) Signals() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.signals...)
}

// Users returns the user name of every authenticated connection, in order.
func (h *Host) Users() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.users...)
}

func (h *Host) acceptLoop() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		if !h.srv.track(c, h) {
			_ = c.Close()
			return
		}
		h.handshakes.Add(1)
		h.srv.handshakeStarted()
		h.srv.wg.Add(1)
		go func() {
			defer h.srv.wg.Done()
			defer h.srv.untrack(c)
			defer c.Close()
			h.serveConn(c)
		}()
	}
}

func (h *Host) serveConn(c net.Conn) {
	s := h.srv
	var once sync.Once
	done := func() { once.Do(func() { s.inflight.Add(-1) }) }
	defer done()

	permit := func(user string) (*ssh.Permissions, error) {
		if len(s.users) > 0 && !s.users[user] {
			return nil, fmt.Errorf("user %q not allowed", user)
		}
		if s.opts.HandshakeDelay > 0 {
			time.Sleep(s.opts.HandshakeDelay)
		}
		// Authentication succeeds right after this returns; record the
		// user and leave the in-flight count first, so a client can never
		// observe its handshake finished before the server accounted for it.
		h.mu.Lock()
		h.users = append(h.users, user)
		h.mu.Unlock()
		done()
		return &ssh.Permissions{}, nil
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(m ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if !s.authorized[string(key.Marshal())] {
				return nil, errors.New("unknown public key")
			}
			return permit(m.User())
		},
	}
	if s.opts.Password != "" {
		cfg.PasswordCallback = func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) != s.opts.Password {
				return nil, errors.New("wrong password")
			}
			return permit(m.User())
		}
	}
	cfg.AddHostKey(h.signer)

	sconn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	done()
	if err != nil {
		return
	}
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)

	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			go h.serveSession(nc, sconn.User())
		case "direct-tcpip":
			if !s.opts.AllowTCPForward {
				_ = nc.Reject(ssh.Prohibited, "port forwarding is disabled")
				continue
			}
			go h.serveDirectTCPIP(nc)
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

func (h *Host) addPgid(pgid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pgids[pgid] = struct{}{}
}

func (h *Host) removePgid(pgid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pgids, pgid)
}

func (h *Host) killAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for pgid := range h.pgids {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
