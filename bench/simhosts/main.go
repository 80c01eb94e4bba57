// Command simhosts serves a simulated cluster: N virtual SSH hosts in one
// process, each on its own 127.0.0.1 port with its own host key, answering
// by a small rule set (true, echo, hostname, sleep N, exit N; see
// internal/sshtest.Rules). It writes, into -dir, a user key, known_hosts,
// an sgerun inventory, a host list and an OpenSSH client config, so that
// sgerun, pdsh and clush reach the same hosts:
//
//	go run ./bench/simhosts -n 1000 -dir /tmp/sim &
//	sgerun exec -i /tmp/sim/inventory.yaml --on all -- hostname
//	PDSH_SSH_ARGS_APPEND="-F /tmp/sim/ssh_config" pdsh -R ssh -w ^/tmp/sim/hosts hostname
//	clush --hostfile /tmp/sim/hosts -o "-F /tmp/sim/ssh_config" hostname
//
// It runs until SIGINT or SIGTERM, then closes every host and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sgerun/sgerun/bench"
)

func main() {
	var o bench.SimOptions
	flag.IntVar(&o.Hosts, "n", 1000, "number of virtual hosts")
	flag.StringVar(&o.Dir, "dir", "", "directory for the key, known_hosts, inventory.yaml, hosts and ssh_config (default: a new temporary one)")
	flag.StringVar(&o.Prefix, "prefix", "sim", "host name prefix: PREFIX0000, PREFIX0001, ...")
	flag.IntVar(&o.FailEvery, "fail-every", 0, "host i fails every command when i % N == 0 (0: none)")
	flag.IntVar(&o.FailCode, "fail-code", 3, "exit code of a failing host")
	flag.DurationVar(&o.Latency, "latency", 0, "delay before every command")
	flag.IntVar(&o.MaxHandshakes, "max-handshakes", 0, "ssh.max_handshakes in the inventory (0: sgerun's default)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "simhosts:", err)
		os.Exit(1)
	}
}

func run(o bench.SimOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "simhosts-")
		if err != nil {
			return err
		}
		o.Dir = dir
	} else if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	c, err := bench.StartSim(o)
	if err != nil {
		return err
	}
	f := c.Files
	fmt.Printf("serving %d hosts (%s to %s)\ninventory  %s\nhosts      %s\nssh_config %s\nknown_hosts %s\nkey        %s\n",
		len(c.Names), c.Names[0], c.Names[len(c.Names)-1], f.Inventory, f.HostList, f.SSHConfig, f.KnownHosts, f.Key)
	fmt.Printf("PDSH_SSH_ARGS_APPEND=\"-F %s\" pdsh -R ssh -w ^%s hostname\n", f.SSHConfig, f.HostList)
	fmt.Printf("clush --hostfile %s -o \"-F %s\" hostname\nready\n", f.HostList, f.SSHConfig)
	<-ctx.Done()
	return c.Close()
}
