package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/diag"
	"github.com/sgerun/sgerun/yamlx"
)

// heartbeatPeriod is how often sge_qmaster rewrites its heartbeat file; a
// staleness threshold at or below it would see every master as dead.
const heartbeatPeriod = 30 * time.Second

// maxRoleNames bounds the names all roles together may expand to, so that a
// small file cannot make parsing slow.
const maxRoleNames = 10 * MaxExpand

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
	// f locates every key decoded, for messages about its value.
	f yamlx.Fields
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
	root, ok := yamlx.Document(p.l, data)
	if !ok {
		return nil
	}
	if root == nil {
		p.l.AtPos(1, 1, "empty inventory: want a mapping with cluster, hosts and roles")
		return nil
	}
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

// inventory decodes the root mapping into the schema (see file) and
// validates it.
func (p *parser) inventory(root *yaml.Node) *Inventory {
	f := defaults()
	p.f, _ = yamlx.Decoder{List: p.l, Root: "inventory"}.Decode(root, &f)
	inv := &Inventory{Cluster: f.Cluster, SSH: f.SSH, Policy: f.Policy, Hooks: f.Hooks, Watch: f.Watch}
	p.cluster(root, &inv.Cluster)
	p.ssh(root, &inv.SSH)
	overrides := p.hosts(root, f.Hosts, inv)
	p.resolveHosts(inv, overrides)
	p.roles(root, f.Roles, inv)
	p.policy(inv)
	p.positive("hooks.timeout", inv.Hooks.Timeout)
	p.positive("watch.interval", inv.Watch.Interval)
	p.positive("watch.confirm", inv.Watch.Confirm)
	return inv
}

func (p *parser) cluster(root *yaml.Node, c *Cluster) {
	if p.f.Key("cluster") == nil {
		p.l.At(root, "missing required key \"cluster\" (with at least sge_root)")
		return
	}
	if !p.absPath("cluster.sge_root", &c.SGERoot) && yamlx.IsNull(p.f.Value("cluster.sge_root")) {
		p.l.At(p.f.Key("cluster"), "missing required key \"cluster.sge_root\" ($SGE_ROOT, an absolute path)")
	}
	if p.f.Given("cluster.sge_cell") {
		if err := checkName(c.SGECell); err != nil {
			p.l.At(p.f.Value("cluster.sge_cell"), "bad cluster.sge_cell %q: %v", c.SGECell, err)
		}
	}
	qOK := p.between("cluster.qmaster_port", c.QmasterPort, 1, 65535)
	eOK := p.between("cluster.execd_port", c.ExecdPort, 1, 65535)
	if qOK && eOK && c.QmasterPort == c.ExecdPort && p.f.Key("cluster.execd_port") != nil {
		p.l.At(p.f.Value("cluster.execd_port"), "cluster.execd_port must differ from cluster.qmaster_port")
	}
	if p.f.Given("cluster.common_shared") {
		switch c.CommonShared {
		case SharedAuto, SharedYes, SharedNo:
		default:
			p.l.At(p.f.Value("cluster.common_shared"), "cluster.common_shared must be \"auto\", \"yes\" or \"no\", not %q", c.CommonShared)
		}
	}
	if p.f.Given("cluster.fence_command") && strings.ContainsRune(c.FenceCommand, 0) {
		p.l.At(p.f.Value("cluster.fence_command"), "cluster.fence_command contains a NUL byte")
	}
	p.absPath("cluster.rc_master", &c.RCMaster)
	p.absPath("cluster.rc_execd", &c.RCExecd)
	p.absPath("cluster.shared_dir", &c.SharedDir)
}

func (p *parser) ssh(root *yaml.Node, s *SSH) {
	if p.f.Given("ssh.user") {
		if err := checkUser(s.User); err != nil {
			p.l.At(p.f.Value("ssh.user"), "bad ssh.user %q: %v", s.User, err)
		}
		s.Explicit.User = true
	} else {
		s.User = currentUser()
		if s.User == "" {
			at := root
			if k := p.f.Key("ssh"); k != nil {
				at = k
			}
			p.l.At(at, "ssh.user is not set and the current user is unknown")
		}
	}
	p.between("ssh.port", s.Port, 1, 65535)
	s.Explicit.Port = p.f.Given("ssh.port")
	p.checkPath("ssh.identity_file", s.IdentityFile)
	if p.f.Given("ssh.known_hosts") {
		if p.checkPath("ssh.known_hosts", s.KnownHosts) && s.KnownHosts == "" {
			p.l.At(p.f.Value("ssh.known_hosts"), "ssh.known_hosts must not be empty: host keys are always verified")
		}
		s.Explicit.KnownHosts = true
	}
	if p.f.Given("ssh.jump") && s.Jump != "" {
		for _, hop := range strings.Split(s.Jump, ",") {
			if _, err := ParseJump(strings.TrimSpace(hop)); err != nil {
				p.l.At(p.f.Value("ssh.jump"), "ssh.jump: %v (want [user@]host[:port], hops separated by commas)", err)
				break
			}
		}
	}
	p.checkPath("ssh.ssh_config", s.SSHConfig)
	p.positive("ssh.connect_timeout", s.ConnectTimeout)
	s.Explicit.ConnectTimeout = p.f.Given("ssh.connect_timeout")
	p.between("ssh.max_handshakes", s.MaxHandshakes, 1, 1<<20)
}

// hosts expands the host entries into inv.Hosts and returns each host's
// own connection settings, by host.
func (p *parser) hosts(root *yaml.Node, entries yamlx.Map[hostFile], inv *Inventory) map[*Host]hostFile {
	inv.byName = make(map[string]*Host)
	over := make(map[*Host]hostFile)
	key, val := p.f.Key("hosts"), p.f.Value("hosts")
	switch {
	case key == nil:
		p.l.At(root, "missing required key \"hosts\"")
		p.brokenHosts = true
		return over
	case !yamlx.IsNull(val) && val.Kind != yaml.MappingNode:
		p.brokenHosts = true
		return over
	case len(entries) == 0:
		p.brokenHosts = true
		p.l.At(key, "hosts is empty: the master and the shadow at least must be listed")
		return over
	}
	for _, he := range entries {
		pattern := he.Key.Value
		where := "hosts." + label(pattern)
		at := "hosts." + pattern
		size, err := patternSize(pattern)
		if err != nil {
			p.l.At(he.Key, "%v", err)
			p.brokenHosts = true
			continue
		}
		if len(inv.Hosts)+size > MaxExpand {
			p.l.At(he.Key, "more than %d hosts in the inventory", MaxExpand)
			p.brokenHosts = true
			return over
		}
		names, err := ExpandRange(pattern)
		if err != nil {
			p.l.At(he.Key, "%v", err)
			p.brokenHosts = true
			continue
		}
		o := he.Value
		if !p.between(at+".port", o.Port, 1, 65535) {
			o.Port = 0
		}
		if p.f.Given(at + ".user") {
			if err := checkUser(o.User); err != nil {
				p.l.At(p.f.Value(at+".user"), "bad user %q: %v", o.User, err)
			}
		}
		if !p.checkPath(at+".identity_file", o.IdentityFile) {
			o.IdentityFile = ""
		}
		address := p.address(at+".address", where+".address", len(names))
		fence := p.address(at+".fence_address", where+".fence_address", len(names))
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
			h := &Host{Name: name, Address: name, FenceAddress: fence, Line: he.Key.Line, Col: he.Key.Column}
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
			p.l.At(he.Key, "bad host name %q%s: %v", bad[0], more(len(bad)), badErr)
		}
		if dups != nil {
			p.l.At(he.Key, "duplicate host %q%s (already defined at line %d; host names ignore case)", dups[0], more(len(dups)), dupLine)
		}
	}
	return over
}

// address checks the address or fence_address at key (named name in
// messages), which only a single host may set, and returns it normalized.
func (p *parser) address(key, name string, hosts int) string {
	n := p.f.Value(key)
	if !p.f.Given(key) || n.Value == "" {
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
func (p *parser) resolveHosts(inv *Inventory, over map[*Host]hostFile) {
	for _, h := range inv.Hosts {
		o := over[h]
		h.User = cmp.Or(o.User, inv.SSH.User)
		h.IdentityFile = cmp.Or(o.IdentityFile, inv.SSH.IdentityFile)
		h.Port = cmp.Or(o.Port, inv.SSH.Port)
		h.Explicit.User = o.User != "" || inv.SSH.Explicit.User
		h.Explicit.Port = o.Port != 0 || inv.SSH.Explicit.Port
	}
}

func (p *parser) roles(root *yaml.Node, m yamlx.Map[yaml.Node], inv *Inventory) {
	inv.Roles = map[string][]string{RoleExecd: {}}
	key, val := p.f.Key("roles"), p.f.Value("roles")
	if key == nil {
		p.l.At(root, "missing required key \"roles\" (with master and shadow)")
		return
	}
	if !yamlx.IsNull(val) && val.Kind != yaml.MappingNode {
		return
	}
	entries := make([]entry, len(m))
	for i, re := range m {
		entries[i] = entry{key: re.Key, val: re.Node}
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
			p.l.At(key, "missing required key \"roles.%s\" (or roles.heads: [preferred, standby])", r)
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

func (p *parser) policy(inv *Inventory) {
	pol := &inv.Policy
	voters := len(inv.Roles[RoleWitnesses]) + 1
	switch {
	case !p.f.Given("policy.quorum"):
		pol.Quorum = voters/2 + 1
	case !p.between("policy.quorum", pol.Quorum, 1, 1<<20):
		pol.Quorum = voters/2 + 1
	default:
		// Witnesses derived from SGE's exec host list are only known at
		// run time: the bound is checked then.
		if pol.Quorum > voters && (inv.ExecFromSGE == nil || inv.witnessesGiven) {
			p.l.At(p.f.Value("policy.quorum"), "policy.quorum %d is larger than the %d voters (witnesses plus the shadow)", pol.Quorum, voters)
		}
		inv.quorumGiven = true
	}
	p.between("policy.fanout", pol.Fanout, 1, 1<<20)
	p.positive("policy.antiflap", pol.Antiflap)
	p.positive("policy.qmaster_start_timeout", pol.QmasterStartTimeout)
	if p.positive("policy.heartbeat_stale", pol.HeartbeatStale) && p.f.Given("policy.heartbeat_stale") &&
		pol.HeartbeatStale <= heartbeatPeriod {
		p.l.At(p.f.Value("policy.heartbeat_stale"), "policy.heartbeat_stale must be longer than %v, the period of the qmaster heartbeat", heartbeatPeriod)
	}
}

// between checks that the integer at key, when given, is between lo and
// hi, reporting whether it is (true when the key is not given).
func (p *parser) between(key string, v, lo, hi int) bool {
	if !p.f.Given(key) {
		return true
	}
	if v < lo || v > hi {
		p.l.At(p.f.Value(key), "%s must be between %d and %d, not %d", key, lo, hi, v)
		return false
	}
	return true
}

// positive checks that the duration at key, when given, is positive,
// reporting whether it is (true when the key is not given).
func (p *parser) positive(key string, d time.Duration) bool {
	if !p.f.Given(key) {
		return true
	}
	if d <= 0 {
		p.l.At(p.f.Value(key), "%s must be positive, not %q", key, p.f.Value(key).Value)
		return false
	}
	return true
}

// checkPath checks the path at key, when given, for control characters,
// reporting whether it is good (true when the key is not given).
func (p *parser) checkPath(key, v string) bool {
	if !p.f.Given(key) {
		return true
	}
	if err := checkPath(v); err != nil {
		p.l.At(p.f.Value(key), "bad %s %q: %v", key, v, err)
		return false
	}
	return true
}

// absPath checks that the path at key is absolute and cleans it in dst,
// reporting whether the key was given and good.
func (p *parser) absPath(key string, dst *string) bool {
	if !p.f.Given(key) || !p.checkPath(key, *dst) {
		return false
	}
	if !strings.HasPrefix(*dst, "/") {
		p.l.At(p.f.Value(key), "%s must be an absolute path, not %q", key, *dst)
		return false
	}
	*dst = path.Clean(*dst)
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
func deref(n *yaml.Node) *yaml.Node { return yamlx.Deref(n) }

// isNull reports whether n is missing, empty or an explicit null.
func isNull(n *yaml.Node) bool { return yamlx.IsNull(n) }

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string { return yamlx.KindName(n) }

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
