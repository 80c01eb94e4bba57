package inventory

import (
	"slices"
	"testing"
)

func TestHeadsForm(t *testing.T) {
	inv, err := Load("testdata/good/heads.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Heads; !slices.Equal(got, []string{"m1", "s1"}) {
		t.Fatalf("Heads = %v, want [m1 s1]", got)
	}
	if m, s := inv.Role(RoleMaster), inv.Role(RoleShadow); !slices.Equal(m, []string{"m1"}) || !slices.Equal(s, []string{"s1"}) {
		t.Errorf("master %v shadow %v, want [m1] [s1] (preferred, standby)", m, s)
	}
	if w := inv.Role(RoleWitnesses); !slices.Equal(w, []string{"gc01", "gc02", "gc03", "gc04"}) {
		t.Errorf("witnesses %v", w)
	}
	if inv.Preferred() != "m1" {
		t.Errorf("Preferred = %q", inv.Preferred())
	}
	if o, ok := inv.OtherHead("S1"); !ok || o != "m1" {
		t.Errorf("OtherHead(S1) = %q, %v", o, ok)
	}
	if _, ok := inv.OtherHead("gc01"); ok {
		t.Error("OtherHead(gc01): gc01 is no head")
	}
	v, err := inv.WithHeads("s1", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if m, s := v.Role(RoleMaster), v.Role(RoleShadow); !slices.Equal(m, []string{"s1"}) || !slices.Equal(s, []string{"m1"}) {
		t.Errorf("view: master %v shadow %v, want [s1] [m1]", m, s)
	}
	if m := inv.Role(RoleMaster); !slices.Equal(m, []string{"m1"}) {
		t.Errorf("WithHeads changed the inventory: master %v", m)
	}
	if v.Preferred() != "m1" || !slices.Equal(v.Role(RoleWitnesses), inv.Role(RoleWitnesses)) {
		t.Errorf("view: preferred %q witnesses %v", v.Preferred(), v.Role(RoleWitnesses))
	}
	for _, bad := range [][2]string{{"m1", "m1"}, {"m1", "gc01"}, {"x", "s1"}} {
		if _, err := inv.WithHeads(bad[0], bad[1]); err == nil {
			t.Errorf("WithHeads(%s, %s) = nil error", bad[0], bad[1])
		}
	}
}

func TestMasterShadowAreHeads(t *testing.T) {
	inv, err := Parse("x.yaml", minimal(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inv.Heads, []string{"m1", "s1"}) || inv.ExecFromSGE != nil {
		t.Errorf("Heads %v ExecFromSGE %v", inv.Heads, inv.ExecFromSGE)
	}
	if v, added := inv.WithExecHosts([]string{"zz"}); v != inv || added != nil {
		t.Errorf("WithExecHosts without from_sge changed the inventory")
	}
}

func TestExecFromSGE(t *testing.T) {
	inv, err := Load("testdata/good/exec_from_sge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := inv.ExecFromSGE
	if s == nil || s.Hostgroup != "@allhosts" || !slices.Equal(s.Add, []string{"gc01", "gpu1", "gpu2"}) ||
		!slices.Equal(s.Exclude, []string{"login*", "gc03", "gc04"}) {
		t.Fatalf("ExecFromSGE = %+v", s)
	}
	if e := inv.Role(RoleExecd); !slices.Equal(e, []string{"gc01"}) {
		t.Errorf("parsed execd %v, want the known add hosts [gc01]", e)
	}
	if inv.Policy.Quorum != 2 {
		t.Errorf("quorum %d", inv.Policy.Quorum)
	}
	sge := []string{"GC01", "gc02.example.org", "gc03", "login1", "s1", "n7"}
	v, added := inv.WithExecHosts(sge)
	if want := []string{"gc01", "gc02.example.org", "s1", "n7", "gpu1", "gpu2"}; !slices.Equal(v.Role(RoleExecd), want) {
		t.Errorf("execd %v, want %v", v.Role(RoleExecd), want)
	}
	if want := []string{"gc02.example.org", "n7", "gpu1", "gpu2"}; !slices.Equal(added, want) {
		t.Errorf("added %v, want %v", added, want)
	}
	if want := []string{"gc01", "gc02.example.org", "n7", "gpu1", "gpu2"}; !slices.Equal(v.Role(RoleWitnesses), want) {
		t.Errorf("witnesses %v, want %v (execd without the heads)", v.Role(RoleWitnesses), want)
	}
	h, ok := v.Host("n7")
	if !ok || h.Address != "n7" || h.User != "root" || h.Port != 22 {
		t.Errorf("added host n7 = %+v, %v; want its own name and the ssh: defaults", h, ok)
	}
	if h, _ := v.Host("gc01"); h.Address != "10.0.0.11" {
		t.Errorf("gc01 lost its address: %+v", h)
	}
	if _, ok := inv.Host("n7"); ok {
		t.Error("WithExecHosts changed the inventory's hosts")
	}
	if v.Policy.Quorum != 2 {
		t.Errorf("a quorum the file sets is kept: %d", v.Policy.Quorum)
	}
	if sel, err := v.Select([]string{"execd"}); err != nil || len(sel) != 6 {
		t.Errorf("Select(execd) = %v, %v", sel, err)
	}
}

func TestExecFromSGEDerivedQuorum(t *testing.T) {
	inv, err := Parse("x.yaml", []byte(`cluster: {sge_root: /opt/sge}
ssh: {user: root}
hosts: {a: {}, b: {}}
roles:
  master: a
  shadow: b
  execd: {from_sge: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := inv.WithExecHosts([]string{"a", "e1", "e2", "e3", "e4"})
	if w := v.Role(RoleWitnesses); len(w) != 4 || v.Policy.Quorum != 3 {
		t.Errorf("witnesses %v quorum %d, want 4 witnesses and quorum 3", w, v.Policy.Quorum)
	}
}
