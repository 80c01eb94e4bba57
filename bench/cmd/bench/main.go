// Command bench runs sgerun's fan-out benchmark against pdsh and clush and
// writes the figures into docs/performance.md (between its bench markers).
// Run it as bench/run.sh does, as root, from the repository's root:
//
//	go run ./bench/cmd/bench -out docs/performance.md
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sgerun/sgerun/bench"
)

func main() {
	cfg := bench.Config{Log: os.Stderr}
	var out, fanouts string
	flag.IntVar(&cfg.Runs, "runs", 5, "runs of each tool in each case (the median is reported)")
	flag.IntVar(&cfg.RealHosts, "real", 128, "hosts on real sshd, 127.0.1.1 and up (0: skip)")
	flag.IntVar(&cfg.SimHosts, "sim", 1000, "simulated hosts (0: skip)")
	flag.IntVar(&cfg.Port, "port", 2222, "sshd port on every loopback address")
	flag.IntVar(&cfg.Fanout, "fanout", 64, "fanout of every tool")
	flag.StringVar(&fanouts, "sim-fanouts", "256", "more sgerun exec fanouts to try on the simulated hosts (comma-separated)")
	flag.BoolVar(&cfg.SimPdsh, "sim-pdsh", true, "run pdsh on the simulated hosts too")
	flag.IntVar(&cfg.RSSRuns, "rss-runs", 3, "runs of sgerun under /usr/bin/time -v for peak RSS")
	flag.StringVar(&cfg.User, "user", "", "login user on sshd (default: "+bench.BenchUser+" when it exists, else the current user)")
	flag.StringVar(&out, "out", "docs/performance.md", "Markdown file to update (empty: print to stdout)")
	flag.Parse()
	for _, f := range strings.Split(fanouts, ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, err := strconv.Atoi(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: -sim-fanouts:", err)
				os.Exit(2)
			}
			cfg.SimFanouts = append(cfg.SimFanouts, n)
		}
	}
	if cfg.User == "" {
		if _, err := user.Lookup(bench.BenchUser); err == nil {
			cfg.User = bench.BenchUser
		}
	}
	if err := run(cfg, out); err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
}

func run(cfg bench.Config, out string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "sgerun-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cfg.Work = work
	cfg.Bin = filepath.Join(work, "sgerun")
	build := exec.Command("go", "build", "-o", cfg.Bin, "github.com/sgerun/sgerun/cmd/sgerun")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build sgerun: %w", err)
	}
	res, err := bench.RunSuite(ctx, cfg)
	if err != nil {
		return err
	}
	md := bench.Markdown(res, bench.DetectMachine())
	if out == "" {
		fmt.Print(md)
		return nil
	}
	doc, err := os.ReadFile(out)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.WriteFile(out, []byte(bench.Splice(string(doc), md)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s\n", out)
	return nil
}
