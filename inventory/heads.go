package inventory

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// heads applies roles.heads: [preferred, standby], which names the two
// qmaster hosts without fixing which one serves. It stands for
// roles.master (the preferred head) and roles.shadow (the standby), so the
// two forms cannot be mixed.
func (p *parser) heads(pos map[string]*yaml.Node, given map[string]int, inv *Inventory) {
	at, ok := pos[RoleHeads]
	if !ok {
		return
	}
	if m, s := pos[RoleMaster], pos[RoleShadow]; m != nil || s != nil {
		p.l.At(at, "roles.heads replaces roles.master and roles.shadow (preferred and standby): give one form, not both")
		return
	}
	inv.Follow = true
	hs := inv.Roles[RoleHeads]
	switch {
	case given[RoleHeads] == -1:
		// an unknown host, reported by roleHosts
	case given[RoleHeads] != 2:
		p.l.At(at, "roles.heads must name exactly two hosts, the preferred head first, not %d", given[RoleHeads])
	case len(hs) != 2:
		p.l.At(at, "roles.heads names the same host twice (%q); want two different hosts", first(hs))
	}
	// Count the role as given either way, so that a bad heads entry is
	// reported once, not again as a missing master and shadow.
	pos[RoleMaster], pos[RoleShadow] = at, at
	given[RoleMaster], given[RoleShadow] = 1, 1
	inv.Roles[RoleMaster], inv.Roles[RoleShadow] = []string{}, []string{}
	if len(hs) == 2 {
		inv.Roles[RoleMaster], inv.Roles[RoleShadow] = hs[:1:1], hs[1:2:2]
	}
}

// Preferred is the head the qmaster role belongs on (roles.heads[0] or
// roles.master): takeback returns the role there.
func (inv *Inventory) Preferred() string { return first(inv.Heads) }

// IsHead reports whether name is one of the two heads, and returns its
// inventory spelling.
func (inv *Inventory) IsHead(name string) (string, bool) {
	for _, h := range inv.Heads {
		if strings.EqualFold(h, name) {
			return h, true
		}
	}
	return "", false
}

// OtherHead returns the head that is not name.
func (inv *Inventory) OtherHead(name string) (string, bool) {
	h, ok := inv.IsHead(name)
	if !ok || len(inv.Heads) != 2 {
		return "", false
	}
	if h == inv.Heads[0] {
		return inv.Heads[1], true
	}
	return inv.Heads[0], true
}

// WithHeads returns a view of the inventory for one run from head from
// (the master role: where the qmaster role is taken from) to head to (the
// shadow role: the target). Both must be the inventory's two heads, in
// either order. Witnesses and quorum are unchanged: they never include a
// head, whichever serves.
func (inv *Inventory) WithHeads(from, to string) (*Inventory, error) {
	f, ok1 := inv.IsHead(from)
	t, ok2 := inv.IsHead(to)
	switch {
	case !ok1 || !ok2:
		return nil, fmt.Errorf("with heads %s -> %s: the heads are %s", from, to, strings.Join(inv.Heads, " and "))
	case f == t:
		return nil, fmt.Errorf("with heads %s -> %s: the two must differ", from, to)
	}
	out := inv.clone()
	out.Roles[RoleMaster], out.Roles[RoleShadow] = []string{f}, []string{t}
	return out, nil
}

// clone copies the inventory deep enough that roles and hosts can be
// changed on the copy.
func (inv *Inventory) clone() *Inventory {
	out := *inv
	out.Roles = make(map[string][]string, len(inv.Roles))
	for r, hs := range inv.Roles {
		out.Roles[r] = slices.Clone(hs)
	}
	out.Heads = slices.Clone(inv.Heads)
	out.Hosts = slices.Clone(inv.Hosts)
	out.byName = make(map[string]*Host, len(inv.Hosts))
	for _, h := range out.Hosts {
		out.byName[strings.ToLower(h.Name)] = h
	}
	return &out
}
