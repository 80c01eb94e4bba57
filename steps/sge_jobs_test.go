package steps

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

const skQstat = `job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID
-----------------------------------------------------------------------------------------------------------------
      1 0.55500 sleep      alice        r     12/01/2026 00:59:00 all.q@e1                           1
     12 0.55500 sleep      alice        qw    12/01/2026 00:59:01                                    1
`

func TestSGEJobsKnown(t *testing.T) {
	tests := []struct {
		name, jobs, accounted string
		acct                  string // ids the accounting file holds
		wantLost              []string
	}{
		{name: "every job queued", jobs: "1 12"},
		{name: "a job that ended is accounted", jobs: "1 7 12", acct: "7\n"},
		{name: "accounted on another host", jobs: "1 7 12", accounted: "7"},
		{name: "a lost job", jobs: "1 7 8 12", acct: "7\n", wantLost: []string{"8"}},
		{name: "no jobs", jobs: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "s").
				on("awk -F: -v ids=", target.Output{Stdout: tc.acct}).
				on("qstat -u '*'", target.Output{Stdout: skQstat})
			s := skMust(t, "sge_jobs_known", "{sge_root: /opt/sge, sge_cell: prod, jobs: '"+tc.jobs+"', accounted: '"+tc.accounted+"', interval: 1ms, deadline: 10ms}")
			if s.Mutates() {
				t.Error("sge_jobs_known mutates")
			}
			res, err := s.Do(context.Background(), f, Runtime{})
			if tc.wantLost != nil {
				if err == nil || !strings.Contains(err.Error(), "jobs neither queued nor accounted: "+strings.Join(tc.wantLost, " ")) {
					t.Fatalf("err %v, want %v lost", err, tc.wantLost)
				}
				if !reflect.DeepEqual(res.Data["lost"], tc.wantLost) {
					t.Errorf("data lost %v, want %v", res.Data["lost"], tc.wantLost)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Data["known"] != 2 {
				t.Errorf("known %v, want 2", res.Data["known"])
			}
			for _, q := range f.cmds("query") {
				if strings.Contains(q, "awk -F:") && !strings.Contains(q, "/opt/sge/prod/common/accounting") {
					t.Errorf("accounting read elsewhere: %s", q)
				}
			}
		})
	}
}

// A qstat that fails is retried until the deadline, never taken for "no
// job known".
func TestSGEJobsKnownQstatFails(t *testing.T) {
	f := newFake(t, "s").on("qstat -u '*'", target.Output{ExitCode: 1, Stderr: "error: commlib error"})
	_, err := skMust(t, "sge_jobs_known", "{sge_root: /r, sge_cell: c, jobs: '1', interval: 1ms, deadline: 5ms}").Do(context.Background(), f, Runtime{})
	if err == nil || !strings.Contains(err.Error(), "qstat failed") || len(f.cmds("query")) < 2 {
		t.Fatalf("err %v after %d queries, want retried qstat failures", err, len(f.cmds("query")))
	}
}

func TestSGEJobsInTransfer(t *testing.T) {
	qstat := `job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID
-----------------------------------------------------------------------------------------------------------------
      4 0.55500 sleep      alice        t     12/01/2026 01:00:00 all.q@e1                           1
      5 0.55500 sleep      alice        r     12/01/2026 01:00:00 all.q@e2                           1
`
	// 01:01:40 at +0100 on the host: 100 s after the dispatch
	f := newFake(t, "s").on("qstat -u '*' -s r", target.Output{Stdout: "1796083300 +0100\n" + qstat})
	s := skMust(t, "sge_jobs_in_transfer", "{sge_root: /opt/sge, sge_cell: prod}")
	res, err := s.Do(context.Background(), f, Runtime{})
	if err != nil {
		t.Fatal(err)
	}
	want := "job 4 is in transfer to all.q@e1 since 12/01/2026 01:00:00: SGE delivers it again at 01:05:00 (in 200 s); it is not lost"
	if res.Warning != want {
		t.Errorf("warning %q,\nwant    %q", res.Warning, want)
	}
	if !reflect.DeepEqual(res.Data["jobs"], []string{"4"}) {
		t.Errorf("jobs %v, want [4]", res.Data["jobs"])
	}
	// no job in transfer, or no qstat: no warning, no failure
	f = newFake(t, "s").on("qstat", target.Output{ExitCode: 1, Stdout: "1796083300 +0000\n"})
	if res, err := s.Do(context.Background(), f, Runtime{}); err != nil || res.Warning != "" {
		t.Errorf("failed qstat: warning %q, err %v; want neither", res.Warning, err)
	}
}
