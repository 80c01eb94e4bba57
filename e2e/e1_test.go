package e2e

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestE1Smoke: a lab comes up; 4 jobs submitted from an exec host run and
// end with exit_status 0 in qacct; Down leaves no namespace, interface,
// process or state directory behind.
func TestE1Smoke(t *testing.T) {
	parallelLab(t)
	start := time.Now()
	l := upLab(t, 3)
	upTook := time.Since(start)

	if qpingStatus(l, l.Master(), l.Master()) != 0 {
		t.Fatalf("qping of qmaster on %s: no status 0", l.Master())
	}
	for _, p := range []string{l.InventoryPath(), l.KnownHostsPath(), l.IdentityPath()} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("lab file: %v", err)
		}
	}

	jobs := submitJobs(t, l, l.ExecHosts()[0], 4, 2*time.Second)
	waitMarkers(t, jobs, 2*time.Minute)
	for _, j := range jobs {
		if code := jobExitStatus(t, l, l.ExecHosts()[0], j.ID, time.Minute); code != 0 {
			t.Errorf("job %d: exit_status %d, want 0", j.ID, code)
		}
	}

	// sgerun itself reaches every host over SSH from the controller, with
	// the generated inventory and strict host keys.
	if sgerunBin != "" {
		r := runSgerun(t, l, time.Minute, "exec", "--inventory", l.InventoryPath(), "--on", "all", "--", "hostname")
		if r.Code != 0 {
			t.Errorf("sgerun exec: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
	} else {
		t.Logf("sgerun binary not built, skipping the sgerun exec check: %v", sgerunBuildErr)
	}

	tr := traceLab(t, l)
	downStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := l.Down(ctx); err != nil {
		t.Fatalf("down: %v", err)
	}
	downTook := time.Since(downStart)
	if left := leftovers(tr); len(left) > 0 {
		t.Fatalf("after down, left over:\n%v", left)
	}
	t.Logf("timings: up %s, down %s, whole test %s", upTook.Round(time.Millisecond),
		downTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
