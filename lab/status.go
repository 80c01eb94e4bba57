package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/sge"
)

// Process is a daemon running on a lab host.
type Process struct {
	// Name is the command name (sge_qmaster, sge_execd, sge_shadowd, sshd).
	Name string
	// PID is the pid inside the host's own PID namespace.
	PID int
	// State is the ps state, e.g. "Sl" (running) or "Tl" (stopped by Hang).
	State string
}

// Link is one of a host's interfaces.
type Link struct {
	Net  Net
	Name string
	Up   bool
}

// HostStatus is what Status found on one host.
type HostStatus struct {
	Host
	// Up is false when the host's init is gone (Kill).
	Up bool
	// Daemons are the SGE daemons and the listening sshd.
	Daemons []Process
	// Links are the host's scheduler and file-service interfaces.
	Links []Link
	// Err is set when the host could not be inspected.
	Err error
}

// Running reports whether a daemon with that name runs on the host.
func (h HostStatus) Running(name string) bool {
	for _, d := range h.Daemons {
		if d.Name == name {
			return true
		}
	}
	return false
}

// Status is a snapshot of a lab.
type Status struct {
	Name    string
	SGERoot string
	Cell    string
	// ActQmaster is the content of $SGE_ROOT/$SGE_CELL/common/act_qmaster.
	ActQmaster string
	// SpoolingParams and QmasterSpoolDir are read from bootstrap.
	SpoolingParams  string
	QmasterSpoolDir string
	Hosts           []HostStatus
	// From is the host the SGE views were taken from.
	From string
	// Qstat and Qhost are the outputs of "qstat -f" and "qhost" on From;
	// QstatErr and QhostErr are set when they failed.
	Qstat, Qhost       string
	QstatErr, QhostErr error
}

// daemonNames are the processes Status reports.
func daemonNames() map[string]bool {
	return map[string]bool{"sge_qmaster": true, "sge_execd": true, "sge_shadowd": true, "sshd": true}
}

// Status inspects every host (in parallel) and runs qstat -f and qhost on
// host from ("" means the master host). SGE commands get 15 s each, so a
// hung or unreachable qmaster shows as an error rather than blocking.
func (l *Lab) Status(ctx context.Context, from string) (*Status, error) {
	if from == "" {
		from = l.Master()
	}
	if from != CtlHost {
		h, err := l.host(from)
		if err != nil {
			return nil, err
		}
		from = h.Name
	}
	s := &Status{Name: l.st.Name, SGERoot: l.st.SGERoot, Cell: l.st.Cell, From: from}
	if b, err := os.ReadFile(filepath.Join(l.CommonDir(), "act_qmaster")); err == nil {
		s.ActQmaster = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(l.CommonDir(), "bootstrap")); err == nil {
		boot := sge.ParseBootstrap(string(b))
		s.SpoolingParams, s.QmasterSpoolDir = boot.SpoolingParams, boot.QmasterSpoolDir
	}
	s.Hosts = l.hostStatuses(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		s.Qstat, _, s.QstatErr = l.Exec(cctx, from, "qstat -f -u '*'")
	}()
	go func() {
		defer wg.Done()
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		s.Qhost, _, s.QhostErr = l.Exec(cctx, from, "qhost")
	}()
	wg.Wait()
	return s, nil
}

// hostStatuses inspects every host in parallel.
func (l *Lab) hostStatuses(ctx context.Context) []HostStatus {
	out := make([]HostStatus, len(l.st.Hosts))
	var wg sync.WaitGroup
	for i := range l.st.Hosts {
		h := l.st.Hosts[i] // a copy: livePID may update it
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = l.hostStatus(ctx, &h)
		}()
	}
	wg.Wait()
	return out
}

// hostStatus inspects one host.
func (l *Lab) hostStatus(ctx context.Context, h *hostState) HostStatus {
	hs := HostStatus{Host: h.Host}
	links, err := readLinks(ctx, h.Name)
	hs.Links = links
	if err != nil {
		hs.Err = err
	}
	if _, err := l.livePID(h); err != nil {
		return hs
	}
	hs.Up = true
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _, err := l.Exec(cctx, h.Name, "ps -eo pid=,ppid=,stat=,comm=")
	if err != nil {
		hs.Err = errors.Join(hs.Err, err)
		return hs
	}
	names := daemonNames()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || !names[f[3]] {
			continue
		}
		// Only the listening sshd, not one per session.
		if f[3] == "sshd" && f[1] != "1" {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		hs.Daemons = append(hs.Daemons, Process{Name: f[3], PID: pid, State: f[2]})
	}
	return hs
}

// readLinks reads the admin state of a host's two interfaces.
func readLinks(ctx context.Context, ns string) ([]Link, error) {
	out, err := run(ctx, "ip", "-n", ns, "-o", "link", "show")
	if err != nil {
		return nil, fmt.Errorf("links of %s: %w", ns, err)
	}
	var links []Link
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		var net Net
		switch name {
		case schedIf:
			net = NetSched
		case fileIf:
			net = NetFile
		default:
			continue
		}
		flags := strings.Split(strings.Trim(f[2], "<>"), ",")
		up := false
		for _, fl := range flags {
			if fl == "UP" {
				up = true
			}
		}
		links = append(links, Link{Net: net, Name: name, Up: up})
	}
	return links, nil
}

// healthy returns nil when every host is up with its links up and sshd
// running, every exec host runs execd, and the qmaster named in
// act_qmaster answers qping with status 0.
func (l *Lab) healthy(ctx context.Context) error {
	var problems []string
	for _, hs := range l.hostStatuses(ctx) {
		switch {
		case !hs.Up:
			problems = append(problems, hs.Name+" is down")
			continue
		case hs.Err != nil:
			problems = append(problems, hs.Name+": "+hs.Err.Error())
		case !hs.Running("sshd"):
			problems = append(problems, hs.Name+" runs no sshd")
		}
		if hs.Role == RoleExec && !hs.Running("sge_execd") {
			problems = append(problems, hs.Name+" runs no execd")
		}
		for _, ln := range hs.Links {
			if !ln.Up {
				problems = append(problems, hs.Name+" "+ln.Name+" is down")
			}
		}
	}
	if len(problems) == 0 {
		b, err := os.ReadFile(filepath.Join(l.CommonDir(), "act_qmaster"))
		act := strings.TrimSpace(string(b))
		if err != nil || act == "" {
			problems = append(problems, "no act_qmaster")
		} else if st, err := l.QpingStatus(ctx, act, act); err != nil || st != 0 {
			problems = append(problems, fmt.Sprintf("qmaster on %s not ok (status %d, %v)", act, st, err))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
