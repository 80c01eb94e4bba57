package bench

import (
	"context"
	"net"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"
)

// TestSmallBench is the benchmark at CI size: 32 hosts, one run of every
// tool, on real sshd and on simulated hosts. It checks every host's result
// and never the times. pdsh, clush and sshd are required: a CI machine
// without them fails here instead of skipping.
func TestSmallBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pdsh, clush and sshd")
	}
	for _, tool := range []string{"pdsh", "clush", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (Debian packages pdsh clustershell openssh-server): %v", tool, err)
		}
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	work := t.TempDir()
	bin := filepath.Join(work, "sgerun")
	build := exec.Command("go", "build", "-o", bin, "github.com/sgerun/sgerun/cmd/sgerun")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sgerun: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	login := "" // the current user, unless bench/run.sh made BenchUser
	if _, err := user.Lookup(BenchUser); err == nil {
		login = BenchUser
	}
	res, err := RunSuite(ctx, Config{Bin: bin, Work: work, Runs: 1, RealHosts: 32, SimHosts: 32,
		Port: freePort(t), User: login, Fanout: 16, SimFanouts: []int{8}, SimPdsh: true, RSSRuns: 1, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []CaseResult{res.Real, res.Sim, res.SimRun} {
		for _, r := range c.Rows {
			if r.N != 1 {
				t.Errorf("%s: %s ran %d times, want 1", c.Name, r.Label, r.N)
			}
		}
	}
	if len(res.RSS) != 2 || res.RSS[0].MaxRSSKB == 0 {
		t.Errorf("no peak RSS from /usr/bin/time -v: %+v", res.RSS)
	}
	doc := Markdown(res, Machine{})
	if len(doc) == 0 {
		t.Error("empty report")
	}
}

// freePort returns a port that is free on 127.0.1.1 now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.1.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(p))
	return len(p), nil
}
