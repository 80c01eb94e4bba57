package sshexec

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
)

func netListen(t *testing.T) (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func TestOneConnectionPerHost(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 3, SFTP: true})
	p := newPool(t, e.config())
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for _, h := range e.srv.Hosts() {
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := testCtx(t)
				c, err := p.Client(ctx, hostFor(h))
				if err != nil {
					errs <- err
					return
				}
				path := filepath.Join(dir, fmt.Sprintf("%s-%d", h.Name, i))
				if err := c.Run(ctx, "true", nil, nil, nil); err != nil {
					errs <- err
				}
				if err := c.WriteFileAtomic(ctx, path, []byte("x"), 0o644, -1, -1); err != nil {
					errs <- err
				}
				if _, _, err := c.ReadFile(ctx, path); err != nil {
					errs <- err
				}
				if _, err := c.Stat(ctx, path); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.Handshakes(); n != 3 {
		t.Errorf("pool handshakes = %d, want 3", n)
	}
	for _, h := range e.srv.Hosts() {
		if n := h.Handshakes(); n != 1 {
			t.Errorf("%s: server handshakes = %d, want 1", h.Name, n)
		}
	}
}

func TestConcurrentClientDialsOnce(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1, HandshakeDelay: 100 * time.Millisecond})
	h := e.srv.Hosts()[0]
	p := newPool(t, e.config())
	clients := make([]*Client, 50)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Client(testCtx(t), hostFor(h))
			if err != nil {
				t.Error(err)
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	for _, c := range clients {
		if c != clients[0] {
			t.Fatalf("callers got different clients")
		}
	}
	if p.Handshakes() != 1 || h.Handshakes() != 1 {
		t.Errorf("handshakes pool=%d server=%d, want 1", p.Handshakes(), h.Handshakes())
	}
}

func TestMaxHandshakes(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 20, HandshakeDelay: 50 * time.Millisecond})
	cfg := e.config()
	cfg.MaxHandshakes = 3
	p := newPool(t, cfg)
	var wg sync.WaitGroup
	for _, h := range e.srv.Hosts() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Client(testCtx(t), hostFor(h)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	peak := e.srv.PeakHandshakes()
	if peak > 3 {
		t.Errorf("peak concurrent handshakes = %d, want <= 3", peak)
	}
	if peak < 2 {
		t.Errorf("peak concurrent handshakes = %d: handshakes did not overlap at all", peak)
	}
	if p.Handshakes() != 20 {
		t.Errorf("pool handshakes = %d, want 20", p.Handshakes())
	}
}

func TestBrokenConnectionIsRedialled(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	h := e.srv.Hosts()[0]
	cfg := e.config()
	cfg.Keepalive = 20 * time.Millisecond
	p := newPool(t, cfg)
	c, err := p.Client(testCtx(t), hostFor(h))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a few keepalives must not hurt
	if err := c.Run(testCtx(t), "true", nil, nil, nil); err != nil {
		t.Fatalf("run with keepalives: %v", err)
	}

	h.DropConnections()
	var c2 *Client
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c2, err = p.Client(testCtx(t), hostFor(h)); err != nil {
			t.Fatal(err)
		}
		if c2 != c {
			break
		}
	}
	if c2 == c {
		t.Fatal("the pool kept the broken connection")
	}
	err = c.Run(testCtx(t), "true", nil, nil, nil)
	var ce *ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, ErrUnreachable) {
		t.Errorf("run on the broken client: %v, want *ConnectError wrapping ErrUnreachable", err)
	}
	if err := c2.Run(testCtx(t), "true", nil, nil, nil); err != nil {
		t.Errorf("run on the new client: %v", err)
	}
	if p.Handshakes() != 2 || h.Handshakes() != 2 {
		t.Errorf("handshakes pool=%d server=%d, want 2", p.Handshakes(), h.Handshakes())
	}
}

func TestClosedPool(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1})
	p, err := NewPool(e.config())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(testCtx(t), hostFor(e.srv.Hosts()[0])); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(testCtx(t), hostFor(e.srv.Hosts()[0])); !errors.Is(err, ErrClosed) {
		t.Errorf("Client after Close: %v, want ErrClosed", err)
	}
}
