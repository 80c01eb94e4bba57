package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/exitcode"
	"github.com/sgerun/sgerun/journal"
	"github.com/spf13/cobra"
)

func TestDefaultStateDir(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	home, _ := os.UserHomeDir()
	tests := []struct {
		name   string
		getenv func(string) string
		euid   int
		want   string
	}{
		{"env wins for root", env("SGERUN_STATE_DIR", "/srv/sgerun", "XDG_STATE_HOME", "/x"), 0, "/srv/sgerun"},
		{"root", env("XDG_STATE_HOME", "/x"), 0, "/var/lib/sgerun"},
		{"user with XDG", env("XDG_STATE_HOME", "/x"), 1000, "/x/sgerun"},
		{"user", env(), 1000, filepath.Join(home, ".local", "state", "sgerun")},
	}
	for _, tt := range tests {
		if got := defaultStateDir(tt.getenv, tt.euid); got != tt.want {
			t.Errorf("%s: defaultStateDir = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestResolveInventoryFlag(t *testing.T) {
	inv := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(inv, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	newCmd := func(args ...string) *cobra.Command {
		var p string
		c := &cobra.Command{Use: "status"}
		inventoryFlag(c.Flags(), &p)
		if err := c.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		return c
	}
	get := func(c *cobra.Command) string { v, _ := c.Flags().GetString("inventory"); return v }
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "SGERUN_INVENTORY" {
				return v
			}
			return ""
		}
	}

	system := filepath.Join(t.TempDir(), "etc-sgerun", "inventory.yaml")
	c := newCmd()
	if err := resolveInventoryFlag(c, env(inv), system); err != nil || get(c) != inv {
		t.Errorf("SGERUN_INVENTORY: %v, --inventory %q, want %q", err, get(c), inv)
	}
	c = newCmd("--inventory", "/given.yaml")
	if err := resolveInventoryFlag(c, env(inv), system); err != nil || get(c) != "/given.yaml" {
		t.Errorf("flag given: %v, --inventory %q, want the flag's", err, get(c))
	}
	c = newCmd()
	err := resolveInventoryFlag(c, env(filepath.Join(t.TempDir(), "missing.yaml")), system)
	if exitCode(err) != exitcode.Input || !strings.Contains(err.Error(), "$SGERUN_INVENTORY") {
		t.Errorf("missing $SGERUN_INVENTORY file: %v (exit %d), want a usage error naming it", err, exitCode(err))
	}
	c = newCmd()
	err = resolveInventoryFlag(c, env(""), system)
	if exitCode(err) != exitcode.Input || !strings.Contains(err.Error(), system) {
		t.Errorf("no inventory anywhere: %v, want a usage error naming %s", err, system)
	}
	if err := os.MkdirAll(filepath.Dir(system), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(system, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = newCmd()
	if err := resolveInventoryFlag(c, env(""), system); err != nil || get(c) != system {
		t.Errorf("the system inventory: %v, --inventory %q, want %q", err, get(c), system)
	}
}

func TestVersionOutput(t *testing.T) {
	e := &env{t: t, state: t.TempDir(), home: t.TempDir()}
	flag := e.sgerun("--version")
	cmd := e.sgerun("version")
	if flag.code != 0 || cmd.code != 0 || flag.stdout != cmd.stdout {
		t.Fatalf("--version and version differ:\n%v\n%v", flag, cmd)
	}
	for _, want := range []string{"sgerun ", "commit:", "built:", "go:       go1.", "platform:"} {
		if !strings.Contains(cmd.stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, cmd.stdout)
		}
	}
	j := e.sgerun("version", "-o", "json")
	var in struct{ Version, GoVersion string }
	if err := json.Unmarshal([]byte(j.stdout), &in); err != nil || in.Version == "" {
		t.Errorf("version -o json: %v\n%v", err, j)
	}
}

// A journal written in a newer format is refused by resume and rollback
// before anything connects, and still shown by show.
func TestNewerJournalFormatRefused(t *testing.T) {
	e := &env{t: t, state: t.TempDir(), home: t.TempDir()}
	runs := filepath.Join(e.state, "runs")
	meta := journal.Meta{RunID: journal.NewRunID(time.Now()), Runbook: "takeover", Inventory: "/nonexistent/inv.yaml",
		Started: time.Now().UTC()}
	w, err := journal.Create(runs, meta, []byte("name: takeover\nsteps: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(journal.Event{Type: journal.RunStart, Message: "takeover"}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	metaPath := filepath.Join(runs, meta.RunID, journal.MetaFile)
	m := map[string]any{}
	if err := json.Unmarshal([]byte(readString(t, metaPath)), &m); err != nil {
		t.Fatal(err)
	}
	if m["format"] != float64(journal.FormatVersion) || m["sgerun_version"] == "" {
		t.Fatalf("meta.json lacks the format and version: %v", m)
	}
	m["format"], m["sgerun_version"] = journal.FormatVersion+1, "99.0.0"
	b, _ := json.Marshal(m)
	if err := os.WriteFile(metaPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"resume", "rollback"} {
		r := e.sgerun(verb, meta.RunID)
		if r.code != exitcode.Input || !strings.Contains(r.stderr, "journal format too new") || !strings.Contains(r.stderr, "99.0.0") {
			t.Errorf("%s of a newer journal: %v", verb, r)
		}
	}
	if r := e.sgerun("show", meta.RunID); r.code != 0 || !strings.Contains(r.stderr, "warning: journal format too new") {
		t.Errorf("show of a newer journal: %v", r)
	}
	if r := e.sgerun("show", meta.RunID, "-o", "json"); !strings.Contains(r.stdout, `"sgerun_version": "99.0.0"`) {
		t.Errorf("show -o json lacks the run's sgerun_version: %v", r)
	}
}

func TestLegacyStateNote(t *testing.T) {
	system, legacy := filepath.Join(t.TempDir(), "var-lib"), filepath.Join(t.TempDir(), "home-state")
	if n := legacyStateNote(system, legacy); n != "" {
		t.Errorf("no journals anywhere: note %q", n)
	}
	if err := os.MkdirAll(filepath.Join(legacy, "runs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if n := legacyStateNote(system, legacy); !strings.Contains(n, legacy) || !strings.Contains(n, "--state-dir "+legacy) {
		t.Errorf("journals only in the old place: note %q", n)
	}
	if err := os.MkdirAll(filepath.Join(system, "runs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if n := legacyStateNote(system, legacy); n != "" {
		t.Errorf("the new state dir has journals: note %q", n)
	}
}
