// Package sge is what sgerun knows about a Grid Engine cell: the paths of a
// cell's common directory, its bootstrap file, the one parser of qping's
// reply, the sh prelude that puts the cell's commands on PATH, and the names
// of the record files sgerun keeps beside the spool. It imports nothing of
// sgerun's but package shell, so that every other package may use it.
package sge

import (
	"strconv"
	"strings"
	"time"

	"github.com/sgerun/sgerun/shell"
)

// The record files sgerun keeps in the shared directory (see RecordDir).
const (
	// LockFile is the takeover lock (lock_file/unlock_file).
	LockFile = ".sgerun-takeover.lock"
	// AntiflapFile records the last takeover, read by the gate's
	// anti-flap rule.
	AntiflapFile = ".sgerun-last-takeover.json"
	// PendingFenceFile records a fence that could not be done yet.
	PendingFenceFile = ".sgerun-pending-fence.json"
)

// AutostartRecordSh is, as sh text, the record a fence leaves on the host
// it fenced, in sgerun's state directory on that host as sgerun finds it
// there ($SGERUN_STATE_DIR, else /var/lib/sgerun): one line "systemd
// UNIT", "sysv NAME" or "chkconfig NAME" for each autostart of
// sge_qmaster or sge_shadowd that the fence turned off. A takeback turns
// exactly those on again and removes it.
const AutostartRecordSh = `"${SGERUN_STATE_DIR:-/var/lib/sgerun}/fenced-autostart"`

// Cell names one SGE cell: $SGE_ROOT and $SGE_CELL.
type Cell struct {
	Root string
	Name string
}

// Common returns the cell's common directory, $SGE_ROOT/$SGE_CELL/common.
func (c Cell) Common() string { return c.Root + "/" + c.Name + "/common" }

// BootstrapPath returns the path of the cell's bootstrap file.
func (c Cell) BootstrapPath() string { return c.Common() + "/bootstrap" }

// ActQmasterPath returns the path of the cell's act_qmaster file.
func (c Cell) ActQmasterPath() string { return c.Common() + "/act_qmaster" }

// Env returns a POSIX sh prelude that sets SGE_ROOT and SGE_CELL and puts
// the cell's binaries on PATH the way a site has them: the cell's
// settings.sh when present, else bootstrap's binary_path with the
// architecture from $SGE_ROOT/util/arch, else $SGE_ROOT/bin/<arch>. It
// assumes no distribution layout. It ends in "; " so that a command can
// follow.
func Env(root, cell string) string {
	return "SGE_ROOT=" + shell.Quote(root) + "; SGE_CELL=" + shell.Quote(cell) + "; export SGE_ROOT SGE_CELL; " +
		`if [ -r "$SGE_ROOT/$SGE_CELL/common/settings.sh" ]; then . "$SGE_ROOT/$SGE_CELL/common/settings.sh" >/dev/null 2>&1; fi; ` +
		`sge_arch=$("$SGE_ROOT/util/arch" 2>/dev/null); ` +
		`sge_bp=$(awk '$1=="binary_path"{print $2}' "$SGE_ROOT/$SGE_CELL/common/bootstrap" 2>/dev/null); ` +
		`PATH="${sge_bp:+$sge_bp/$sge_arch:$sge_bp:}$SGE_ROOT/bin/$sge_arch:$PATH:/usr/sbin:/sbin"; export PATH; `
}

// QpingInfo returns the command that asks host's qmaster on port for its
// status ("qping -info host port qmaster 1"), without the Env prelude.
func QpingInfo(host string, port int) string {
	return "qping -info " + shell.Quote(host) + " " + strconv.Itoa(port) + " qmaster 1"
}

// QpingRepliedSh defines the sh function qping_replied FILE, which
// succeeds when FILE holds a qping reply: a "status: <number>" line, as
// ParseQping reads it. Scripts that must decide on the host (retry a qping
// that got no reply) use it, so that the shell and ParseQping agree.
const QpingRepliedSh = `qping_replied() { grep -Eq '^[[:space:]]*status:[[:space:]]*[0-9]+[[:space:]]*$' "$1"; }` + "\n"

// ParseQping returns the status of a `qping -info` reply, or -1 when the
// output holds no reply. The first line that reads "status: <number>",
// indented or not, counts. qping exits 1 for every error, so its exit code
// alone cannot tell a warning from a dead master; the status line can:
// 0 ok, 1 and 2 thread warnings or timeouts, 3 not initialised.
func ParseQping(out string) int {
	for _, line := range strings.Split(out, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "status:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" || strings.TrimLeft(v, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// Defaults a cell and sgerun's policy have when the inventory names none.
// The inventory and the gate's step parameters both take them from here.
const (
	DefaultCell        = "default"
	DefaultQmasterPort = 6444
	DefaultExecdPort   = 6445
	// DefaultHeartbeatStale is the age at which qmaster's heartbeat file
	// counts as stale.
	DefaultHeartbeatStale = 90 * time.Second
	// DefaultAntiflap is the window after a takeover in which another is
	// refused (see AntiflapFile).
	DefaultAntiflap = 30 * time.Minute
)

// NotReporting returns the hosts of hosts whose `qhost` line is missing
// from qhost's output or shows no load ("-"): exec hosts that do not
// report to the qmaster. A host matches its line by full or short name.
func NotReporting(qhost string, hosts []string) []string {
	load := map[string]string{}
	for _, line := range strings.Split(qhost, "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		short, _, _ := strings.Cut(f[0], ".")
		for _, n := range []string{f[0], short} {
			if prev, ok := load[n]; !ok || prev != "-" {
				load[n] = f[6]
			}
		}
	}
	var bad []string
	for _, h := range hosts {
		if l, ok := load[h]; !ok || l == "-" {
			bad = append(bad, h)
		}
	}
	return bad
}
