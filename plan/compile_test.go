package plan

import (
	"slices"
	"testing"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/target"
)

// TestCompileResolvesWithoutTouchingTheRunbook: Compile resolves hosts and
// read-only flags into the plan; the runbook it read stays as written, and
// the plan's accessors hand out copies.
func TestCompileResolvesWithoutTouchingTheRunbook(t *testing.T) {
	inv, err := inventory.Parse("inv.yaml", []byte("cluster: {sge_root: /opt/sge}\nhosts:\n  m: {}\n  s: {}\nroles: {master: m, shadow: s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Parse("rb.yaml", []byte(`
name: r
vars: {x: "a"}
steps:
  - name: look
    on: [master, shadow]
    run: {cmd: "true", readonly: true}
  - name: change
    on: master
    run: "echo {{ .vars.x | q }}"
  - name: here
    local: "true"
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(rb, inv, map[string]string{"x": "b"})
	if err != nil {
		t.Fatal(err)
	}
	got := p.Steps()
	if len(got) != 3 {
		t.Fatalf("%d steps", len(got))
	}
	if !slices.Equal(got[0].Hosts, []string{"m", "s"}) || !got[0].ReadOnly {
		t.Errorf("look: hosts %v, read-only %v", got[0].Hosts, got[0].ReadOnly)
	}
	if !slices.Equal(got[1].Hosts, []string{"m"}) || got[1].ReadOnly {
		t.Errorf("change: hosts %v, read-only %v", got[1].Hosts, got[1].ReadOnly)
	}
	if !slices.Equal(got[2].Hosts, []string{target.Controller}) || got[2].Def.Name != "local" {
		t.Errorf("here: hosts %v, kind %q", got[2].Hosts, got[2].Def.Name)
	}
	got[0].Hosts[0] = "changed"
	if p.Steps()[0].Hosts[0] != "m" {
		t.Errorf("Steps hands out the plan's own slices")
	}
	if v := p.Data(Run{})["vars"].(map[string]any)["x"]; v != "b" {
		t.Errorf(".vars.x = %v, want the override", v)
	}
	if rb.Vars["x"] != "a" {
		t.Errorf("the runbook's default changed: %v", rb.Vars["x"])
	}
	if _, err := Compile(rb, inv, map[string]string{"nope": "1"}); err == nil {
		t.Errorf("an undeclared override compiled")
	}
}
