package runbook

import (
	"strings"
	"testing"
)

// TestSGETemplateFuncs checks the template functions that wrap package sge
// keep their names and behaviour for the playbooks.
func TestSGETemplateFuncs(t *testing.T) {
	const boot = "qmaster_spool_dir /export/sge/qmaster\nspooling_method classic\nspooling_params /sge/c/common;/export/sge/spool\n"
	data := map[string]any{"boot": boot, "shared": ""}
	tests := []struct{ text, want string }{
		{`{{ kv "qmaster_spool_dir" .boot }}`, "/export/sge/qmaster"},
		{`{{ kv "missing" .boot }}`, ""},
		{`{{ spooldir .boot }}`, "/export/sge/spool"},
		{`{{ respool .boot "/new" }}`, "/sge/c/common;/new"},
		{`{{ sgerecord "lock" .shared .boot }}`, "/export/sge/.sgerun-takeover.lock"},
		{`{{ sgerecord "antiflap" "/shared" .boot }}`, "/shared/.sgerun-last-takeover.json"},
		{`{{ sgerecord "pending_fence" .shared .boot }}`, "/export/sge/.sgerun-pending-fence.json"},
		{`{{ sgerecord "other" .shared .boot }}`, ""},
		{`{{ sgerecord "lock" .shared "" }}`, ""},
	}
	for _, tt := range tests {
		got, err := Render("t", tt.text, data)
		if err != nil || got != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.text, got, err, tt.want)
		}
	}
	got, err := Render("t", `{{ sgeenv "/opt/sge" "default" }}`, data)
	if err != nil || !strings.HasPrefix(got, "SGE_ROOT=/opt/sge; SGE_CELL=default;") {
		t.Errorf("sgeenv = %q, %v", got, err)
	}
}
