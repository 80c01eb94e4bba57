package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/sgerun/sgerun/steps"
)

func sampleReport() *Report {
	return &Report{
		Hosts: []Host{
			{Name: "m1", Role: "master", Reachable: true, QmasterPID: []int{42}, Qping: -1},
			{Name: "s1", Role: "shadow", Reachable: true, QmasterPID: []int{7}, Qping: 0},
		},
		ActQmaster: "s1", Serving: []string{"s1"}, Running: []string{"m1", "s1"}, SplitBrain: true,
		HeartbeatAge: 12, ExecTotal: 3, ExecReporting: 2, NotReporting: []string{"e3"},
		PendingFence: &steps.PendingFence{Master: "m1", Reason: "no fence path"},
		LastTakeover: &steps.TakeoverRecord{Time: time.Unix(1764046380, 0), RunID: "r1", From: "m1", To: "s1"},
	}
}

func TestPrometheusParses(t *testing.T) {
	r := sampleReport()
	v := Check(r, 90*time.Second, nil)
	path := filepath.Join(t.TempDir(), "sgerun.prom")
	if err := WritePrometheusFile(path, r, v, &LastRun{Time: time.Unix(1764046300, 0), Success: true}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		mf, ok := families[name]
		if !ok {
			t.Fatalf("metric %s missing", name)
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("metric %s%v missing", name, labels)
		return 0
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sgerun_check_state", nil, Critical},
		{"sgerun_qmaster_info", map[string]string{"host": "s1"}, 1},
		{"sgerun_qmaster_serving", map[string]string{"host": "s1", "role": "shadow"}, 1},
		{"sgerun_qmaster_serving", map[string]string{"host": "m1", "role": "master"}, 0},
		{"sgerun_split_brain", nil, 1},
		{"sgerun_pending_fence", nil, 1},
		{"sgerun_heartbeat_age_seconds", nil, 12},
		{"sgerun_exec_hosts_reporting", nil, 2},
		{"sgerun_exec_hosts", nil, 3},
		{"sgerun_last_takeover_timestamp_seconds", nil, 1764046380},
		{"sgerun_last_takeover_acknowledged", nil, 0},
		{"sgerun_last_takeover_run_success", nil, 1},
	}
	for _, c := range checks {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".sgerun.prom.tmp-*")); len(leftovers) > 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

func TestCheckStates(t *testing.T) {
	ok := &Report{Hosts: []Host{{Name: "m", Role: "master", Reachable: true, QmasterPID: []int{1}, Qping: 0}, {Name: "s", Role: "shadow", Reachable: true, Qping: -1}},
		ActQmaster: "m", Serving: []string{"m"}, Running: []string{"m"}, HeartbeatAge: 10, ExecTotal: 1, ExecReporting: 1}
	if v := Check(ok, 90*time.Second, nil); v.State != OK {
		t.Fatalf("healthy cluster: %s %v", v.Name, v.Reasons)
	}
	stale := *ok
	stale.HeartbeatAge = 300
	if v := Check(&stale, 90*time.Second, nil); v.State != Warning {
		t.Errorf("stale heartbeat: %s", v.Name)
	}
	none := *ok
	none.Serving = nil
	if v := Check(&none, 90*time.Second, nil); v.State != Critical {
		t.Errorf("no qmaster serving: %s", v.Name)
	}
	if v := Check(sampleReport(), 90*time.Second, nil); v.State != Critical {
		t.Errorf("split brain + pending fence: %s", v.Name)
	}
	committed := &LastRun{RunID: "20261201-000000-abcdef", Status: "committed_with_failures"}
	if v := Check(ok, 90*time.Second, committed); v.State != Warning || !strings.Contains(strings.Join(v.Reasons, " "), "committed with failures") {
		t.Errorf("last takeover committed with failures: %s %v, want WARNING naming it", v.Name, v.Reasons)
	}
	if v := Check(ok, 90*time.Second, &LastRun{Status: "ok", Success: true}); v.State != OK {
		t.Errorf("last takeover ok: %s %v", v.Name, v.Reasons)
	}
	dark := &Report{Hosts: []Host{{Name: "m", Role: "master"}, {Name: "s", Role: "shadow"}}, HeartbeatAge: -1}
	if v := Check(dark, 90*time.Second, nil); v.State != Unknown {
		t.Errorf("nothing reachable: %s", v.Name)
	}
}
