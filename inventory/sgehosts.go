package inventory

import (
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/yamlx"
)

// SGEExecHosts is roles.execd given as "the exec hosts SGE knows":
//
//	execd: {from_sge: true, hostgroup: "@allhosts", add: [gpu01], exclude: ["login*"]}
//
// The list is `qconf -sel` (with hostgroup: those of `qconf -shgrp_resolved
// GROUP` that are exec hosts), read while a qmaster answers and cached,
// then Add is appended and every name Exclude matches is dropped.
type SGEExecHosts struct {
	// Hostgroup narrows the list to one host group ("@allhosts"), or "".
	Hostgroup string
	// Add are host names (patterns expanded) added to SGE's list.
	Add []string
	// Exclude are host names, pdsh-style patterns (expanded) and globs
	// ("login*", matched without regard to case) taken out of the list.
	Exclude []string
	// Line and Col locate roles.execd in the inventory file.
	Line, Col int
}

// Excluded reports whether name matches an exclude item.
func (s *SGEExecHosts) Excluded(name string) bool {
	low := strings.ToLower(name)
	for _, x := range s.Exclude {
		x = strings.ToLower(x)
		if x == low {
			return true
		}
		if ok, err := path.Match(x, low); err == nil && ok {
			return true
		}
	}
	return false
}

// known returns the add hosts that hosts: names, in inventory spelling.
func (s *SGEExecHosts) known(inv *Inventory) []string {
	out := []string{}
	for _, n := range s.Add {
		if h, ok := inv.Host(n); ok && !slices.Contains(out, h.Name) && !s.Excluded(h.Name) {
			out = append(out, h.Name)
		}
	}
	return out
}

// execFromSGE reads roles.execd given as a mapping.
func (p *parser) execFromSGE(re entry, inv *Inventory) *SGEExecHosts {
	s := &SGEExecHosts{Line: re.key.Line, Col: re.key.Column}
	var e execdFile
	f, _ := yamlx.Decoder{List: p.l, Path: "roles.execd"}.Decode(re.val, &e)
	if !e.FromSGE {
		at := re.key
		if v := f.Value("roles.execd.from_sge"); v != nil {
			at = v
		}
		p.l.At(at, "roles.execd as a mapping needs from_sge: true (the exec hosts SGE knows); list hosts as a host name or a list instead")
	}
	if f.Given("roles.execd.hostgroup") {
		name := strings.TrimPrefix(e.Hostgroup, "@")
		if !strings.HasPrefix(e.Hostgroup, "@") || checkName(name) != nil {
			p.l.At(f.Value("roles.execd.hostgroup"), "bad roles.execd.hostgroup %q: want an SGE host group, \"@\" and a name (\"@allhosts\")", e.Hostgroup)
		} else {
			s.Hostgroup = e.Hostgroup
		}
	}
	s.Add = p.nameList(e.Add, "roles.execd.add", false)
	s.Exclude = p.nameList(e.Exclude, "roles.execd.exclude", true)
	return s
}

// nameList reads a list of host names and pdsh-style patterns, expanded;
// with globs, items holding '*', '?' or '[' that are not a pdsh range are
// kept as globs.
func (p *parser) nameList(v *yaml.Node, name string, globs bool) []string {
	v = deref(v)
	var items []*yaml.Node
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{v}
	case v.Kind == yaml.SequenceNode:
		items = v.Content
	default:
		p.l.At(v, "%s must be a host name or a list of host names, not %s", name, kindName(v))
		return nil
	}
	var out []string
	for _, it := range items {
		it = deref(it)
		if it.Kind != yaml.ScalarNode || isNull(it) {
			p.l.At(it, "%s: want a host name, not %s", name, kindName(it))
			continue
		}
		if globs && strings.ContainsAny(it.Value, "*?") {
			if _, err := path.Match(it.Value, ""); err != nil {
				p.l.At(it, "%s: bad pattern %q: %v", name, it.Value, err)
				continue
			}
			out = append(out, it.Value)
			continue
		}
		size, err := patternSize(it.Value)
		if err == nil {
			if p.roleNames += size; p.roleNames > maxRoleNames {
				if !p.roleOverflow {
					p.l.At(it, "roles name more than %d hosts in total", maxRoleNames)
					p.roleOverflow = true
				}
				return out
			}
		}
		names, err := ExpandRange(it.Value)
		if err != nil {
			p.l.At(it, "%s: %v", name, err)
			continue
		}
		for _, n := range names {
			if err := checkName(n); err != nil {
				p.l.At(it, "%s: bad host name %q: %v", name, n, err)
				break
			}
			out = append(out, n)
		}
	}
	return out
}

// WithExecHosts returns a view of the inventory whose execd role is sge,
// the exec host list SGE reported (or its cache), with roles.execd's add
// list appended and its exclude list taken out. A listed host that hosts:
// does not name is added to the view, reached by its own name with the
// ssh: defaults; such hosts are returned as added. Unless the file set
// them, witnesses (execd without the heads) and the quorum are derived
// again. Without ExecFromSGE the inventory is returned as it is.
func (inv *Inventory) WithExecHosts(sge []string) (view *Inventory, added []string) {
	s := inv.ExecFromSGE
	if s == nil {
		return inv, nil
	}
	out := inv.clone()
	seen := map[string]bool{}
	execd := []string{}
	for _, n := range slices.Concat(sge, s.Add) {
		n = strings.TrimSpace(n)
		if n == "" || checkName(n) != nil || s.Excluded(n) {
			continue
		}
		h, ok := out.Host(n)
		if !ok {
			h, ok = out.shortMatch(n)
		}
		if !ok {
			h = &Host{Name: n, Address: n, User: inv.SSH.User, Port: inv.SSH.Port,
				IdentityFile: inv.SSH.IdentityFile, Line: s.Line, Col: s.Col}
			out.Hosts = append(out.Hosts, h)
			out.byName[strings.ToLower(n)] = h
			added = append(added, n)
		}
		if !seen[h.Name] {
			seen[h.Name] = true
			execd = append(execd, h.Name)
		}
	}
	out.Roles[RoleExecd] = execd
	if !inv.witnessesGiven {
		ws := []string{}
		for _, h := range execd {
			if _, head := out.IsHead(h); !head {
				ws = append(ws, h)
			}
		}
		out.Roles[RoleWitnesses] = ws
	}
	if !inv.quorumGiven {
		out.Policy.Quorum = (len(out.Roles[RoleWitnesses])+1)/2 + 1
	}
	return out, added
}

// shortMatch finds the one host whose name is the first label of n
// ("gc001" for SGE's "gc001.example.org"), or whose first label is n.
func (inv *Inventory) shortMatch(n string) (*Host, bool) {
	short, _, _ := strings.Cut(n, ".")
	var found *Host
	for _, h := range inv.Hosts {
		hs, _, _ := strings.Cut(h.Name, ".")
		if strings.EqualFold(hs, short) {
			if found != nil {
				return nil, false
			}
			found = h
		}
	}
	return found, found != nil
}
