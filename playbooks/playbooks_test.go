package playbooks

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
)

// A site laid out nothing like Debian or the lab: another root, cell name,
// ports and host names.
const otherSite = `
cluster: {sge_root: /opt/sge, sge_cell: prod, qmaster_port: 7444, execd_port: 7445}
ssh: {user: root, known_hosts: /etc/sgerun/known_hosts}
hosts:
  hpc-m01: {address: 10.9.0.1, fence_address: 10.8.0.1}
  hpc-m02: {address: 10.9.0.2}
  node[01-03]: {}
roles: {master: hpc-m01, shadow: hpc-m02, execd: ["node[01-03]"]}
`

func TestPlaybooksValidate(t *testing.T) {
	inv, err := inventory.Parse("other.yaml", []byte(otherSite))
	if err != nil {
		t.Fatal(err)
	}
	if len(Names()) == 0 {
		t.Fatal("no embedded playbooks")
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			file, data, err := Source(name)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := runbook.Parse(file, data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if _, err := plan.Compile(rb, inv, nil); err != nil {
				t.Fatalf("compile: %v", err)
			}
			if rb.Name != name {
				t.Errorf("runbook name %q, file %s", rb.Name, name)
			}
		})
	}
}

func TestPlaybooksAssumeNoLayout(t *testing.T) {
	for _, name := range Names() {
		_, data, _ := Source(name)
		text := string(data)
		for _, bad := range []string{"/var/lib/gridengine", "/var/spool/gridengine", "/usr/sbin", "/usr/lib/gridengine", "default/common", "6444"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s hard-codes %q", name, bad)
			}
		}
	}
}

// The takeover playbook reads like the procedure: at most 120 lines, every
// template on one line, no loops in templates, no long inline shell.
func TestTakeoverReadsLikeTheProcedure(t *testing.T) {
	_, data, err := Source("takeover")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if n := strings.Count(strings.TrimRight(text, "\n"), "\n") + 1; n > 120 {
		t.Errorf("takeover.yaml has %d lines, want at most 120", n)
	}
	for i, line := range strings.Split(text, "\n") {
		if strings.Count(line, "{{") != strings.Count(line, "}}") {
			t.Errorf("line %d: a template spans lines: %s", i+1, line)
		}
		if strings.Contains(line, "{{ range") || strings.Contains(line, "{{- range") {
			t.Errorf("line %d: a loop in a template: %s", i+1, line)
		}
		if strings.HasSuffix(strings.TrimSpace(line), ": |") {
			t.Errorf("line %d: a multi-line block (inline script): %s", i+1, line)
		}
	}
}

// TestTakeoverDocsMatch: docs/playbooks/takeover.md names every step of
// takeover.yaml in bold, with its kind, in the playbook's order, and names
// no step the playbook does not have.
func TestTakeoverDocsMatch(t *testing.T) {
	file, src, err := Source("takeover")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := runbook.Parse(file, src)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../docs/playbooks/takeover.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	// the step table: the rows from "| 1 |" to the first line after it
	// that is not a row
	start := strings.Index(doc, "\n| 1 | ")
	if start < 0 {
		t.Fatal("docs/playbooks/takeover.md has no step table")
	}
	table := doc[start:]
	if end := strings.Index(table, "\n\n"); end >= 0 {
		table = table[:end]
	}
	at := 0
	names := map[string]bool{}
	for _, st := range rb.Steps {
		names[st.Name] = true
		i := strings.Index(table[at:], "**"+st.Name+"**")
		if i < 0 {
			t.Errorf("step %q (%s) is not in the docs' step table after the step before it", st.Name, st.Kind)
			continue
		}
		at += i
		row := table[at:]
		if j := strings.IndexByte(row, '\n'); j >= 0 {
			row = row[:j]
		}
		if !strings.Contains(row, "`"+st.Kind+"`") {
			t.Errorf("step %q: its row in the docs does not name its kind `%s`: %s", st.Name, st.Kind, row)
		}
	}
	for _, m := range regexp.MustCompile(`\*\*([^*]+)\*\*`).FindAllStringSubmatch(table, -1) {
		if !names[m[1]] {
			t.Errorf("the docs' step table names %q, which is no step of takeover.yaml", m[1])
		}
	}
}
