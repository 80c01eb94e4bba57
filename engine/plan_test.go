package engine

import (
	"path/filepath"
	"testing"

	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
)

// session returns a session for the runbook text over the cluster.
func (c *cluster) session(t *testing.T, src string, vars map[string]string) *Session {
	t.Helper()
	rb, err := runbook.Parse("rb.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	p, err := plan.Compile(rb, c.inv, vars)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return &Session{Plan: p, Inventory: c.inv, StateDir: c.state,
		LogDir: filepath.Join(c.state, "runs")}
}
