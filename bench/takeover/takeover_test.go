package takeover

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/lab"
)

// TestQuickTakeover is the CI version of the takeover benchmark: one round
// of four scenarios, each on its own lab, side by side (go test -parallel
// bounds how many). It checks correctness only: every tool ends with the
// shadow serving (act_qmaster names it, qping status 0) and every job with
// exit_status 0. The figures are logged, never asserted; they are the
// benchmark's (bench/takeover.sh). Needs root; -short skips it.
func TestQuickTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real-SGE labs")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, p := range []string{"/usr/lib/gridengine/sge_qmaster", "/usr/lib/gridengine/sge_shadowd", "/usr/sbin/sshd", "/usr/bin/ssh"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("prerequisite missing: %s (run .ci/install-deps)", p)
		}
	}
	bin := filepath.Join(t.TempDir(), "sgerun")
	build := exec.Command("go", "build", "-o", bin, "github.com/sgerun/sgerun/cmd/sgerun")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build sgerun: %v\n%s", err, out)
	}
	cfg := Config{Sgerun: bin, Quick: true, JobSleep: 60 * time.Second, NamePrefix: "tq"}
	for _, sc := range []string{SeedCut, TakeoverCut, WatchHang, ShadowdHang} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			tr := RunTrial(ctx, cfg, sc, 1)
			t.Logf("lab %s, %.0f s: marks %s", tr.Lab, tr.Took, formatMarks(tr.Marks))
			for _, s := range tr.Steps {
				t.Logf("  step %-28s at %6.1f s, %6.2f s (%s)", s.Name, s.At, s.Seconds, s.Status)
			}
			for _, n := range tr.Notes {
				t.Logf("note: %s", n)
			}
			if !tr.OK() {
				t.Errorf("%s: %s\noutput (tail):\n%s", sc, strings.Join(tr.Problems(), "\n"), tr.Output)
			}
			if len(tr.JobExit) != cfg.normalizedJobs() {
				t.Errorf("%s: %d jobs checked, want %d", sc, len(tr.JobExit), cfg.normalizedJobs())
			}
		})
	}
}

// normalizedJobs is the number of jobs a trial runs with c.
func (c Config) normalizedJobs() int {
	n, err := c.normalize()
	if err != nil {
		return 0
	}
	return n.Jobs
}

// TestSeedScript checks the rendered seed script: every field filled, the
// seed's commands in the seed's order, and the lab's paths.
func TestSeedScript(t *testing.T) {
	boot := "Version: 6.2\nadmin_user              sgeadmin\ndefault_domain          none\nignore_fqdn             false\n" +
		"spooling_method         berkeleydb\nspooling_lib            libspoolb\n" +
		"spooling_params         /run/sgerun-lab/x1/spool/spooldb\nbinary_path             /run/sgerun-lab/x1/sge/bin\n" +
		"qmaster_spool_dir       /run/sgerun-lab/x1/spool/qmaster\nsecurity_mode           none\n"
	l := fakeLab(t)
	s, err := SeedScript(l, boot)
	if err != nil {
		t.Fatal(err)
	}
	order := []string{
		"TMPNAME=`date +%Y%m%d%H%M%S`",
		"cut -f 5 -d /`",
		"cp -a /run/sgerun-lab/x1/${ODLNAME} /run/sgerun-lab/x1/spool_${TMPNAME}",
		"admin_user             sgeadmin",
		"spooling_params         /run/sgerun-lab/x1/spool_${TMPNAME}/spooldb",
		"qmaster_spool_dir       /run/sgerun-lab/x1/spool_${TMPNAME}/qmaster",
		"gethostname -name` > $SGE_ROOT/x1/common/act_qmaster",
		"$SGE_ROOT/x1/common/sgemaster start",
		"ensh $SGE_ROOT/x1/common/sgeexecd softstop",
		"ensh $SGE_ROOT/x1/common/sgeexecd start",
	}
	at := 0
	for _, w := range order {
		i := strings.Index(s[at:], w)
		if i < 0 {
			t.Fatalf("seed script lacks %q after offset %d:\n%s", w, at, s)
		}
		at += i
	}
	if !strings.Contains(s, "for h in x1-exec1 x1-exec2 x1-exec3; do") {
		t.Errorf("ensh does not name the exec hosts:\n%s", s)
	}
}

// fakeLab returns a handle on a lab state written to a temp dir, without
// building anything.
func fakeLab(t *testing.T) *lab.Lab {
	t.Helper()
	dir := t.TempDir()
	st := `{"version":1,"name":"x1","state_dir":"` + dir + `","sge_root":"/run/sgerun-lab/x1/sge","sge_cell":"x1","user":"sgeuser",` +
		`"hosts":[{"name":"x1-master","short":"master","role":"master"},{"name":"x1-shadow","short":"shadow","role":"shadow"},` +
		`{"name":"x1-exec1","short":"exec1","role":"execd"},{"name":"x1-exec2","short":"exec2","role":"execd"},{"name":"x1-exec3","short":"exec3","role":"execd"}]}`
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".sgerun-lab"), []byte("x1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := lab.OpenDir(dir)
	if err != nil {
		t.Skipf("cannot fake a lab state here: %v", err)
	}
	return l
}
