// Command takeover runs sgerun's takeover benchmark on the real-SGE lab and
// writes its figures into docs/performance.md (between the takeover-bench
// markers) and every sample into a JSON file. Run it as bench/takeover.sh
// does, as root, from the repository's root:
//
//	go run ./bench/cmd/takeover -rounds 5
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/bench"
	"github.com/sgerun/sgerun/bench/takeover"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "takeover bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg takeover.Config
	var scenarios, out, jsonOut string
	var quick bool
	var from string
	flag.IntVar(&cfg.Rounds, "rounds", 5, "rounds (every scenario once per round, on a fresh lab)")
	flag.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios (default all: "+strings.Join(takeover.Scenarios(), ",")+")")
	flag.BoolVar(&quick, "quick", false, "one round, correctness only: no docs update unless -out is given")
	flag.StringVar(&cfg.Sgerun, "sgerun", "", "sgerun binary (default: go build ./cmd/sgerun)")
	flag.IntVar(&cfg.Jobs, "jobs", 6, "jobs running when the fault comes")
	flag.DurationVar(&cfg.JobSleep, "job-sleep", 90*time.Second, "how long each job runs")
	flag.IntVar(&cfg.Parallel, "parallel", 1, "trials at once, each on its own lab (more: faster run, slower figures)")
	flag.DurationVar(&cfg.Poll, "poll", 200*time.Millisecond, "pause between two samples")
	flag.StringVar(&out, "out", "docs/performance.md", "Markdown file to update (empty: print to stdout)")
	flag.StringVar(&jsonOut, "json", "", "raw samples (default: $TMPDIR/sgerun-takeover-<time>.json)")
	flag.StringVar(&from, "from", "", "render the Markdown from these raw JSON files (comma-separated) instead of running")
	flag.Parse()
	outSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "out" {
			outSet = true
		}
	})
	if quick {
		cfg.Rounds, cfg.Quick = 1, true
		if !outSet {
			out = ""
		}
	}
	for _, s := range strings.Split(scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Scenarios = append(cfg.Scenarios, s)
		}
	}
	if from != "" {
		res, err := takeover.ReadJSON(strings.Split(from, ",")...)
		if err != nil {
			return err
		}
		return report(res, out)
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (the lab needs network namespaces)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Sgerun == "" {
		dir, err := os.MkdirTemp("", "sgerun-takeover-bench-")
		if err != nil {
			return fmt.Errorf("temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Sgerun = filepath.Join(dir, "sgerun")
		b := exec.Command("go", "build", "-o", cfg.Sgerun, "./cmd/sgerun")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build sgerun: %w", err)
		}
	}
	m := bench.DetectMachine()
	res, err := takeover.Run(ctx, cfg)
	if res == nil {
		return err
	}
	res.Machine = &m
	if jsonOut == "" {
		jsonOut = filepath.Join(os.TempDir(), "sgerun-takeover-"+res.Started.UTC().Format("20060102-150405")+".json")
	}
	if jerr := takeover.WriteJSON(jsonOut, res); jerr != nil {
		return jerr
	}
	fmt.Fprintln(os.Stderr, "raw samples:", jsonOut)
	if rerr := report(res, out); rerr != nil {
		return rerr
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, t := range res.Trials {
		if !t.OK() {
			failed++
			fmt.Fprintf(os.Stderr, "FAILED %s round %d (lab %s): %s\n", t.Scenario, t.Round, t.Lab, strings.Join(t.Problems(), "; "))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d trials failed", failed, len(res.Trials))
	}
	return nil
}

// report writes the Markdown of res into out between its markers, or to
// stdout when out is empty.
func report(res *takeover.Result, out string) error {
	m := bench.DetectMachine()
	if res.Machine != nil {
		m = *res.Machine
	}
	md := takeover.Markdown(res, m)
	if out == "" {
		fmt.Print(md)
		return nil
	}
	doc, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", out, err)
	}
	if err := os.WriteFile(out, []byte(takeover.Splice(string(doc), md)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Fprintln(os.Stderr, "updated", out)
	return nil
}
