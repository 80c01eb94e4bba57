package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/runbook"
	"github.com/sgerun/sgerun/target"
)

// localOnly is a Connector for runbooks whose steps all run on the
// controller.
type localOnly struct{}

func (localOnly) Target(context.Context, string) (target.Target, error) {
	return nil, errors.New("no remote hosts in this test")
}
func (localOnly) Local() target.Target                { return &target.Local{} }
func (localOnly) Reach(context.Context, string) error { return nil }

func hookSession(t *testing.T, hooks RunHooks) (*Session, string) {
	t.Helper()
	dir := t.TempDir()
	inv, err := inventory.Parse("inv.yaml", []byte(`
cluster: {sge_root: /opt/sge}
ssh: {user: root}
hosts: {m: {}, s: {}}
roles: {master: m, shadow: s, execd: []}
`))
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "changed")
	rb, err := runbook.Parse("rb.yaml", []byte(fmt.Sprintf(`
name: hooked
steps:
  - name: change something
    local: 'touch %s'
`, marker)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(rb, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Session{Plan: p, StateDir: dir, LogDir: filepath.Join(dir, "runs"),
		Connector: localOnly{}, Hooks: hooks}, marker
}

func TestPreHookVetoes(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "second-pre-ran")
	s, marker := hookSession(t, RunHooks{Pre: []string{"echo not now; exit 1", "touch " + ran}})
	out, err := s.Start(context.Background())
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "vetoed") {
		t.Fatalf("err = %v, want a veto (ErrRefused)", err)
	}
	for _, f := range []string{marker, ran} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s exists: the veto did not stop the run", f)
		}
	}
	_, events, err := journal.Read(out.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var hook *journal.Event
	for i := range events {
		if events[i].Type == HookEvent {
			hook = &events[i]
		}
	}
	if hook == nil || hook.Status != journal.StatusFailed || hook.Output == nil || !strings.Contains(hook.Output.Stdout, "not now") {
		t.Fatalf("hook event missing or without its output: %+v", hook)
	}
	if sum := journal.Summarize(out.Dir, journal.Meta{}, events); sum.Status != journal.StatusRefused {
		t.Errorf("run status %q, want refused", sum.Status)
	}
}

func TestPostHookGetsJSON(t *testing.T) {
	dir := t.TempDir()
	got := filepath.Join(dir, "summary.json")
	s, marker := hookSession(t, RunHooks{
		Pre:    []string{"true"},
		PostOK: []string{"cat > " + got},
		Summary: func(runDir string) ([]byte, error) {
			meta, events, err := journal.Read(runDir)
			if err != nil {
				return nil, err
			}
			return json.Marshal(map[string]any{"run_id": meta.RunID, "status": journal.Summarize(runDir, meta, events).Status})
		},
	})
	out, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the step did not run: %v", err)
	}
	data, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("post hook stdin is not JSON: %v: %q", err, data)
	}
	if v["run_id"] != out.RunID || v["status"] != journal.StatusOK {
		t.Errorf("summary = %v, want run %s ok", v, out.RunID)
	}
}

func TestHookTimeout(t *testing.T) {
	s, marker := hookSession(t, RunHooks{Pre: []string{"sleep 30"}, Timeout: 200 * time.Millisecond})
	_, err := s.Start(context.Background())
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a time-out veto", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the step ran after a timed-out pre hook")
	}
}
