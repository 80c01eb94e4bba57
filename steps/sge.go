package steps

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/sgerun/sgerun/shell"
)

// SGEEnv returns a POSIX sh prelude that sets SGE_ROOT and SGE_CELL and
// puts the cell's binaries on PATH the way a site has them: the cell's
// settings.sh when present, else bootstrap's binary_path with the
// architecture from $SGE_ROOT/util/arch, else $SGE_ROOT/bin/<arch>. It
// assumes no distribution layout.
func SGEEnv(root, cell string) string {
	return "SGE_ROOT=" + shell.Quote(root) + "; SGE_CELL=" + shell.Quote(cell) + "; export SGE_ROOT SGE_CELL; " +
		`if [ -r "$SGE_ROOT/$SGE_CELL/common/settings.sh" ]; then . "$SGE_ROOT/$SGE_CELL/common/settings.sh" >/dev/null 2>&1; fi; ` +
		`sge_arch=$("$SGE_ROOT/util/arch" 2>/dev/null); ` +
		`sge_bp=$(awk '$1=="binary_path"{print $2}' "$SGE_ROOT/$SGE_CELL/common/bootstrap" 2>/dev/null); ` +
		`PATH="${sge_bp:+$sge_bp/$sge_arch:$sge_bp:}$SGE_ROOT/bin/$sge_arch:$PATH:/usr/sbin:/sbin"; export PATH; `
}

var qpingStatusRE = regexp.MustCompile(`(?m)^\s*status:\s*(\d+)\s*$`)

// ParseQping returns the status of a `qping -info` reply, or -1 when the
// output holds no reply; an indented status line counts too. qping exits 1 for every error, so its exit code
// alone cannot tell a warning from a dead master; the status line can:
// 0 ok, 1 and 2 thread warnings or timeouts, 3 not initialised.
func ParseQping(out string) int {
	m := qpingStatusRE.FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// qpingCmd asks host's qmaster for its status.
func qpingCmd(root, cell, host string, port int) string {
	return SGEEnv(root, cell) + "qping -info " + shell.Quote(host) + " " + strconv.Itoa(port) + " qmaster 1 2>&1"
}

// splitList splits a comma- or space-separated host list.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
}

// BootstrapValue returns the value of key in "key<spaces>value" text such
// as SGE's bootstrap (the rest of the line, trimmed); "" when absent.
func BootstrapValue(bootstrap, key string) string {
	for _, line := range strings.Split(bootstrap, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), key))
		}
	}
	return ""
}

// SpoolDir returns the directory that holds a cell's spooled state, from
// its bootstrap text: spooling_params for Berkeley DB spooling, the part
// after ";" of spooling_params ("<common dir>;<spool dir>") for classic
// spooling.
func SpoolDir(bootstrap string) string {
	p := BootstrapValue(bootstrap, "spooling_params")
	if BootstrapValue(bootstrap, "spooling_method") == "classic" {
		if i := strings.LastIndexByte(p, ';'); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}

// Respool returns bootstrap's spooling_params with its spool directory
// (SpoolDir) replaced by dir; a classic common dir is kept.
func Respool(bootstrap, dir string) string {
	p := BootstrapValue(bootstrap, "spooling_params")
	if BootstrapValue(bootstrap, "spooling_method") == "classic" {
		if i := strings.LastIndexByte(p, ';'); i >= 0 {
			return p[:i+1] + dir
		}
	}
	return dir
}
