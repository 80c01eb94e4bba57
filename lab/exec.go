package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/sshexec"
)

// CtlHost is the name that selects the controller namespace in Exec,
// ExecAs and Command.
const CtlHost = "ctl"

// Command prepares cmd (a shell command line run by "bash -c") on host as
// user ("" or "root" for root), with SGE_ROOT, SGE_CELL and the SGE ports
// in a clean environment. host is a lab host's SGE or short name, or
// CtlHost for the controller namespace. The caller wires stdin, stdout and
// stderr and runs it; the working directory is "/".
func (l *Lab) Command(ctx context.Context, host, user, cmd string) (*exec.Cmd, error) {
	var argv []string
	if host == CtlHost || host == l.Controller() {
		argv = []string{"ip", "netns", "exec", l.Controller()}
	} else {
		h, err := l.host(host)
		if err != nil {
			return nil, err
		}
		pid, err := l.livePID(h)
		if err != nil {
			return nil, err
		}
		argv = []string{"nsenter", "-t", fmt.Sprint(pid), "--net", "--uts", "--pid", "--mount", "--"}
	}
	home := "/root"
	if user != "" && user != "root" {
		home = "/home/" + user
		argv = append(argv, "runuser", "-u", user, "--")
	} else {
		user = "root"
	}
	argv = append(argv, "env")
	argv = append(argv, l.env(user, home)...)
	argv = append(argv, "bash", "-c", cmd)
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Dir = "/"
	c.Env = l.env(user, home)
	return c, nil
}

// env is the clean environment of every lab command.
func (l *Lab) env(user, home string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + home,
		"USER=" + user,
		"LOGNAME=" + user,
		"SGE_ROOT=" + l.st.SGERoot,
		"SGE_CELL=" + l.st.Cell,
		fmt.Sprintf("SGE_QMASTER_PORT=%d", QmasterPort),
		fmt.Sprintf("SGE_EXECD_PORT=%d", ExecdPort),
	}
}

// Exec runs cmd (a shell command line run by "bash -c") as root on host
// (or CtlHost) with the SGE environment and returns its output. A non-zero
// exit wraps an *sshexec.ExitError, as a command run over SSH does. When ctx ends, the whole process group is killed.
func (l *Lab) Exec(ctx context.Context, host, cmd string) (stdout, stderr string, err error) {
	return l.ExecAs(ctx, host, "", cmd)
}

// ExecAs is Exec as user ("" or "root" for root).
func (l *Lab) ExecAs(ctx context.Context, host, user, cmd string) (stdout, stderr string, err error) {
	c, err := l.Command(ctx, host, user, cmd)
	if err != nil {
		return "", "", err
	}
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	// A daemon started by cmd may inherit the pipes; don't wait for it.
	c.WaitDelay = 3 * time.Second
	err = c.Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code := ee.ExitCode()
			if ctx.Err() != nil {
				return o.String(), e.String(), fmt.Errorf("on %s: %q: %w", host, cmd, ctx.Err())
			}
			return o.String(), e.String(), fmt.Errorf("on %s: %q: %w", host, cmd, &sshexec.ExitError{Code: code, Stderr: e.String()})
		}
		if errors.Is(err, exec.ErrWaitDelay) {
			return o.String(), e.String(), nil
		}
		return o.String(), e.String(), fmt.Errorf("on %s: %q: %w", host, cmd, err)
	}
	return o.String(), e.String(), nil
}

// run runs a program in the root namespace (for ip, runuser, setsid) and
// returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = "/"
	c.WaitDelay = 3 * time.Second
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", shell.Join(append([]string{name}, args...)...), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// lastLine returns the last non-empty line of s, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
