package main

import (
	"errors"
	"testing"

	"github.com/sgerun/sgerun/inventory"
)

func headsInv(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse("h.yaml", []byte(`cluster: {sge_root: /opt/sge}
ssh: {user: root}
hosts: {a.example.org: {}, b.example.org: {}, e1: {}}
roles:
  heads: [a.example.org, b.example.org]
  execd: [e1]
`))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestFollowDirection(t *testing.T) {
	inv := headsInv(t)
	a, b := "a.example.org", "b.example.org"
	for _, c := range []struct{ active, self, from, to string }{
		{a, b, a, b},   // the standby watches the active head
		{b, a, b, a},   // after a takeover, the other way
		{b, "", b, a},  // a third machine: away from the active head
		{"", a, b, a},  // unknown: toward this head
		{"", "", a, b}, // unknown, third machine: the inventory's order
	} {
		from, to := followDirection(inv, c.active, c.self)
		if from != c.from || to != c.to {
			t.Errorf("followDirection(%q, %q) = %s -> %s, want %s -> %s", c.active, c.self, from, to, c.from, c.to)
		}
	}
}

func TestWatchSelf(t *testing.T) {
	inv := headsInv(t)
	if h, err := watchSelf(inv, "B.example.org"); err != nil || h != "b.example.org" {
		t.Errorf("--on B.example.org = %q, %v", h, err)
	}
	if _, err := watchSelf(inv, "e1"); !errors.Is(err, errUsage) {
		t.Errorf("--on e1 (no head): %v, want a usage error", err)
	}
	if _, err := watchSelf(inv, ""); err != nil {
		t.Errorf("no --on: %v", err)
	}
}
