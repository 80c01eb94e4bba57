package steps

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

const lockPath = "/spool/.sgerun-takeover.lock"

func TestLockFile(t *testing.T) {
	tests := []struct {
		name, params string
		held         string        // the lock's content; "" free
		excl         target.Output // the linking write's result
		changed      bool
		refused      bool
		undo         string // the undo's kind; "" none
		wantFile     string // the lock's content after the step
	}{
		{name: "free: taken by a link", params: "{path: " + lockPath + ", holder: run r1}", changed: true, undo: "unlock_file"},
		{name: "taken meanwhile: refused", params: "{path: " + lockPath + ", holder: run r1}", excl: target.Output{ExitCode: 1, Stderr: "cannot overwrite existing file"},
			refused: true},
		{name: "held by another: refused", params: "{path: " + lockPath + ", holder: run r1}", held: "run r0\n", refused: true, wantFile: "run r0\n"},
		{name: "own holder: accepted as it is", params: "{path: " + lockPath + ", holder: run r1}", held: "run r1\n", wantFile: "run r1\n"},
		{name: "force takes it over", params: "{path: " + lockPath + ", holder: run r1, force: true}", held: "run r0\n", changed: true,
			undo: "restore_file", wantFile: "run r1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "s").on(`ln "$t" "$p"`, tt.excl)
			if tt.held != "" {
				f.put(lockPath, tt.held, target.File{Mode: 0o640, UID: 398, GID: 398})
			}
			j := &journal{f: f}
			res, err := kindSpec(t, "lock_file", tt.params).Do(context.Background(), f, Runtime{Prepare: j.prepare})
			if tt.refused != errors.Is(err, ErrRefused) || !tt.refused && err != nil {
				t.Fatalf("err = %v, refused %v", err, tt.refused)
			}
			if tt.refused && strings.TrimSpace(tt.held) != "" && !strings.Contains(err.Error(), "run r0") {
				t.Errorf("refusal %q does not name the holder", err)
			}
			if res.Changed != tt.changed {
				t.Errorf("changed = %v", res.Changed)
			}
			if tt.undo == "" && res.Undo != nil || tt.undo != "" && (res.Undo == nil || res.Undo.Kind != tt.undo) {
				t.Fatalf("undo %+v, want %q", res.Undo, tt.undo)
			}
			if tt.undo != "" && (len(j.records) != 1 || j.records[0] != res.Undo || j.at[0] != len(f.calls)-1) {
				t.Errorf("undo not journaled right before taking the lock: %v at %v of %d calls", j.records, j.at, len(f.calls))
			}
			execs := f.cmds("exec")
			switch {
			case tt.held == "":
				if len(execs) != 1 || execs[0] != lockCommand(lockPath, "run r1") {
					t.Errorf("lock command %q", execs)
				}
			case len(execs) != 0:
				t.Errorf("a held lock ran %q", execs)
			}
			if tt.wantFile != "" {
				got := f.files[lockPath]
				if string(got.Data) != tt.wantFile || got.Mode != 0o640 || got.UID != 398 {
					t.Errorf("lock file %q %v %d", got.Data, got.Mode, got.UID)
				}
			}
			if tt.undo == "unlock_file" && (res.Undo.Params["path"] != lockPath || res.Undo.Params["holder"] != "run r1") {
				t.Errorf("unlock undo %v", res.Undo.Params)
			}
			if tt.undo == "restore_file" && res.Undo.Params["data"] != "cnVuIHIwCg==" {
				t.Errorf("take-over undo does not restore the previous holder: %v", res.Undo.Params)
			}
		})
	}
}

func TestLockFileJournalFirst(t *testing.T) {
	f := newFake(t, "s")
	j := &journal{f: f, err: errors.New("no journal")}
	if _, err := kindSpec(t, "lock_file", "{path: /l, holder: r1}").Do(context.Background(), f, Runtime{Prepare: j.prepare}); err == nil {
		t.Fatal("lock taken although its undo could not be journaled")
	}
	if len(f.cmds("exec")) != 0 {
		t.Errorf("ran %v", f.cmds("exec"))
	}
	for _, bad := range []string{"{path: /l}", "{holder: r1}", "{path: l, holder: r1}"} {
		if _, err := newSpecErr("lock_file", bad); err == nil {
			t.Errorf("lock_file %s accepted", bad)
		}
	}
	if !Kinds()["lock_file"].Recheck {
		t.Error("a resumed run must check its lock again")
	}
}

func TestUnlockFile(t *testing.T) {
	tests := []struct {
		name, held string
		removed    bool
		left       string
	}{
		{"own lock removed", "run r1\n", true, ""},
		{"another run's lock left", "run r2\n", false, "held by another: run r2"},
		{"no lock: nothing to do", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "s").on("rm -f -- "+lockPath, target.Output{})
			if tt.held != "" {
				f.put(lockPath, tt.held, target.File{Mode: 0o644})
			}
			res, err := kindSpec(t, "unlock_file", "{path: "+lockPath+", holder: run r1}").Do(context.Background(), f, Runtime{})
			if err != nil {
				t.Fatal(err)
			}
			if f.ran("rm -f") != tt.removed || res.Changed != tt.removed {
				t.Errorf("removed %v changed %v, want %v", f.ran("rm -f"), res.Changed, tt.removed)
			}
			if left, _ := res.Data["left"].(string); left != tt.left {
				t.Errorf("left %q, want %q", left, tt.left)
			}
		})
	}
	f := newFake(t, "s").put("/l", "r1", target.File{}).on("rm -f", target.Output{ExitCode: 1, Stderr: "read-only file system"})
	if _, err := kindSpec(t, "unlock_file", "{path: /l, holder: r1}").Do(context.Background(), f, Runtime{}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("failed removal: %v", err)
	}
}

// The lock command run by a real sh: the first run takes the lock with its
// holder's line, a second is refused and changes nothing, and no temp file
// is left either way.
func TestLockCommandRuns(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".sgerun-takeover.lock")
	run := func(holder string) (string, error) {
		out, err := exec.Command("sh", "-c", lockCommand(path, holder)).CombinedOutput()
		return string(out), err
	}
	if out, err := run("sgerun run r1: it's mine"); err != nil {
		t.Fatalf("free lock: %v %s", err, out)
	}
	out, err := run("run r2")
	if err == nil || !strings.Contains(out, "File exists") {
		t.Errorf("a held lock was taken again: %v %q", err, out)
	}
	if b, _ := os.ReadFile(path); string(b) != "sgerun run r1: it's mine\n" {
		t.Errorf("lock holds %q", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("lock mode %v %v, want 0644", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp.*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}
