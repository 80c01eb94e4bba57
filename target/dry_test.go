package target

import (
	"context"
	"strings"
	"testing"
)

// memTarget is a Target over an in-memory file map that fails the test on
// any change: a dry target must never pass one through.
type memTarget struct {
	t     *testing.T
	name  string
	files map[string]File
}

func (m *memTarget) Name() string { return m.name }

func (m *memTarget) Query(_ context.Context, cmd string, _ []byte) (Output, error) {
	return Output{Cmd: cmd, Stdout: "read " + cmd}, nil
}

func (m *memTarget) Exec(_ context.Context, cmd string, _ []byte) (Output, error) {
	m.t.Errorf("Exec %q reached the real target", cmd)
	return Output{}, nil
}

func (m *memTarget) ReadFile(_ context.Context, p string) (File, error) { return m.files[p], nil }

func (m *memTarget) WriteFile(_ context.Context, p string, _ File) error {
	m.t.Errorf("WriteFile %s reached the real target", p)
	return nil
}

// TestDryRecordsMutations: reads go through, changes become plan lines of
// the step's host, and lines of another host say whose they are.
func TestDryRecordsMutations(t *testing.T) {
	ctx := context.Background()
	own := &memTarget{t: t, name: "m", files: map[string]File{"/etc/f": {Data: []byte("a\n"), Mode: 0o644, Exists: true}}}
	other := &memTarget{t: t, name: "w"}
	p := NewPlan("m")
	d, dw := Dry(own, p), Dry(other, p)

	if out, err := d.Query(ctx, "cat x", nil); err != nil || out.Stdout != "read cat x" {
		t.Errorf("Query = %+v, %v: want the real read", out, err)
	}
	if _, err := d.Exec(ctx, "rm -rf /spool", []byte("in\n")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile(ctx, "/etc/f", File{Data: []byte("b\n"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := dw.Exec(ctx, "touch y", nil); err != nil {
		t.Fatal(err)
	}
	lines := p.Lines()
	if len(lines) != 3 {
		t.Fatalf("plan = %q, want 3 lines", lines)
	}
	if lines[0] != "run: rm -rf /spool\n  stdin:\n    in" {
		t.Errorf("exec line = %q", lines[0])
	}
	for _, want := range []string{"write: /etc/f (mode 0600, atomic)", "mode 0644 -> 0600", "-a", "+b"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("write line lacks %q:\n%s", want, lines[1])
		}
	}
	if lines[2] != "[w] run: touch y" {
		t.Errorf("another host's line = %q", lines[2])
	}
}
