package steps

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/target"
)

func TestSGERestartExecd(t *testing.T) {
	tests := []struct {
		name, params, wantRC string
		out                  target.Output
		wantOld, wantNew     string
		wantErr              string
	}{
		{name: "restarted", params: "{sge_root: /opt/sge, sge_cell: prod}", wantRC: "rc=/opt/sge/prod/common/sgeexecd",
			out: target.Output{Stdout: "sge_execd 41  -> 77 \n"}, wantOld: "41", wantNew: "77"},
		{name: "killed by its pid", params: "{sge_root: /opt/sge, sge_cell: prod, rc: /etc/init.d/sgeexecd.p}", wantRC: "rc=/etc/init.d/sgeexecd.p",
			out: target.Output{Stdout: "sge_execd 41 ignored SIGTERM: SIGKILL 41\nsge_execd 41  -> 77 \n"}, wantOld: "41", wantNew: "77"},
		{name: "did not start", params: "{sge_root: /opt/sge, sge_cell: prod}", wantRC: "rc=/opt/sge/prod/common/sgeexecd",
			out: target.Output{ExitCode: 1, Stderr: "sge_execd did not start"}, wantErr: "exit status 1: sge_execd did not start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "e1").on("sh -s", tc.out)
			s := skMust(t, "sge_restart_execd", tc.params)
			if !s.Mutates() {
				t.Error("sge_restart_execd does not mutate")
			}
			res, err := s.Do(context.Background(), f, Runtime{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["old"] != tc.wantOld || res.Data["new"] != tc.wantNew || res.Undo != nil {
				t.Errorf("data %v undo %v, want old %s new %s and no undo", res.Data, res.Undo, tc.wantOld, tc.wantNew)
			}
			script := string(f.calls[0].stdin)
			for _, w := range []string{tc.wantRC, "kill -TERM $old", "-lt 50", `kill -KILL "$p"`, `"$rc" start`, "else sge_execd; fi"} {
				if !strings.Contains(script, w) {
					t.Errorf("script lacks %q:\n%s", w, script)
				}
			}
			// a process group kill would end the shepherds and jobs
			if strings.Contains(script, "kill -KILL -") || strings.Contains(script, "kill -TERM -") || strings.Contains(script, "pkill") {
				t.Errorf("script signals a process group or by name:\n%s", script)
			}
		})
	}
}

const skQhost = `HOSTNAME                ARCH         NCPU NSOC NCOR NTHR  LOAD  MEMTOT  MEMUSE  SWAPTO  SWAPUS
----------------------------------------------------------------------------------------------
global                  -               -    -    -    -     -       -       -       -       -
e1.example.org          lx-amd64        2    1    2    2  0.01    1.9G  300.0M     0.0     0.0
e2                      lx-amd64        2    1    2    2     -    1.9G       -     0.0     0.0
`

func TestNotReporting(t *testing.T) {
	for _, tc := range []struct {
		hosts []string
		want  []string
	}{
		{[]string{"e1"}, nil},
		{[]string{"e1.example.org"}, nil},
		{[]string{"e2"}, []string{"e2"}},
		{[]string{"e1", "e3"}, []string{"e3"}},
	} {
		if got := sge.NotReporting(skQhost, tc.hosts); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("NotReporting(%v) = %v, want %v", tc.hosts, got, tc.want)
		}
	}
}

func TestSGEExecdReporting(t *testing.T) {
	tests := []struct {
		name, hosts string
		replies     []string // qhost's output, attempt by attempt (the last repeats)
		wantErr     string
		attempts    int
	}{
		{"all report", "e1", []string{skQhost}, "", 1},
		{"e2 reports on the second look", "e1 e2", []string{skQhost, strings.Replace(skQhost, "2     -    1.9G", "2  0.50    1.9G", 1)}, "", 2},
		{"e2 never reports", "e1,e2", []string{skQhost}, "not reporting: e2", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			f := newFake(t, "s").onDo("qhost", func(*fakeTarget, string) target.Output {
				out := tc.replies[min(n, len(tc.replies)-1)]
				n++
				return target.Output{Stdout: out}
			})
			s := skMust(t, "sge_execd_reporting", "{sge_root: /opt/sge, sge_cell: prod, hosts: '"+tc.hosts+"', interval: 1ms, deadline: 30ms}")
			res, err := s.Do(context.Background(), f, Runtime{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || res.Data["attempts"] != tc.attempts {
				t.Fatalf("err %v after %v attempt(s), want success after %d", err, res.Data["attempts"], tc.attempts)
			}
		})
	}
}

// Plan looks once: in a dry run no execd was restarted.
func TestSGEExecdReportingPlan(t *testing.T) {
	f := newFake(t, "s").on("qhost", target.Output{Stdout: skQhost})
	s := skMust(t, "sge_execd_reporting", "{sge_root: /opt/sge, sge_cell: prod, hosts: e2, deadline: 1h}")
	start := time.Now()
	if _, err := s.(Planner).Plan(context.Background(), f, Runtime{}); err == nil || time.Since(start) > time.Second || len(f.cmds("query")) != 1 {
		t.Fatalf("plan: err %v after %s and %d queries, want one failed look", err, time.Since(start), len(f.cmds("query")))
	}
}
