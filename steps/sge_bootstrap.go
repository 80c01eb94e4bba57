package steps

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/target"
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

func (s *sgeBootstrapSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	p := cellCommon(s.SGERoot, s.SGECell) + "/bootstrap"
	f, err := t.ReadFile(ctx, p)
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", p, err)
	}
	if !f.Exists {
		return Result{}, fmt.Errorf("%s does not exist on %s", p, t.Name())
	}
	text := string(f.Data)
	b := sge.ParseBootstrap(text)
	dir := sge.RecordDir(s.SharedDir, b)
	res := Result{Output: target.Output{Cmd: "read " + p, Stdout: text, StdoutBytes: int64(len(text))}, Data: map[string]any{
		"spooling_method":    b.SpoolingMethod,
		"spooling_params":    b.SpoolingParams,
		"qmaster_spool_dir":  b.QmasterSpoolDir,
		"spool_dir":          b.SpoolDir(),
		"record_dir":         dir,
		"lock_file":          dir + "/" + sge.LockFile,
		"antiflap_file":      dir + "/" + sge.AntiflapFile,
		"pending_fence_file": dir + "/" + sge.PendingFenceFile,
	}}
	if s.Copyable {
		if err := copyable(b); err != nil {
			return res, fmt.Errorf("%w: %s", ErrRefused, err)
		}
	}
	if !path.IsAbs(dir) {
		// the lock and the records must be on the directory both heads
		// share, never relative to a login's home or at /
		return res, fmt.Errorf("%w: no directory for sgerun's records: cluster.shared_dir is not set and bootstrap's qmaster_spool_dir %q is not an absolute path", ErrRefused, b.QmasterSpoolDir)
	}
	return res, nil
}

// copyable says why sgerun cannot copy the spool b names, or nil.
func copyable(b sge.Bootstrap) error {
	if (b.SpoolingMethod != "berkeleydb" && b.SpoolingMethod != "classic") || !path.IsAbs(b.SpoolDir()) || !path.IsAbs(b.QmasterSpoolDir) {
		return fmt.Errorf("sgerun copies local spools, Berkeley DB (spooling_params an absolute path) or classic "+
			"(spooling_params \"<common dir>;<spool dir>\", absolute paths); this bootstrap uses something else, such as a BDB RPC server "+
			"(spooling_method %q, spooling_params %q, qmaster_spool_dir %q)", b.SpoolingMethod, b.SpoolingParams, b.QmasterSpoolDir)
	}
	return nil
}

// cellCommon is $SGE_ROOT/$SGE_CELL/common.
func cellCommon(root, cell string) string {
	return sge.Cell{Root: strings.TrimRight(root, "/"), Name: cell}.Common()
}

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
