package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/sshexec"
)

// DefaultOutputCap is how many bytes of each stream a step keeps; the
// journal records the full size.
const DefaultOutputCap = 64 << 10

// SSH is the remote executor: it connects to inventory hosts through one
// sshexec.Pool, so every step of a run reuses one connection per host.
type SSH struct {
	Inventory *inventory.Inventory
	Pool      *sshexec.Pool
	// OutputCap bounds kept output per stream (0: DefaultOutputCap).
	OutputCap int
	local     *Local
}

// NewSSH builds a connector from the inventory's ssh settings.
func NewSSH(inv *inventory.Inventory) (*SSH, error) {
	pool, err := sshexec.NewPool(PoolConfig(inv))
	if err != nil {
		return nil, fmt.Errorf("ssh: %w", err)
	}
	return &SSH{Inventory: inv, Pool: pool}, nil
}

// PoolConfig maps the inventory's ssh section onto the transport. Only
// values the inventory sets explicitly are passed: a default would rank
// above ssh_config.
func PoolConfig(inv *inventory.Inventory) sshexec.Config {
	s := inv.SSH
	cfg := sshexec.Config{
		TOFU:          s.TOFU,
		Jump:          s.Jump,
		SSHConfigFile: s.SSHConfig,
		MaxHandshakes: s.MaxHandshakes,
	}
	if s.IdentityFile != "" {
		cfg.IdentityFiles = []string{s.IdentityFile}
	}
	if s.Explicit.User {
		cfg.User = s.User
	}
	if s.Explicit.Port {
		cfg.Port = s.Port
	}
	if s.Explicit.ConnectTimeout {
		cfg.ConnectTimeout = s.ConnectTimeout
	}
	if s.KnownHosts != "" && s.Explicit.KnownHosts {
		cfg.KnownHostsFiles = []string{s.KnownHosts}
	}
	return cfg
}

// host maps an inventory host onto the transport.
func (c *SSH) host(name string) (sshexec.Host, error) {
	h, ok := c.Inventory.Host(name)
	if !ok {
		return sshexec.Host{}, fmt.Errorf("host %q is not in the inventory", name)
	}
	sh := sshexec.Host{Name: h.Name, IdentityFile: h.IdentityFile}
	if h.Explicit.Address {
		sh.Address = h.Address
	}
	if h.Explicit.User {
		sh.User = h.User
	}
	if h.Explicit.Port {
		sh.Port = h.Port
	}
	return sh, nil
}

// Target returns the host's target over its pooled connection.
func (c *SSH) Target(ctx context.Context, name string) (Target, error) {
	h, err := c.host(name)
	if err != nil {
		return nil, err
	}
	cl, err := c.Pool.Client(ctx, h)
	if err != nil {
		return nil, err
	}
	return &remoteTarget{name: name, client: cl, cap: c.cap()}, nil
}

// TargetAt returns a target for host reached at another address (its fence
// network), over a connection of its own.
func (c *SSH) TargetAt(ctx context.Context, name, address string) (Target, error) {
	h, err := c.host(name)
	if err != nil {
		return nil, err
	}
	h.Name, h.Alias, h.Address = name+"@"+address, name, address
	cl, err := c.Pool.Client(ctx, h)
	if err != nil {
		return nil, err
	}
	return &remoteTarget{name: name, client: cl, cap: c.cap()}, nil
}

// Reach checks SSH reachability by opening (or reusing) the connection and
// running `true`.
func (c *SSH) Reach(ctx context.Context, name string) error {
	t, err := c.Target(ctx, name)
	if err != nil {
		return err
	}
	out, err := t.Query(ctx, "true", nil)
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("`true` exited %d", out.ExitCode)
	}
	return nil
}

// Local returns the controller target (see Local).
func (c *SSH) Local() Target {
	if c.local == nil {
		c.local = &Local{Cap: c.cap()}
	}
	return c.local
}

// Close closes every connection.
func (c *SSH) Close() error { return c.Pool.Close() }

func (c *SSH) cap() int {
	if c.OutputCap > 0 {
		return c.OutputCap
	}
	return DefaultOutputCap
}

// remoteTarget is a Target over one SSH connection.
type remoteTarget struct {
	name   string
	client *sshexec.Client
	cap    int
}

func (t *remoteTarget) Name() string { return t.name }

// Query and Exec run a command the same way on a host: whether it changes
// the host is the caller's promise, which only a dry run acts on (see
// Dry).
func (t *remoteTarget) Query(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	return t.run(ctx, cmd, stdin)
}

func (t *remoteTarget) Exec(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	return t.run(ctx, cmd, stdin)
}

func (t *remoteTarget) run(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	stdout, stderr := sshexec.NewCappedBuffer(t.cap), sshexec.NewCappedBuffer(t.cap)
	var in *bytes.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	var err error
	if in != nil {
		err = t.client.Run(ctx, cmd, in, stdout, stderr)
	} else {
		err = t.client.Run(ctx, cmd, nil, stdout, stderr)
	}
	out := Output{Cmd: cmd, Stdout: stdout.String(), Stderr: stderr.String(),
		StdoutBytes: stdout.Total(), StderrBytes: stderr.Total()}
	var ee *sshexec.ExitError
	if errors.As(err, &ee) {
		out.ExitCode = ee.Code
		if ee.Signal != "" && ee.Code == 0 {
			out.ExitCode = 128
		}
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w", t.name, err)
	}
	return out, nil
}

func (t *remoteTarget) ReadFile(ctx context.Context, path string) (File, error) {
	data, fi, err := t.client.ReadFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return File{}, nil
	}
	if err != nil {
		return File{}, err
	}
	return File{Data: data, Mode: fi.Mode.Perm(), UID: fi.UID, GID: fi.GID, Exists: true}, nil
}

func (t *remoteTarget) WriteFile(ctx context.Context, path string, f File) error {
	return t.client.WriteFileAtomic(ctx, path, f.Data, f.Mode.Perm(), f.UID, f.GID)
}
