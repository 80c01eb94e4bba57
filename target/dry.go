package target

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aymanbagabas/go-udiff"
)

// Dry returns a target that passes reads through to real and records its
// mutations in p instead of performing them (--dry-run).
func Dry(real Target, p *Plan) Target { return &dryTarget{real: real, plan: p} }

// dryTarget passes reads through and records writes in its plan.
type dryTarget struct {
	real Target
	plan *Plan
}

func (t *dryTarget) Name() string { return t.real.Name() }

func (t *dryTarget) Query(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	return t.real.Query(ctx, cmd, stdin)
}

func (t *dryTarget) Exec(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	line := "run: " + cmd
	if stdin != nil {
		line += "\n  stdin:\n" + indent(string(stdin), "    ")
	}
	t.plan.add(t.Name(), line)
	return Output{Cmd: cmd}, nil
}

func (t *dryTarget) ReadFile(ctx context.Context, path string) (File, error) {
	return t.real.ReadFile(ctx, path)
}

func (t *dryTarget) WriteFile(ctx context.Context, path string, f File) error {
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
	t.plan.add(t.Name(), b.String())
	return nil
}

// Plan collects the mutations one step would make on one host. Lines for
// another host than the step's own (a kind that reaches several hosts) are
// prefixed with that host's name. It is safe for concurrent use.
type Plan struct {
	host  string
	mu    sync.Mutex
	lines []string
}

// NewPlan returns an empty plan for a step on host.
func NewPlan(host string) *Plan { return &Plan{host: host} }

func (p *Plan) add(host, line string) {
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

// Lines returns the recorded plan lines.
func (p *Plan) Lines() []string {
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
