package status

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/resolve"
)

func TestHeadsAndExecHosts(t *testing.T) {
	inv, err := inventory.Parse("s.yaml", []byte(`cluster: {sge_root: /opt/sge}
ssh: {user: root}
hosts: {a: {}, b: {}, n1: {}}
roles:
  heads: [a, b]
  execd: {from_sge: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	r := &Report{Time: now, ActQmaster: "b", HeartbeatAge: 5, Serving: []string{"b"}, Running: []string{"b"},
		Hosts: []Host{{Name: "a", Role: "master", Reachable: true}, {Name: "b", Role: "shadow", Reachable: true}}}
	r.SetHeads(inv)
	if h := r.Heads; h == nil || h.Preferred != "a" || h.Active != "b" || !h.Differ {
		t.Errorf("heads %+v, want preferred a, active b, differ", r.Heads)
	}
	if v := Check(r, time.Minute, nil); !strings.Contains(v.Line(), "preferred a") {
		t.Errorf("check line %q does not name the preferred head", v.Line())
	}

	cached := &resolve.ExecList{Hosts: []string{"n1", "n2"}, Source: "qconf -sel on a", Time: now.Add(-2 * time.Hour)}
	live := resolve.Exec{List: resolve.ExecList{Hosts: []string{"n1", "n3", "n4"}, Source: "qconf -sel on b", Time: now}, Live: true, Cached: cached}
	view, added := inv.WithExecHosts(live.List.Hosts)
	reach := func(_ context.Context, h string) error {
		if h == "n4" {
			return errors.New("no route")
		}
		return nil
	}
	r.SetExecHosts(context.Background(), live, view, added, reach)
	x := r.ExecHosts
	if x.Count != 3 || !slices.Equal(x.NewSinceCache, []string{"n3", "n4"}) || !slices.Equal(x.GoneSinceCache, []string{"n2"}) ||
		!slices.Equal(x.NotInInventory, []string{"n3", "n4"}) || !slices.Equal(x.Unreachable, []string{"n4"}) || x.CacheAge != 7200 {
		t.Errorf("exec hosts %+v", x)
	}
	all := strings.Join(r.Problems, "\n")
	for _, want := range []string{"was out of date", "new: n3,n4; gone: n2", "exec host n4, listed by SGE, cannot be reached"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems %q lack %q", all, want)
		}
	}
	if v := Check(r, time.Minute, nil); v.State != Warning || !strings.Contains(v.Line(), "n4") {
		t.Errorf("check %s: %s", StateName(v.State), v.Line())
	}

	// No qmaster answered: the cache is in use, with its age.
	r = &Report{Time: now}
	r.SetExecHosts(context.Background(), resolve.Exec{List: *cached, LiveErr: "read exec hosts: a: qconf: can't connect"}, view, nil, reach)
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "from the cache of") || !strings.Contains(r.Problems[0], "2h0m0s old") {
		t.Errorf("problems %q", r.Problems)
	}
	if r.ExecHosts.Live || r.ExecHosts.CacheAge != 7200 {
		t.Errorf("exec hosts %+v", r.ExecHosts)
	}
}
