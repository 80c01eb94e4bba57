package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/target"
	"github.com/sgerun/sgerun/ui"
)

// treeHash hashes every path below root with its type, mode and content.
func treeHash(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%v\x00", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%d\x00", len(b))
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

const dryRunbook = `
name: dry
vars: {dir: ""}
steps:
  - name: read bootstrap
    on: [host0, host1]
    run: {cmd: "cat {{ .vars.dir | q }}/{{ .host.name | q }}/bootstrap", readonly: true}
    register: boot
  - name: copy common
    on: [host0, host1]
    copy_dir: {src: "{{ .vars.dir }}/{{ .host.name }}/common", dst: "{{ .vars.dir }}/{{ .host.name }}/common.bak"}
  - name: edit bootstrap
    on: [host0, host1]
    edit_kv: {path: "{{ .vars.dir }}/{{ .host.name }}/bootstrap", set: {spooling_params: /new/spool}}
  - name: put motd
    on: [host0, host1]
    put: {path: "{{ .vars.dir }}/{{ .host.name }}/motd", content: "new motd\n", mode: "0600"}
  - name: run
    on: [host0, host1]
    run: "echo {{ kv \"spooling_params\" .reg.boot.stdout | q }} > {{ .vars.dir | q }}/{{ .host.name | q }}/old"
  - name: script
    on: host0
    script: |
      rm -rf {{ .vars.dir | q }}
      echo done
`

func TestDryRunChangesNothing(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	for _, h := range []string{"host0", "host1"} {
		writeFile(t, filepath.Join(dir, h, "motd"), "old motd\n", 0o640)
		writeFile(t, filepath.Join(dir, h, "bootstrap"), bootstrap, 0o644)
		writeFile(t, filepath.Join(dir, h, "common", "act_qmaster"), "host0\n", 0o644)
	}
	before := treeHash(t, dir)

	var text bytes.Buffer
	view := &ui.RunView{W: &text, S: ui.NewStyles(&text, true)}
	s := c.session(t, dryRunbook, map[string]string{"dir": dir})
	s.DryRun, s.Observe = true, view.Event
	r := c.run(t, s)
	if r.err != nil {
		t.Fatalf("dry run: %v\n%s", r.err, text.String())
	}
	if after := treeHash(t, dir); after != before {
		t.Fatal("the dry run changed the tree")
	}
	if _, err := os.Stat(journal.LockPath(c.state, c.invPath)); err == nil {
		t.Error("a dry run left a lock")
	}
	if r.out.Status != journal.StatusPlanned {
		t.Errorf("status %q, want planned", r.out.Status)
	}

	plans := map[string]map[int]string{"host0": {}, "host1": {}}
	for _, ev := range r.of(journal.HostEnd) {
		plans[ev.Host][ev.Step] = strings.Join(ev.Plan, "\n")
		if ev.Step == 0 {
			if ev.Output == nil || ev.Output.Stdout != bootstrap {
				t.Errorf("read-only step did not run for real on %s: %+v", ev.Host, ev.Output)
			}
			if ev.Status != journal.StatusOK {
				t.Errorf("read-only step on %s: %s", ev.Host, ev.Status)
			}
		} else if ev.Status != journal.StatusPlanned {
			t.Errorf("step %d on %s: status %s, want planned", ev.Step, ev.Host, ev.Status)
		}
	}
	for _, h := range []string{"host0", "host1"} {
		base := dir + "/" + h
		want := map[int][]string{
			0: nil,
			1: {"run: cp -a -- " + base + "/common " + base + "/common.bak"},
			2: {"write: " + base + "/bootstrap (mode 0644",
				"-spooling_params        /var/spool/sge",
				"+spooling_params        /new/spool"},
			3: {"write: " + base + "/motd (mode 0600",
				"  mode 0640 -> 0600",
				"-old motd", "+new motd"},
			// The registered value is real: it comes from the read-only step.
			4: {"run: echo /var/spool/sge > " + base + "/old"},
		}
		for step, lines := range want {
			plan := plans[h][step]
			if lines == nil && plan != "" {
				t.Errorf("%s step %d has a plan: %q", h, step, plan)
			}
			for _, l := range lines {
				if !strings.Contains(plan, l) {
					t.Errorf("%s step %d plan lacks %q:\n%s", h, step, l, plan)
				}
				if !strings.Contains(text.String(), l) {
					t.Errorf("text output lacks %q", l)
				}
			}
		}
	}
	if p := plans["host0"][5]; !strings.Contains(p, "run: sh -s\n  stdin:\n    rm -rf "+dir+"\n    echo done") {
		t.Errorf("script plan = %q", p)
	}
	// One group for both hosts when their plans are identical up to the
	// host name is not expected; each host's diff is shown.
	if !strings.Contains(text.String(), "would host0:") || !strings.Contains(text.String(), "would host1:") {
		t.Errorf("text output does not name the hosts:\n%s", text.String())
	}
	if !strings.Contains(text.String(), "run ~ planned") {
		t.Errorf("text output does not end planned:\n%s", text.String())
	}
}

// TestDryRunAfterChangeIsAdvisory: a read-only check that depends on a
// planned change does not fail a dry run.
func TestDryRunAdvisoryCheck(t *testing.T) {
	c := newCluster(t, 2)
	dir := t.TempDir()
	src := `
name: advisory
vars: {dir: ""}
steps:
  - name: create
    on: host0
    run: "touch {{ .vars.dir | q }}/made"
  - name: check
    on: host0
    run: {cmd: "test -e {{ .vars.dir | q }}/made", readonly: true}
`
	s := c.session(t, src, map[string]string{"dir": dir})
	s.DryRun = true
	r := c.run(t, s)
	if r.err != nil {
		t.Fatalf("dry run failed on a check of a planned change: %v", r.err)
	}
	if st := r.step(t, 1); st.Status != journal.StatusPlanned || st.Message == "" {
		t.Errorf("check step: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "made")); err == nil {
		t.Error("dry run created a file")
	}
}

func TestOneConnectionPerHost(t *testing.T) {
	c := newCluster(t, 4)
	dir := t.TempDir()
	src := `
name: reuse
vars: {dir: ""}
steps:
  - {name: one, on: all, run: {cmd: "true", readonly: true}}
  - {name: two, on: all, run: "touch {{ .vars.dir | q }}/{{ .host.name | q }}"}
  - {name: three, on: all, put: {path: "{{ .vars.dir }}/{{ .host.name }}.put", content: x}}
  - {name: four, on: all, probe: {cmd: "true", ssh: host2}}
  - {name: five, on: all, run: "echo {{ .host.name | q }}"}
`
	conn, err := target.NewSSH(c.inv)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := c.session(t, src, map[string]string{"dir": dir})
	s.Connector = conn
	r := c.run(t, s)
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, h := range c.srv.Hosts() {
		if n := h.Handshakes(); n != 1 {
			t.Errorf("%s: %d handshakes, want 1", h.Name, n)
		}
	}
	if n := conn.Pool.Handshakes(); n != 4 {
		t.Errorf("pool: %d handshakes, want 4", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "host3.put")); err != nil {
		t.Error(err)
	}
}
