package playbooks

import (
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
