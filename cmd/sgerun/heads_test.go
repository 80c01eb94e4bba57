package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
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

// TestTakeoverFollowsActiveHead: with roles.heads, takeover reads
// act_qmaster before the run and goes from the active head to the other
// one (the note shows it, in a dry run too); --to names the target; a
// --to that is no head is a usage error.
func TestTakeoverFollowsActiveHead(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 3, handler: func(h *sshtest.Host, cmd string, s sshtest.Session) int {
		if strings.Contains(cmd, "/common/act_qmaster") && strings.Contains(cmd, "for i in 1 2 3") {
			fmt.Fprintln(s.Stdout(), "host1")
			return 0
		}
		return 1
	}})
	text := strings.Replace(e.invText, "master: host0, shadow: host1", "heads: [host0, host1]", 1)
	inv := e.file("heads.yaml", text)
	r := e.sgerun("takeover", "-i", inv, "--dry-run", "--yes")
	if !strings.Contains(r.stdout, "note: heads: from host1 to host0; preferred host0, active host1; act_qmaster on host0, host1 names host1") {
		t.Errorf("takeover --dry-run does not go from the active head host1 to host0:\n%v", r)
	}
	r = e.sgerun("takeover", "-i", inv, "--dry-run", "--yes", "--to", "host1")
	if !strings.Contains(r.stdout, "note: heads: from host0 to host1;") {
		t.Errorf("takeover --to host1:\n%v", r)
	}
	if r := e.sgerun("takeover", "-i", inv, "--dry-run", "--yes", "--to", "host2"); r.code != 2 || !strings.Contains(r.stderr, "not a head") {
		t.Errorf("takeover --to host2 (no head): %v", r)
	}
	// The older form keeps its fixed direction: no act_qmaster is read,
	// no note.
	r = e.sgerun("takeover", "-i", e.inv, "--dry-run", "--yes")
	if strings.Contains(r.stdout, "note: heads:") {
		t.Errorf("takeover with roles.master/shadow resolved the heads:\n%v", r)
	}
}
