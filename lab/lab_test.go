package lab

import (
	"errors"
	"testing"

	"github.com/sgerun/sgerun/inventory"
)

func TestConfigNormalize(t *testing.T) {
	good, err := Config{}.normalize()
	if err != nil || good.Name != DefaultName || good.ExecHosts != DefaultExecHosts || good.StateDir != DefaultBaseDir+"/"+DefaultName {
		t.Fatalf("defaults: %+v, %v", good, err)
	}
	for _, c := range []Config{
		{Name: "Bad"}, {Name: "a-b"}, {Name: "1ab"}, {Name: "x; rm -rf /"},
		{Name: "abcdefghijklmnopq"}, {ExecHosts: -1}, {ExecHosts: MaxExecHosts + 1},
		{StateDir: "/tmp/with space"}, {StateDir: "/tmp/$(x)"},
	} {
		if _, err := c.normalize(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want ErrInvalidConfig", c, err)
		}
	}
}

func TestInventoryParses(t *testing.T) {
	cfg, err := Config{Name: "t", StateDir: "/run/sgerun-lab/t", ExecHosts: 4, FenceCommand: `/x/sgerun lab --name t kill "$SGERUN_FENCE_HOST"`}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{st: newState(cfg)}
	b, err := l.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("lab.yaml", b)
	if err != nil {
		t.Fatalf("inventory does not parse: %v\n%s", err, b)
	}
	if inv.Cluster.SGERoot != "/run/sgerun-lab/t/sge" || inv.Cluster.SGECell != "t" ||
		inv.Cluster.CommonShared != "yes" || inv.Cluster.SharedDir != "/run/sgerun-lab/t/spool" ||
		inv.Cluster.FenceCommand != cfg.FenceCommand {
		t.Errorf("cluster: %+v", inv.Cluster)
	}
	if got := inv.Role("execd"); len(got) != 4 || got[0] != "t-exec1" {
		t.Errorf("execd role: %v", got)
	}
	m, ok := inv.Host("t-master")
	if !ok || m.Address != "10.71.0.11" || m.FenceAddress != "10.72.0.11" || m.User != "root" ||
		m.IdentityFile != "/run/sgerun-lab/t/id_ed25519" {
		t.Errorf("master: %+v", m)
	}
	if got := len(l.ExecHosts()); got != 4 {
		t.Errorf("exec hosts %d", got)
	}
	h, err := l.Host("exec4")
	if err != nil || h.Name != "t-exec4" || h.SchedAddr != "10.71.0.24" || h.FileAddr != "10.72.0.24" {
		t.Errorf("exec4: %+v %v", h, err)
	}
	if _, err := l.Host("exec5"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("exec5: %v", err)
	}
}

func TestReplaceKeys(t *testing.T) {
	in := "Version: 6.2\nadmin_user              sgeadmin\nspooling_params         /a\nqmaster_spool_dir       /b\n\n"
	out, err := replaceKeys(in, map[string]string{"spooling_params": "/x"})
	if err != nil {
		t.Fatal(err)
	}
	want := "Version: 6.2\nadmin_user              sgeadmin\nspooling_params         /x\nqmaster_spool_dir       /b\n\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, err := replaceKeys(in, map[string]string{"missing": "1"}); err == nil {
		t.Error("missing key: no error")
	}
}

func TestNamespaceRE(t *testing.T) {
	re := nsNameRE("lab")
	for s, want := range map[string]bool{
		"lab-ctl": true, "lab-master": true, "lab-exec12": true,
		"lab2-master": false, "lab-x": false, "xlab-ctl": false, "lab-exec": false,
	} {
		if re.MatchString(s) != want {
			t.Errorf("%s: want %v", s, want)
		}
	}
}
