package engine

import (
	"testing"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/target"
)

func rec(path string) *target.UndoRecord {
	return &target.UndoRecord{Kind: "restore_file", Params: map[string]any{"path": path}}
}

// A kill between a remote write and its host_end leaves only the undo that
// was journaled ahead; rollback must still find it.
func TestPendingUndoWriteAhead(t *testing.T) {
	events := []journal.Event{
		{Seq: 1, Type: journal.HostStart, Step: 0, Host: "h"},
		{Seq: 2, Type: journal.UndoPrepared, Step: 0, Host: "h", Undo: rec("/a")},
		{Seq: 3, Type: journal.HostEnd, Step: 0, Host: "h", Status: journal.StatusOK, Undo: rec("/a")},
		{Seq: 4, Type: journal.HostStart, Step: 1, Host: "h"},
		{Seq: 5, Type: journal.UndoPrepared, Step: 1, Host: "h", Undo: rec("/b")},
		// killed here: no host_end for step 1
	}
	items := PendingUndo(events)
	if len(items) != 2 || items[0].Seq != 3 || items[1].Seq != 5 {
		t.Fatalf("pending = %+v, want the finished step's undo (seq 3) and the prepared one (seq 5)", items)
	}
	// A failed host after a change keeps its prepared undo too; an undone
	// one is gone.
	events = append(events,
		journal.Event{Seq: 6, Type: journal.UndoEnd, Status: journal.StatusOK, Undone: &journal.UndoRef{Seq: 5}},
		journal.Event{Seq: 7, Type: journal.HostStart, Step: 2, Host: "h"},
		journal.Event{Seq: 8, Type: journal.UndoPrepared, Step: 2, Host: "h", Undo: rec("/c")},
		journal.Event{Seq: 9, Type: journal.HostEnd, Step: 2, Host: "h", Status: journal.StatusFailed},
	)
	items = PendingUndo(events)
	if len(items) != 2 || items[0].Seq != 3 || items[1].Seq != 8 {
		t.Fatalf("pending = %+v, want seq 3 and 8", items)
	}
}
