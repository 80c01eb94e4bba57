package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs    int
	Memory  string
	Kernel  string
	GVisor  string
	CPU     string
	Go      string
	Sgerun  string
	Pdsh    string
	Clush   string
	OpenSSH string
}

// DetectMachine reads the machine's description and the tools' versions.
func DetectMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	m.GVisor = "no"
	if out, _ := exec.Command("dmesg").CombinedOutput(); bytes.Contains(out, []byte("gVisor")) {
		m.GVisor = "yes"
	}
	first := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	m.Pdsh = first("pdsh", "-V")
	m.Clush = first("clush", "--version")
	m.OpenSSH = first("ssh", "-V")
	if rev := first("git", "-C", ".", "rev-parse", "--short", "HEAD"); rev != "" && !strings.Contains(rev, " ") {
		m.Sgerun = "git " + rev
	}
	if m.Sgerun == "" {
		m.Sgerun = "(no git checkout)"
	}
	return m
}

// Report markers: Markdown replaces what lies between them in
// docs/performance.md and keeps the rest (method and analysis) as written.
const (
	BeginMarker = "<!-- bench:begin (written by bench/run.sh; edits here are lost) -->"
	EndMarker   = "<!-- bench:end -->"
)

// Splice puts generated between the markers of doc, or appends it with
// the markers when doc has none.
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

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

// Markdown renders the figures of a benchmark.
func Markdown(r *Result, m Machine) string {
	var b strings.Builder
	cfg := r.Config
	fmt.Fprintf(&b, "Run of %s, %d runs per tool per case, alternating order; took %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), cfg.Runs, r.Took.Round(time.Second))
	b.WriteString("| machine | |\n|---|---|\n")
	fmt.Fprintf(&b, "| CPUs (`nproc`) | %d (%s) |\n| memory | %s |\n| kernel | %s |\n| gVisor | %s |\n",
		m.CPUs, m.CPU, m.Memory, m.Kernel, m.GVisor)
	fmt.Fprintf(&b, "| sgerun | %s, %s |\n| pdsh | %s |\n| clush | %s |\n| OpenSSH | %s |\n\n",
		m.Sgerun, m.Go, m.Pdsh, m.Clush, m.OpenSSH)

	table := func(c CaseResult, base string) {
		if len(c.Rows) == 0 {
			return
		}
		fmt.Fprintf(&b, "### %s\n\n", c.Name)
		fmt.Fprintf(&b, "Fanout %d; %d command(s) per host: `%s`.\n\n", c.Fanout, len(c.Rounds),
			strings.Join(c.Rounds, "`, then `"))
		b.WriteString("| tool | runs | median | min | max | client CPU | server CPU | sgerun ÷ tool |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
		sg, _ := c.Row(base)
		for _, row := range c.Rows {
			label := row.Label
			if len(c.Rounds) > 1 && !strings.HasPrefix(label, "sgerun run") {
				label += fmt.Sprintf(" ×%d", len(c.Rounds))
			}
			rel := ""
			if !strings.HasPrefix(row.Label, "sgerun") {
				rel = fmt.Sprintf("%.2f", ratio(sg.Median, row.Median))
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", label, row.N,
				secs(row.Median), secs(row.Min), secs(row.Max), secs(row.ClientCPU), secs(row.ServerCPU), rel)
		}
		b.WriteString("\n")
	}
	table(r.Real, "sgerun run")
	table(r.Sim, "sgerun exec")
	table(r.SimRun, "sgerun run")
	if len(r.RSS) > 0 {
		b.WriteString("### Peak RSS of sgerun (`/usr/bin/time -v`), simulated hosts\n\n")
		b.WriteString("| command | runs | peak RSS (max) | median |\n|---|---:|---:|---:|\n")
		for _, row := range r.RSS {
			fmt.Fprintf(&b, "| %s on %d hosts | %d | %.1f MiB | %.1f MiB |\n", row.Label, r.Sim.Hosts, row.N,
				float64(row.MaxRSSKB)/1024, float64(row.MedianRSSKB)/1024)
		}
		b.WriteString("\n")
	}

	b.WriteString("### Targets\n\n| target | figure | |\n|---|---:|---|\n")
	if sg, ok := r.Real.Row("sgerun run"); ok {
		if p, ok := r.Real.Row("pdsh"); ok {
			x := ratio(sg.Median, p.Median)
			fmt.Fprintf(&b, "| execd step: sgerun ≤ 0.5× pdsh twice | %.2f× | %s |\n", x, verdict(x <= 0.5))
		}
		if c, ok := r.Real.Row("clush"); ok {
			x := ratio(sg.Median, c.Median)
			fmt.Fprintf(&b, "| execd step: sgerun ≤ 0.6× clush twice | %.2f× | %s |\n", x, verdict(x <= 0.6))
		}
	}
	if c, ok := r.Sim.Row("clush"); ok {
		sg, _ := r.Sim.Row("sgerun exec")
		x := ratio(sg.Median, c.Median)
		fmt.Fprintf(&b, "| %d hosts: sgerun exec ≤ 0.3× clush (fanout %d) | %.2f× | %s |\n", r.Sim.Hosts, r.Sim.Fanout,
			x, verdict(x <= 0.3))
		best := sg
		for _, row := range r.Sim.Rows {
			if strings.HasPrefix(row.Label, "sgerun exec") && row.Median < best.Median {
				best = row
			}
		}
		if best.Label != sg.Label {
			x := ratio(best.Median, c.Median)
			fmt.Fprintf(&b, "| %d hosts, best sgerun fanout (%s) ÷ clush | %.2f× | %s |\n", r.Sim.Hosts, best.Label,
				x, verdict(x <= 0.3))
		}
	}
	for _, row := range r.RSS {
		mib := float64(row.MaxRSSKB) / 1024
		fmt.Fprintf(&b, "| %s, %d hosts: peak RSS ≤ 150 MiB | %.1f MiB | %s |\n", row.Label, r.Sim.Hosts, mib,
			verdict(mib <= 150))
	}
	b.WriteString("| every host's output and exit code correct in every run | yes | met |\n\n")
	return b.String()
}
