package plan

import (
	"maps"

	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
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

// Data is the template data shared by every step of a run: the
// inventory's, .vars (declared variables with the overrides applied) and
// .run. Each call returns a fresh map.
func (p *Plan) Data(run Run) map[string]any {
	data := p.inv.TemplateData()
	data["vars"] = maps.Clone(p.vars)
	data["run"] = map[string]any{"id": run.ID, "stamp": run.Stamp, "dry_run": run.DryRun, "time": run.Time}
	return data
}

// WithHost returns a shallow copy of data with .host set.
func WithHost(data map[string]any, host map[string]any) map[string]any {
	c := maps.Clone(data)
	c["host"] = host
	return c
}

// StepHostData returns data with .host set as step st sees it on host:
// the host's own, or the controller's for controller-side kinds.
func (p *Plan) StepHostData(st *Step, host string, data map[string]any) map[string]any {
	if st.Def.Local {
		return WithHost(data, ControllerData())
	}
	return WithHost(data, p.HostData(host))
}

// Spec renders the step's parameters with hdata (StepHostData) and decodes
// them into its kind's spec, as the engine does before it runs the step on
// a host. The rendered parameters come back also when the kind refuses
// them.
func (st *Step) Spec(hdata map[string]any) (*yaml.Node, steps.Spec, error) {
	rendered, err := st.Templates().RenderParams(st.Name, st.Def, st.Params, hdata)
	if err != nil {
		return rendered, nil, err
	}
	spec, err := st.Def.New(rendered)
	return rendered, spec, err
}

// HostData is the .host of an inventory host.
func (p *Plan) HostData(name string) map[string]any {
	h, ok := p.inv.Host(name)
	if !ok {
		return map[string]any{"name": name, "address": "", "fence_address": ""}
	}
	return map[string]any{"name": h.Name, "address": h.Address, "fence_address": h.FenceAddress}
}

// ControllerData is the .host of controller-side steps.
func ControllerData() map[string]any {
	return map[string]any{"name": target.Controller, "address": "", "fence_address": ""}
}

func placeholderHost() map[string]any {
	return map[string]any{"name": "HOST", "address": "ADDRESS", "fence_address": "FENCE_ADDRESS"}
}

// placeholderOne is the shape of one host's registered result.
func placeholderOne(kind steps.Kind) Outcome {
	data := map[string]any{}
	for _, k := range kind.DataKeys {
		data[k] = ""
	}
	return Outcome{OK: true, Data: data}
}

// placeholderRegistered is the shape of a registered step result over
// hosts.
func placeholderRegistered(kind steps.Kind, hosts []string) Registered {
	r := Registered{Outcome: placeholderOne(kind), Hosts: make(map[string]Outcome, len(hosts))}
	for _, h := range hosts {
		r.Hosts[h] = placeholderOne(kind)
	}
	return r
}
