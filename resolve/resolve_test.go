package resolve

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/target"
)

// fakeHost answers commands by substring; a host without an entry is
// unreachable. Unmatched commands fail the test.
type fakeHost struct {
	t       *testing.T
	name    string
	answers map[string]target.Output
}

func (f *fakeHost) Name() string { return f.name }
func (f *fakeHost) Query(_ context.Context, cmd string, _ []byte) (target.Output, error) {
	for k, v := range f.answers {
		if strings.Contains(cmd, k) {
			return v, nil
		}
	}
	f.t.Errorf("%s: unexpected command %q", f.name, cmd)
	return target.Output{ExitCode: 127}, nil
}
func (f *fakeHost) Exec(ctx context.Context, cmd string, in []byte) (target.Output, error) {
	f.t.Errorf("%s: Exec %q from a read-only resolver", f.name, cmd)
	return target.Output{}, errors.New("exec")
}
func (f *fakeHost) ReadFile(context.Context, string) (target.File, error) { return target.File{}, nil }
func (f *fakeHost) WriteFile(context.Context, string, target.File) error {
	return errors.New("write")
}

type fakeConn struct {
	hosts map[string]*fakeHost
	// fence maps host -> a host reached over its fence address.
	fence map[string]*fakeHost
}

func (c *fakeConn) Target(_ context.Context, h string) (target.Target, error) {
	if t, ok := c.hosts[h]; ok {
		return t, nil
	}
	return nil, errors.New("dial " + h + ": no route to host")
}

func (c *fakeConn) TargetAt(_ context.Context, h, _ string) (target.Target, error) {
	if t, ok := c.fence[h]; ok {
		return t, nil
	}
	return nil, errors.New("dial fence " + h + ": no route")
}

const invText = `cluster: {sge_root: /opt/sge}
ssh: {user: root}
hosts:
  a: {fence_address: 10.1.0.1}
  b: {fence_address: 10.1.0.2}
  e1: {}
  e2: {}
  e3: {}
roles:
  heads: [a, b]
  execd: [e1, e2, e3]
`

func act(t *testing.T, name, value string) *fakeHost {
	return &fakeHost{t: t, name: name, answers: map[string]target.Output{"act_qmaster": {Stdout: value + "\n"}}}
}

func parse(t *testing.T, text string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse("inv.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestForTakeover(t *testing.T) {
	inv := parse(t, invText)
	ctx := context.Background()
	cases := []struct {
		name           string
		conn           *fakeConn
		to             string
		from, target   string
		active, howHas string
	}{
		{"both heads name a", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "a"), "b": act(t, "b", "a")}},
			"", "a", "b", "a", "act_qmaster on a, b names a"},
		{"after a takeover b serves", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "b"), "b": act(t, "b", "b")}},
			"", "b", "a", "b", "names b"},
		{"b cut off, read through its fence address", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "b")},
			fence: map[string]*fakeHost{"b": act(t, "b", "b")}}, "", "b", "a", "b", "act_qmaster on a, b names b"},
		{"heads disagree, witnesses settle it", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "a"), "b": act(t, "b", "b"),
			"e1": act(t, "e1", "b"), "e2": act(t, "e2", "b"), "e3": act(t, "e3", "a")}}, "", "b", "a", "b", "3 of 5 readings"},
		{"nothing readable: inventory order", &fakeConn{}, "", "a", "b", "", "falling back to the inventory's order"},
		{"a tie: inventory order", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "a"), "b": act(t, "b", "b")}},
			"", "a", "b", "", "disagree"},
		{"--to a while b serves", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "b"), "b": act(t, "b", "b")}},
			"A", "b", "a", "b", "target given"},
		{"--to b while b serves: the gate says already master", &fakeConn{hosts: map[string]*fakeHost{"a": act(t, "a", "b"), "b": act(t, "b", "b")}},
			"b", "a", "b", "b", "target given"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := ForTakeover(ctx, inv, c.conn, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if h.From != c.from || h.To != c.target || h.Active != c.active || h.Preferred != "a" {
				t.Errorf("got from %s to %s active %q preferred %s; want from %s to %s active %q", h.From, h.To, h.Active, h.Preferred, c.from, c.target, c.active)
			}
			if !strings.Contains(h.How, c.howHas) {
				t.Errorf("how %q does not contain %q", h.How, c.howHas)
			}
			from, to, ok := ParseNote(h.Note())
			if !ok || from != h.From || to != h.To {
				t.Errorf("ParseNote(%q) = %s %s %v", h.Note(), from, to, ok)
			}
			v, err := h.View(inv)
			if err != nil || v.Role(inventory.RoleMaster)[0] != h.From || v.Role(inventory.RoleShadow)[0] != h.To {
				t.Errorf("view: %v %v", v, err)
			}
		})
	}
	if _, err := ForTakeover(ctx, inv, &fakeConn{}, "e1"); err == nil || !strings.Contains(err.Error(), "not a head") {
		t.Errorf("--to e1: %v", err)
	}
}

const sgeInv = `cluster: {sge_root: /opt/sge}
ssh: {user: root}
hosts: {a: {}, b: {}}
roles:
  heads: [a, b]
  execd: {from_sge: true, hostgroup: "@allhosts", exclude: [n3]}
`

func TestResolveExec(t *testing.T) {
	inv := parse(t, sgeInv)
	ctx := context.Background()
	cache := filepath.Join(t.TempDir(), "state", CachePath("x", "inv.yaml")[2:])
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	live := &fakeConn{hosts: map[string]*fakeHost{"b": {t: t, name: "b", answers: map[string]target.Output{
		"qconf -sel": {Stdout: "n1\nn2\nn3\nn4\n--\nn1 n2 n3\n"}}}}}
	e, err := ResolveExec(ctx, inv, live, cache, Readers(inv, "b"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Live || !slices.Equal(e.List.Hosts, []string{"n1", "n2", "n3"}) || e.Cached != nil || e.List.Source != "qconf -sel on b, qconf -shgrp_resolved @allhosts" {
		t.Fatalf("live resolve = %+v", e)
	}
	v, added := inv.WithExecHosts(e.List.Hosts)
	if !slices.Equal(v.Role(inventory.RoleExecd), []string{"n1", "n2"}) || !slices.Equal(added, []string{"n1", "n2"}) {
		t.Errorf("view execd %v added %v", v.Role(inventory.RoleExecd), added)
	}
	// No qmaster answers: the cache, with its age.
	down := &fakeConn{hosts: map[string]*fakeHost{"b": {t: t, name: "b", answers: map[string]target.Output{
		"qconf -sel": {ExitCode: 1, Stderr: "error: commlib error: can't connect to service\n"}}}}}
	e, err = ResolveExec(ctx, inv, down, cache, Readers(inv, "a"), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if e.Live || !slices.Equal(e.List.Hosts, []string{"n1", "n2", "n3"}) || !strings.Contains(e.LiveErr, "a: dial a") || !strings.Contains(e.LiveErr, "can't connect") {
		t.Fatalf("cached resolve = %+v", e)
	}
	if n := e.Note(t0.Add(time.Hour)); !strings.Contains(n, "from the cache of") || !strings.Contains(n, "1h0m0s old") {
		t.Errorf("note %q", n)
	}
	// No cache and no qmaster: an error.
	if _, err := ResolveExec(ctx, inv, down, cache+".none", []string{"b"}, t0); !errors.Is(err, ErrNoExecList) {
		t.Errorf("no cache: %v", err)
	}
	// The cache differs from the live list.
	added2, removed := Diff([]string{"n1", "n2", "n3"}, []string{"N1", "n3", "n9"})
	if !slices.Equal(added2, []string{"n9"}) || !slices.Equal(removed, []string{"n2"}) {
		t.Errorf("Diff = %v %v", added2, removed)
	}
}
