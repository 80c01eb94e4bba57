package steps

import (
	"context"
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sgeBootstrapSpec reads a cell's bootstrap file and names what a takeover
// takes from it: the spool paths, the spooling method and the paths of
// sgerun's own record files beside the spool. With Copyable it refuses a
// spool sgerun cannot copy.
type sgeBootstrapSpec struct {
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
	// SharedDir is the inventory's cluster.shared_dir: where the record
	// files live; default the directory holding qmaster_spool_dir.
	SharedDir string `yaml:"shared_dir"`
	// Copyable requires a local spool: Berkeley DB (spooling_params a
	// directory) or classic ("<common dir>;<spool dir>"), absolute paths.
	Copyable bool `yaml:"copyable"`
}

func (s *sgeBootstrapSpec) Mutates() bool { return false }

func (s *sgeBootstrapSpec) Do(ctx context.Context, t Target, _ Env) (Result, error) {
	p := cellCommon(s.SGERoot, s.SGECell) + "/bootstrap"
	f, err := t.ReadFile(ctx, p)
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", p, err)
	}
	if !f.Exists {
		return Result{}, fmt.Errorf("%s does not exist on %s", p, t.Name())
	}
	text := string(f.Data)
	b := readBootstrap(text)
	dir := s.SharedDir
	if dir == "" {
		dir = path.Dir(b.qmasterSpoolDir)
	}
	res := Result{Output: Output{Cmd: "read " + p, Stdout: text, StdoutBytes: int64(len(text))}, Data: map[string]any{
		"spooling_method":    b.method,
		"spooling_params":    b.params,
		"qmaster_spool_dir":  b.qmasterSpoolDir,
		"spool_dir":          b.spoolDir,
		"record_dir":         dir,
		"lock_file":          dir + "/" + lockFileName,
		"antiflap_file":      dir + "/" + antiflapFileName,
		"pending_fence_file": dir + "/" + pendingFenceFileName,
	}}
	if s.Copyable {
		if err := b.copyable(); err != nil {
			return res, fmt.Errorf("%w: %s", ErrRefused, err)
		}
	}
	return res, nil
}

// bootstrapInfo is what sgerun reads from a bootstrap file.
type bootstrapInfo struct {
	text, method, params, qmasterSpoolDir, spoolDir string
}

func readBootstrap(text string) bootstrapInfo {
	return bootstrapInfo{text: text, method: BootstrapValue(text, "spooling_method"), params: BootstrapValue(text, "spooling_params"),
		qmasterSpoolDir: BootstrapValue(text, "qmaster_spool_dir"), spoolDir: SpoolDir(text)}
}

// respool returns spooling_params naming dir as the spool directory.
func (b bootstrapInfo) respool(dir string) string { return Respool(b.text, dir) }

// copyable says why sgerun cannot copy this spool, or nil.
func (b bootstrapInfo) copyable() error {
	if (b.method != "berkeleydb" && b.method != "classic") || !path.IsAbs(b.spoolDir) || !path.IsAbs(b.qmasterSpoolDir) {
		return fmt.Errorf("sgerun copies local spools, Berkeley DB (spooling_params an absolute path) or classic "+
			"(spooling_params \"<common dir>;<spool dir>\", absolute paths); this bootstrap uses something else, such as a BDB RPC server "+
			"(spooling_method %q, spooling_params %q, qmaster_spool_dir %q)", b.method, b.params, b.qmasterSpoolDir)
	}
	return nil
}

// The record files sgerun keeps beside the spool.
const (
	lockFileName         = ".sgerun-takeover.lock"
	antiflapFileName     = ".sgerun-last-takeover.json"
	pendingFenceFileName = ".sgerun-pending-fence.json"
)

// cellCommon is $SGE_ROOT/$SGE_CELL/common.
func cellCommon(root, cell string) string { return strings.TrimRight(root, "/") + "/" + cell + "/common" }

// checkCell checks the sge_root and sge_cell parameters.
func checkCell(n *yaml.Node, root, cell string) error {
	if err := checkAbs(n, "sge_root", root); err != nil {
		return err
	}
	if err := require(n, "sge_cell", cell); err != nil {
		return err
	}
	if strings.ContainsAny(cell, "/\x00\n") {
		return posErr(n, "sge_cell %q must be a plain name", cell)
	}
	return nil
}

func sgeBootstrapKind() Kind {
	return Kind{
		Name: "sge_bootstrap",
		Doc:  "read the cell's bootstrap: spool paths and method, and the paths of sgerun's records beside the spool (lock, anti-flap, pending fence); copyable: true refuses (exit 3) a spool sgerun cannot copy",
		DataKeys: []string{"spooling_method", "spooling_params", "qmaster_spool_dir", "spool_dir",
			"record_dir", "lock_file", "antiflap_file", "pending_fence_file"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeBootstrapSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkCell(n, s.SGERoot, s.SGECell); err != nil {
				return nil, err
			}
			if s.SharedDir != "" {
				if err := checkAbs(n, "shared_dir", s.SharedDir); err != nil {
					return nil, err
				}
			}
			return s, nil
		},
	}
}
