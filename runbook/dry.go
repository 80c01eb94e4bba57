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
	t, ok := d.tgts[host]
	d.mu.Unlock()
	if ok {
		return t, nil
	}
	// Dial without the lock: the gate dials every voter at once, and an
	// unreachable one must not hold up the others. The real connector
	// keeps one connection per host, so two dials here share it.
	real, err := d.Real.Target(ctx, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.tgts[host]; ok {
		return t, nil
	}
	if d.tgts == nil {
		d.tgts = map[string]*dryTarget{}
	}
	t = &dryTarget{real: real}
	d.tgts[host] = t
	return t, nil
}

// TargetAt returns a recording target for host at another address.
func (d *DryConnector) TargetAt(ctx context.Context, host, address string) (steps.Target, error) {
	ac, ok := d.Real.(AddressConnector)
	if !ok {
		return nil, fmt.Errorf("connect %s at %s: not supported by this connector", host, address)
	}
	real, err := ac.TargetAt(ctx, host, address)
	if err != nil {
		return nil, err
	}
	return &dryTarget{real: real}, nil
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

// dryTarget passes reads through and records writes in the plan carried
// by the context (see withPlan).
type dryTarget struct {
	real steps.Target
}

func (t *dryTarget) Name() string { return t.real.Name() }

func (t *dryTarget) Query(ctx context.Context, cmd string, stdin []byte) (steps.Output, error) {
	return t.real.Query(ctx, cmd, stdin)
}

func (t *dryTarget) Exec(ctx context.Context, cmd string, stdin []byte) (steps.Output, error) {
	line := "run: " + cmd
	if stdin != nil {
		line += "\n  stdin:\n" + indent(string(stdin), "    ")
	}
	planFrom(ctx).add(t.Name(), line)
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
	planFrom(ctx).add(t.Name(), b.String())
	return nil
}

// plan collects the mutations one step would make on one host. Lines for
// another host than the step's own (a kind that reaches several hosts) are
// prefixed with that host's name.
type plan struct {
	host  string
	mu    sync.Mutex
	lines []string
}

type planKey struct{}

// withPlan returns a context whose dry-run mutations are recorded in p.
func withPlan(ctx context.Context, p *plan) context.Context {
	return context.WithValue(ctx, planKey{}, p)
}

func planFrom(ctx context.Context) *plan {
	p, _ := ctx.Value(planKey{}).(*plan)
	return p
}

func (p *plan) add(host, line string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if host != p.host {
		line = "[" + host + "] " + line
	}
	p.lines = append(p.lines, line)
}

func (p *plan) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}
