package steps

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

func TestSGECommonShared(t *testing.T) {
	const stat = "stat -c '%i %Y %s' /opt/sge/prod/common/act_qmaster"
	tests := []struct {
		name, override string
		stats          map[string]string // host -> stat output; a missing host cannot be reached
		wantShared     bool
		wantDiffer     []string
		wantDown       []string
	}{
		{name: "one file", stats: map[string]string{"s": "11 5 2", "e1": "11 5 2", "e2": "11 5 2"}, wantShared: true},
		{name: "local to each host", stats: map[string]string{"s": "11 5 2", "e1": "12 5 2", "e2": "13 4 2"}, wantDiffer: []string{"e1", "e2"}},
		{name: "a host down does not decide", stats: map[string]string{"s": "11 5 2", "e1": "11 5 2"}, wantShared: true, wantDown: []string{"e2"}},
		{name: "one host differs", stats: map[string]string{"s": "11 5 2", "e1": "11 5 2", "e2": "14 5 2"}, wantDiffer: []string{"e2"}},
		{name: "yes without looking", override: "yes", wantShared: true},
		{name: "no without looking", override: "no"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := Runtime{Connect: func(_ context.Context, host, address string) (target.Target, error) {
				if tc.override == "yes" || tc.override == "no" {
					t.Errorf("connected to %s although common_shared is %s", host, tc.override)
				}
				out, ok := tc.stats[host]
				if !ok {
					return nil, errors.New("ssh dial " + host + ": connection timed out")
				}
				return newFake(t, host).on(stat, target.Output{Stdout: out + "\n"}), nil
			}}
			s := skMust(t, "sge_common_shared", "{sge_root: /opt/sge, sge_cell: prod, reference: s, hosts: 'e1,e2', override: '"+tc.override+"'}")
			res, err := s.Do(context.Background(), nil, env)
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["shared"] != tc.wantShared {
				t.Errorf("shared %v, want %v (%s)", res.Data["shared"], tc.wantShared, res.Stdout)
			}
			if tc.override != "" {
				return
			}
			if d := res.Data["differ"].([]string); !reflect.DeepEqual(d, append([]string{}, tc.wantDiffer...)) {
				t.Errorf("differ %v, want %v", d, tc.wantDiffer)
			}
			if d := res.Data["unreachable"].([]string); !reflect.DeepEqual(d, append([]string{}, tc.wantDown...)) {
				t.Errorf("unreachable %v, want %v", d, tc.wantDown)
			}
		})
	}
	// the reference, and a required host, must answer: else no decision
	for _, tc := range []struct{ params, down string }{
		{"{sge_root: /opt/sge, sge_cell: prod, reference: s, hosts: 'e1,e2'}", "s"},
		{"{sge_root: /opt/sge, sge_cell: prod, reference: s, hosts: 'e1,e2', required: e1}", "e1"},
	} {
		env := Runtime{Connect: func(_ context.Context, host, address string) (target.Target, error) {
			if host == tc.down {
				return nil, errors.New("ssh dial " + host + ": connection timed out")
			}
			return newFake(t, host).on(stat, target.Output{Stdout: "11 5 2\n"}), nil
		}}
		_, err := skMust(t, "sge_common_shared", tc.params).Do(context.Background(), nil, env)
		if err == nil || !strings.Contains(err.Error(), "act_qmaster on "+tc.down+", which must answer") {
			t.Errorf("%s with %s down: err %v, want a failure naming %s", tc.params, tc.down, err, tc.down)
		}
	}
	if _, err := skSpec(t, "sge_common_shared", "{sge_root: /r, sge_cell: c, reference: s, override: maybe}"); err == nil {
		t.Error("override maybe accepted")
	}
}
