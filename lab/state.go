package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sgerun/sgerun/target"
)

// stateVersion is bumped when the state file format changes.
const stateVersion = 1

// stateFile is the state file's name inside the state directory.
const stateFile = "lab.json"

// markerFile marks a directory as a lab state directory, so that teardown
// never removes a directory it did not create.
const markerFile = ".sgerun-lab"

// Addresses of the two lab networks (a /24 each); the controller is .1,
// master .11, shadow .12 and exec host i is .20+i on both.
const (
	schedNet = "10.71.0"
	fileNet  = "10.72.0"
)

// state is what the state file records about an instance.
type state struct {
	Version  int    `json:"version"`
	Name     string `json:"name"`
	StateDir string `json:"state_dir"`
	SGERoot  string `json:"sge_root"`
	Cell     string `json:"sge_cell"`
	User     string `json:"user"`
	// FenceCommand goes into the inventory's cluster.fence_command.
	FenceCommand string `json:"fence_command,omitempty"`
	// Spooling is bootstrap's spooling_method.
	Spooling string `json:"spooling,omitempty"`
	// LocalCommon: every SGE host has its own common/ (Config.LocalCommon).
	LocalCommon bool        `json:"local_common,omitempty"`
	Hosts       []hostState `json:"hosts"`
}

// hostState is a Host plus its running init.
type hostState struct {
	Host
	// InitPID is the root-namespace pid of the host's init (PID 1 of the
	// host's PID namespace); 0 when the host is down.
	InitPID int `json:"init_pid"`
}

// newState lays out a fresh instance.
func newState(cfg Config) state {
	st := state{
		Version:      stateVersion,
		Name:         cfg.Name,
		StateDir:     cfg.StateDir,
		SGERoot:      filepath.Join(cfg.StateDir, "sge"),
		Cell:         cfg.Name,
		User:         "sgeuser",
		FenceCommand: cfg.FenceCommand,
		Spooling:     cfg.Spooling,
		LocalCommon:  cfg.LocalCommon,
	}
	add := func(short string, role Role, octet int) {
		st.Hosts = append(st.Hosts, hostState{Host: Host{
			Name:      cfg.Name + "-" + short,
			Short:     short,
			Role:      role,
			SchedAddr: schedNet + "." + strconv.Itoa(octet),
			FileAddr:  fileNet + "." + strconv.Itoa(octet),
		}})
	}
	add("master", RoleMaster, 11)
	add("shadow", RoleShadow, 12)
	for i := 1; i <= cfg.ExecHosts; i++ {
		add("exec"+strconv.Itoa(i), RoleExec, 20+i)
	}
	return st
}

// readState loads the state file from dir.
func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("%w: no %s in %s", ErrNotFound, stateFile, dir)
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("parse state %s: %w", dir, err)
	}
	if st.Version != stateVersion {
		return st, fmt.Errorf("state %s: version %d, want %d", dir, st.Version, stateVersion)
	}
	if !nameRE.MatchString(st.Name) {
		return st, fmt.Errorf("state %s: bad name %q", dir, st.Name)
	}
	return st, nil
}

// writeState replaces the state file atomically.
func writeState(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(filepath.Join(st.StateDir, stateFile), append(b, '\n'), 0o644)
}

// writeFileAtomic replaces a local file atomically (temp file, fsync,
// rename) with the controller's target, as a runbook's local steps do.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	var t target.Local
	return t.WriteFile(context.Background(), path, target.File{Data: data, Mode: mode, UID: -1, GID: -1})
}
