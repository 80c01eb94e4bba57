package target

import (
	"testing"
	"time"

	"github.com/sgerun/sgerun/inventory"
)

// TestPoolConfigPassesOnlyExplicit: inventory defaults must not reach the
// transport, where they would rank above ssh_config; explicit values must.
func TestPoolConfigPassesOnlyExplicit(t *testing.T) {
	parse := func(src string) *inventory.Inventory {
		t.Helper()
		inv, err := inventory.Parse("inv.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	const hosts = "hosts:\n  m: {}\n  s: {address: 10.0.0.2, port: 2200, user: admin}\nroles: {master: m, shadow: s}\n"
	inv := parse("cluster: {sge_root: /opt/sge}\n" + hosts)
	cfg := PoolConfig(inv)
	if cfg.User != "" || cfg.Port != 0 || cfg.KnownHostsFiles != nil || cfg.ConnectTimeout != 0 {
		t.Errorf("defaults passed as explicit: %+v", cfg)
	}
	c := &SSH{Inventory: inv}
	m, err := c.host("m")
	if err != nil {
		t.Fatal(err)
	}
	if m.Address != "" || m.User != "" || m.Port != 0 {
		t.Errorf("host m: defaults passed as explicit: %+v", m)
	}
	s, _ := c.host("s")
	if s.Address != "10.0.0.2" || s.User != "admin" || s.Port != 2200 {
		t.Errorf("host s: explicit values lost: %+v", s)
	}

	inv = parse("cluster: {sge_root: /opt/sge}\nssh: {user: ops, port: 22, known_hosts: /etc/kh, connect_timeout: 3s}\n" + hosts)
	cfg = PoolConfig(inv)
	if cfg.User != "ops" || cfg.Port != 22 || len(cfg.KnownHostsFiles) != 1 || cfg.ConnectTimeout != 3*time.Second {
		t.Errorf("explicit ssh: values lost: %+v", cfg)
	}
	c = &SSH{Inventory: inv}
	if m, _ = c.host("m"); m.User != "ops" || m.Port != 22 {
		t.Errorf("host m: ssh: values are explicit for every host: %+v", m)
	}
}
