package journal

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestGroupCommit writes from many goroutines at once, as a step on many
// hosts does: fsyncs are shared, yet every Write returns only after an
// fsync that started once its event was written, and every event reads
// back in sequence order.
func TestGroupCommit(t *testing.T) {
	base := t.TempDir()
	meta := Meta{RunID: NewRunID(time.Now()), Runbook: "rb", Started: time.Now().UTC()}
	w, err := Create(base, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	type syncRec struct{ start time.Time }
	var (
		mu    sync.Mutex
		syncs []syncRec
	)
	realSync := w.sync
	w.sync = func() error {
		mu.Lock()
		syncs = append(syncs, syncRec{time.Now()})
		mu.Unlock()
		time.Sleep(2 * time.Millisecond) // a slow disk
		return realSync()
	}
	const n = 200
	returned := make([]time.Time, n+1) // by seq
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev, err := w.Write(Event{Type: HostEnd, Step: 0, Host: "h", Attempt: i})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			returned[ev.Seq] = time.Now()
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(syncs) >= n/2 {
		t.Errorf("%d fsyncs for %d concurrent events: not shared", len(syncs), n)
	}
	_, events, err := Read(w.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != n {
		t.Fatalf("%d events read back, want %d", len(events), n)
	}
	for i, ev := range events {
		if ev.Seq != i+1 {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
	}
	// Every Write returned after an fsync started (the exact coverage is
	// TestGroupCommitDurableOnReturn's).
	for seq := 1; seq <= n; seq++ {
		if returned[seq].IsZero() || returned[seq].Before(syncs[0].start) {
			t.Fatalf("event %d returned before any fsync", seq)
		}
	}
}

// TestGroupCommitDurableOnReturn checks, one event at a time, that the
// fsync covering an event runs before its Write returns.
func TestGroupCommitDurableOnReturn(t *testing.T) {
	w, err := Create(t.TempDir(), Meta{RunID: NewRunID(time.Now())}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	synced := 0
	realSync := w.sync
	w.sync = func() error {
		// Called without the lock; the event is already in the file.
		_, events, _ := Read(w.Dir())
		synced = len(events)
		return realSync()
	}
	for i := 1; i <= 5; i++ {
		ev, err := w.Write(Event{Type: Note})
		if err != nil {
			t.Fatal(err)
		}
		if ev.Seq != i || synced != i {
			t.Fatalf("Write %d returned with %d event(s) fsynced", i, synced)
		}
	}
}

// TestSyncFailureSticks: after a failed fsync, what reached the disk is
// unknown, so every later Write fails too.
func TestSyncFailureSticks(t *testing.T) {
	w, err := Create(t.TempDir(), Meta{RunID: NewRunID(time.Now())}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	boom := errors.New("boom")
	w.sync = func() error { return boom }
	for range 2 {
		if _, err := w.Write(Event{Type: Note}); !errors.Is(err, boom) {
			t.Fatalf("Write after a failed fsync: %v, want boom", err)
		}
	}
}
