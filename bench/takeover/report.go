package takeover

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sgerun/sgerun/bench"
)

// Report markers: Markdown's block goes between them in
// docs/performance.md; the rest of the file is kept as written.
const (
	BeginMarker = "<!-- takeover-bench:begin (written by bench/takeover.sh; edits here are lost) -->"
	EndMarker   = "<!-- takeover-bench:end -->"
)

// Splice puts generated between the takeover markers of doc, or appends it
// with the markers when doc has none.
func Splice(doc, generated string) string {
	block := BeginMarker + "\n" + generated + EndMarker + "\n"
	i := strings.Index(doc, BeginMarker)
	j := strings.Index(doc, EndMarker)
	if i < 0 || j < i {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + block
	}
	return doc[:i] + block + strings.TrimPrefix(doc[j+len(EndMarker):], "\n")
}

// Stat is the spread of one figure over rounds.
type Stat struct {
	N                int
	Median, Min, Max float64
}

func stat(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{}
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Stat returns the spread of mark over the trials of scenario that have it.
func (r *Result) Stat(scenario, mark string) Stat {
	var vs []float64
	for _, t := range r.Trials {
		if t.Scenario != scenario {
			continue
		}
		if v, ok := t.Marks[mark]; ok {
			vs = append(vs, v)
		}
	}
	return stat(vs)
}

// trials returns the trials of scenario.
func (r *Result) trials(scenario string) []*Trial {
	var out []*Trial
	for _, t := range r.Trials {
		if t.Scenario == scenario {
			out = append(out, t)
		}
	}
	return out
}

func (s Stat) cell() string {
	switch s.N {
	case 0:
		return "—"
	case 1:
		return fmt.Sprintf("%.1f s", s.Median)
	}
	return fmt.Sprintf("**%.1f s** (%.1f–%.1f)", s.Median, s.Min, s.Max)
}

// baseline is what a scenario is compared with in the same run.
func baseline(scenario string) string {
	// The other pairs start their clocks differently (an invocation
	// against a failure) or do not fail over at all (sge_shadowd on a cut).
	switch scenario {
	case TakeoverCut:
		return SeedCut
	case WatchHang:
		return ShadowdHang
	}
	return ""
}

// describe says what a scenario runs.
func describe(sc string) string {
	switch sc {
	case SeedCut:
		return "seed `sgetakeover`, after a scheduler-network cut"
	case TakeoverCut:
		return "`sgerun takeover --yes`, after a scheduler-network cut"
	case TakeoverHang:
		return "`sgerun takeover --yes`, after a hang (SIGSTOP of qmaster)"
	case ShadowdHang:
		return "`sge_shadowd` 30/30/30, on a hang (t=0: the hang)"
	case WatchCut:
		return "`sgerun watch` (shipped defaults), on a cut (t=0: the cut)"
	case WatchHang:
		return "`sgerun watch` (shipped defaults), on a hang (t=0: the hang)"
	case TransferCut:
		return "`sgerun takeover --yes`, cut right after 2 more jobs were submitted"
	}
	return sc
}

// Markdown renders a benchmark's figures.
func Markdown(r *Result, m bench.Machine) string {
	var b strings.Builder
	cfg := r.Config
	sleep := "sleep " + cfg.JobSleep.String()
	if cfg.JobSleep == 0 {
		sleep = "sleep differing between the merged runs"
	}
	fmt.Fprintf(&b, "Run of %s: %d round(s), each scenario on a fresh lab (%d exec hosts, %d jobs, %s), order rotated by round, %d trial(s) at once; took %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), cfg.Rounds, cfg.ExecHosts, cfg.Jobs,
		sleep, max(cfg.Parallel, 1), r.Took.Round(time.Second))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s, kernel %s; sgerun %s, %s.\n\n", m.CPUs, m.CPU, m.Memory, m.Kernel, m.Sgerun, m.Go)

	b.WriteString("### Time to each point (median, min–max; seconds from the invocation, or from the failure for detectors)\n\n")
	b.WriteString("| scenario | rounds ok | qping `status: 0` | every execd reports | jobs running | command exit |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, sc := range Scenarios() {
		ts := r.trials(sc)
		if len(ts) == 0 || sc == Floor {
			continue
		}
		ok := 0
		for _, t := range ts {
			if t.OK() {
				ok++
			}
		}
		exit := r.Stat(sc, MarkExit).cell()
		if sc == ShadowdHang {
			exit = "(daemon)"
		}
		fmt.Fprintf(&b, "| %s | %d/%d | %s | %s | %s | %s |\n", describe(sc), ok, len(ts),
			r.Stat(sc, MarkQping).cell(), r.Stat(sc, MarkExecds).cell(), r.Stat(sc, MarkJobs).cell(), exit)
	}
	b.WriteString("\n")

	b.WriteString("### Ratios of medians, same run\n\n| scenario | against | qping `status: 0` | every execd reports | command exit |\n|---|---|---:|---:|---:|\n")
	for _, sc := range Scenarios() {
		base := baseline(sc)
		if base == "" || len(r.trials(sc)) == 0 || len(r.trials(base)) == 0 {
			continue
		}
		cells := []string{}
		for _, mk := range []string{MarkQping, MarkExecds, MarkExit} {
			a, c := r.Stat(sc, mk), r.Stat(base, mk)
			if a.N == 0 || c.N == 0 || c.Median == 0 {
				cells = append(cells, "—")
				continue
			}
			cells = append(cells, fmt.Sprintf("%.2f×", a.Median/c.Median))
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", sc, base, strings.Join(cells, " | "))
	}
	b.WriteString("\n")

	// sgerun's steps.
	for _, sc := range []string{TakeoverCut, TakeoverHang, WatchCut, WatchHang, TransferCut} {
		ts := r.trials(sc)
		names, by := stepStats(ts)
		if len(names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "<details><summary>sgerun's steps, %s (journal; start from t=0 and duration, medians)</summary>\n\n", sc)
		if sc == WatchCut || sc == WatchHang {
			fmt.Fprintf(&b, "watch confirmed at %s, started its takeover at %s.\n\n",
				r.Stat(sc, MarkConfirmed).cell(), r.Stat(sc, MarkTOStart).cell())
		}
		b.WriteString("| step | starts at | takes |\n|---|---:|---:|\n")
		for _, n := range names {
			fmt.Fprintf(&b, "| %s | %.1f s | %.2f s |\n", n, stat(by[n][0]).Median, stat(by[n][1]).Median)
		}
		b.WriteString("\n</details>\n\n")
	}

	if len(r.trials(Floor)) > 0 {
		b.WriteString("### Floor (by hand, same lab and cut)\n\n| part | median | min | max |\n|---|---:|---:|---:|\n")
		for _, p := range [][2]string{
			{FloorCopy, "`cp -a` of the spool directory"},
			{FloorQmasterStart, "`sgemaster -qmaster start` from the copy, until qping `status: 0`"},
			{FloorSoftstop, "then `sgeexecd softstop` on all exec hosts at once, until every sge_execd is gone"},
			{FloorExecdStart, "then `sgeexecd start` on all exec hosts at once, until every host reports load"},
		} {
			s := r.Stat(Floor, p[0])
			if s.N == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %.2f s | %.2f s | %.2f s |\n", p[1], s.Median, s.Min, s.Max)
		}
		b.WriteString("\n")
	}

	if ts := r.trials(TransferCut); len(ts) > 0 {
		b.WriteString("### Jobs in transfer\n\n| round | jobs | first state on the new master | run at | after the takeover's end | named by the takeover |\n|---:|---|---|---:|---:|---|\n")
		for _, t := range ts {
			var st []string
			for _, id := range t.TransferJobs {
				st = append(st, fmt.Sprintf("%d: %s", id, t.TransferStates[id]))
			}
			run, after := "never (in the window)", "—"
			if v, ok := t.Marks[MarkTransfer]; ok {
				run = fmt.Sprintf("%.1f s", v)
				if e, ok := t.Marks[MarkExit]; ok {
					after = fmt.Sprintf("%.1f s", v-e)
				}
			}
			fmt.Fprintf(&b, "| %d | %v | %s | %s | %s | %v |\n", t.Round, t.TransferJobs, strings.Join(st, ", "), run, after, t.TransferNamed)
		}
		b.WriteString("\n")
	}

	b.WriteString("### Targets (medians)\n\n| target | figure | |\n|---|---:|---|\n")
	target := func(what string, v float64, ok bool, unit string) {
		fmt.Fprintf(&b, "| %s | %.2f%s | %s |\n", what, v, unit, verdict(ok))
	}
	if s := r.Stat(TakeoverCut, MarkExecds); s.N > 0 {
		target("`sgerun takeover` after a cut, invocation to every execd reporting ≤ 10 s", s.Median, s.Median <= 10, " s")
		if c := r.Stat(SeedCut, MarkExecds); c.N > 0 && c.Median > 0 {
			x := s.Median / c.Median
			target("… and ≤ 1.5× the seed script to the same point", x, x <= 1.5, "×")
		}
	}
	if s := r.Stat(WatchCut, MarkQping); s.N > 0 {
		target("`sgerun watch`, cut to qping `status: 0` ≤ 30 s", s.Median, s.Median <= 30, " s")
	}
	if s := r.Stat(WatchHang, MarkQping); s.N > 0 {
		target("`sgerun watch`, hang to qping `status: 0` ≤ 45 s", s.Median, s.Median <= 45, " s")
		if c := r.Stat(ShadowdHang, MarkQping); c.N > 0 && c.Median > 0 {
			x := s.Median / c.Median
			target("… and ≤ 0.25× sge_shadowd 30/30/30 on the same hang", x, x <= 0.25, "×")
		}
	}
	if ts := r.trials(TransferCut); len(ts) > 0 {
		met := 0
		for _, t := range ts {
			v, ok := t.Marks[MarkTransfer]
			e, eok := t.Marks[MarkExit]
			if (ok && eok && v-e <= 60) || t.TransferNamed {
				met++
			}
		}
		fmt.Fprintf(&b, "| jobs dispatched after the cut run within 60 s of the takeover's end, or are named | %d/%d rounds | %s |\n",
			met, len(ts), verdict(met == len(ts)))
	}
	ok, all := 0, 0
	var bad []string
	for _, t := range r.Trials {
		all++
		if t.OK() {
			ok++
		} else {
			bad = append(bad, fmt.Sprintf("%s round %d: %s", t.Scenario, t.Round, strings.Join(t.Problems(), "; ")))
		}
	}
	fmt.Fprintf(&b, "| every trial ends with the shadow serving and every job exit 0 | %d/%d | %s |\n\n", ok, all, verdict(ok == all))
	if len(bad) > 0 {
		b.WriteString("Failed trials:\n\n")
		for _, s := range bad {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(s, "\n", " "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// stepStats collects each step's start and duration over trials, in the
// order of the first trial that has them.
func stepStats(ts []*Trial) ([]string, map[string][2][]float64) {
	var names []string
	by := map[string][2][]float64{}
	for _, t := range ts {
		for _, s := range t.Steps {
			v, ok := by[s.Name]
			if !ok {
				names = append(names, s.Name)
			}
			v[0] = append(v[0], s.At)
			v[1] = append(v[1], s.Seconds)
			by[s.Name] = v
		}
	}
	return names, by
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
