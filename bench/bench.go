package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Case is one comparison: the same rounds on the same hosts by every tool.
type Case struct {
	Name    string
	Cluster *Cluster
	// Rounds are the commands, run one after another on every host.
	Rounds []string
	// Expect is host i's answer to round r.
	Expect func(r, i int) HostResult
	Fanout int
	Tools  []Tool
}

// Sample is one tool's measured run in a case, and the server CPU it cost.
type Sample struct {
	Run
	ServerCPU time.Duration
}

// Measure runs every tool of c n times, rotating the order each time so
// that no tool always goes first, and checks every host's result of every
// run. It returns the samples by tool label; any wrong result is an error.
func Measure(ctx context.Context, c Case, n int, log io.Writer) (map[string][]Sample, error) {
	out := map[string][]Sample{}
	for i := range n {
		for j := range c.Tools {
			t := c.Tools[(i+j)%len(c.Tools)]
			cpu0 := c.Cluster.ServerCPU()
			r, err := t.Run(ctx, c.Cluster, c.Rounds, c.Fanout)
			if err != nil {
				return out, fmt.Errorf("%s: %s, run %d: %w", c.Name, t.Label(), i+1, err)
			}
			s := Sample{Run: r, ServerCPU: c.Cluster.ServerCPU() - cpu0}
			if err := Check(c, r); err != nil {
				return out, fmt.Errorf("%s: %s, run %d: wrong results: %w", c.Name, t.Label(), i+1, err)
			}
			fmt.Fprintf(log, "%s | %-20s run %d: %7.2fs wall, client cpu %6.2fs, server cpu %6.2fs, rss %d MiB: all %d hosts correct\n",
				c.Name, t.Label(), i+1, r.Wall.Seconds(), r.ClientCPU.Seconds(), s.ServerCPU.Seconds(), r.MaxRSSKB/1024,
				len(c.Cluster.Names))
			out[t.Label()] = append(out[t.Label()], s)
		}
	}
	return out, nil
}

// Check compares every host's result of every round with c.Expect. It
// lists up to 10 wrong hosts.
func Check(c Case, r Run) error {
	if len(r.Rounds) != len(c.Rounds) {
		return fmt.Errorf("%d rounds of results, want %d", len(r.Rounds), len(c.Rounds))
	}
	var wrong []string
	total := 0
	for ri, got := range r.Rounds {
		for i, h := range c.Cluster.Names {
			want := c.Expect(ri, i)
			g, ok := got[h]
			switch {
			case !ok:
				wrong = append(wrong, fmt.Sprintf("round %d %s: no result", ri+1, h))
			case g != want:
				wrong = append(wrong, fmt.Sprintf("round %d %s: stdout %q exit %d, want %q exit %d",
					ri+1, h, g.Stdout, g.Code, want.Stdout, want.Code))
			default:
				continue
			}
			total++
		}
		if len(got) > len(c.Cluster.Names) {
			wrong = append(wrong, fmt.Sprintf("round %d: results for %d hosts, want %d", ri+1, len(got), len(c.Cluster.Names)))
			total++
		}
	}
	if total == 0 {
		return nil
	}
	if len(wrong) > 10 {
		wrong = wrong[:10]
	}
	return fmt.Errorf("%d wrong:\n  %s", total, strings.Join(wrong, "\n  "))
}

// Stats are the median, minimum and maximum of samples.
type Stats struct {
	N                int
	Median, Min, Max time.Duration
	ClientCPU        time.Duration // median
	ServerCPU        time.Duration // median
	MaxRSSKB         int64         // largest
	MedianRSSKB      int64
}

// Summarize computes Stats over samples.
func Summarize(samples []Sample) Stats {
	s := Stats{N: len(samples)}
	if len(samples) == 0 {
		return s
	}
	walls := make([]time.Duration, len(samples))
	cc := make([]time.Duration, len(samples))
	sc := make([]time.Duration, len(samples))
	rss := make([]int64, len(samples))
	for i, x := range samples {
		walls[i], cc[i], sc[i], rss[i] = x.Wall, x.ClientCPU, x.ServerCPU, x.MaxRSSKB
	}
	s.Median, s.Min, s.Max = median(walls), slices.Min(walls), slices.Max(walls)
	s.ClientCPU, s.ServerCPU = median(cc), median(sc)
	slices.Sort(rss)
	s.MaxRSSKB, s.MedianRSSKB = rss[len(rss)-1], rss[len(rss)/2]
	return s
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}
