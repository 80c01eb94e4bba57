package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
)

// hostEnvHandler runs the command with sh -c and tells it which virtual
// host it runs on, as SSHTEST_HOST and SSHTEST_PORT.
func hostEnvHandler(h *sshtest.Host, cmd string, s sshtest.Session) int {
	c := exec.CommandContext(s.Context(), "sh", "-c", cmd)
	c.Env = append(os.Environ(), "SSHTEST_HOST="+h.Name, fmt.Sprintf("SSHTEST_PORT=%d", h.Port))
	c.Stdout, c.Stderr = s.Stdout(), s.Stderr()
	stdin, _ := c.StdinPipe()
	if err := c.Start(); err != nil {
		return 127
	}
	go func() { io.Copy(stdin, s.Stdin()); stdin.Close() }()
	var ee *exec.ExitError
	if err := c.Wait(); errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		return 255
	}
	return 0
}

func TestExecFiftyHosts(t *testing.T) {
	e := newEnv(t, envOptions{hosts: 50, handler: hostEnvHandler})

	r := e.sgerun("exec", "-i", e.inv, "--on", "all", "-o", "json", "--",
		`echo "$SSHTEST_HOST $SSHTEST_PORT"; [ "$SSHTEST_HOST" != host13 ] || exit 7`)
	if r.code != 1 {
		t.Errorf("exec with one failing host: %v", r)
	}
	var got struct {
		Hosts  []hostRun `json:"hosts"`
		Failed int       `json:"failed"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(got.Hosts) != 50 || got.Failed != 1 {
		t.Fatalf("%d hosts, %d failed", len(got.Hosts), got.Failed)
	}
	for i, h := range got.Hosts {
		want := e.srv.Hosts()[i]
		if h.Host != want.Name || h.Stdout != fmt.Sprintf("%s %d\n", want.Name, want.Port) {
			t.Errorf("entry %d: %+v, want %s on port %d", i, h, want.Name, want.Port)
		}
		code := 0
		if want.Name == "host13" {
			code = 7
		}
		if h.ExitCode != code || h.Error != "" {
			t.Errorf("%s: exit %d error %q", h.Host, h.ExitCode, h.Error)
		}
	}

	r = e.sgerun("exec", "-i", e.inv, "--on", "all", "--", "echo same")
	if r.code != 0 {
		t.Fatalf("exec: %v", r)
	}
	want := "---------------\nhost[0-49] (50)\n---------------\nsame\n50 host(s), 0 failed\n"
	if r.stdout != want {
		t.Errorf("one group:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = e.sgerun("exec", "-i", e.inv, "--on", "all", "--",
		`case "$SSHTEST_HOST" in host7|host30) echo odd;; *) echo same;; esac`)
	if r.code != 0 {
		t.Fatalf("exec: %v", r)
	}
	for _, s := range []string{"host[0-6,8-29,31-49] (48)\n", "host[7,30] (2)\n", "same\n", "odd\n"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("two groups: output lacks %q:\n%s", s, r.stdout)
		}
	}
	if strings.Index(r.stdout, "(48)") > strings.Index(r.stdout, "(2)") {
		t.Errorf("largest group not first:\n%s", r.stdout)
	}
	if n := strings.Count(r.stdout, "----\n"); n != 4 {
		t.Errorf("%d rules, want 2 groups:\n%s", n, r.stdout)
	}

	// Subsets and folding of a selection.
	r = e.sgerun("exec", "-i", e.inv, "--on", "host[10-12],host40", "--", "echo x")
	if r.code != 0 || !strings.Contains(r.stdout, "host[10-12,40] (4)\n") {
		t.Errorf("subset: %v", r)
	}
	for _, h := range e.srv.Hosts() {
		if n := h.Handshakes(); n > 4 {
			t.Errorf("%s: %d handshakes for 4 exec runs", h.Name, n)
		}
	}
}

// TestAskTyped: a question mid-run is answered only by typing the word; the
// same reader serves the confirmation before it, so no typed line is lost.
func TestAskTyped(t *testing.T) {
	var out bytes.Buffer
	a := newApp(strings.NewReader("shadow1\nunfenced\nyes\n"), &out, &out)
	if line, _ := a.stdin().ReadString('\n'); line != "shadow1\n" {
		t.Fatalf("first line %q", line)
	}
	ok, err := a.askTyped(context.Background(), "the old master cannot be fenced. Type \"unfenced\": ", "unfenced")
	if err != nil || !ok {
		t.Fatalf("askTyped = %v, %v; want true", ok, err)
	}
	if ok, _ := a.askTyped(context.Background(), "again: ", "unfenced"); ok {
		t.Errorf("\"yes\" was taken for \"unfenced\"")
	}
	if ok, err := a.askTyped(context.Background(), "at EOF: ", "unfenced"); ok || err == nil {
		t.Errorf("askTyped at EOF = %v, %v; want false and an error", ok, err)
	}
	if !strings.Contains(out.String(), "cannot be fenced") {
		t.Errorf("the question was not shown: %q", out.String())
	}
}
