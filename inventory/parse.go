package inventory

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/sge"
)

// Defaults of every optional setting. The cell's and the gate's come from
// package sge, which the sge_gate step takes its defaults from too.
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
	DefaultWatchInterval       = 10 * time.Second
	DefaultWatchConfirm        = 30 * time.Second
)

// heartbeatPeriod is how often sge_qmaster rewrites its heartbeat file; a
// staleness threshold at or below it would see every master as dead.
const heartbeatPeriod = 30 * time.Second

// maxRoleNames bounds the names all roles together may expand to, so that a
// small file cannot make parsing slow.
const maxRoleNames = 10 * MaxExpand

// maxAliasHops bounds alias chains (a chain of anchors, never a cycle, but
// cheap to bound).
const maxAliasHops = 64

// Load reads the inventory file at path and parses it with Parse.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load inventory: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates an inventory. file names the input in error
// messages. Every problem found is reported in one *diag.List, each with
// its line and column; the error matches diag.ErrInvalid.
func Parse(file string, data []byte) (*Inventory, error) {
	p := &parser{l: &diag.List{File: file}}
	root := p.document(data)
	if root == nil {
		return nil, p.l.Err()
	}
	inv := p.inventory(root)
	if err := p.l.Err(); err != nil {
		return nil, err
	}
	inv.File = file
	return inv, nil
}

// parser walks one YAML document, collecting problems in l.
type parser struct {
	l *diag.List
	// brokenHosts is set when the hosts section had errors; references to
	// unknown hosts are then not reported, as they most likely follow from
	// those errors.
	brokenHosts bool
	// roleNames counts the names expanded in roles so far, against
	// maxRoleNames.
	roleNames    int
	roleOverflow bool
}

// entry is one key/value pair of a mapping.
type entry struct {
	key, val *yaml.Node
}

// document decodes data into its root node, or returns nil after recording
// why it cannot.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.l.AtPos(1, 1, "empty inventory: want a mapping with cluster, hosts and roles")
		} else {
			p.l.Add(diag.FromYAML(p.l.File, data, err))
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		p.l.At(at, "only one YAML document is allowed")
	case !errors.Is(err, io.EOF):
		p.l.Add(diag.FromYAML(p.l.File, data, err))
	}
	if len(doc.Content) == 0 {
		p.l.AtPos(1, 1, "empty inventory: want a mapping with cluster, hosts and roles")
		return nil
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		p.l.At(root, "empty inventory: want a mapping with cluster, hosts and roles")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.l.At(root, "inventory must be a mapping, not %s", kindName(root))
		return nil
	}
	return root
}

// inventory walks the root mapping.
func (p *parser) inventory(root *yaml.Node) *Inventory {
	inv := &Inventory{
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
			ExecTolerate:        Tolerance{Percent: 10},
		},
		Hooks: Hooks{Timeout: DefaultHookTimeout},
		Watch: Watch{Interval: DefaultWatchInterval, Confirm: DefaultWatchConfirm},
	}
	top := p.fields(root, "inventory",
		"cluster", "ssh", "hosts", "roles", "policy", "hooks", "watch")
	p.cluster(root, top["cluster"], &inv.Cluster)
	p.ssh(root, top["ssh"], &inv.SSH)
	overrides := p.hosts(root, top["hosts"], inv)
	p.resolveHosts(inv, overrides)
	p.roles(root, top["roles"], inv)
	p.policy(top["policy"], inv)
	p.hooks(top["hooks"], &inv.Hooks)
	p.watch(top["watch"], &inv.Watch)
	return inv
}

func (p *parser) cluster(root *yaml.Node, e *entry, c *Cluster) {
	if e == nil {
		p.l.At(root, "missing required key \"cluster\" (with at least sge_root)")
		return
	}
	f := p.fields(e.val, "cluster", "sge_root", "sge_cell", "qmaster_port", "execd_port",
		"common_shared", "fence_command", "rc_master", "rc_execd", "shared_dir")
	if v, ok := p.absPath(f["sge_root"], "cluster.sge_root"); ok {
		c.SGERoot = v
	} else if f["sge_root"] == nil || isNull(deref(f["sge_root"].val)) {
		p.l.At(e.key, "missing required key \"cluster.sge_root\" ($SGE_ROOT, an absolute path)")
	}
	if n, ok := p.str(f["sge_cell"], "cluster.sge_cell"); ok {
		if err := checkName(n.Value); err != nil {
			p.l.At(n, "bad cluster.sge_cell %q: %v", n.Value, err)
		} else {
			c.SGECell = n.Value
		}
	}
	p.port(f["qmaster_port"], "cluster.qmaster_port", &c.QmasterPort)
	p.port(f["execd_port"], "cluster.execd_port", &c.ExecdPort)
	if c.QmasterPort == c.ExecdPort && f["execd_port"] != nil {
		p.l.At(f["execd_port"].val, "cluster.execd_port must differ from cluster.qmaster_port")
	}
	if n, ok := p.str(f["common_shared"], "cluster.common_shared"); ok {
		switch n.Value {
		case SharedAuto, SharedYes, SharedNo:
			c.CommonShared = n.Value
		default:
			p.l.At(n, "cluster.common_shared must be \"auto\", \"yes\" or \"no\", not %q", n.Value)
		}
	}
	if n, ok := p.str(f["fence_command"], "cluster.fence_command"); ok {
		if strings.ContainsRune(n.Value, 0) {
			p.l.At(n, "cluster.fence_command contains a NUL byte")
		} else {
			c.FenceCommand = n.Value
		}
	}
	if v, ok := p.absPath(f["rc_master"], "cluster.rc_master"); ok {
		c.RCMaster = v
	}
	if v, ok := p.absPath(f["rc_execd"], "cluster.rc_execd"); ok {
		c.RCExecd = v
	}
	if v, ok := p.absPath(f["shared_dir"], "cluster.shared_dir"); ok {
		c.SharedDir = v
	}
}

func (p *parser) ssh(root *yaml.Node, e *entry, s *SSH) {
	var f map[string]*entry
	if e != nil {
		f = p.fields(e.val, "ssh", "user", "port", "identity_file", "known_hosts", "tofu",
			"jump", "ssh_config", "connect_timeout", "max_handshakes")
	}
	if n, ok := p.str(f["user"], "ssh.user"); ok {
		if err := checkUser(n.Value); err != nil {
			p.l.At(n, "bad ssh.user %q: %v", n.Value, err)
		}
		s.User = n.Value
		s.Explicit.User = true
	} else {
		s.User = currentUser()
		if s.User == "" {
			at := root
			if e != nil {
				at = e.key
			}
			p.l.At(at, "ssh.user is not set and the current user is unknown")
		}
	}
	p.port(f["port"], "ssh.port", &s.Port)
	s.Explicit.Port = present(f["port"])
	if v, ok := p.path(f["identity_file"], "ssh.identity_file"); ok {
		s.IdentityFile = v
	}
	if v, ok := p.path(f["known_hosts"], "ssh.known_hosts"); ok {
		if v == "" {
			p.l.At(f["known_hosts"].val, "ssh.known_hosts must not be empty: host keys are always verified")
		}
		s.KnownHosts = v
		s.Explicit.KnownHosts = true
	}
	if b, ok := p.boolean(f["tofu"], "ssh.tofu"); ok {
		s.TOFU = b
	}
	if n, ok := p.str(f["jump"], "ssh.jump"); ok && n.Value != "" {
		for _, hop := range strings.Split(n.Value, ",") {
			if _, err := ParseJump(strings.TrimSpace(hop)); err != nil {
				p.l.At(n, "ssh.jump: %v (want [user@]host[:port], hops separated by commas)", err)
				break
			}
		}
		s.Jump = n.Value
	}
	if v, ok := p.path(f["ssh_config"], "ssh.ssh_config"); ok {
		s.SSHConfig = v
	}
	p.duration(f["connect_timeout"], "ssh.connect_timeout", &s.ConnectTimeout)
	s.Explicit.ConnectTimeout = present(f["connect_timeout"])
	p.integer(f["max_handshakes"], "ssh.max_handshakes", 1, 1<<20, &s.MaxHandshakes)
}

// hostOverride is what a host entry sets, before ssh: defaults apply.
type hostOverride struct {
	user, identityFile string
	port               int
}

// hosts expands the host entries into inv.Hosts and returns each host's
// own connection settings, by host.
func (p *parser) hosts(root *yaml.Node, e *entry, inv *Inventory) map[*Host]hostOverride {
	inv.byName = make(map[string]*Host)
	over := make(map[*Host]hostOverride)
	if e == nil {
		p.l.At(root, "missing required key \"hosts\"")
		p.brokenHosts = true
		return over
	}
	entries, ok := p.entries(e.val, "hosts")
	if !ok {
		p.brokenHosts = true
		return over
	}
	if len(entries) == 0 {
		p.brokenHosts = true
		p.l.At(e.key, "hosts is empty: the master and the shadow at least must be listed")
		return over
	}
	for _, he := range entries {
		pattern := he.key.Value
		where := "hosts." + label(pattern)
		f := p.fields(he.val, where, "address", "fence_address", "port", "user", "identity_file")
		size, err := patternSize(pattern)
		if err != nil {
			p.l.At(he.key, "%v", err)
			p.brokenHosts = true
			continue
		}
		if len(inv.Hosts)+size > MaxExpand {
			p.l.At(he.key, "more than %d hosts in the inventory", MaxExpand)
			p.brokenHosts = true
			return over
		}
		names, err := ExpandRange(pattern)
		if err != nil {
			p.l.At(he.key, "%v", err)
			p.brokenHosts = true
			continue
		}
		var o hostOverride
		p.port(f["port"], where+".port", &o.port)
		if n, ok := p.str(f["user"], where+".user"); ok {
			if err := checkUser(n.Value); err != nil {
				p.l.At(n, "bad user %q: %v", n.Value, err)
			}
			o.user = n.Value
		}
		if v, ok := p.path(f["identity_file"], where+".identity_file"); ok {
			o.identityFile = v
		}
		address := p.address(f["address"], where+".address", len(names))
		fence := p.address(f["fence_address"], where+".fence_address", len(names))
		var bad, dups []string
		var badErr error
		var dupLine int
		for _, name := range names {
			err := checkName(name)
			if err == nil && strings.EqualFold(name, SelectAll) {
				err = errors.New("the name is reserved for selecting every host")
			}
			if err != nil {
				if bad == nil {
					badErr = err
				}
				bad = append(bad, name)
				continue
			}
			low := strings.ToLower(name)
			if prev, dup := inv.byName[low]; dup {
				if dups == nil {
					dupLine = prev.Line
				}
				dups = append(dups, name)
				continue
			}
			h := &Host{Name: name, Address: name, FenceAddress: fence, Line: he.key.Line, Col: he.key.Column}
			if address != "" {
				h.Address = address
				h.Explicit.Address = true
			}
			inv.Hosts = append(inv.Hosts, h)
			inv.byName[low] = h
			over[h] = o
		}
		if bad != nil {
			p.brokenHosts = true
			p.l.At(he.key, "bad host name %q%s: %v", bad[0], more(len(bad)), badErr)
		}
		if dups != nil {
			p.l.At(he.key, "duplicate host %q%s (already defined at line %d; host names ignore case)", dups[0], more(len(dups)), dupLine)
		}
	}
	return over
}

// address reads an address or fence_address, which only a single host may
// set.
func (p *parser) address(e *entry, name string, hosts int) string {
	n, ok := p.str(e, name)
	if !ok || n.Value == "" {
		return ""
	}
	if hosts > 1 {
		p.l.At(n, "%s cannot be set on a pattern of %d hosts; list the hosts one by one", name, hosts)
		return ""
	}
	v, err := normalizeAddress(n.Value)
	if err != nil {
		p.l.At(n, "bad %s %q: %v", name, n.Value, err)
		return ""
	}
	return v
}

// resolveHosts applies ssh: defaults under each host's own settings.
func (p *parser) resolveHosts(inv *Inventory, over map[*Host]hostOverride) {
	for _, h := range inv.Hosts {
		o := over[h]
		h.User = cmp.Or(o.user, inv.SSH.User)
		h.IdentityFile = cmp.Or(o.identityFile, inv.SSH.IdentityFile)
		h.Port = inv.SSH.Port
		if o.port != 0 {
			h.Port = o.port
		}
		h.Explicit.User = o.user != "" || inv.SSH.Explicit.User
		h.Explicit.Port = o.port != 0 || inv.SSH.Explicit.Port

	}
}

func (p *parser) roles(root *yaml.Node, e *entry, inv *Inventory) {
	inv.Roles = map[string][]string{RoleExecd: {}}
	if e == nil {
		p.l.At(root, "missing required key \"roles\" (with master and shadow)")
		return
	}
	entries, ok := p.entries(e.val, "roles")
	if !ok {
		return
	}
	pos := make(map[string]*yaml.Node)
	given := make(map[string]int)
	var witnessAt []*yaml.Node
	for _, re := range entries {
		role := re.key.Value
		if err := checkRole(role); err != nil {
			p.l.At(re.key, "bad role name %q: %v", role, err)
			continue
		}
		if _, isHost := inv.Host(role); isHost && !builtinRole(role) {
			p.l.At(re.key, "role %q has the name of a host", role)
			continue
		}
		if role == RoleWitnesses && isNull(deref(re.val)) {
			continue // as if absent: the default applies
		}
		pos[role] = re.key
		if role == RoleExecd && deref(re.val).Kind == yaml.MappingNode {
			inv.ExecFromSGE = p.execFromSGE(re, inv)
			inv.Roles[role], given[role] = inv.ExecFromSGE.known(inv), 0
			continue
		}
		ref := p.roleHosts(re, inv)
		inv.Roles[role], given[role] = ref.hosts, ref.given
		if role == RoleHeads && ref.unknown > 0 {
			given[role] = -1 // reported already
		}
		if role == RoleWitnesses {
			witnessAt = ref.nodes
		}
	}
	p.heads(pos, given, inv)
	for _, r := range []string{RoleMaster, RoleShadow} {
		at, ok := pos[r]
		if !ok {
			p.l.At(e.key, "missing required key \"roles.%s\" (or roles.heads: [preferred, standby])", r)
			continue
		}
		if given[r] != 1 {
			p.l.At(at, "roles.%s must name exactly one host, not %d", r, given[r])
		}
	}
	master, shadow := first(inv.Roles[RoleMaster]), first(inv.Roles[RoleShadow])
	if master != "" && master == shadow {
		p.l.At(pos[RoleShadow], "roles.shadow must differ from roles.master (both are %q)", master)
	}
	inv.Heads = []string{master, shadow}
	inv.witnessesGiven = pos[RoleWitnesses] != nil
	if _, ok := pos[RoleWitnesses]; ok {
		for i, w := range inv.Roles[RoleWitnesses] {
			if w == master || w == shadow {
				p.l.At(witnessAt[i], "witness %q is the master or the shadow; witnesses judge them from outside", w)
			}
		}
	} else {
		var ws []string
		for _, h := range inv.Roles[RoleExecd] {
			if h != master && h != shadow {
				ws = append(ws, h)
			}
		}
		inv.Roles[RoleWitnesses] = append([]string{}, ws...)
	}
}

// roleHosts expands the hosts of one role entry, a string or a list of
// strings, reporting names that are not hosts. It returns the hosts found
// and how many names the entry gave, found or not.
func (p *parser) roleHosts(re entry, inv *Inventory) roleRef {
	role := re.key.Value
	v := deref(re.val)
	var items []*yaml.Node
	switch {
	case isNull(v):
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	default:
		p.l.At(v, "roles.%s must be a host name or a list of host names, not %s", role, kindName(v))
		return roleRef{hosts: []string{}}
	}
	ref := roleRef{hosts: []string{}}
	seen := make(map[string]bool)
	for _, it := range items {
		it = deref(it)
		if it.Kind != yaml.ScalarNode || isNull(it) {
			p.l.At(it, "roles.%s: want a host name, not %s", role, kindName(it))
			continue
		}
		size, err := patternSize(it.Value)
		if err != nil {
			p.l.At(it, "roles.%s: %v", role, err)
			continue
		}
		if p.roleNames += size; p.roleNames > maxRoleNames {
			if !p.roleOverflow {
				p.l.At(it, "roles name more than %d hosts in total", maxRoleNames)
				p.roleOverflow = true
			}
			return ref
		}
		names, err := ExpandRange(it.Value)
		if err != nil {
			p.l.At(it, "roles.%s: %v", role, err)
			continue
		}
		ref.given += len(names)
		var unknown []string
		for _, n := range names {
			h, ok := inv.Host(n)
			if !ok {
				unknown = append(unknown, n)
				continue
			}
			if !seen[h.Name] {
				seen[h.Name] = true
				ref.hosts = append(ref.hosts, h.Name)
				ref.nodes = append(ref.nodes, it)
			}
		}
		ref.unknown += len(unknown)
		switch {
		case unknown == nil || p.brokenHosts:
		case role == RoleWitnesses:
			p.l.At(it, "witness %q%s is not a host of the inventory", unknown[0], more(len(unknown)))
		default:
			p.l.At(it, "roles.%s: unknown host %q%s", role, unknown[0], more(len(unknown)))
		}
	}
	return ref
}

// roleRef is the outcome of one role entry.
type roleRef struct {
	// hosts are the hosts found, each once; nodes[i] is where hosts[i] was
	// named.
	hosts []string
	nodes []*yaml.Node
	// given counts the names the entry gave, found or not; unknown those
	// not found.
	given, unknown int
}

// label renders a user-supplied key for a message: as it is when that is
// unambiguous, quoted otherwise (newlines, spaces, quotes).
func label(s string) string {
	q := strconv.Quote(s)
	if q[1:len(q)-1] != s || s == "" || strings.ContainsAny(s, " '") {
		return q
	}
	return s
}

// more renders " (and N more)" for a list of n problems of one kind.
func more(n int) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (and %d more)", n-1)
}

func (p *parser) policy(e *entry, inv *Inventory) {
	pol := &inv.Policy
	voters := len(inv.Roles[RoleWitnesses]) + 1
	pol.Quorum = voters/2 + 1
	if e == nil {
		return
	}
	f := p.fields(e.val, "policy", "fanout", "quorum", "antiflap", "exec_tolerate",
		"qmaster_start_timeout", "heartbeat_stale", "allow_unfenced")
	if b, ok := p.boolean(f["allow_unfenced"], "policy.allow_unfenced"); ok {
		pol.AllowUnfenced = b
	}
	p.integer(f["fanout"], "policy.fanout", 1, 1<<20, &pol.Fanout)
	if q := f["quorum"]; q != nil {
		var n int
		if p.integer(q, "policy.quorum", 1, 1<<20, &n) {
			// Witnesses derived from SGE's exec host list are only known
			// at run time: the bound is checked then.
			if n > voters && (inv.ExecFromSGE == nil || inv.witnessesGiven) {
				p.l.At(q.val, "policy.quorum %d is larger than the %d voters (witnesses plus the shadow)", n, voters)
			}
			pol.Quorum = n
			inv.quorumGiven = true
		}
	}
	p.duration(f["antiflap"], "policy.antiflap", &pol.Antiflap)
	if n, ok := p.str(f["exec_tolerate"], "policy.exec_tolerate"); ok {
		t, err := ParseTolerance(n.Value)
		if err != nil {
			p.l.At(n, "policy.exec_tolerate: %v", err)
		}
		pol.ExecTolerate = t
	}
	p.duration(f["qmaster_start_timeout"], "policy.qmaster_start_timeout", &pol.QmasterStartTimeout)
	if p.duration(f["heartbeat_stale"], "policy.heartbeat_stale", &pol.HeartbeatStale) &&
		pol.HeartbeatStale <= heartbeatPeriod {
		p.l.At(f["heartbeat_stale"].val, "policy.heartbeat_stale must be longer than %v, the period of the qmaster heartbeat", heartbeatPeriod)
	}
}

func (p *parser) hooks(e *entry, h *Hooks) {
	if e == nil {
		return
	}
	f := p.fields(e.val, "hooks", "pre_takeover", "post_takeover", "post_failure", "timeout")
	h.PreTakeover = p.commands(f["pre_takeover"], "hooks.pre_takeover")
	h.PostTakeover = p.commands(f["post_takeover"], "hooks.post_takeover")
	h.PostFailure = p.commands(f["post_failure"], "hooks.post_failure")
	p.duration(f["timeout"], "hooks.timeout", &h.Timeout)
}

func (p *parser) watch(e *entry, w *Watch) {
	if e == nil {
		return
	}
	f := p.fields(e.val, "watch", "interval", "confirm")
	p.duration(f["interval"], "watch.interval", &w.Interval)
	p.duration(f["confirm"], "watch.confirm", &w.Confirm)
}

// commands reads a command line or a list of them.
func (p *parser) commands(e *entry, name string) []string {
	if e == nil {
		return nil
	}
	v := deref(e.val)
	var items []*yaml.Node
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	default:
		p.l.At(v, "%s must be a list of command lines, not %s", name, kindName(v))
		return nil
	}
	var out []string
	for _, it := range items {
		it = deref(it)
		switch {
		case it.Kind != yaml.ScalarNode || isNull(it):
			p.l.At(it, "%s: want a command line, not %s", name, kindName(it))
		case strings.TrimSpace(it.Value) == "":
			p.l.At(it, "%s: empty command line", name)
		case strings.ContainsRune(it.Value, 0):
			p.l.At(it, "%s: command line contains a NUL byte", name)
		default:
			out = append(out, it.Value)
		}
	}
	return out
}

// entries checks that n is a mapping (null counts as empty) with unique
// string keys, and returns its pairs in order.
func (p *parser) entries(n *yaml.Node, what string) ([]entry, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.l.At(n, "%s must be a mapping, not %s", what, kindName(n))
		return nil, false
	}
	seen := make(map[string]*yaml.Node)
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.l.At(k, "%s: a key must be a string, not %s", what, kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			p.l.At(k, "%s: merge keys (<<) are not supported", what)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.l.At(k, "%s: duplicate key %q (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{key: k, val: v})
	}
	return out, true
}

// fields reads a mapping with a fixed set of keys, reporting unknown ones.
func (p *parser) fields(n *yaml.Node, what string, known ...string) map[string]*entry {
	entries, _ := p.entries(n, what)
	out := make(map[string]*entry, len(entries))
	for i, e := range entries {
		if !slices.Contains(known, e.key.Value) {
			p.l.At(e.key, "unknown key %q in %s (known: %s)", e.key.Value, what, strings.Join(known, ", "))
			continue
		}
		out[e.key.Value] = &entries[i]
	}
	return out
}

// str returns the scalar value node of e, or false when e is absent or
// null (silently) or not a scalar (reported).
func (p *parser) str(e *entry, name string) (*yaml.Node, bool) {
	if e == nil {
		return nil, false
	}
	v := deref(e.val)
	if isNull(v) {
		return nil, false
	}
	if v.Kind != yaml.ScalarNode {
		p.l.At(v, "%s must be a string, not %s", name, kindName(v))
		return nil, false
	}
	return v, true
}

// path reads a path, refusing control characters.
func (p *parser) path(e *entry, name string) (string, bool) {
	n, ok := p.str(e, name)
	if !ok {
		return "", false
	}
	if err := checkPath(n.Value); err != nil {
		p.l.At(n, "bad %s %q: %v", name, n.Value, err)
		return "", false
	}
	return n.Value, true
}

// absPath reads an absolute path and cleans it.
func (p *parser) absPath(e *entry, name string) (string, bool) {
	v, ok := p.path(e, name)
	if !ok {
		return "", false
	}
	if !strings.HasPrefix(v, "/") {
		p.l.At(e.val, "%s must be an absolute path, not %q", name, v)
		return "", false
	}
	return path.Clean(v), true
}

// integer reads an integer between lo and hi into dst, reporting true when
// it did.
func (p *parser) integer(e *entry, name string, lo, hi int, dst *int) bool {
	n, ok := p.str(e, name)
	if !ok {
		return false
	}
	var v int
	if n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		p.l.At(n, "%s must be an integer, not %q", name, n.Value)
		return false
	}
	if v < lo || v > hi {
		p.l.At(n, "%s must be between %d and %d, not %d", name, lo, hi, v)
		return false
	}
	*dst = v
	return true
}

// port reads a TCP port into dst.
func (p *parser) port(e *entry, name string, dst *int) {
	p.integer(e, name, 1, 65535, dst)
}

// boolean reads true or false.
func (p *parser) boolean(e *entry, name string) (bool, bool) {
	n, ok := p.str(e, name)
	if !ok {
		return false, false
	}
	var v bool
	if n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.l.At(n, "%s must be true or false, not %q", name, n.Value)
		return false, false
	}
	return v, true
}

// duration reads a positive Go duration ("90s", "30m") into dst, reporting
// true when it did.
func (p *parser) duration(e *entry, name string, dst *time.Duration) bool {
	n, ok := p.str(e, name)
	if !ok {
		return false
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case n.ShortTag() == "!!int":
		p.l.At(n, "%s %q needs a unit, such as \"%ss\"", name, n.Value, n.Value)
		return false
	case err != nil:
		p.l.At(n, "%s: bad duration %q (want e.g. \"90s\", \"30m\", \"1h30m\")", name, n.Value)
		return false
	case d <= 0:
		p.l.At(n, "%s must be positive, not %q", name, n.Value)
		return false
	}
	*dst = d
	return true
}

// checkRole accepts role names: a letter, then letters, digits, '_' and '-'.
func checkRole(s string) error {
	if s == SelectAll {
		return errors.New("\"all\" is reserved")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (isAlnum(c) || c == '_' || c == '-'):
		default:
			return errors.New("use a letter, then letters, digits, '_' and '-'")
		}
	}
	if s == "" || len(s) > 64 {
		return errors.New("want 1 to 64 characters")
	}
	return nil
}

// builtinRole reports whether a role is one the failover defines. A host
// may have such a name (a host called "master" is common); Select then
// resolves the name as the role.
func builtinRole(s string) bool {
	switch s {
	case RoleMaster, RoleShadow, RoleHeads, RoleExecd, RoleWitnesses:
		return true
	}
	return false
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasHops; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is missing, empty or an explicit null.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 ||
		n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.AliasNode:
		return "an alias"
	}
	return fmt.Sprintf("%q", n.Value)
}

// present reports whether a key is given with a non-null value.
func present(e *entry) bool { return e != nil && !isNull(deref(e.val)) }

// currentUser is the login name of the user running sgerun, or "".
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

// first returns the first element of s, or "".
func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
