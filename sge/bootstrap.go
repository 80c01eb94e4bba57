package sge

import (
	"path"
	"strings"
)

// Bootstrap is a cell's bootstrap file, parsed. The named fields are the
// keys sgerun reads; Value returns any other.
type Bootstrap struct {
	SpoolingMethod  string // spooling_method: berkeleydb or classic
	SpoolingParams  string // spooling_params
	QmasterSpoolDir string // qmaster_spool_dir
	BinaryPath      string // binary_path
	AdminUser       string // admin_user
	text            string
}

// ParseBootstrap parses bootstrap text ("key<spaces>value" lines). It
// never fails: a missing key reads as "".
func ParseBootstrap(text string) Bootstrap {
	b := Bootstrap{text: text}
	b.SpoolingMethod = b.Value("spooling_method")
	b.SpoolingParams = b.Value("spooling_params")
	b.QmasterSpoolDir = b.Value("qmaster_spool_dir")
	b.BinaryPath = b.Value("binary_path")
	b.AdminUser = b.Value("admin_user")
	return b
}

// Value returns the value of key: the rest of its first line, trimmed; ""
// when absent.
func (b Bootstrap) Value(key string) string {
	for _, line := range strings.Split(b.text, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), key))
		}
	}
	return ""
}

// classic reports whether the cell spools in flat files.
func (b Bootstrap) classic() bool { return b.SpoolingMethod == "classic" }

// SpoolDir returns the directory that holds the cell's spooled state:
// spooling_params for Berkeley DB spooling, the part after ";" of
// spooling_params ("<common dir>;<spool dir>") for classic spooling.
func (b Bootstrap) SpoolDir() string {
	p := b.SpoolingParams
	if b.classic() {
		if i := strings.LastIndexByte(p, ';'); i >= 0 {
			return p[i+1:]
		}
	}
	return p
}

// Respool returns spooling_params with its spool directory (SpoolDir)
// replaced by dir; a classic common dir is kept.
func (b Bootstrap) Respool(dir string) string {
	p := b.SpoolingParams
	if b.classic() {
		if i := strings.LastIndexByte(p, ';'); i >= 0 {
			return p[:i+1] + dir
		}
	}
	return dir
}

// RecordDir returns the directory of sgerun's record files (LockFile,
// AntiflapFile, PendingFenceFile): sharedDir (the inventory's
// cluster.shared_dir) when set, else the directory holding
// qmaster_spool_dir; "" when neither is known.
func RecordDir(sharedDir string, b Bootstrap) string {
	switch {
	case sharedDir != "":
		return sharedDir
	case b.QmasterSpoolDir != "":
		return path.Dir(b.QmasterSpoolDir)
	}
	return ""
}
