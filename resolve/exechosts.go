package resolve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sgerun/sgerun/inventory"
	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
)

// qconfTimeout bounds qconf on one host: during a failover no qmaster
// answers and qconf would wait.
const qconfTimeout = 20 * time.Second

// ErrNoExecList is matched when SGE's exec host list can neither be read
// nor found in the cache.
var ErrNoExecList = errors.New("no exec host list")

// ExecList is an exec host list as SGE reported it, before the inventory's
// add and exclude lists.
type ExecList struct {
	Hosts []string `json:"hosts"`
	// Hostgroup is the host group the list was narrowed to, or "".
	Hostgroup string `json:"hostgroup,omitempty"`
	// Source names the host and command that read it.
	Source string `json:"source"`
	// Time is when it was read.
	Time time.Time `json:"time"`
}

// Exec is the exec host list a run uses.
type Exec struct {
	// List is the live list when a qmaster answered, else the cache.
	List ExecList `json:"list"`
	// Live says List was read just now (and the cache refreshed).
	Live bool `json:"live"`
	// Cached is the cache as it was before this read, when there was one.
	Cached *ExecList `json:"cached,omitempty"`
	// LiveErr is why the live list could not be read.
	LiveErr string `json:"live_error,omitempty"`
	// CacheErr is why the cache could not be written or read.
	CacheErr string `json:"cache_error,omitempty"`
}

// Note is the journal line of where the list came from.
func (e Exec) Note(now time.Time) string {
	group := ""
	if e.List.Hostgroup != "" {
		group = " in " + e.List.Hostgroup
	}
	if e.Live {
		return fmt.Sprintf("exec hosts: %d%s from %s (cache refreshed)", len(e.List.Hosts), group, e.List.Source)
	}
	return fmt.Sprintf("exec hosts: %d%s from the cache of %s (%s old; %s); live read failed: %s", len(e.List.Hosts), group,
		e.List.Time.Local().Format(time.DateTime), now.Sub(e.List.Time).Round(time.Second), e.List.Source, e.LiveErr)
}

// CachePath is the cache file of an inventory in the state dir, keyed by
// the inventory's absolute path.
func CachePath(stateDir, invFile string) string {
	abs, err := filepath.Abs(invFile)
	if err != nil {
		abs = invFile
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(stateDir, "exec-hosts-"+hex.EncodeToString(sum[:8])+".json")
}

// LoadCache reads a cache file; a missing file gives nil and no error.
func LoadCache(path string) (*ExecList, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("exec host cache: %w", err)
	}
	var l ExecList
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("exec host cache %s: %w", path, err)
	}
	return &l, nil
}

// SaveCache writes a cache file atomically (mode 0600).
func SaveCache(path string, l ExecList) error {
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("exec host cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("exec host cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".exec-hosts-*")
	if err != nil {
		return fmt.Errorf("exec host cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("exec host cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("exec host cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("exec host cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("exec host cache: %w", err)
	}
	return nil
}

// ResolveExec reads SGE's exec host list through the first of readers
// that answers (the active head first, as a rule) and refreshes the cache
// at cachePath; when no reader gets an answer (no qmaster answers during
// a failover) it uses the cache. It fails, matching ErrNoExecList, when
// there is neither.
func ResolveExec(ctx context.Context, inv *inventory.Inventory, conn Connector, cachePath string, readers []string, now time.Time) (Exec, error) {
	var e Exec
	cached, err := LoadCache(cachePath)
	if err != nil {
		e.CacheErr = err.Error()
	}
	e.Cached = cached
	l, err := ReadExecList(ctx, inv, conn, readers, now)
	if err == nil {
		e.List, e.Live = l, true
		if err := SaveCache(cachePath, l); err != nil {
			e.CacheErr = err.Error()
		}
		return e, nil
	}
	e.LiveErr = err.Error()
	if cached == nil {
		return e, fmt.Errorf("%w: %w; and no cache in %s (run sgerun status while a qmaster answers)", ErrNoExecList, err, cachePath)
	}
	if g := inv.ExecFromSGE.Hostgroup; cached.Hostgroup != g {
		return e, fmt.Errorf("%w: %w; the cache in %s is of host group %q, the inventory asks for %q", ErrNoExecList, err, cachePath, cached.Hostgroup, g)
	}
	e.List = *cached
	return e, nil
}

// ReadExecList runs qconf -sel (and qconf -shgrp_resolved for a host
// group) on the first reader that answers.
func ReadExecList(ctx context.Context, inv *inventory.Inventory, conn Connector, readers []string, now time.Time) (ExecList, error) {
	group := inv.ExecFromSGE.Hostgroup
	c := inv.Cluster
	to := fmt.Sprintf("timeout %d ", int(qconfTimeout/time.Second))
	cmd := sge.Env(c.SGERoot, c.SGECell) + "sel=$(" + to + "qconf -sel 2>&1) || { case $sel in *'no execution host'*) sel= ;; *) echo \"$sel\" >&2; exit 1 ;; esac; }; echo \"$sel\""
	if group != "" {
		cmd += "; echo --; " + to + "qconf -shgrp_resolved " + shell.Quote(group)
	}
	var errs []string
	for _, h := range readers {
		l, err := readList(ctx, conn, h, cmd, group)
		if err == nil {
			l.Time = now.UTC()
			return l, nil
		}
		errs = append(errs, h+": "+err.Error())
	}
	if len(errs) == 0 {
		return ExecList{}, errors.New("read exec hosts: no host to read them on")
	}
	// One line: it goes into a journal note and a status problem.
	return ExecList{}, fmt.Errorf("read exec hosts: %s", strings.Join(errs, "; "))
}

func readList(ctx context.Context, conn Connector, host, cmd, group string) (ExecList, error) {
	ctx, cancel := context.WithTimeout(ctx, qconfTimeout+readTimeout)
	defer cancel()
	t, err := conn.Target(ctx, host)
	if err != nil {
		return ExecList{}, errors.New(short(err))
	}
	out, err := t.Query(ctx, cmd, nil)
	if err != nil {
		return ExecList{}, errors.New(short(err))
	}
	if out.ExitCode != 0 {
		msg := strings.TrimSpace(out.Stderr)
		if msg == "" {
			msg = fmt.Sprintf("exit %d", out.ExitCode)
		}
		first, _, _ := strings.Cut(msg, "\n")
		return ExecList{}, fmt.Errorf("qconf: %s", strings.TrimSpace(first))
	}
	sel, grp, _ := strings.Cut(out.Stdout, "\n--\n")
	l := ExecList{Hostgroup: group, Source: "qconf -sel on " + host, Hosts: []string{}}
	hosts := strings.Fields(sel)
	if group != "" {
		l.Source += ", qconf -shgrp_resolved " + group
		in := map[string]bool{}
		for _, g := range strings.Fields(grp) {
			in[strings.ToLower(g)] = true
		}
		hosts = slices.DeleteFunc(hosts, func(h string) bool { return !in[strings.ToLower(h)] })
	}
	l.Hosts = append(l.Hosts, hosts...)
	return l, nil
}

// Diff lists the names in now that are not in before (added) and the
// names in before that are not in now (removed), without regard to case.
func Diff(before, now []string) (added, removed []string) {
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, h := range s {
			m[strings.ToLower(h)] = true
		}
		return m
	}
	b, n := in(before), in(now)
	for _, h := range now {
		if !b[strings.ToLower(h)] {
			added = append(added, h)
		}
	}
	for _, h := range before {
		if !n[strings.ToLower(h)] {
			removed = append(removed, h)
		}
	}
	return added, removed
}

// Readers orders the hosts to read SGE's lists on: the active head, then
// the other head. (Each waits on qconf when no qmaster answers, so no more
// hosts are asked.)
func Readers(inv *inventory.Inventory, active string) []string {
	var out []string
	if a, ok := inv.IsHead(active); ok {
		out = append(out, a)
	}
	for _, h := range inv.Heads {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}
