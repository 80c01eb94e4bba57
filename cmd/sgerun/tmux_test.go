package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/shell"
)

// tmux drives a terminal for the tests that look at what an admin sees: a
// tmux server of its own (its socket in a temp dir) with one detached pane.
type tmux struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no terminal tests")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("tmux is not installed (.ci/install-deps installs it): %v", err)
		}
		t.Skipf("tmux is not installed: %v", err)
	}
	tm := &tmux{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() { _ = tm.cmd("kill-server").Run() })
	return tm
}

func (tm *tmux) cmd(args ...string) *exec.Cmd {
	c := exec.Command("tmux", append([]string{"-S", tm.socket, "-f", "/dev/null"}, args...)...)
	// A UTF-8 locale, or the pane shows "_" for the progress line's "▸".
	c.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
	return c
}

// start runs script in a new 100x30 pane.
func (tm *tmux) start(script string) {
	tm.t.Helper()
	if out, err := tm.cmd("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", "sh "+shell.Quote(script)).CombinedOutput(); err != nil {
		tm.t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
}

// screen is the pane's visible text.
func (tm *tmux) screen() string {
	tm.t.Helper()
	out, err := tm.cmd("capture-pane", "-p", "-t", "t").Output()
	if err != nil {
		tm.t.Fatalf("tmux capture-pane: %v", err)
	}
	return string(out)
}

// waitScreen polls the pane until cond holds and returns that screen.
func (tm *tmux) waitScreen(what string, d time.Duration, cond func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := tm.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("timed out waiting for %s; the pane shows:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestExecProgressInTerminal runs sgerun exec in a real terminal on 32
// simulated hosts with a slow command: mid-run one line shows the hosts
// done, failed and pending and the elapsed time; it is gone when the
// results are printed. The same command with stdout piped through cat
// writes no control characters at all.
func TestExecProgressInTerminal(t *testing.T) {
	tm := newTmux(t)
	e := newEnv(t, envOptions{hosts: 32, handler: hostEnvHandler})
	piped := filepath.Join(e.work, "piped.txt")
	// 32 hosts, 8 at a time, 0.7 s each: four waves, about 3 s.
	remote := `sleep 0.7; [ "$SSHTEST_HOST" != host5 ] || exit 3; echo ok`
	run := strings.Join([]string{"env -u NO_COLOR TERM=xterm-256color", "HOME=" + shell.Quote(e.home), "SSH_AUTH_SOCK=",
		shell.Quote(binPath), "--state-dir", shell.Quote(e.state), "exec", "-i", shell.Quote(e.inv), "--on", "all",
		"--fanout", "8", "--", shell.Quote(remote)}, " ")
	script := e.file("run.sh", fmt.Sprintf("%s\necho \"__EXIT__ $?\"\n%s | cat >%s\necho \"__PIPED__ $?\"\nsleep 120\n",
		run, run, shell.Quote(piped)))

	start := time.Now()
	tm.start(script)
	line := regexp.MustCompile(`(?m)^▸ exec sleep 0\.7.*  (\d+)/32 done, (\d+) failed, (\d+) pending  (\d+)s *$`)
	// Some hosts done, some pending, and the elapsed time counting.
	mid := tm.waitScreen("the progress line with some hosts done after 1s", 20*time.Second, func(s string) bool {
		m := line.FindStringSubmatch(s)
		return m != nil && m[1] != "0" && m[1] != "32" && m[4] != "0"
	})
	m := line.FindStringSubmatch(mid)
	t.Logf("mid-run after %v: %s", time.Since(start).Round(time.Millisecond), m[0])
	if strings.Contains(mid, "host(s),") {
		t.Errorf("the results are on screen while hosts are still pending:\n%s", mid)
	}

	end := tm.waitScreen("the first run's end", 30*time.Second, func(s string) bool { return strings.Contains(s, "__EXIT__") })
	if !strings.Contains(end, "__EXIT__ 1") || !strings.Contains(end, "32 host(s), 1 failed") || !strings.Contains(end, "exit status 3") {
		t.Errorf("first run (one host exits 3):\n%s", end)
	}
	if strings.Contains(end, "▸") || strings.Contains(end, "pending") {
		t.Errorf("the progress line is still on screen after the results:\n%s", end)
	}

	final := tm.waitScreen("the piped run's end", 30*time.Second, func(s string) bool { return strings.Contains(s, "__PIPED__") })
	if strings.Contains(final, "▸") {
		t.Errorf("progress drawn with stdout piped:\n%s", final)
	}
	out := readString(t, piped)
	if strings.ContainsAny(out, "\x1b\r") {
		t.Errorf("piped output has control characters: %q", out)
	}
	if !strings.Contains(out, "host5 (1)\n") || !strings.HasSuffix(out, "32 host(s), 1 failed\n") {
		t.Errorf("piped output:\n%s", out)
	}
}

// TestRunProgressInTerminal runs a runbook step on 24 simulated hosts in a
// terminal: while some hosts are done and others still run, the progress
// line names the step with its counts and elapsed time; when the step's
// result line is printed, it is gone.
func TestRunProgressInTerminal(t *testing.T) {
	tm := newTmux(t)
	e := newEnv(t, envOptions{hosts: 24, handler: hostEnvHandler})
	rb := e.file("slow.yaml", `name: slow
steps:
  - name: wait for the hosts
    on: execd
    run: {cmd: 'case "$SSHTEST_HOST" in host1?) sleep 2.5;; *) sleep 0.2;; esac; echo ok', readonly: true}
`)
	run := strings.Join([]string{"env -u NO_COLOR TERM=xterm-256color", "HOME=" + shell.Quote(e.home), "SSH_AUTH_SOCK=",
		shell.Quote(binPath), "--state-dir", shell.Quote(e.state), "run", shell.Quote(rb), "-i", shell.Quote(e.inv)}, " ")
	tm.start(e.file("run.sh", run+"\necho \"__EXIT__ $?\"\nsleep 120\n"))

	line := regexp.MustCompile(`(?m)^▸ wait for the hosts  (\d+)/24 done, 0 failed, (\d+) pending  ([1-9]\d*)s *$`)
	mid := tm.waitScreen("the step's progress line after 1s", 20*time.Second, func(s string) bool {
		m := line.FindStringSubmatch(s)
		return m != nil && m[1] != "0" && m[1] != "24"
	})
	t.Logf("mid-run: %s", line.FindString(mid))
	end := tm.waitScreen("the run's end", 30*time.Second, func(s string) bool { return strings.Contains(s, "__EXIT__") })
	if !strings.Contains(end, "__EXIT__ 0") || !regexp.MustCompile(`(?m)^✓ ok wait for the hosts \[\w+\] 24 host\(s\) `).MatchString(end) {
		t.Errorf("the run:\n%s", end)
	}
	if strings.Contains(end, "▸") || strings.Contains(end, "pending") {
		t.Errorf("the progress line is still on screen after the step's result:\n%s", end)
	}
}
