package engine

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sgerun/sgerun/internal/sshtest"
	"github.com/sgerun/sgerun/internal/testenv"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
)

// hermetic isolates a test from the developer's SSH setup.
func hermetic(t *testing.T) {
	t.Helper()
	testenv.Hermetic(t)
}

// cluster is an sshtest server with n virtual hosts (host0..hostN-1) and an
// inventory that points at them: master host0, shadow host1, every host an
// execd.
type cluster struct {
	srv     *sshtest.Server
	inv     *inventory.Inventory
	invPath string
	state   string // the state dir (locks, runs)
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterWith(t, n, sshtest.Options{SFTP: true}, 30*time.Second)
}

// newClusterWith starts n hosts with opts (the user key is added) and
// writes the inventory, with every host an execd.
func newClusterWith(t *testing.T, n int, opts sshtest.Options, connectTimeout time.Duration) *cluster {
	t.Helper()
	hermetic(t)
	opts.Hosts = n
	c := testenv.NewCluster(t, testenv.Options{SSH: opts, ConnectTimeout: connectTimeout})
	return &cluster{srv: c.Server, inv: c.Inventory(t), invPath: c.InventoryPath,
		state: filepath.Join(filepath.Dir(c.InventoryPath), "state")}
}

// runResult is what one session run produced.
type runResult struct {
	out    Outcome
	err    error
	events []journal.Event
}

// of returns the events of one type.
func (r runResult) of(typ string) []journal.Event {
	var out []journal.Event
	for _, ev := range r.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// step returns the step_end (or step_skip) event of step i.
func (r runResult) step(t *testing.T, i int) journal.Event {
	t.Helper()
	for _, ev := range r.events {
		if (ev.Type == journal.StepEnd || ev.Type == journal.StepSkip) && ev.Step == i {
			return ev
		}
	}
	t.Fatalf("no end of step %d in the journal", i)
	return journal.Event{}
}

// run starts a session and reads back its journal.
func (c *cluster) run(t *testing.T, s *Session) runResult {
	t.Helper()
	out, err := s.Start(context.Background())
	r := runResult{out: out, err: err}
	if out.Dir == "" {
		t.Fatalf("run made no journal: %v", err)
	}
	_, r.events, _ = journal.Read(out.Dir)
	return r
}

// eventLog collects observed events, safe for concurrent use.
type eventLog struct {
	mu     sync.Mutex
	events []journal.Event
}

func (l *eventLog) add(ev journal.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}
