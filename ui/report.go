package ui

import (
	"encoding/json"
	"io"

	"github.com/sgerun/sgerun/journal"
)

// Report is the machine-readable result of a run (`--output json`, hooks).
type Report struct {
	RunID     string `json:"run_id"`
	Runbook   string `json:"runbook"`
	Inventory string `json:"inventory"`
	DryRun    bool   `json:"dry_run"`
	// SgerunVersion is the version of the sgerun that started the run.
	SgerunVersion string       `json:"sgerun_version,omitempty"`
	Status        string       `json:"status"`
	ExitCode      int          `json:"exit_code"`
	Error         string       `json:"error,omitempty"`
	Dir           string       `json:"dir,omitempty"`
	Steps         []StepReport `json:"steps"`
	Undo          []UndoReport `json:"undo,omitempty"`
}

// StepReport is one step of a Report.
type StepReport struct {
	Index   int                 `json:"index"`
	Name    string              `json:"name"`
	Kind    string              `json:"kind"`
	Status  string              `json:"status"`
	Mutates bool                `json:"mutates"`
	Hosts   []string            `json:"hosts"`
	Failed  []string            `json:"failed,omitempty"`
	Errors  map[string]string   `json:"errors,omitempty"`
	Plan    map[string][]string `json:"plan,omitempty"`
}

// UndoReport is one undo performed during a rollback.
type UndoReport struct {
	Step   string `json:"step"`
	Host   string `json:"host"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// BuildReport condenses a run's journal.
func BuildReport(meta journal.Meta, events []journal.Event) Report {
	r := Report{RunID: meta.RunID, Runbook: meta.Runbook, Inventory: meta.Inventory, DryRun: meta.DryRun,
		SgerunVersion: meta.SgerunVersion, Status: journal.StatusInterrupted, Steps: []StepReport{}}
	byIndex := map[int]int{}
	step := func(ev journal.Event) *StepReport {
		i, ok := byIndex[ev.Step]
		if !ok {
			i = len(r.Steps)
			byIndex[ev.Step] = i
			r.Steps = append(r.Steps, StepReport{Index: ev.Step, Name: ev.StepName, Kind: ev.Kind})
		}
		return &r.Steps[i]
	}
	for _, ev := range events {
		switch ev.Type {
		case journal.HostEnd:
			s := step(ev)
			if ev.Error != "" {
				if s.Errors == nil {
					s.Errors = map[string]string{}
				}
				s.Errors[ev.Host] = ev.Error
			}
			if len(ev.Plan) > 0 {
				if s.Plan == nil {
					s.Plan = map[string][]string{}
				}
				s.Plan[ev.Host] = ev.Plan
			}
		case journal.StepEnd, journal.StepSkip:
			s := step(ev)
			s.Status, s.Mutates, s.Hosts, s.Failed = ev.Status, ev.Mutates, ev.Hosts, ev.Failed
		case journal.UndoEnd:
			r.Undo = append(r.Undo, UndoReport{Step: ev.StepName, Host: ev.Host, Kind: ev.Kind, Status: ev.Status, Error: ev.Error})
		case journal.RunEnd:
			r.Status, r.Error = ev.Status, ev.Error
		}
	}
	return r
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
