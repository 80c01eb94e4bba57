package steps

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// sgeJobsKnownSpec waits until every job of Jobs (the job ids of a spool
// copy, or the jobs listed before a takeback) is known to the qmaster
// (qstat) or has ended (the cell's accounting file, or Accounted: jobs
// another host's accounting holds). A job that is neither is lost.
type sgeJobsKnownSpec struct {
	SGERoot   string        `yaml:"sge_root"`
	SGECell   string        `yaml:"sge_cell"`
	Jobs      string        `yaml:"jobs"`
	Accounted string        `yaml:"accounted"`
	Interval  time.Duration `yaml:"interval"`
	Deadline  time.Duration `yaml:"deadline"`
}

func (s *sgeJobsKnownSpec) Mutates() bool { return false }

func (s *sgeJobsKnownSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return s.poll(ctx, t, s.Deadline)
}

// Plan checks once: in a dry run no new qmaster runs.
func (s *sgeJobsKnownSpec) Plan(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	return s.poll(ctx, t, 0)
}

func (s *sgeJobsKnownSpec) poll(ctx context.Context, t target.Target, deadline time.Duration) (Result, error) {
	want := uniqueIDs(splitList(s.Jobs))
	done := map[string]bool{}
	for _, id := range uniqueIDs(splitList(s.Accounted)) {
		done[id] = true
	}
	env := sge.Env(s.SGERoot, s.SGECell)
	return pollUntil(ctx, s.Interval, deadline, func() (Result, string, error) {
		res := Result{Data: map[string]any{"lost": []string{}, "known": 0}}
		out, err := t.Query(ctx, env+"qstat -u '*'", nil)
		res.Output = out
		if err != nil {
			return res, "", err
		}
		if out.ExitCode != 0 {
			return res, fmt.Sprintf("qstat failed: exit status %d%s", out.ExitCode, lastLine(out.Stderr)), nil
		}
		known := qstatJobs(out.Stdout)
		res.Data["known"] = len(known)
		var missing []string
		for _, id := range want {
			if !known[id] && !done[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			ended, err := accountedJobs(ctx, t, s.SGERoot, s.SGECell, missing)
			if err != nil {
				return res, "", err
			}
			var lost []string
			for _, id := range missing {
				if !ended[id] {
					lost = append(lost, id)
				}
			}
			missing = lost
		}
		res.Stdout = fmt.Sprintf("jobs to check: %d, known now: %d\n", len(want), len(known))
		if len(missing) > 0 {
			res.Data["lost"] = missing
			return res, "jobs neither queued nor accounted: " + strings.Join(missing, " "), nil
		}
		return res, "", nil
	})
}

// accountedJobs returns which of ids have ended: those the cell's
// accounting file on t holds (its field 6 is the job number). No file
// means none.
func accountedJobs(ctx context.Context, t target.Target, root, cell string, ids []string) (map[string]bool, error) {
	ended := map[string]bool{}
	if len(ids) == 0 {
		return ended, nil
	}
	acct := shell.Quote(cellCommon(root, cell) + "/accounting")
	cmd := "[ -r " + acct + " ] || exit 0; awk -F: -v ids=" + shell.Quote(" "+strings.Join(ids, " ")+" ") +
		` 'index(ids, " " $6 " ") {print $6}' ` + acct
	out, err := t.Query(ctx, cmd, nil)
	if err != nil {
		return nil, err
	}
	if out.ExitCode != 0 {
		return nil, fmt.Errorf("read the accounting file on %s: exit status %d%s", t.Name(), out.ExitCode, lastLine(out.Stderr))
	}
	for _, id := range strings.Fields(out.Stdout) {
		ended[id] = true
	}
	return ended, nil
}

// sgeListJobsSpec lists the job ids the qmaster knows (qstat -u '*'), as
// the reference a later sge_jobs_known checks against. Its stdout is the
// ids, space-separated.
type sgeListJobsSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
}

func (s *sgeListJobsSpec) Mutates() bool { return false }

func (s *sgeListJobsSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	out, err := t.Query(ctx, sge.Env(s.SGERoot, s.SGECell)+"qstat -u '*'", nil)
	res := Result{Output: out, Data: map[string]any{"jobs": []string{}}}
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("qstat: exit status %d%s", out.ExitCode, lastLine(out.Stderr))
	}
	ids := uniqueIDs(slices.Collect(maps.Keys(qstatJobs(out.Stdout))))
	res.Data["jobs"] = ids
	res.Stdout = strings.Join(ids, " ")
	return res, nil
}

// sgeJobsAccountedSpec names which of Jobs the cell's accounting file on
// the host it runs on holds: where common/ is local to each host, the
// jobs that ended under the shadow's qmaster are in the shadow's file
// only. Its stdout is those ids, space-separated.
type sgeJobsAccountedSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
	Jobs    string `yaml:"jobs"`
}

func (s *sgeJobsAccountedSpec) Mutates() bool { return false }

func (s *sgeJobsAccountedSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	res := Result{Data: map[string]any{"jobs": []string{}}}
	ended, err := accountedJobs(ctx, t, s.SGERoot, s.SGECell, uniqueIDs(splitList(s.Jobs)))
	if err != nil {
		return res, err
	}
	ids := uniqueIDs(slices.Collect(maps.Keys(ended)))
	res.Data["jobs"] = ids
	res.Stdout = strings.Join(ids, " ")
	return res, nil
}

// qstatJobs returns the job ids of qstat's table (after its two header
// lines).
func qstatJobs(out string) map[string]bool {
	ids := map[string]bool{}
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		if f := strings.Fields(line); i >= 2 && len(f) > 0 && allDigits(f[0]) {
			ids[f[0]] = true
		}
	}
	return ids
}

func sgeJobsKnownKind() Kind {
	return Kind{
		Name:     "sge_jobs_known",
		Doc:      "wait until every job id of jobs is known to the qmaster (qstat) or accounted (the accounting file, or accounted), every interval until the deadline: no job was lost",
		DataKeys: []string{"lost", "known", "attempts"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeJobsKnownSpec{Interval: time.Second, Deadline: 90 * time.Second}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkCell(n, s.SGERoot, s.SGECell); err != nil {
				return nil, err
			}
			return s, checkPoll(n, s.Interval, s.Deadline)
		},
	}
}

// transferDelay is how long after a dispatch SGE delivers a job in
// transfer again (MAX_JOB_DELIVER_TIME).
const transferDelay = 300 * time.Second

// sgeJobsInTransferSpec names the jobs the qmaster holds as in transfer
// (state t): a job the old master dispatched after the cut is spooled
// that way, and the new qmaster delivers it again only when SGE's delivery
// timer fires, 300 s after the dispatch. It is not lost; each one is a
// warning with the time it will run.
type sgeJobsInTransferSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
}

func (s *sgeJobsInTransferSpec) Mutates() bool { return false }

func (s *sgeJobsInTransferSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	out, err := t.Query(ctx, "date '+%s %z'; "+sge.Env(s.SGERoot, s.SGECell)+"qstat -u '*' -s r", nil)
	res := Result{Output: out, Data: map[string]any{"jobs": []string{}}}
	if err != nil {
		return res, err
	}
	first, rest, _ := strings.Cut(out.Stdout, "\n")
	ws, jobs := transferWarnings(first, rest)
	res.Data["jobs"] = jobs
	res.Warning = strings.Join(ws, "\n")
	return res, nil
}

// transferWarnings reads the host's "date +%s %z" line and qstat's table.
func transferWarnings(dateLine, qstat string) ([]string, []string) {
	var nowSec int64
	zone := time.UTC
	if f := strings.Fields(dateLine); len(f) == 2 {
		nowSec, _ = strconv.ParseInt(f[0], 10, 64)
		if z, err := time.Parse("-0700", f[1]); err == nil {
			_, off := z.Zone()
			zone = time.FixedZone(f[1], off)
		}
	}
	now := time.Unix(nowSec, 0).In(zone)
	var ws, jobs []string
	for i, line := range strings.Split(qstat, "\n") {
		f := strings.Fields(line)
		if i < 2 || len(f) < 8 || !strings.Contains(f[4], "t") {
			continue
		}
		at := now
		if since, err := time.ParseInLocation("01/02/2006 15:04:05", f[5]+" "+f[6], zone); err == nil {
			at = since
		}
		at = at.Add(transferDelay)
		jobs = append(jobs, f[0])
		ws = append(ws, fmt.Sprintf("job %s is in transfer to %s since %s %s: SGE delivers it again at %s (in %d s); it is not lost",
			f[0], f[7], f[5], f[6], at.Format("15:04:05"), int64(at.Sub(now).Seconds())))
	}
	return ws, jobs
}

func sgeListJobsKind() Kind {
	return Kind{
		Name:     "sge_list_jobs",
		Doc:      "list the job ids the qmaster knows (qstat -u '*'), space-separated on stdout and as data jobs: what a later sge_jobs_known checks",
		DataKeys: []string{"jobs"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeListJobsSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, checkCell(n, s.SGERoot, s.SGECell)
		},
	}
}

func sgeJobsAccountedKind() Kind {
	return Kind{
		Name:     "sge_jobs_accounted",
		Doc:      "name which job ids of jobs this host's accounting file holds (they ended here), space-separated on stdout and as data jobs",
		DataKeys: []string{"jobs"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeJobsAccountedSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, checkCell(n, s.SGERoot, s.SGECell)
		},
	}
}

func sgeJobsInTransferKind() Kind {
	return Kind{
		Name:     "sge_jobs_in_transfer",
		Doc:      "warn about each job in transfer (qstat state t): SGE delivers it again 300 s after its dispatch; it is not lost",
		DataKeys: []string{"jobs"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeJobsInTransferSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			return s, checkCell(n, s.SGERoot, s.SGECell)
		},
	}
}
