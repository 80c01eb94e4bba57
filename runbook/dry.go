package runbook

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aymanbagabas/go-udiff"
	"github.com/sgerun/sgerun/steps"
)

// DryConnector wraps a real connector for --dry-run: reads go through to the
// hosts, mutations are recorded as plan lines instead of being sent.
type DryConnector struct {
	Real Connector
	mu   sync.Mutex
	tgts map[string]*dryTarget
}

// Target returns a recording target for host.
func (d *DryConnector) Target(ctx context.Context, host string) (steps.Target, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.tgts[host]; ok {
		return t, nil
	}
	real, err := d.Real.Target(ctx, host)
	if err != nil {
		return nil, err
	}
	if d.tgts == nil {
		d.tgts = map[string]*dryTarget{}
	}
	t := &dryTarget{real: real}
	d.tgts[host] = t
	return t, nil
}

// Local returns the recording controller target.
func (d *DryConnector) Local() steps.Target {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.tgts[controllerHost]; ok {
		return t
	}
	if d.tgts == nil {
		d.tgts = map[string]*dryTarget{}
	}
	t := &dryTarget{real: d.Real.Local()}
	d.tgts[controllerHost] = t
	return t
}

// Reach is read-only and runs for real.
func (d *DryConnector) Reach(ctx context.Context, host string) error { return d.Real.Reach(ctx, host) }

// dryTarget passes reads through and records writes.
type dryTarget struct {
	real steps.Target
	mu   sync.Mutex
	plan []string
}

func (t *dryTarget) Name() string { return t.real.Name() }

func (t *dryTarget) Query(ctx context.Context, cmd string, stdin []byte) (steps.Output, error) {
	return t.real.Query(ctx, cmd, stdin)
}

func (t *dryTarget) Exec(_ context.Context, cmd string, stdin []byte) (steps.Output, error) {
	line := "run: " + cmd
	if stdin != nil {
		line += "\n  stdin:\n" + indent(string(stdin), "    ")
	}
	t.record(line)
	return steps.Output{Cmd: cmd}, nil
}

func (t *dryTarget) ReadFile(ctx context.Context, path string) (steps.File, error) {
	return t.real.ReadFile(ctx, path)
}

func (t *dryTarget) WriteFile(ctx context.Context, path string, f steps.File) error {
	old, err := t.real.ReadFile(ctx, path)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "write: %s (mode %#o", path, uint32(f.Mode.Perm()))
	if f.UID >= 0 {
		fmt.Fprintf(&b, ", uid %d", f.UID)
	}
	if f.GID >= 0 {
		fmt.Fprintf(&b, ", gid %d", f.GID)
	}
	b.WriteString(", atomic)")
	if old.Exists && old.Mode.Perm() != f.Mode.Perm() {
		fmt.Fprintf(&b, "\n  mode %#o -> %#o", uint32(old.Mode.Perm()), uint32(f.Mode.Perm()))
	}
	diff := udiff.Unified(path+" (now)", path+" (planned)", string(old.Data), string(f.Data))
	if diff == "" {
		b.WriteString("\n  content unchanged")
	} else {
		b.WriteString("\n" + indent(strings.TrimRight(diff, "\n"), "  "))
	}
	t.record(b.String())
	return nil
}

func (t *dryTarget) record(line string) {
	t.mu.Lock()
	t.plan = append(t.plan, line)
	t.mu.Unlock()
}

// TakePlan returns and clears the recorded plan lines.
func (t *dryTarget) TakePlan() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.plan
	t.plan = nil
	return p
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
