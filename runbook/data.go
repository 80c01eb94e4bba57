package runbook

import (
	"maps"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/steps"
)

// Run is the per-run template data: {{ .run.id }}, {{ .run.stamp }} (a
// yyyymmddHHMMSS stamp fixed for the run, for timestamped paths) and
// {{ .run.dry_run }}.
type Run struct {
	ID     string
	Stamp  string
	DryRun bool
	// Time is the run's start, RFC 3339 in UTC ({{ .run.time }}).
	Time string
}

// baseData is the template data shared by every step of a run.
func baseData(inv *inventory.Inventory, vars map[string]any, run Run) map[string]any {
	data := inv.TemplateData()
	data["vars"] = vars
	data["run"] = map[string]any{"id": run.ID, "stamp": run.Stamp, "dry_run": run.DryRun, "time": run.Time}
	return data
}

// withHost returns a shallow copy of data with .host set.
func withHost(data map[string]any, host map[string]any) map[string]any {
	c := maps.Clone(data)
	c["host"] = host
	return c
}

func hostData(inv *inventory.Inventory, name string) map[string]any {
	h, ok := inv.Host(name)
	if !ok {
		return map[string]any{"name": name, "address": "", "fence_address": ""}
	}
	return map[string]any{"name": h.Name, "address": h.Address, "fence_address": h.FenceAddress}
}

func placeholderHost() map[string]any {
	return map[string]any{"name": "HOST", "address": "ADDRESS", "fence_address": "FENCE_ADDRESS"}
}

// placeholderOne is the shape of one host's registered result.
func placeholderOne(kind steps.Kind) map[string]any {
	data := map[string]any{}
	for _, k := range kind.DataKeys {
		data[k] = ""
	}
	return map[string]any{"stdout": "", "stderr": "", "out": "", "rc": 0, "ok": true, "changed": false,
		"data": data, "error": ""}
}

// placeholderRegistered is the shape of a registered step result over
// hosts.
func placeholderRegistered(kind steps.Kind, hosts []string) map[string]any {
	r := placeholderOne(kind)
	per := make(map[string]any, len(hosts))
	for _, h := range hosts {
		per[h] = placeholderOne(kind)
	}
	r["hosts"] = per
	r["failed"] = []string{}
	r["succeeded"] = []string{}
	r["skipped"] = false
	return r
}
