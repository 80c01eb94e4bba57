package engine

import (
	"math"
	"sort"

	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/plan"
	"github.com/sgerun/sgerun/steps"
)

// StateFromJournal rebuilds a run's state from its events, for resume: the
// steps that ended, their registered values, the hosts that finished an
// interrupted step, and the changes not yet undone.
func StateFromJournal(events []journal.Event) *State {
	st := NewState()
	for _, ev := range events {
		switch ev.Type {
		case journal.StepEnd:
			switch ev.Status {
			case journal.StatusOK, journal.StatusTolerated:
				st.Done[ev.Step] = true
				delete(st.HostsDone, ev.Step)
			}
			registerFrom(st, ev)
		case journal.Commit:
			st.Committed = true
		case journal.StepSkip:
			st.Done[ev.Step] = true
			registerFrom(st, ev)
		case journal.HostEnd:
			if ev.Status != journal.StatusOK {
				continue
			}
			if st.HostsDone[ev.Step] == nil {
				st.HostsDone[ev.Step] = map[string]HostResult{}
			}
			r := steps.Result{Data: normalizeMap(ev.Data)}
			if ev.Output != nil {
				r.Output = *ev.Output
			}
			st.HostsDone[ev.Step][ev.Host] = HostResult{Host: ev.Host, Result: r, OK: true}
		}
	}
	for k := range st.HostsDone {
		if st.Done[k] {
			delete(st.HostsDone, k)
		}
	}
	st.Undo = PendingUndo(events)
	return st
}

// PendingUndo lists the recorded changes of a run that no successful undo
// has reverted yet, oldest first: the undo of every host that finished a
// mutating step, and the undo a step journaled ahead of a change on a host
// that never finished it (killed or failed part-way).
func PendingUndo(events []journal.Event) []UndoItem {
	undone := map[int]bool{}
	for _, ev := range events {
		if ev.Type == journal.UndoEnd && ev.Status == journal.StatusOK && ev.Undone != nil {
			undone[ev.Undone.Seq] = true
		}
	}
	type key struct {
		step int
		host string
	}
	// open holds the prepared records of a host's step since its last
	// host_start; a host_end ok with an undo stands for them.
	open := map[key][]journal.Event{}
	var items []UndoItem
	add := func(ev journal.Event) {
		if undone[ev.Seq] {
			return
		}
		rec := *ev.Undo
		rec.Params = normalizeMap(rec.Params)
		items = append(items, UndoItem{Seq: ev.Seq, Step: ev.Step, StepName: ev.StepName, Host: ev.Host, Record: rec})
	}
	flush := func(k key) {
		for _, p := range open[k] {
			add(p)
		}
		delete(open, k)
	}
	for _, ev := range events {
		k := key{ev.Step, ev.Host}
		switch ev.Type {
		case journal.HostStart:
			flush(k) // an earlier attempt that never ended
		case journal.UndoPrepared:
			if ev.Undo != nil {
				open[k] = append(open[k], ev)
			}
		case journal.HostEnd:
			if ev.Status == journal.StatusOK && ev.Undo != nil {
				delete(open, k)
				add(ev)
			} else {
				flush(k)
			}
		}
	}
	for _, ev := range events {
		if ev.Type == journal.UndoPrepared {
			if _, ok := open[key{ev.Step, ev.Host}]; ok {
				flush(key{ev.Step, ev.Host})
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Seq < items[j].Seq })
	return items
}

// registerFrom reads the registered results of a step's end (or skip)
// back from the journal.
func registerFrom(st *State, ev journal.Event) {
	for name, v := range ev.Registered {
		if m, ok := v.(map[string]any); ok {
			st.Registered[name] = plan.RegisteredFromMap(normalizeMap(m))
		}
	}
}

// normalize turns JSON's float64 whole numbers back into ints, so templates
// comparing with integers work the same after a resume.
func normalize(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
		return x
	case map[string]any:
		return normalizeMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

func normalizeMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = normalize(v)
	}
	return out
}
