// Package status gathers the state of an SGE cluster's qmaster role as
// sgerun sees it: act_qmaster, the qmaster processes on master and shadow
// (two mean split brain), bootstrap's spool paths, the heartbeat age, a
// pending fence, the last takeover and how many exec hosts report. The
// status and check commands render it.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
)

// Connector hands out targets for inventory hosts.
type Connector interface {
	Target(ctx context.Context, host string) (target.Target, error)
}

// addressConnector is the optional ability to reach a host on its fence
// address, used when its own address does not answer.
type addressConnector interface {
	TargetAt(ctx context.Context, host, address string) (target.Target, error)
}

// Host is what one of master and shadow shows.
type Host struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Reachable bool   `json:"reachable"`
	// Via is the fence address the host was read through when its own
	// address did not answer.
	Via        string `json:"via,omitempty"`
	Error      string `json:"error,omitempty"`
	QmasterPID []int  `json:"qmaster_pids"`
	ShadowdPID []int  `json:"shadowd_pids"`
	ActQmaster string `json:"act_qmaster"`
	// Qping is the status of this host's qmaster as qping from this host
	// reports it (-1: no reply).
	Qping int `json:"qping_status"`
	// ErrorClass tells a dead host from a changed key: "unreachable",
	// "host_key", "auth" or "config" when the SSH connection failed for
	// that reason.
	ErrorClass string `json:"error_class,omitempty"`
}

// classed is an error that names its class (the SSH transport's
// connection errors do).
type classed interface {
	error
	Class() string
}

// sshClass names the SSH failure class of err, or "".
func sshClass(err error) string {
	var c classed
	if errors.As(err, &c) {
		return c.Class()
	}
	return ""
}

// Report is the gathered state.
type Report struct {
	Time            time.Time             `json:"time"`
	Hosts           []Host                `json:"hosts"`
	ActQmaster      string                `json:"act_qmaster"`
	Serving         []string              `json:"serving"` // hosts whose qmaster answers qping
	Running         []string              `json:"running"` // hosts with a qmaster process
	SplitBrain      bool                  `json:"split_brain"`
	QmasterSpoolDir string                `json:"qmaster_spool_dir"`
	SpoolingParams  string                `json:"spooling_params"`
	HeartbeatAge    int                   `json:"heartbeat_age_seconds"` // -1: unknown
	SharedDir       string                `json:"shared_dir"`
	PendingFence    *steps.PendingFence   `json:"pending_fence,omitempty"`
	LastTakeover    *steps.TakeoverRecord `json:"last_takeover,omitempty"`
	ExecTotal       int                   `json:"exec_total"`
	ExecReporting   int                   `json:"exec_reporting"`
	NotReporting    []string              `json:"not_reporting,omitempty"`
	Problems        []string              `json:"problems,omitempty"`
	// Heads are the preferred and the active head (SetHeads).
	Heads *Heads `json:"heads,omitempty"`
	// ExecHosts says where a list of exec hosts from SGE came from
	// (SetExecHosts).
	ExecHosts *ExecHosts `json:"exec_hosts,omitempty"`
}

// Gather reads the state through master and shadow (whichever answer).
func Gather(ctx context.Context, inv *inventory.Inventory, conn Connector) *Report {
	r := &Report{Time: time.Now().UTC(), HeartbeatAge: -1, ExecTotal: len(inv.Role(inventory.RoleExecd))}
	c := inv.Cluster
	names := []struct{ name, role string }{}
	for _, role := range []string{inventory.RoleMaster, inventory.RoleShadow} {
		for _, h := range inv.Role(role) {
			names = append(names, struct{ name, role string }{h, role})
		}
	}
	r.Hosts = make([]Host, len(names))
	targets := make([]target.Target, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Hosts[i], targets[i] = probeHost(ctx, conn, c, n.name, n.role, "")
			h, ok := inv.Host(n.name)
			ac, can := conn.(addressConnector)
			if r.Hosts[i].Reachable || !ok || h.FenceAddress == "" || !can {
				return
			}
			// Cut off on its own address (a partition of the scheduler
			// network)? Look through its fence address.
			via, t := probeHost(ctx, ac, c, n.name, n.role, h.FenceAddress)
			if via.Reachable {
				via.Via = h.FenceAddress
				via.Error, via.ErrorClass = r.Hosts[i].Error, r.Hosts[i].ErrorClass
				r.Hosts[i], targets[i] = via, t
			}
		}()
	}
	wg.Wait()
	var reader target.Target
	acts := map[string]bool{}
	for i, h := range r.Hosts {
		if !h.Reachable {
			r.Problems = append(r.Problems, fmt.Sprintf("%s %s unreachable: %s", h.Role, h.Name, h.Error))
			continue
		}
		if h.Via != "" {
			r.Problems = append(r.Problems, fmt.Sprintf("%s %s unreachable on its own address, read through fence address %s", h.Role, h.Name, h.Via))
		}
		if reader == nil || h.Role == inventory.RoleShadow && r.ActQmaster == "" {
			reader = targets[i]
		}
		if h.ActQmaster != "" {
			acts[h.ActQmaster] = true
		}
		if len(h.QmasterPID) > 0 {
			r.Running = append(r.Running, h.Name)
		}
		if h.Qping == 0 && len(h.QmasterPID) > 0 {
			r.Serving = append(r.Serving, h.Name)
		}
	}
	for a := range acts {
		r.ActQmaster = a
	}
	if len(acts) > 1 {
		r.Problems = append(r.Problems, fmt.Sprintf("master and shadow disagree on act_qmaster: %s", strings.Join(sortedKeys(acts), ", ")))
	}
	r.SplitBrain = len(r.Running) > 1
	if reader != nil {
		r.readShared(ctx, reader, c)
		r.readExec(ctx, reader, c, inv.Role(inventory.RoleExecd))
	}
	return r
}

func probeHost(ctx context.Context, conn any, c inventory.Cluster, name, role, address string) (Host, target.Target) {
	h := Host{Name: name, Role: role, Qping: -1}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var t target.Target
	var err error
	if address == "" {
		t, err = conn.(Connector).Target(cctx, name)
	} else {
		t, err = conn.(addressConnector).TargetAt(cctx, name, address)
	}
	if err != nil {
		h.Error, h.ErrorClass = err.Error(), sshClass(err)
		return h, nil
	}
	cell := sge.Cell{Root: c.SGERoot, Name: c.SGECell}
	cmd := "echo qmaster: $(pgrep -x sge_qmaster); echo shadowd: $(pgrep -x sge_shadowd); echo act: $(cat " +
		shell.Quote(cell.ActQmasterPath()) + " 2>/dev/null); " +
		sge.Env(c.SGERoot, c.SGECell) + "timeout 10 " + sge.QpingInfo(name, c.QmasterPort) + " 2>&1 | sed 's/^/qping /'"
	out, err := t.Query(cctx, cmd, nil)
	if err != nil {
		h.Error, h.ErrorClass = err.Error(), sshClass(err)
		return h, nil
	}
	h.Reachable = true
	var qping strings.Builder
	for _, line := range strings.Split(out.Stdout, "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "qmaster:":
			h.QmasterPID = ints(val)
		case "shadowd:":
			h.ShadowdPID = ints(val)
		case "act:":
			h.ActQmaster = strings.TrimSpace(val)
		case "qping":
			qping.WriteString(val + "\n")
		}
	}
	h.Qping = sge.ParseQping(qping.String())
	return h, t
}

func (r *Report) readShared(ctx context.Context, t target.Target, c inventory.Cluster) {
	f, err := t.ReadFile(ctx, sge.Cell{Root: c.SGERoot, Name: c.SGECell}.BootstrapPath())
	if err != nil || !f.Exists {
		r.Problems = append(r.Problems, "cannot read bootstrap")
		return
	}
	boot := sge.ParseBootstrap(string(f.Data))
	r.QmasterSpoolDir = boot.QmasterSpoolDir
	r.SpoolingParams = boot.SpoolingParams
	r.SharedDir = sge.RecordDir(c.SharedDir, boot)
	if r.QmasterSpoolDir != "" {
		hb := r.QmasterSpoolDir + "/heartbeat"
		out, err := t.Query(ctx, "echo $(( $(date +%s) - $(stat -c %Y "+shell.Quote(hb)+") ))", nil)
		if err == nil && out.ExitCode == 0 {
			r.HeartbeatAge, _ = strconv.Atoi(strings.TrimSpace(out.Stdout))
		}
	}
	if r.SharedDir == "" {
		return
	}
	if f, err := t.ReadFile(ctx, r.SharedDir+"/"+sge.PendingFenceFile); err == nil && f.Exists {
		var p steps.PendingFence
		if json.Unmarshal(f.Data, &p) == nil {
			r.PendingFence = &p
		}
	}
	if f, err := t.ReadFile(ctx, r.SharedDir+"/"+sge.AntiflapFile); err == nil && f.Exists {
		var l steps.TakeoverRecord
		if json.Unmarshal(f.Data, &l) == nil {
			r.LastTakeover = &l
		}
	}
}

// readExec counts the exec hosts that report load to the active qmaster.
func (r *Report) readExec(ctx context.Context, t target.Target, c inventory.Cluster, execd []string) {
	if len(execd) == 0 || len(r.Serving) == 0 {
		r.NotReporting = execd
		return
	}
	out, err := t.Query(ctx, sge.Env(c.SGERoot, c.SGECell)+"timeout 20 qhost", nil)
	if err != nil || out.ExitCode != 0 {
		r.Problems = append(r.Problems, "qhost failed")
		r.NotReporting = execd
		return
	}
	r.NotReporting = sge.NotReporting(out.Stdout, execd)
	r.ExecReporting = len(execd) - len(r.NotReporting)
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
