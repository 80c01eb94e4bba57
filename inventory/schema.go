package inventory

import (
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/yamlx"
)

// Defaults of every optional setting. defaults() is the one place they are
// applied. The cell's and the gate's come from package sge, which the
// sge_gate step takes its defaults from too.
const (
	DefaultSGECell             = sge.DefaultCell
	DefaultQmasterPort         = sge.DefaultQmasterPort
	DefaultExecdPort           = sge.DefaultExecdPort
	DefaultSSHPort             = 22
	DefaultKnownHosts          = "~/.ssh/known_hosts"
	DefaultConnectTimeout      = 10 * time.Second
	DefaultMaxHandshakes       = 32
	DefaultFanout              = 64
	DefaultAntiflap            = sge.DefaultAntiflap
	DefaultExecTolerate        = "10%"
	DefaultQmasterStartTimeout = 120 * time.Second
	DefaultHeartbeatStale      = sge.DefaultHeartbeatStale
	DefaultHookTimeout         = 60 * time.Second
	DefaultWatchInterval       = 5 * time.Second
	DefaultWatchConfirm        = 20 * time.Second
)

// file is the schema of an inventory file: its fields and their yaml tags
// (and those of Cluster, SSH, Policy, Hooks and Watch) are the keys an
// inventory may have. Parse decodes into it with yamlx, then validates.
type file struct {
	Cluster Cluster             `yaml:"cluster"`
	SSH     SSH                 `yaml:"ssh"`
	Hosts   yamlx.Map[hostFile] `yaml:"hosts"`
	// Roles are read by hand: a role is a host name, a list of them or
	// (execd) an execdFile mapping.
	Roles  yamlx.Map[yaml.Node] `yaml:"roles"`
	Policy Policy               `yaml:"policy"`
	Hooks  Hooks                `yaml:"hooks"`
	Watch  Watch                `yaml:"watch"`
}

// hostFile is one entry of hosts: what a host (or a pattern of hosts) sets
// itself, before ssh: defaults apply.
type hostFile struct {
	Address      string `yaml:"address"`
	FenceAddress string `yaml:"fence_address"`
	Port         int    `yaml:"port"`
	User         string `yaml:"user"`
	IdentityFile string `yaml:"identity_file"`
}

// execdFile is roles.execd given as a mapping (see SGEExecHosts). Add and
// Exclude are a name or a list of names, read by nameList.
type execdFile struct {
	FromSGE   bool       `yaml:"from_sge"`
	Hostgroup string     `yaml:"hostgroup"`
	Add       *yaml.Node `yaml:"add"`
	Exclude   *yaml.Node `yaml:"exclude"`
}

// defaults returns a file holding the default of every optional setting.
func defaults() file {
	tol, _ := ParseTolerance(DefaultExecTolerate)
	return file{
		Cluster: Cluster{
			SGECell:      DefaultSGECell,
			QmasterPort:  DefaultQmasterPort,
			ExecdPort:    DefaultExecdPort,
			CommonShared: SharedAuto,
		},
		SSH: SSH{
			Port:           DefaultSSHPort,
			KnownHosts:     DefaultKnownHosts,
			ConnectTimeout: DefaultConnectTimeout,
			MaxHandshakes:  DefaultMaxHandshakes,
		},
		Policy: Policy{
			Fanout:              DefaultFanout,
			Antiflap:            DefaultAntiflap,
			QmasterStartTimeout: DefaultQmasterStartTimeout,
			HeartbeatStale:      DefaultHeartbeatStale,
			ExecTolerate:        tol,
		},
		Hooks: Hooks{Timeout: DefaultHookTimeout},
		Watch: Watch{Interval: DefaultWatchInterval, Confirm: DefaultWatchConfirm},
	}
}

// Commands are command lines for /bin/sh. In an inventory they are one
// command line or a list of them.
type Commands []string

// UnmarshalNode decodes a command line or a list of them (yamlx.Unmarshaler).
func (c *Commands) UnmarshalNode(n *yaml.Node, name string, l *diag.List) bool {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
	default:
		l.At(n, "%s must be a list of command lines, not %s", name, yamlx.KindName(n))
		return false
	}
	ok := true
	var out Commands
	for _, it := range items {
		it = yamlx.Deref(it)
		switch {
		case it.Kind != yaml.ScalarNode || yamlx.IsNull(it):
			l.At(it, "%s: want a command line, not %s", name, yamlx.KindName(it))
		case strings.TrimSpace(it.Value) == "":
			l.At(it, "%s: empty command line", name)
		case strings.ContainsRune(it.Value, 0):
			l.At(it, "%s: command line contains a NUL byte", name)
		default:
			out = append(out, it.Value)
			continue
		}
		ok = false
	}
	*c = out
	return ok
}

// UnmarshalNode decodes a count or a percentage (yamlx.Unmarshaler).
func (t *Tolerance) UnmarshalNode(n *yaml.Node, name string, l *diag.List) bool {
	if n.Kind != yaml.ScalarNode {
		l.At(n, "%s must be a string, not %s", name, yamlx.KindName(n))
		return false
	}
	v, err := ParseTolerance(n.Value)
	if err != nil {
		l.At(n, "%s: %v", name, err)
		return false
	}
	*t = v
	return true
}
