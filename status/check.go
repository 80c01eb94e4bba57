package status

import (
	"fmt"
	"strings"
	"time"

	"github.com/sgerun/sgerun/journal"
)

// Nagios plugin states.
const (
	OK       = 0
	Warning  = 1
	Critical = 2
	Unknown  = 3
)

// StateName names a Nagios state.
func StateName(s int) string {
	return [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}[s]
}

// Verdict is the result of check: a Nagios state, the reasons and the
// perfdata.
type Verdict struct {
	State    int      `json:"state"`
	Name     string   `json:"status"`
	Reasons  []string `json:"reasons"`
	Perfdata string   `json:"perfdata"`
	Report   *Report  `json:"report"`
}

// Check judges a report: CRITICAL when no qmaster serves, two qmasters run
// (split brain) or a fence is pending; WARNING when the heartbeat is stale,
// exec hosts do not report, a host is unreachable or the last takeover is
// not acknowledged; UNKNOWN when neither master nor shadow could be read.
func Check(r *Report, heartbeatStale time.Duration, last *LastRun) Verdict {
	v := Verdict{Report: r}
	crit := func(format string, a ...any) {
		v.Reasons = append(v.Reasons, "CRITICAL: "+fmt.Sprintf(format, a...))
		v.State = max(v.State, Critical)
	}
	warn := func(format string, a ...any) {
		v.Reasons = append(v.Reasons, "WARNING: "+fmt.Sprintf(format, a...))
		if v.State < Warning {
			v.State = Warning
		}
	}
	reachable := 0
	for _, h := range r.Hosts {
		if h.Reachable {
			reachable++
		} else {
			warn("%s %s unreachable", h.Role, h.Name)
		}
	}
	if reachable == 0 {
		v.State = Unknown
		v.Reasons = append(v.Reasons, "UNKNOWN: neither master nor shadow can be reached")
	} else {
		switch {
		case r.SplitBrain:
			crit("split brain: qmaster processes on %s", strings.Join(r.Running, " and "))
		case len(r.Serving) == 0:
			crit("no qmaster answers qping (act_qmaster: %s)", r.ActQmaster)
		case r.ActQmaster != "" && r.Serving[0] != r.ActQmaster:
			warn("qmaster serves on %s but act_qmaster names %s", r.Serving[0], r.ActQmaster)
		}
		if r.PendingFence != nil {
			crit("pending fence: old master %s was not fenced after run %s (%s); run sgerun fence",
				r.PendingFence.Master, r.PendingFence.RunID, r.PendingFence.Reason)
		}
		if r.HeartbeatAge >= 0 && time.Duration(r.HeartbeatAge)*time.Second > heartbeatStale {
			warn("heartbeat is %ds old", r.HeartbeatAge)
		}
		if len(r.NotReporting) > 0 {
			warn("%d of %d exec host(s) not reporting: %s", len(r.NotReporting), r.ExecTotal, strings.Join(r.NotReporting, ","))
		}
		if r.LastTakeover != nil && !r.LastTakeover.Acked {
			warn("takeover %s -> %s at %s (run %s) not acknowledged; run sgerun ack", r.LastTakeover.From,
				r.LastTakeover.To, r.LastTakeover.Time.Format(time.RFC3339), r.LastTakeover.RunID)
		}
		if last != nil && last.Status == journal.StatusCommittedWithFailures && (r.LastTakeover == nil || !r.LastTakeover.Acked) {
			warn("takeover run %s committed with failures: the shadow serves, some hosts failed after the commit point; see sgerun show %s",
				last.RunID, last.RunID)
		}
		for _, p := range r.Problems {
			if !strings.Contains(p, "unreachable") {
				warn("%s", p)
			}
		}
	}
	v.Name = StateName(v.State)
	pending := 0
	if r.PendingFence != nil {
		pending = 1
	}
	stale := int(heartbeatStale / time.Second)
	// An unknown heartbeat age (-1) is "U", the plugin guidelines' value
	// for "could not be determined", never 0s, which would read as fresh.
	age := "U"
	if r.HeartbeatAge >= 0 {
		age = fmt.Sprintf("%ds", r.HeartbeatAge)
	}
	v.Perfdata = fmt.Sprintf("heartbeat_age=%s;%d;%d;0 exec_reporting=%d;;;0;%d qmasters_running=%d;;2;0 qmasters_serving=%d;;;0 pending_fence=%d;;1;0;1",
		age, stale, stale*3, r.ExecReporting, r.ExecTotal, len(r.Running), len(r.Serving), pending)
	return v
}

// Line is the Nagios plugin output line.
func (v Verdict) Line() string {
	summary := "qmaster on " + strings.Join(v.Report.Serving, ",")
	if h := v.Report.Heads; h != nil && h.Differ {
		summary += " (the standby head; preferred " + h.Preferred + ")"
	}
	if len(v.Reasons) > 0 {
		summary = strings.Join(v.Reasons, "; ")
	}
	return fmt.Sprintf("SGERUN %s - %s | %s", v.Name, summary, v.Perfdata)
}
