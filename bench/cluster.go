// Package bench measures sgerun's fan-out against pdsh and ClusterShell
// (clush) on the same hosts: real OpenSSH sshd listeners on loopback
// addresses, and an in-process simulated cluster of up to thousands of
// virtual hosts (internal/sshtest). Every run's per-host output and exit
// codes are checked. cmd/bench writes docs/performance.md; simhosts serves
// a simulated cluster by itself.
package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Cluster is a set of hosts every tool can reach, and the files that tell
// each tool how: an sgerun inventory, a host list for pdsh and clush, and
// an OpenSSH client config. All of them name the hosts the same way.
type Cluster struct {
	// Names are the host names, in order.
	Names []string
	// Addrs are the hosts' "ip:port" addresses, in the order of Names.
	Addrs []string
	Files Files

	close func() error
	cpu   func() time.Duration
}

// ServerCPU returns the CPU time the cluster's servers used so far: the
// simulated hosts' process, or every sshd and the connections it served.
func (c *Cluster) ServerCPU() time.Duration {
	if c.cpu == nil {
		return 0
	}
	return c.cpu()
}

// Files are the paths of the files a Cluster wrote.
type Files struct {
	Dir        string
	Key        string // the user's private key; its public half is Key+".pub"
	KnownHosts string
	Inventory  string // sgerun inventory: hosts with address and port, every host an execd
	HostList   string // one name a line (pdsh -w ^FILE, clush --hostfile FILE)
	SSHConfig  string // ssh -F FILE: HostName, Port, user, key and known_hosts of every name
}

// Close stops the cluster's servers. It is safe to call more than once.
func (c *Cluster) Close() error {
	if c.close == nil {
		return nil
	}
	f := c.close
	c.close = nil
	return f()
}

// node is one host as the files describe it.
type node struct {
	name string
	ip   string
	port int
	key  ssh.PublicKey
}

// SimOptions describes a simulated cluster.
type SimOptions struct {
	// Hosts is the number of virtual hosts, named Prefix0000, Prefix0001…
	Hosts int
	// Prefix is the host name prefix (default "sim").
	Prefix string
	// Dir receives the files; it must exist.
	Dir string
	// FailEvery and FailCode: host i fails every command with FailCode
	// when i%FailEvery == 0 (FailEvery 0: none fails).
	FailEvery, FailCode int
	// Latency delays every command.
	Latency time.Duration
	// MaxHandshakes is the inventory's ssh.max_handshakes (0: default).
	MaxHandshakes int
}

// SimName is the name of host i of a simulated cluster.
func SimName(prefix string, i int) string {
	if prefix == "" {
		prefix = "sim"
	}
	return fmt.Sprintf("%s%04d", prefix, i)
}

// SimFails reports whether host i of a cluster started with o fails.
func (o SimOptions) SimFails(i int) bool { return o.FailEvery > 0 && i%o.FailEvery == 0 }

// StartSim serves o.Hosts virtual hosts from this process, each on its own
// 127.0.0.1 port with its own host key, answering by sshtest.Rules, and
// writes the cluster's files into o.Dir.
func StartSim(o SimOptions) (*Cluster, error) {
	if o.Hosts < 2 {
		return nil, errors.New("sim: want at least 2 hosts")
	}
	keyPath := filepath.Join(o.Dir, "id_ed25519")
	signer, err := sshtest.WriteUserKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	names := make([]string, o.Hosts)
	for i := range names {
		names[i] = SimName(o.Prefix, i)
	}
	rules := sshtest.Rules{Latency: o.Latency}
	if o.FailEvery > 0 {
		rules.Fail = sshtest.FailEvery(o.FailEvery, o.FailCode)
	}
	srv, err := sshtest.Start(sshtest.Options{Names: names, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()},
		Handler: rules.Handler()})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	nodes := make([]node, len(names))
	for i, h := range srv.Hosts() {
		nodes[i] = node{name: h.Name, ip: "127.0.0.1", port: h.Port, key: h.HostKey}
	}
	u, err := user.Current()
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("sim: %w", err)
	}
	c := &Cluster{close: srv.Close, cpu: selfCPU}
	if err := c.write(o.Dir, keyPath, u.Username, nodes, o.MaxHandshakes); err != nil {
		_ = srv.Close()
		return nil, err
	}
	return c, nil
}

// SSHDOptions describes a cluster served by real OpenSSH sshd.
type SSHDOptions struct {
	// Hosts is the number of hosts, named rs001, rs002…, at 127.0.1.1,
	// 127.0.1.2… (at most 254).
	Hosts int
	// Port is the port every address listens on (default 2222).
	Port int
	// Dir receives the files and sshd's configuration; it must exist.
	Dir string
	// MaxHandshakes is the inventory's ssh.max_handshakes (0: default).
	MaxHandshakes int
	// SSHD is the sshd binary (default /usr/sbin/sshd).
	SSHD string
	// User is the login user (default: the current user). A user whose
	// shell reads no startup files (/bin/sh) keeps a login shell's rc
	// files out of the figures; see BenchUser.
	User string
}

// BenchUser is the login user bench/run.sh creates for the real-sshd case:
// shell /bin/sh, so that every command costs what sshd and the tools cost,
// not what a login shell's rc files cost (bash sources ~/.bashrc for a
// command run by sshd).
const BenchUser = "sgerunbench"

// listenPerSSHD is OpenSSH's MAX_LISTEN_SOCKS: one sshd process listens on
// at most 16 addresses ("Too many listen sockets").
const listenPerSSHD = 16

// SSHDName is the name of host i (from 0) of a real-sshd cluster.
func SSHDName(i int) string { return fmt.Sprintf("rs%03d", i+1) }

// SSHDAddr is the loopback address of host i (from 0).
func SSHDAddr(i int) string { return "127.0.1." + strconv.Itoa(i+1) }

// StartSSHD starts OpenSSH sshd for o.Hosts loopback addresses, with one
// host key for all of them, and writes the cluster's files into o.Dir.
// Since one sshd listens on at most 16 addresses, it runs one listener
// process per 16 addresses, all from the same configuration; the cost of a
// connection is the same, as sshd forks (and re-executes itself) for every
// connection anyway. Close stops every sshd and every session it started.
func StartSSHD(o SSHDOptions) (*Cluster, error) {
	if o.Hosts < 2 || o.Hosts > 254 {
		return nil, errors.New("sshd: want 2 to 254 hosts")
	}
	if o.Port == 0 {
		o.Port = 2222
	}
	if o.SSHD == "" {
		o.SSHD = "/usr/sbin/sshd"
	}
	if o.User == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("sshd: %w", err)
		}
		o.User = u.Username
	}
	keyPath := filepath.Join(o.Dir, "id_ed25519")
	if _, err := sshtest.WriteUserKey(keyPath); err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	hostKeyPath := filepath.Join(o.Dir, "ssh_host_ed25519_key")
	hostKey, err := sshtest.WriteUserKey(hostKeyPath)
	if err != nil {
		return nil, fmt.Errorf("sshd: host key: %w", err)
	}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory, missing where no
		// system sshd ever ran.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("sshd: %w", err)
		}
	}
	// sshd reads authorized_keys as the login user: give it a directory
	// of its own that every user can traverse (Dir may not be).
	akDir, err := os.MkdirTemp("", "sgerun-bench-keys-")
	if err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	authorizedKeys := filepath.Join(akDir, "authorized_keys")
	pub, err := os.ReadFile(keyPath + ".pub")
	if err == nil {
		err = os.Chmod(akDir, 0o711)
	}
	if err == nil {
		err = os.WriteFile(authorizedKeys, pub, 0o644)
	}
	if err != nil {
		os.RemoveAll(akDir)
		return nil, fmt.Errorf("sshd: authorized_keys: %w", err)
	}
	nodes := make([]node, o.Hosts)
	for i := range nodes {
		nodes[i] = node{name: SSHDName(i), ip: SSHDAddr(i), port: o.Port, key: hostKey.PublicKey()}
	}
	c := &Cluster{}
	var procs []*exec.Cmd
	stop := func() error {
		var errs []error
		for _, p := range procs {
			// The listener and every per-connection child are in the
			// listener's process group.
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
				<-done
				errs = append(errs, fmt.Errorf("sshd %d: killed after 5s", p.Process.Pid))
			}
		}
		if err := os.RemoveAll(akDir); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (*Cluster, error) {
		_ = stop()
		return nil, fmt.Errorf("sshd: %w", err)
	}
	for start := 0; start < o.Hosts; start += listenPerSSHD {
		end := min(start+listenPerSSHD, o.Hosts)
		cfgPath := filepath.Join(o.Dir, fmt.Sprintf("sshd_config.%d", start/listenPerSSHD))
		if err := os.WriteFile(cfgPath, []byte(sshdConfig(hostKeyPath, authorizedKeys, nodes[start:end])), 0o600); err != nil {
			return fail(err)
		}
		logf, err := os.Create(cfgPath + ".log")
		if err != nil {
			return fail(err)
		}
		p := exec.Command(o.SSHD, "-D", "-e", "-f", cfgPath)
		p.Stdout, p.Stderr = logf, logf
		p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		err = p.Start()
		logf.Close()
		if err != nil {
			return fail(err)
		}
		procs = append(procs, p)
	}
	c.close = stop
	c.cpu = func() time.Duration {
		var total time.Duration
		for _, p := range procs {
			total += procTreeCPU(p.Process.Pid)
		}
		return total
	}
	if err := c.write(o.Dir, keyPath, o.User, nodes, o.MaxHandshakes); err != nil {
		return fail(err)
	}
	// Ready when every address accepts.
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range c.Addrs {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				logs, _ := filepath.Glob(filepath.Join(o.Dir, "sshd_config.*.log"))
				var b strings.Builder
				for _, l := range logs {
					data, _ := os.ReadFile(l)
					b.Write(data)
				}
				return fail(fmt.Errorf("%s does not accept: %w\nsshd log:\n%s", addr, err, b.String()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c, nil
}

func sshdConfig(hostKey, authorizedKeys string, nodes []node) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "ListenAddress %s:%d\n", n.ip, n.port)
	}
	fmt.Fprintf(&b, `HostKey %s
PidFile none
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxStartups 256
MaxSessions 64
LogLevel ERROR
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
`, hostKey, authorizedKeys)
	return b.String()
}

// write writes the cluster's files for nodes.
func (c *Cluster) write(dir, keyPath, login string, nodes []node, maxHandshakes int) error {
	c.Files = Files{
		Dir:        dir,
		Key:        keyPath,
		KnownHosts: filepath.Join(dir, "known_hosts"),
		Inventory:  filepath.Join(dir, "inventory.yaml"),
		HostList:   filepath.Join(dir, "hosts"),
		SSHConfig:  filepath.Join(dir, "ssh_config"),
	}
	var kh, inv, list, cfg bytes.Buffer
	fmt.Fprintf(&inv, "# Written by sgerun bench: %d hosts.\ncluster: {sge_root: /opt/sge}\n", len(nodes))
	fmt.Fprintf(&inv, "ssh: {user: %s, identity_file: %s, known_hosts: %s, ssh_config: none, connect_timeout: 60s",
		login, keyPath, c.Files.KnownHosts)
	if maxHandshakes > 0 {
		fmt.Fprintf(&inv, ", max_handshakes: %d", maxHandshakes)
	}
	inv.WriteString("}\nhosts:\n")
	c.Names, c.Addrs = nil, nil
	for _, n := range nodes {
		addr := net.JoinHostPort(n.ip, strconv.Itoa(n.port))
		c.Names = append(c.Names, n.name)
		c.Addrs = append(c.Addrs, addr)
		kh.WriteString(knownhosts.Line([]string{addr}, n.key) + "\n")
		fmt.Fprintf(&inv, "  %s: {address: %s, port: %d}\n", n.name, n.ip, n.port)
		list.WriteString(n.name + "\n")
		fmt.Fprintf(&cfg, "Host %s\n  HostName %s\n  Port %d\n", n.name, n.ip, n.port)
	}
	fmt.Fprintf(&inv, "roles: {master: %s, shadow: %s, execd: [%s]}\npolicy: {fanout: 64}\n",
		nodes[0].name, nodes[1].name, strings.Join(c.Names, ", "))
	// Common settings last: ssh_config takes the first value it finds.
	fmt.Fprintf(&cfg, `Host *
  User %s
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  ControlMaster no
  ControlPath none
  LogLevel ERROR
`, login, keyPath, c.Files.KnownHosts)
	for path, data := range map[string][]byte{c.Files.KnownHosts: kh.Bytes(), c.Files.Inventory: inv.Bytes(),
		c.Files.HostList: list.Bytes(), c.Files.SSHConfig: cfg.Bytes()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("cluster files: %w", err)
		}
	}
	return nil
}

// selfCPU is the user and system time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times on Linux.
const clockTick = 10 * time.Millisecond

// procTreeCPU is the CPU time of pid and of the children it has reaped
// (utime + stime + cutime + cstime from /proc/PID/stat).
func procTreeCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}
