// Package lab builds, inspects, breaks and destroys a rehearsal cluster of
// real Grid Engine daemons and real OpenSSH servers on one Linux machine.
//
// Every lab host (master, shadow, exec hosts) is a network namespace with
// its own UTS and PID namespace; a controller namespace "<name>-ctl" holds
// the two bridges (scheduler network and file-service network) and is where
// sgerun runs. Nothing is added to the root network namespace, so several
// instances with different names can run side by side. The filesystem is
// shared by all hosts and stands in for the NFS export of a real site.
//
// All state of an instance lives in its state directory: the state file,
// keys, sshd configurations, hosts files, the generated inventory and the
// instance's own SGE_ROOT, cell and spool directories. Down removes all of
// it, also after a crash, by scanning for the instance's namespaces and
// processes.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// DefaultName is the instance name used when Config.Name is empty.
const DefaultName = "sgelab"

// DefaultBaseDir holds the state directories of instances whose
// Config.StateDir is empty: <DefaultBaseDir>/<name>.
const DefaultBaseDir = "/run/sgerun-lab"

// DefaultExecHosts is the number of exec hosts when Config.ExecHosts is 0.
const DefaultExecHosts = 3

// MaxExecHosts bounds Config.ExecHosts.
const MaxExecHosts = 40

// Ports of the lab's Grid Engine daemons.
const (
	QmasterPort = 6444
	ExecdPort   = 6445
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalidConfig is returned for a bad Config or a bad argument
	// (unknown network name, bad instance name).
	ErrInvalidConfig = errors.New("invalid lab config")
	// ErrNotFound means no lab with that name or state directory exists.
	ErrNotFound = errors.New("lab not found")
	// ErrUnknownHost means the host name is not part of the lab.
	ErrUnknownHost = errors.New("unknown lab host")
	// ErrHostDown means the host's init process is gone (after Kill).
	ErrHostDown = errors.New("lab host is down")
	// ErrNoProcess means the daemon to signal is not running on the host.
	ErrNoProcess = errors.New("no such process on lab host")
	// ErrPrerequisite means the machine cannot run a lab: not root, or a
	// required program or package is missing.
	ErrPrerequisite = errors.New("lab prerequisite missing")
)

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)
	// pathRE keeps state paths safe in SGE and sshd config files.
	pathRE = regexp.MustCompile(`^/[A-Za-z0-9._+/-]*$`)
)

// Config describes one lab instance.
type Config struct {
	// Name is the instance name and the prefix of every namespace, host
	// name and process marker: one lowercase letter followed by up to 15
	// lowercase letters or digits. Empty means DefaultName.
	Name string
	// StateDir is the instance's state directory. Empty means
	// DefaultBaseDir/<Name>.
	StateDir string
	// ExecHosts is the number of exec hosts, 1 to MaxExecHosts. Zero means
	// DefaultExecHosts.
	ExecHosts int
	// FenceCommand, when set, becomes cluster.fence_command in the
	// generated inventory: a command run on the controller with
	// SGERUN_FENCE_HOST set, e.g. "sgerun lab --name N kill
	// \"$SGERUN_FENCE_HOST\"". The CLI's up sets this.
	FenceCommand string
	// Spooling is the qmaster's spooling method: SpoolingBDB (the
	// default, Debian's) or SpoolingClassic (flat files).
	Spooling string
	// LocalCommon gives every SGE host (master, shadow, exec hosts) a
	// common/ of its own, as Debian installs it: a copy of the cell's
	// common/ made once the cell is set up, bind-mounted over it in the
	// host's mount namespace. The generated inventory then says
	// common_shared: auto. The controller keeps the original.
	LocalCommon bool
	// Logger receives progress messages. Nil discards them.
	Logger *slog.Logger
}

// The qmaster spooling methods a lab can be built with.
const (
	SpoolingBDB     = "berkeleydb"
	SpoolingClassic = "classic"
)

// normalize fills defaults and validates the config.
func (c Config) normalize() (Config, error) {
	if c.Name == "" {
		c.Name = DefaultName
	}
	switch c.Spooling {
	case "":
		c.Spooling = SpoolingBDB
	case SpoolingBDB, SpoolingClassic:
	default:
		return c, fmt.Errorf("%w: spooling %q: want %s or %s", ErrInvalidConfig, c.Spooling, SpoolingBDB, SpoolingClassic)
	}
	if !nameRE.MatchString(c.Name) {
		return c, fmt.Errorf("%w: name %q must match %s", ErrInvalidConfig, c.Name, nameRE)
	}
	if c.ExecHosts == 0 {
		c.ExecHosts = DefaultExecHosts
	}
	if c.ExecHosts < 1 || c.ExecHosts > MaxExecHosts {
		return c, fmt.Errorf("%w: exec hosts %d not in 1..%d", ErrInvalidConfig, c.ExecHosts, MaxExecHosts)
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(DefaultBaseDir, c.Name)
	}
	abs, err := filepath.Abs(c.StateDir)
	if err != nil {
		return c, fmt.Errorf("state dir: %w", err)
	}
	c.StateDir = abs
	if !pathRE.MatchString(abs) {
		return c, fmt.Errorf("%w: state dir %q: only letters, digits and ._+-/ allowed", ErrInvalidConfig, abs)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// Role is what a lab host is for.
type Role string

// Roles of lab hosts.
const (
	RoleMaster Role = "master"
	RoleShadow Role = "shadow"
	RoleExec   Role = "execd"
)

// Host is one lab host.
type Host struct {
	// Name is the SGE host name, also the host's UTS host name and its
	// network namespace name: "<lab name>-master", "<lab name>-exec1".
	Name string `json:"name"`
	// Short is the name without the lab prefix: "master", "exec1".
	Short string `json:"short"`
	// Role is the host's role.
	Role Role `json:"role"`
	// SchedAddr is the host's address on the scheduler network; Name
	// resolves to it on every lab host.
	SchedAddr string `json:"sched_addr"`
	// FileAddr is the host's address on the file-service network; Name
	// with "-fs" appended resolves to it.
	FileAddr string `json:"file_addr"`
}

// Namespace returns the host's network namespace name.
func (h Host) Namespace() string { return h.Name }

// Lab is a handle on a running (or partly running) lab instance. Its
// methods may be called from several goroutines, except Kill and Boot,
// which rewrite the state file.
type Lab struct {
	st  state
	log *slog.Logger
}

// Name returns the instance name.
func (l *Lab) Name() string { return l.st.Name }

// StateDir returns the instance's state directory.
func (l *Lab) StateDir() string { return l.st.StateDir }

// SGERoot returns the instance's SGE_ROOT.
func (l *Lab) SGERoot() string { return l.st.SGERoot }

// Cell returns the instance's SGE_CELL.
func (l *Lab) Cell() string { return l.st.Cell }

// User returns the ordinary (non-root) user that may submit jobs.
func (l *Lab) User() string { return l.st.User }

// WorkDir returns a directory on the shared filesystem that every lab user
// may write (mode 1777), for job scripts, outputs and markers.
func (l *Lab) WorkDir() string { return filepath.Join(l.st.StateDir, "work") }

// InventoryPath returns the generated sgerun inventory.
func (l *Lab) InventoryPath() string { return filepath.Join(l.st.StateDir, "inventory.yaml") }

// KnownHostsPath returns the known_hosts file listing every lab host.
func (l *Lab) KnownHostsPath() string { return filepath.Join(l.st.StateDir, "known_hosts") }

// IdentityPath returns the controller's private SSH key.
func (l *Lab) IdentityPath() string { return filepath.Join(l.st.StateDir, "id_ed25519") }

// Controller returns the controller's network namespace name.
func (l *Lab) Controller() string { return l.st.Name + "-ctl" }

// ControllerAddrs returns the controller's scheduler and file-service
// network addresses.
func (l *Lab) ControllerAddrs() (sched, file string) {
	return schedNet + ".1", fileNet + ".1"
}

// Hosts returns every lab host, master first, then shadow, then exec hosts.
func (l *Lab) Hosts() []Host {
	out := make([]Host, len(l.st.Hosts))
	for i, h := range l.st.Hosts {
		out[i] = h.Host
	}
	return out
}

// Master returns the SGE name of the master host.
func (l *Lab) Master() string { return l.st.Name + "-master" }

// Shadow returns the SGE name of the shadow host.
func (l *Lab) Shadow() string { return l.st.Name + "-shadow" }

// ExecHosts returns the SGE names of the exec hosts.
func (l *Lab) ExecHosts() []string {
	var out []string
	for _, h := range l.st.Hosts {
		if h.Role == RoleExec {
			out = append(out, h.Name)
		}
	}
	return out
}

// Host looks a host up by SGE name ("sgelab-exec1") or by short name
// ("exec1").
func (l *Lab) Host(name string) (Host, error) {
	hs, err := l.host(name)
	if err != nil {
		return Host{}, err
	}
	return hs.Host, nil
}

func (l *Lab) host(name string) (*hostState, error) {
	for i := range l.st.Hosts {
		h := &l.st.Hosts[i]
		if h.Name == name || h.Short == name {
			return h, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownHost, name)
}

// Open returns the lab named name whose state directory is the default
// one. It fails with ErrNotFound when there is no state file.
func Open(name string) (*Lab, error) {
	cfg, err := Config{Name: name}.normalize()
	if err != nil {
		return nil, err
	}
	return OpenDir(cfg.StateDir)
}

// OpenDir returns the lab whose state directory is dir.
func OpenDir(dir string) (*Lab, error) {
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	return &Lab{st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil
}

// SetLogger sets where progress messages of later calls go; nil discards.
func (l *Lab) SetLogger(lg *slog.Logger) {
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l.log = lg
}

// Up builds the lab described by cfg and returns when qmaster runs on the
// master host and every exec host's execd has reported to it. When the
// lab already exists and is healthy, Up changes nothing. When it exists
// but is broken or half-built (or was built with another number of exec
// hosts), Up tears it down and builds it again.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if err := checkPrerequisites(); err != nil {
		return nil, err
	}
	if st, err := readState(cfg.StateDir); err == nil && st.Name == cfg.Name {
		l := &Lab{st: st, log: cfg.Logger}
		l.st.FenceCommand = cfg.FenceCommand
		if len(l.ExecHosts()) != cfg.ExecHosts {
			l.log.Info("exec host count changed, rebuilding", "lab", cfg.Name)
		} else if herr := l.healthy(ctx); herr != nil {
			l.log.Info("lab unhealthy, rebuilding", "lab", cfg.Name, "reason", herr.Error())
		} else {
			l.log.Info("lab already up", "lab", cfg.Name)
			if err := writeState(l.st); err != nil {
				return nil, err
			}
			if err := l.writeInventory(ctx); err != nil {
				return nil, err
			}
			return l, nil
		}
	}
	if err := teardown(ctx, cfg.Name, cfg.StateDir, cfg.Logger); err != nil {
		return nil, fmt.Errorf("clean old lab: %w", err)
	}
	start := time.Now()
	l := &Lab{st: newState(cfg), log: cfg.Logger}
	if err := l.build(ctx); err != nil {
		// Leave nothing half-built behind; the caller gets the build error.
		if derr := teardown(context.WithoutCancel(ctx), cfg.Name, cfg.StateDir, cfg.Logger); derr != nil {
			return nil, errors.Join(err, fmt.Errorf("clean failed build: %w", derr))
		}
		return nil, err
	}
	l.log.Info("lab up", "lab", cfg.Name, "duration", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// build creates every part of a fresh lab, in order.
func (l *Lab) build(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"state dir", l.makeStateDir},
		{"network", l.makeNetwork},
		{"hosts", l.startInits},
		{"ssh", l.setupSSH},
		{"sge cell", l.makeCell},
		{"local common", l.localCommon},
		{"qmaster", l.startQmaster},
		{"cell config", l.configureCell},
		{"execd", l.startExecds},
		{"inventory", l.writeInventory},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		t := time.Now()
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		l.log.Info("step done", "lab", l.st.Name, "step", s.name, "duration", time.Since(t).Round(time.Millisecond))
		if err := writeState(l.st); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// Down stops every process of the lab and removes its namespaces, links,
// hosts files and state directory.
func (l *Lab) Down(ctx context.Context) error {
	return teardown(ctx, l.st.Name, l.st.StateDir, l.log)
}

// DownByName removes the lab named name whose state directory is
// stateDir (empty: the default), even when its state file is missing or
// damaged. It is what "sgerun lab down" uses after a crash.
func DownByName(ctx context.Context, name, stateDir string, lg *slog.Logger) error {
	cfg, err := Config{Name: name, StateDir: stateDir, Logger: lg}.normalize()
	if err != nil {
		return err
	}
	return teardown(ctx, cfg.Name, cfg.StateDir, cfg.Logger)
}

// checkPrerequisites reports missing privileges and programs.
func checkPrerequisites() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: must run as root", ErrPrerequisite)
	}
	var missing []string
	for _, p := range requiredFiles() {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v (run .ci/install-deps)", ErrPrerequisite, missing)
	}
	return nil
}

// requiredFiles returns the programs and package files a lab needs.
func requiredFiles() []string {
	return []string{
		"/usr/sbin/ip", "/usr/bin/nsenter", "/usr/bin/unshare", "/usr/bin/setsid",
		"/usr/sbin/runuser", "/usr/sbin/sshd", "/usr/bin/pkill", "/usr/bin/ps",
		"/usr/sbin/useradd",
		"/usr/lib/gridengine/sge_qmaster", "/usr/lib/gridengine/sge_execd",
		"/usr/lib/gridengine/qconf", "/usr/lib/gridengine/qsub", "/usr/lib/gridengine/spooldefaults",
		"/usr/share/gridengine/scripts/init_cluster",
		"/usr/share/gridengine/default-bootstrap",
		"/usr/share/gridengine/default-configuration",
		"/usr/share/gridengine/util/rctemplates/sgemaster_template",
		"/usr/share/gridengine/util/rctemplates/sgeexecd_template",
		"/var/lib/gridengine/bin", "/var/lib/gridengine/utilbin",
	}
}
