package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/shell"
)

// initMarker is argv[0] of a host's init, which is how a host's init is
// found again: "sgerun-lab-init:<namespace>".
func initMarker(ns string) string { return "sgerun-lab-init:" + ns }

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// nsNameRE matches the namespaces of lab name (group 1 is the name).
func nsNameRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `-(ctl|master|shadow|exec[0-9]+)$`)
}

// startInit starts the host's init: a process in the host's network
// namespace with its own PID, mount and UTS namespaces, and records its pid.
// The host also gets its own boot links and root home (hostLocalScript).
func (l *Lab) startInit(ctx context.Context, h *hostState) error {
	common := ""
	if l.st.LocalCommon {
		common = l.CommonDir()
	}
	script := "hostname " + shell.Quote(h.Name) + " && " + hostLocalScript(filepath.Join(l.st.StateDir, "local", h.Short), h.Role, common) +
		" && exec -a " + shell.Quote(initMarker(h.Name)) + " bash -c 'while :; do wait; sleep 1; done'"
	c := exec.CommandContext(ctx, "setsid", "-f", "ip", "netns", "exec", h.Name,
		"unshare", "--pid", "--fork", "--mount-proc", "--uts", "bash", "-c", script)
	c.Dir = "/"
	c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	// Not a pipe: the init lives on and would hold it open.
	logPath := filepath.Join(l.st.StateDir, "log", h.Short+"-init.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start init of %s: %w", h.Name, err)
	}
	defer logf.Close()
	c.Stdout, c.Stderr = logf, logf
	if err := c.Run(); err != nil {
		tail, _ := os.ReadFile(logPath)
		return fmt.Errorf("start init of %s: %w: %s", h.Name, err, lastLine(string(tail)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := findMarked(initMarker(h.Name))
		if len(pids) == 1 {
			h.InitPID = pids[0]
			return nil
		}
		if len(pids) > 1 {
			return fmt.Errorf("start init of %s: %d inits found", h.Name, len(pids))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start init of %s: init did not appear", h.Name)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// HostStateDir is sgerun's state directory on lab host h
// ($SGERUN_STATE_DIR in its SSH sessions): the host's own.
func (l *Lab) HostStateDir(h Host) string {
	return filepath.Join(l.st.StateDir, "local", h.Short, "sgerun-state")
}

// hostLocalScript gives the host files of its own, as a separate machine
// has: on the host's first boot the machine's /etc/rc?.d and /etc/skel (as
// root's home) are copied under dir, and on every boot they are
// bind-mounted over /etc/rc?.d and /root in the host's mount namespace.
//
//   - Boot links: a fence disabling the old master's qmaster autostart
//     (update-rc.d) changes that host alone, stays across a lab reboot, and
//     leaves the machine's own links alone. On first boot the master's
//     qmaster autostart is enabled and the shadow's disabled, as a site
//     would have them.
//
//   - Root's home: commands over SSH run root's login shell, which reads
//     ~/.bashrc. The machine's may do anything (pyenv, for one, takes a
//     lock file under /root that a crashed lab host leaves behind, and then
//     every later login anywhere waits on it), so a host reads its own.
//
//   - common/ (when common is not ""): the host's own copy, made by
//     localCommon once the cell exists, is bind-mounted over common on
//     every later boot.
//
// What cannot be copied or mounted is left as the machine has it.
func hostLocalScript(dir string, role Role, common string) string {
	svc := ""
	switch role {
	case RoleMaster:
		svc = "update-rc.d -f gridengine-master enable"
	case RoleShadow:
		svc = "update-rc.d -f gridengine-master disable"
	}
	s := `base=` + shell.Quote(dir) + `; first=no; bound=yes; [ -d "$base" ] || first=yes
for d in /etc/rc[0-6S].d; do
  [ -d "$d" ] || continue
  c="$base/${d#/etc/}"
  [ -d "$c" ] || { mkdir -p "$c" && cp -a "$d/." "$c/"; } || { bound=no; continue; }
  mount --bind "$c" "$d" || bound=no
done
[ -d "$base/root" ] || { mkdir -p -m 0700 "$base/root" && cp -a /etc/skel/. "$base/root/"; }
[ -d "$base/root" ] && mount --bind "$base/root" /root`
	if common != "" {
		s += `
[ -d "$base/common" ] && [ -d ` + shell.Quote(common) + ` ] && mount --bind "$base/common" ` + shell.Quote(common)
	}
	if svc != "" {
		s += `
if [ "$first" = yes ] && [ "$bound" = yes ] && [ -x /etc/init.d/gridengine-master ] && command -v update-rc.d >/dev/null; then
  ` + svc + ` >/dev/null 2>&1 || true
fi`
	}
	return "{ " + s + "\ntrue\n}"
}

// localCommon gives every SGE host its own copy of common/ when the lab
// has LocalCommon: copied from the cell's (owner and modes kept) and
// bind-mounted over it in the host's mount namespace; hostLocalScript
// mounts it again at every later boot.
func (l *Lab) localCommon(ctx context.Context) error {
	if !l.st.LocalCommon {
		return nil
	}
	for i := range l.st.Hosts {
		h := &l.st.Hosts[i]
		dir := filepath.Join(l.st.StateDir, "local", h.Short, "common")
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("copy common/ for %s: %w", h.Name, err)
		}
		if _, err := run(ctx, "cp", "-a", "--", l.CommonDir(), dir); err != nil {
			return fmt.Errorf("copy common/ for %s: %w", h.Name, err)
		}
		pid, err := l.livePID(h)
		if err != nil {
			return fmt.Errorf("local common/ on %s: %w", h.Name, err)
		}
		if _, err := run(ctx, "nsenter", "-t", fmt.Sprint(pid), "--mount", "--", "mount", "--bind", dir, l.CommonDir()); err != nil {
			return fmt.Errorf("mount common/ on %s: %w", h.Name, err)
		}
	}
	return nil
}

// livePID returns the pid of the host's init after checking that it is
// still that host's init (not a reused pid). It does not modify h.
func (l *Lab) livePID(h *hostState) (int, error) {
	if h.InitPID > 0 && argv0(h.InitPID) == initMarker(h.Name) {
		return h.InitPID, nil
	}
	// The state file may be stale (Boot from another process): look again.
	if pids := findMarked(initMarker(h.Name)); len(pids) == 1 {
		return pids[0], nil
	}
	return 0, fmt.Errorf("%w: %s", ErrHostDown, h.Name)
}

// argv0 returns the first element of a process's command line, or "".
func argv0(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	a, _, _ := bytes.Cut(b, []byte{0})
	return string(a)
}

// pids lists every process id in /proc.
func pids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// findMarked returns the pids whose argv[0] is marker.
//
// The init's loop forks `sleep 1` every second; until that child execs,
// it still carries the marker. Children of a marked process are therefore
// left out: only the init itself is returned.
func findMarked(marker string) []int {
	marked := map[int]bool{}
	for _, pid := range pids() {
		if argv0(pid) == marker {
			marked[pid] = true
		}
	}
	var out []int
	for pid := range marked {
		if !marked[ppid(pid)] {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// ppid returns a process's parent pid, or 0.
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: parse after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// netnsID returns the "net:[inode]" link of a process's network namespace.
func netnsID(pid int) string {
	s, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	return s
}

// namespaces returns the lab's network namespaces that exist, by name.
func namespaces(name string) []string {
	ents, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil
	}
	re := nsNameRE(name)
	var out []string
	for _, e := range ents {
		if re.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

// labProcesses returns every process of lab name: those inside one of its
// network namespaces and its host inits, but never the calling process or
// its ancestors.
func labProcesses(name string) []int {
	ids := map[string]bool{}
	for _, ns := range namespaces(name) {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsDir, ns), &st); err == nil {
			ids[fmt.Sprintf("net:[%d]", st.Ino)] = true
		}
	}
	spare := ancestors()
	prefix := initMarker(name + "-")
	var out []int
	for _, pid := range pids() {
		if spare[pid] {
			continue
		}
		if ids[netnsID(pid)] || strings.HasPrefix(argv0(pid), prefix) {
			out = append(out, pid)
		}
	}
	return out
}

// ancestors returns this process and its ancestors.
func ancestors() map[int]bool {
	out := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			break
		}
		next := 0
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				next, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		pid = next
	}
	return out
}

// teardown kills every process of lab name, deletes its namespaces and
// hosts files and removes stateDir if it is a lab state directory. It needs
// no state file, so it also cleans up after a crash.
func teardown(ctx context.Context, name, stateDir string, lg *slog.Logger) error {
	var errs []error
	deadline := time.Now().Add(15 * time.Second)
	for {
		procs := labProcesses(name)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("processes still alive: %v", procs))
			break
		}
		for _, pid := range procs {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	for _, ns := range namespaces(name) {
		// Deleting a host namespace deletes its veth ends, and with them
		// the peers in the controller; deleting ctl deletes the bridges.
		if _, err := run(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
		lg.Info("namespace deleted", "lab", name, "ns", ns)
	}
	re := nsNameRE(name)
	if ents, err := os.ReadDir("/etc/netns"); err == nil {
		for _, e := range ents {
			if re.MatchString(e.Name()) {
				if err := os.RemoveAll(filepath.Join("/etc/netns", e.Name())); err != nil {
					errs = append(errs, fmt.Errorf("remove netns config: %w", err))
				}
			}
		}
	}
	if err := removeStateDir(stateDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeStateDir removes dir if it carries the lab marker.
func removeStateDir(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("state dir %s has no %s marker: not removed", dir, markerFile)
		}
		return fmt.Errorf("state dir: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove state dir: %w", err)
	}
	return nil
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitFor polls cond every interval until it returns true, returns an
// error, or timeout passes; what describes the condition in the error.
func waitFor(ctx context.Context, timeout, interval time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}
