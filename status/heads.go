package status

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/resolve"
)

// Heads is which head the qmaster role belongs on and which one has it.
type Heads struct {
	Preferred string `json:"preferred"`
	Standby   string `json:"standby"`
	// Active is the head act_qmaster names, or "" when it names neither.
	Active string `json:"active"`
	// Differ is set when the active head is not the preferred one (after a
	// takeover; sgerun takeback returns the role).
	Differ bool `json:"differ"`
}

// ExecHosts says where the exec host list came from, for an inventory
// whose roles.execd has from_sge.
type ExecHosts struct {
	Count  int    `json:"count"`
	Source string `json:"source"`
	// Live is set when SGE answered now (and the cache was refreshed).
	Live bool `json:"live"`
	// CacheTime is when the cache in use (or replaced) was read; CacheAge
	// its age in seconds.
	CacheTime *time.Time `json:"cache_time,omitempty"`
	CacheAge  int        `json:"cache_age_seconds,omitempty"`
	// NewSinceCache and GoneSinceCache are how SGE's list differs from
	// the cache that was there before.
	NewSinceCache  []string `json:"new_since_cache,omitempty"`
	GoneSinceCache []string `json:"gone_since_cache,omitempty"`
	// NotInInventory are hosts SGE lists that hosts: does not name (reached
	// by their own name); Unreachable those of them SSH cannot reach.
	NotInInventory []string `json:"not_in_inventory,omitempty"`
	Unreachable    []string `json:"unreachable,omitempty"`
}

// SetHeads fills r.Heads from the inventory and act_qmaster.
func (r *Report) SetHeads(inv *inventory.Inventory) {
	if len(inv.Heads) != 2 {
		return
	}
	h := &Heads{Preferred: inv.Heads[0], Standby: inv.Heads[1]}
	if a, ok := inv.IsHead(r.ActQmaster); ok {
		h.Active = a
	}
	h.Differ = h.Active != "" && h.Active != h.Preferred
	r.Heads = h
}

// SetExecHosts records where the exec host list came from, with a problem
// for a list SGE changed since the cache was written, for a list read
// from the cache (no qmaster answered) and for listed hosts that cannot
// be reached.
func (r *Report) SetExecHosts(ctx context.Context, e resolve.Exec, view *inventory.Inventory, added []string, reach func(ctx context.Context, host string) error) {
	x := &ExecHosts{Count: len(view.Role(inventory.RoleExecd)), Source: e.List.Source, Live: e.Live, NotInInventory: added}
	cache := e.Cached
	if !e.Live {
		cache = &e.List
	}
	if cache != nil {
		t := cache.Time
		x.CacheTime, x.CacheAge = &t, int(r.Time.Sub(t)/time.Second)
	}
	switch {
	case e.Live && e.Cached != nil:
		x.NewSinceCache, x.GoneSinceCache = resolve.Diff(e.Cached.Hosts, e.List.Hosts)
		if len(x.NewSinceCache)+len(x.GoneSinceCache) > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("exec host cache of %s was out of date: SGE's list changed since (new: %s; gone: %s); the cache is refreshed now",
				e.Cached.Time.Local().Format(time.DateTime), orDash(x.NewSinceCache), orDash(x.GoneSinceCache)))
		}
	case !e.Live:
		r.Problems = append(r.Problems, fmt.Sprintf("exec host list read from the cache of %s (%s old): %s",
			e.List.Time.Local().Format(time.DateTime), r.Time.Sub(e.List.Time).Round(time.Second), e.LiveErr))
	}
	if e.CacheErr != "" {
		r.Problems = append(r.Problems, "exec host cache: "+e.CacheErr)
	}
	if reach != nil && len(added) > 0 {
		x.Unreachable = reachAll(ctx, added, max(1, view.Policy.Fanout), reach)
		for _, h := range x.Unreachable {
			r.Problems = append(r.Problems, fmt.Sprintf("exec host %s, listed by SGE, cannot be reached over SSH by its name", h))
		}
	}
	r.ExecHosts = x
}

func reachAll(ctx context.Context, hosts []string, fanout int, reach func(ctx context.Context, host string) error) []string {
	bad := make([]bool, len(hosts))
	sem := make(chan struct{}, fanout)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			bad[i] = reach(cctx, h) != nil
		}()
	}
	wg.Wait()
	var out []string
	for i, h := range hosts {
		if bad[i] {
			out = append(out, h)
		}
	}
	return out
}

func orDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
