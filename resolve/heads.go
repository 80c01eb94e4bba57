// Package resolve works out, before a run, what the inventory leaves to
// the cluster: which of the two heads serves now (act_qmaster, read over
// SSH from the heads, else from witnesses), and which exec hosts SGE
// knows (qconf -sel, cached in the state dir for when no qmaster
// answers). The command layer applies the results as an inventory view
// (inventory.WithHeads, inventory.WithExecHosts), so the playbooks keep
// reading .roles.master (the head the role is taken from) and
// .roles.shadow (the target).
package resolve

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
)

// Connector hands out targets for inventory hosts.
type Connector interface {
	Target(ctx context.Context, host string) (target.Target, error)
}

// addressConnector is the optional ability to reach a host on another
// address (its fence network) when its own does not answer.
type addressConnector interface {
	TargetAt(ctx context.Context, host, address string) (target.Target, error)
}

// readTimeout bounds one host's read.
const readTimeout = 15 * time.Second

// maxWitnessReads is how many witnesses are asked when the heads do not
// settle which head is active.
const maxWitnessReads = 3

// Reading is act_qmaster as one host has it.
type Reading struct {
	Host string `json:"host"`
	// Via is the fence address the host was read through, or "".
	Via   string `json:"via,omitempty"`
	Value string `json:"value,omitempty"`
	Err   string `json:"error,omitempty"`
}

// Heads is the direction of one run.
type Heads struct {
	// Preferred is the inventory's preferred head.
	Preferred string `json:"preferred"`
	// Active is the head act_qmaster names, or "" when that could not be
	// settled.
	Active string `json:"active"`
	// From is the head the role is taken from (the run's master role), To
	// the target (its shadow role).
	From string `json:"from"`
	To   string `json:"to"`
	// How says how the direction was decided.
	How      string    `json:"how"`
	Readings []Reading `json:"readings,omitempty"`
}

// Note is the journal line of the decision; ParseNote reads it back.
func (h Heads) Note() string {
	active := h.Active
	if active == "" {
		active = "unknown"
	}
	return fmt.Sprintf("heads: from %s to %s; preferred %s, active %s; %s", h.From, h.To, h.Preferred, active, h.How)
}

var noteRE = regexp.MustCompile(`^heads: from (\S+) to (\S+);`)

// ParseNote reads the direction back from a Note line (a resumed run
// keeps the direction it started with).
func ParseNote(msg string) (from, to string, ok bool) {
	m := noteRE.FindStringSubmatch(msg)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// View applies the direction to the inventory.
func (h Heads) View(inv *inventory.Inventory) (*inventory.Inventory, error) {
	return inv.WithHeads(h.From, h.To)
}

// ForTakeover decides a takeover's direction: from the active head to the
// other one, or, with to set (takeover --to HOST), from the other head to
// that one. When the active head cannot be settled it falls back to the
// inventory's order (from the preferred head to the standby) and says so.
// A target that already serves is left to the takeover's gate ("already
// master, nothing to do").
func ForTakeover(ctx context.Context, inv *inventory.Inventory, conn Connector, to string) (Heads, error) {
	h := Heads{Preferred: inv.Preferred()}
	var how string
	h.Active, how, h.Readings = Active(ctx, inv, conn)
	if to != "" {
		target, ok := inv.IsHead(to)
		if !ok {
			return h, fmt.Errorf("--to %s: not a head (the heads are %s)", to, strings.Join(inv.Heads, " and "))
		}
		h.To = target
		h.From, _ = inv.OtherHead(target)
		h.How = "target given (takeover --to, or the head watch runs on); " + how
		return h, nil
	}
	if h.Active == "" {
		h.From, h.To = inv.Heads[0], inv.Heads[1]
		h.How = how + "; falling back to the inventory's order (preferred to standby)"
		return h, nil
	}
	h.From = h.Active
	h.To, _ = inv.OtherHead(h.Active)
	h.How = how
	return h, nil
}

// Active reads act_qmaster on both heads (over their fence address when
// their own does not answer). When the heads that answer agree on a head,
// that is the active one. Otherwise up to three witnesses are read too and
// a head named by more readings than any other wins. It returns "" when
// nothing settles it; how says which readings decided.
func Active(ctx context.Context, inv *inventory.Inventory, conn Connector) (active, how string, readings []Reading) {
	readings = readAll(ctx, inv, conn, inv.Heads)
	if a, ok := agree(inv, readings); ok {
		return a, "act_qmaster on " + readers(readings) + " names " + a, readings
	}
	ws := inv.Role(inventory.RoleWitnesses)
	if len(ws) > maxWitnessReads {
		ws = ws[:maxWitnessReads]
	}
	readings = append(readings, readAll(ctx, inv, conn, ws)...)
	votes := map[string]int{}
	for _, r := range readings {
		if h, ok := inv.IsHead(r.Value); ok {
			votes[h]++
		}
	}
	best, n, tie := "", 0, false
	for _, h := range inv.Heads {
		switch {
		case votes[h] > n:
			best, n, tie = h, votes[h], false
		case votes[h] == n && n > 0:
			tie = true
		}
	}
	if best != "" && !tie {
		return best, fmt.Sprintf("act_qmaster names %s on %d of %d readings (%s)", best, n, len(readings), describe(readings)), readings
	}
	if len(votes) == 0 {
		return "", "act_qmaster could not be read on a head or a witness (" + describe(readings) + ")", readings
	}
	return "", "act_qmaster readings disagree (" + describe(readings) + ")", readings
}

// agree reports whether every head that could be read names the same
// head.
func agree(inv *inventory.Inventory, rs []Reading) (string, bool) {
	found := ""
	for _, r := range rs {
		if r.Err != "" {
			continue
		}
		h, ok := inv.IsHead(r.Value)
		if !ok || found != "" && h != found {
			return "", false
		}
		found = h
	}
	return found, found != ""
}

func readers(rs []Reading) string {
	var out []string
	for _, r := range rs {
		if r.Err == "" {
			out = append(out, r.Host)
		}
	}
	return strings.Join(out, ", ")
}

func describe(rs []Reading) string {
	var out []string
	for _, r := range rs {
		switch {
		case r.Err != "":
			out = append(out, r.Host+": "+r.Err)
		case r.Value == "":
			out = append(out, r.Host+": empty")
		default:
			out = append(out, r.Host+": "+r.Value)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// readAll reads act_qmaster on hosts in parallel.
func readAll(ctx context.Context, inv *inventory.Inventory, conn Connector, hosts []string) []Reading {
	out := make([]Reading, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = readOne(ctx, inv, conn, h)
		}()
	}
	wg.Wait()
	return out
}

func readOne(ctx context.Context, inv *inventory.Inventory, conn Connector, host string) Reading {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	r := Reading{Host: host}
	t, err := conn.Target(ctx, host)
	if err != nil {
		r.Err = short(err)
		h, ok := inv.Host(host)
		ac, can := conn.(addressConnector)
		if !ok || h.FenceAddress == "" || !can {
			return r
		}
		if t, err = ac.TargetAt(ctx, host, h.FenceAddress); err != nil {
			return r
		}
		r.Via, r.Err = h.FenceAddress, ""
	}
	path := sge.Cell{Root: inv.Cluster.SGERoot, Name: inv.Cluster.SGECell}.ActQmasterPath()
	// SGE writes act_qmaster by truncate-then-write: an empty read is
	// tried again.
	cmd := "for i in 1 2 3; do a=$(cat " + shell.Quote(path) + " 2>/dev/null); [ -n \"$a\" ] && break; sleep 0.3; done; echo \"$a\""
	out, err := t.Query(ctx, cmd, nil)
	if err != nil {
		r.Err = short(err)
		return r
	}
	r.Value = strings.TrimSpace(out.Stdout)
	return r
}

// short keeps an error's first line.
func short(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
