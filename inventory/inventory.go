// Package inventory reads and validates an sgerun inventory: the hosts and
// roles of one Grid Engine cluster and the settings of the failover around
// it.
//
// Parse checks the whole file and reports every problem at once as a
// *diag.List with file:line:col positions; the error matches
// diag.ErrInvalid. A parsed Inventory is complete: defaults are filled in,
// host patterns are expanded and every host reference is resolved, so
// consumers never re-check it.
//
// The schema is written once: the file struct (schema.go) with Cluster,
// SSH, Policy, Hooks and Watch, whose yaml tags are the keys an inventory
// may have. Parse decodes into it with yamlx (unknown keys, wrong types),
// then validates the values; defaults() holds every default, and
// inventory.example.yaml documents every key (a test walks both).
//
// Paths (ssh.identity_file, ssh.known_hosts, ssh.ssh_config and per-host
// identity_file) are stored as written: a leading "~" is expanded by the
// SSH transport, not here, and relative paths are relative to the working
// directory of the process.
package inventory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgerun/sgerun/yamlx"
)

// Role names that the failover itself gives meaning to. Other role names
// are free for runbooks to use.
const (
	// RoleMaster is the host running sge_qmaster now (exactly one).
	RoleMaster = "master"
	// RoleShadow is the host that takes over (exactly one).
	RoleShadow = "shadow"
	// RoleHeads are the two hosts that can run sge_qmaster, the preferred
	// first: an alternative to naming master and shadow (see Heads).
	RoleHeads = "heads"
	// RoleExecd are the hosts running sge_execd.
	RoleExecd = "execd"
	// RoleWitnesses are the hosts that vote on whether the master is down.
	RoleWitnesses = "witnesses"
	// SelectAll selects every host of the inventory.
	SelectAll = "all"
)

// Values of Cluster.CommonShared.
const (
	// SharedAuto lets sgerun find out whether $SGE_ROOT/$SGE_CELL/common is
	// shared between hosts.
	SharedAuto = "auto"
	// SharedYes says common/ is one shared directory (NFS).
	SharedYes = "yes"
	// SharedNo says every host has its own common/ (the Debian layout), so
	// files such as act_qmaster must be written on every host.
	SharedNo = "no"
)

// ErrUnknown is matched (errors.Is) when Select meets a name that is neither
// a host nor a role.
var ErrUnknown = errors.New("unknown host or role")

// Inventory is a parsed and validated inventory.
type Inventory struct {
	// File is the name the inventory was parsed under.
	File string
	// Cluster describes the Grid Engine installation.
	Cluster Cluster
	// SSH holds the connection defaults.
	SSH SSH
	// Hosts are the expanded hosts, in file order.
	Hosts []*Host
	// Roles maps a role to its host names, expanded, de-duplicated and in
	// the order they were listed. Master and shadow hold exactly one host;
	// execd and witnesses are always present, possibly empty.
	Roles map[string][]string
	// Heads are the two hosts that can run sge_qmaster: the preferred head
	// (roles.heads[0], or roles.master) first, the standby (roles.heads[1],
	// or roles.shadow) second. The master and shadow roles of a parsed
	// inventory are these two in this order; WithHeads gives a view for
	// the other direction.
	Heads []string
	// Follow is set when the file names roles.heads: takeover and watch then
	// follow act_qmaster (from the active head to the other one) instead of
	// going from roles.master to roles.shadow as the older form does.
	Follow bool
	// ExecFromSGE, when not nil, says the execd role is the exec host list
	// SGE keeps (qconf -sel), read at run time; WithExecHosts applies it.
	// Roles["execd"] then holds only the hosts of its add list that
	// hosts: names.
	ExecFromSGE *SGEExecHosts
	// Policy holds the failover's decisions and limits.
	Policy Policy
	// Hooks are run on the controller around a takeover.
	Hooks Hooks
	// Watch configures the monitor.
	Watch Watch

	// byName indexes Hosts by lower-cased name; nil for an Inventory built
	// by hand, in which case lookups scan Hosts.
	byName map[string]*Host
	// witnessesGiven and quorumGiven record whether the file set them, or
	// they were derived (and are derived again by WithExecHosts).
	witnessesGiven, quorumGiven bool
}

// Host is one SGE host. Its connection fields are the effective values:
// per-host settings where the inventory gives them, ssh: settings
// otherwise.
type Host struct {
	// Name is the SGE host name, as act_qmaster holds it.
	Name string
	// Address is what SSH connects to; the name unless set. IPv6 addresses
	// have no brackets.
	Address string
	// FenceAddress is the host's out-of-band (IPMI/BMC) address, or empty.
	FenceAddress string
	// User is the SSH login user.
	User string
	// IdentityFile is the SSH private key file, as written, or empty.
	IdentityFile string
	// Port is the SSH port.
	Port int
	// Explicit says which of Address, User and Port the inventory sets
	// (on the host, or under ssh:); the others are defaults, which the
	// host's ssh_config overrides.
	Explicit Explicit
	// Line and Col locate the host's key in the inventory file.
	Line, Col int
}

// Explicit marks the connection settings an inventory sets itself, as
// opposed to defaults. An explicit value ranks above ssh_config; a default
// ranks below it.
type Explicit struct {
	// Address: the host sets address.
	Address bool
	// User: the host or ssh: sets user.
	User bool
	// Port: the host or ssh: sets port.
	Port bool
	// KnownHosts: ssh: sets known_hosts (SSH.Explicit only).
	KnownHosts bool
	// ConnectTimeout: ssh: sets connect_timeout (SSH.Explicit only).
	ConnectTimeout bool
}

// Cluster describes the Grid Engine installation.
type Cluster struct {
	// SGERoot is $SGE_ROOT, an absolute path (cleaned).
	SGERoot string `yaml:"sge_root"`
	// SGECell is $SGE_CELL.
	SGECell string `yaml:"sge_cell"`
	// QmasterPort is $SGE_QMASTER_PORT.
	QmasterPort int `yaml:"qmaster_port"`
	// ExecdPort is $SGE_EXECD_PORT.
	ExecdPort int `yaml:"execd_port"`
	// CommonShared is SharedAuto, SharedYes or SharedNo.
	CommonShared string `yaml:"common_shared"`
	// FenceCommand is run on the controller to power off the old master,
	// with SGERUN_FENCE_HOST and SGERUN_FENCE_ADDRESS in its environment.
	// Empty means no fencing command.
	FenceCommand string `yaml:"fence_command"`
	// RCMaster is the absolute path of the site's qmaster rc script, or
	// empty to auto-detect $SGE_ROOT/$SGE_CELL/common/sgemaster.
	RCMaster string `yaml:"rc_master"`
	// RCExecd is the absolute path of the site's execd rc script, or empty
	// to auto-detect $SGE_ROOT/$SGE_CELL/common/sgeexecd.
	RCExecd string `yaml:"rc_execd"`
	// SharedDir is a directory on the filesystem master and shadow share
	// (the NFS export holding the spool). sgerun keeps its takeover lock,
	// anti-flap record and pending-fence record there. Empty means the
	// directory that holds bootstrap's qmaster_spool_dir.
	SharedDir string `yaml:"shared_dir"`
}

// SSH holds the connection defaults for every host. Values the file sets
// (see Explicit) rank above ssh_config; the defaults filled in here rank
// below it.
type SSH struct {
	// User is the login user; the current user when not set.
	User string `yaml:"user"`
	// Port is the SSH port; 22 when not set.
	Port int `yaml:"port"`
	// IdentityFile is a private key file, or empty for the agent and
	// ssh_config only.
	IdentityFile string `yaml:"identity_file"`
	// KnownHosts is the known_hosts file used for strict host key checks.
	KnownHosts string `yaml:"known_hosts"`
	// TOFU accepts and records the key of a host not yet in KnownHosts.
	TOFU bool `yaml:"tofu"`
	// Jump is a bastion "[user@]host[:port]" (see ParseJump), or several
	// separated by commas, outermost first, or empty.
	Jump string `yaml:"jump"`
	// SSHConfig is an ssh_config file; empty means ~/.ssh/config when it
	// exists, and "none" disables it.
	SSHConfig string `yaml:"ssh_config"`
	// ConnectTimeout bounds one TCP connect plus SSH handshake.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxHandshakes bounds concurrent SSH handshakes.
	MaxHandshakes int `yaml:"max_handshakes"`
	// Explicit says which of User, Port, KnownHosts and ConnectTimeout
	// the file sets; the others hold defaults, which ssh_config overrides.
	Explicit Explicit `yaml:"-"`
}

// Policy holds the failover's decisions and limits.
type Policy struct {
	// Fanout is the most hosts one step works on at the same time.
	Fanout int `yaml:"fanout"`
	// Quorum is how many voters (witnesses plus the shadow) must agree that
	// the master is down.
	Quorum int `yaml:"quorum"`
	// Antiflap is the least time between two automatic takeovers.
	Antiflap time.Duration `yaml:"antiflap"`
	// QmasterStartTimeout bounds the wait for a new qmaster to answer.
	QmasterStartTimeout time.Duration `yaml:"qmaster_start_timeout"`
	// HeartbeatStale is the age at which the qmaster heartbeat counts as
	// stale.
	HeartbeatStale time.Duration `yaml:"heartbeat_stale"`
	// ExecTolerate is how many execd hosts may fail a step.
	ExecTolerate Tolerance `yaml:"exec_tolerate"`
	// AllowUnfenced lets an unattended takeover (watch, --yes without
	// --unfenced) proceed when no way to fence the old master works.
	AllowUnfenced bool `yaml:"allow_unfenced"`
}

// Hooks are command lines run on the controller around a takeover.
type Hooks struct {
	// PreTakeover runs before a takeover starts.
	PreTakeover Commands `yaml:"pre_takeover"`
	// PostTakeover runs after a takeover succeeded.
	PostTakeover Commands `yaml:"post_takeover"`
	// PostFailure runs after a takeover failed.
	PostFailure Commands `yaml:"post_failure"`
	// Timeout bounds each hook command.
	Timeout time.Duration `yaml:"timeout"`
}

// Watch configures the monitor that triggers automatic takeovers.
type Watch struct {
	// Interval is the time between two checks.
	Interval time.Duration `yaml:"interval"`
	// Confirm is how long the master must look down before a takeover.
	Confirm time.Duration `yaml:"confirm"`
}

// Host returns the host with this name (compared without regard to case).
func (inv *Inventory) Host(name string) (*Host, bool) {
	if inv.byName != nil {
		h, ok := inv.byName[strings.ToLower(name)]
		return h, ok
	}
	for _, h := range inv.Hosts {
		if strings.EqualFold(h.Name, name) {
			return h, true
		}
	}
	return nil, false
}

// Role returns a copy of the host names of a role, or nil for an unknown
// role.
func (inv *Inventory) Role(name string) []string {
	return slices.Clone(inv.Roles[name])
}

// Select resolves a host selection. Each item is "all", a role name, a host
// name or a pdsh-style pattern of host names ("gc[001-004]"); a name that
// is both a role and a host (only master, shadow, execd and witnesses may
// be) selects the role. The result
// holds each host once, in inventory order. Every item that names no known
// host is reported; those errors match ErrUnknown.
func (inv *Inventory) Select(sel []string) ([]string, error) {
	want := make(map[string]bool)
	var errs []error
	for _, item := range sel {
		if item == SelectAll {
			for _, h := range inv.Hosts {
				want[h.Name] = true
			}
			continue
		}
		if names, ok := inv.Roles[item]; ok {
			for _, n := range names {
				want[n] = true
			}
			continue
		}
		names, err := ExpandRange(item)
		if err != nil {
			errs = append(errs, fmt.Errorf("select %q: %w", item, err))
			continue
		}
		for _, n := range names {
			h, ok := inv.Host(n)
			if !ok {
				errs = append(errs, fmt.Errorf("select %q: %w %q", item, ErrUnknown, n))
				continue
			}
			want[h.Name] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []string
	for _, h := range inv.Hosts {
		if want[h.Name] {
			out = append(out, h.Name)
		}
	}
	return out, nil
}

// TemplateData returns a fresh view of the inventory for text/template,
// keyed like the YAML:
//
//   - "cluster": every key of cluster: (sge_root, sge_cell, qmaster_port,
//     ...), as parsed;
//   - "hosts": host name -> {name, address, fence_address, port, user};
//   - "host_names": every host name in inventory order;
//   - "roles": role -> []string of host names;
//   - "policy": fanout, quorum, exec_tolerate ("10%"), and antiflap,
//     qmaster_start_timeout and heartbeat_stale both as a duration string
//     ("30m0s") and as whole seconds under the same key with a "_seconds"
//     suffix;
//   - "ssh": user, port.
//
// Callers may modify the result.
func (inv *Inventory) TemplateData() map[string]any {
	hosts := make(map[string]any, len(inv.Hosts))
	names := make([]string, 0, len(inv.Hosts))
	for _, h := range inv.Hosts {
		hosts[h.Name] = map[string]any{
			"name":          h.Name,
			"address":       h.Address,
			"fence_address": h.FenceAddress,
			"port":          h.Port,
			"user":          h.User,
		}
		names = append(names, h.Name)
	}
	roles := make(map[string]any, len(inv.Roles))
	for r, hs := range inv.Roles {
		roles[r] = slices.Clone(hs)
	}
	p := inv.Policy
	return map[string]any{
		"cluster":    yamlx.Values(inv.Cluster),
		"hosts":      hosts,
		"host_names": names,
		"roles":      roles,
		"policy": map[string]any{
			"fanout":                        p.Fanout,
			"quorum":                        p.Quorum,
			"exec_tolerate":                 p.ExecTolerate.String(),
			"antiflap":                      p.Antiflap.String(),
			"antiflap_seconds":              int(p.Antiflap / time.Second),
			"qmaster_start_timeout":         p.QmasterStartTimeout.String(),
			"qmaster_start_timeout_seconds": int(p.QmasterStartTimeout / time.Second),
			"heartbeat_stale":               p.HeartbeatStale.String(),
			"heartbeat_stale_seconds":       int(p.HeartbeatStale / time.Second),
			"allow_unfenced":                p.AllowUnfenced,
		},
		"ssh": map[string]any{
			"user": inv.SSH.User,
			"port": inv.SSH.Port,
		},
	}
}
