package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sgerun/sgerun/engine"
	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/journal"
	"github.com/sgerun/sgerun/resolve"
	"github.com/sgerun/sgerun/status"
	"github.com/sgerun/sgerun/steps"
	"github.com/sgerun/sgerun/target"
	"github.com/sgerun/sgerun/ui"
	"github.com/sgerun/sgerun/watch"
)

// headsUse says how a run follows an inventory's roles.heads.
type headsUse int

const (
	// headsIgnored keeps the inventory's order (takeback: the preferred
	// head is its target; plain runs).
	headsIgnored headsUse = iota
	// headsToward moves from the active head to the other one, or to
	// --to (takeover, and ack, which reads the record through the head
	// that is not cut off).
	headsToward
	// headsFence is toward's reverse: the head to fence is the one that
	// is not active.
	headsFence
)

// runView resolves what a playbook run leaves to the cluster: for an
// inventory with roles.heads, the direction of a takeover (and of ack,
// which reads the shared record through the target: the head that is not
// cut off when the active one fails), from the active head to the other
// one, or to --to; for fence the reverse, since the head to fence is the
// one that is not active; for an inventory whose exec hosts come from
// SGE, the exec host list. It returns the inventory view the run uses and
// the notes that say how it was decided (journaled, shown in --dry-run
// too). Takeback keeps the inventory's order: the preferred head is its
// target.
func (a *app) runView(ctx context.Context, inv *inventory.Inventory, use headsUse, to string) (*inventory.Inventory, []string, error) {
	heads := use != headsIgnored && (to != "" || inv.Follow)
	if !heads && inv.ExecFromSGE == nil {
		return inv, nil, nil
	}
	conn, err := target.NewSSH(inv)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	view, active := inv, ""
	var notes []string
	if heads {
		h, err := resolve.ForTakeover(ctx, inv, conn, to)
		if err != nil {
			return nil, nil, usagef("%v", err)
		}
		if use == headsFence {
			h.From, h.To = h.To, h.From
			h.How += "; a fence is of the head that is not active"
		}
		if view, err = h.View(inv); err != nil {
			return nil, nil, err
		}
		notes, active = append(notes, h.Note()), h.Active
	}
	view, more, err := a.execView(ctx, view, conn, active)
	if err != nil {
		return nil, nil, err
	}
	return view, append(notes, more...), nil
}

// execView applies SGE's exec host list (live, else the cache) to an
// inventory whose roles.execd has from_sge.
func (a *app) execView(ctx context.Context, inv *inventory.Inventory, conn resolve.Connector, active string) (*inventory.Inventory, []string, error) {
	if inv.ExecFromSGE == nil {
		return inv, nil, nil
	}
	now := time.Now()
	e, err := resolve.ResolveExec(ctx, inv, conn, resolve.CachePath(a.stateDir, inv.File), resolve.Readers(inv, active), now)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", engine.ErrRefused, err)
	}
	view, added := inv.WithExecHosts(e.List.Hosts)
	notes := []string{e.Note(now)}
	if len(added) > 0 {
		notes = append(notes, "exec hosts not in hosts:, reached by their own name with the ssh: defaults: "+ui.Fold(added))
	}
	if e.CacheErr != "" {
		notes = append(notes, "exec host cache: "+e.CacheErr)
	}
	return view, notes, nil
}

// resumeView gives a resumed or rolled-back run the direction it started
// with (its "heads:" note) and the exec host list of now (live, else the
// cache).
func (a *app) resumeView(ctx context.Context, inv *inventory.Inventory, events []journal.Event) (*inventory.Inventory, []string, error) {
	view := inv
	for _, ev := range events {
		if ev.Type != journal.Note {
			continue
		}
		if from, to, ok := resolve.ParseNote(ev.Message); ok {
			v, err := inv.WithHeads(from, to)
			if err != nil {
				return nil, nil, fmt.Errorf("resume: the run went %s -> %s: %w", from, to, err)
			}
			view = v
			break
		}
	}
	if inv.ExecFromSGE == nil {
		return view, nil, nil
	}
	conn, err := target.NewSSH(view)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	return a.execView(ctx, view, conn, first(view.Role(inventory.RoleMaster)))
}

// watchSelf is the head watch runs on: --on, else this machine's host
// name when it is one of the heads (compared without the domain), else ""
// (watch runs on a third machine).
func watchSelf(inv *inventory.Inventory, on string) (string, error) {
	if on != "" {
		h, ok := inv.IsHead(on)
		if !ok {
			return "", usagef("--on %s: not a head (the heads are %s)", on, strings.Join(inv.Heads, " and "))
		}
		return h, nil
	}
	name, err := os.Hostname()
	if err != nil {
		return "", nil
	}
	if h, ok := inv.IsHead(name); ok {
		return h, nil
	}
	short, _, _ := strings.Cut(name, ".")
	for _, h := range inv.Heads {
		hs, _, _ := strings.Cut(h, ".")
		if strings.EqualFold(hs, short) {
			return h, nil
		}
	}
	return "", nil
}

// watchProbe is one check of watch. An inventory with roles.heads is
// resolved first: on the active head watch reports it and does nothing
// more; elsewhere it runs the gate against the active head, with this
// head (or, on a third machine, the other head) as the target.
func (a *app) watchProbe(ctx context.Context, inv *inventory.Inventory, self string) watch.Observation {
	conn, err := target.NewSSH(inv)
	if err != nil {
		return watch.Observation{Err: err}
	}
	var active, how string
	if inv.Follow {
		active, how, _ = resolve.Active(ctx, inv, conn)
	}
	view, _, err := a.execView(ctx, inv, conn, active)
	conn.Close()
	if err != nil {
		return watch.Observation{Err: err}
	}
	if !inv.Follow {
		return probeGate(ctx, view)
	}
	heads := map[string]any{"preferred": inv.Preferred(), "active": active, "this_host": self, "how": how}
	if self != "" && active == self {
		return watch.Observation{Verdict: steps.VerdictHealthy,
			Reason:   fmt.Sprintf("%s is the active head (this host); the standby watches it", self),
			Evidence: map[string]any{"heads": heads}}
	}
	from, to := followDirection(inv, active, self)
	if view, err = view.WithHeads(from, to); err != nil {
		return watch.Observation{Err: err}
	}
	heads["from"], heads["to"] = from, to
	obs := probeGate(ctx, view)
	if obs.Evidence == nil {
		obs.Evidence = map[string]any{}
	}
	obs.Evidence["heads"] = heads
	return obs
}

// followDirection is the direction watch checks: from the active head to
// the other one; when the active head is unknown, toward this head, else
// the inventory's order.
func followDirection(inv *inventory.Inventory, active, self string) (from, to string) {
	if _, ok := inv.IsHead(active); ok {
		to, _ = inv.OtherHead(active)
		return active, to
	}
	if self != "" {
		from, _ = inv.OtherHead(self)
		return from, self
	}
	return inv.Heads[0], inv.Heads[1]
}

// watchTakeover is the takeover watch starts: toward this head when watch
// runs on a head, else away from the active head.
func (a *app) watchTakeover(ctx context.Context, inv *inventory.Inventory, self string) (string, int, error) {
	to := ""
	if inv.Follow {
		to = self
	}
	view, notes, err := a.runView(ctx, inv, headsToward, to)
	if err != nil {
		return "", exitCode(err), err
	}
	return a.unattendedTakeover(ctx, view, notes)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// gatherInv gathers the status of an inventory: for exec hosts from SGE,
// of the live list (refreshing the cache) or the cache, with what differs;
// and which head is preferred and which active.
func (a *app) gatherInv(ctx context.Context, inv *inventory.Inventory) (*status.Report, error) {
	view := inv
	var e resolve.Exec
	var added []string
	var execErr error
	if inv.ExecFromSGE != nil {
		conn, err := target.NewSSH(inv)
		if err != nil {
			return nil, err
		}
		e, execErr = resolve.ResolveExec(ctx, inv, conn, resolve.CachePath(a.stateDir, inv.File), resolve.Readers(inv, ""), time.Now())
		conn.Close()
		if execErr == nil {
			view, added = inv.WithExecHosts(e.List.Hosts)
		}
	}
	conn, err := target.NewSSH(view)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := status.Gather(ctx, view, conn)
	r.SetHeads(inv)
	if inv.Follow {
		// With two heads, "master" and "shadow" name no fixed host.
		for i := range r.Hosts {
			switch r.Hosts[i].Role {
			case inventory.RoleMaster:
				r.Hosts[i].Role = "preferred"
			case inventory.RoleShadow:
				r.Hosts[i].Role = "standby"
			}
		}
	}
	switch {
	case inv.ExecFromSGE == nil:
	case execErr != nil:
		r.Problems = append(r.Problems, execErr.Error())
	default:
		r.SetExecHosts(ctx, e, view, added, conn.Reach)
	}
	return r, nil
}
