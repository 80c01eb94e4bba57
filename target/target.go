// Package target is where steps run: the Target interface a step sees, and
// the executors behind it. Remote runs on an inventory host over one
// pooled SSH connection (package sshexec), Local on the controller, and
// Dry wraps either for --dry-run: reads go through, mutations are recorded
// as plan lines. Steps see only Target; they never talk SSH themselves.
package target

import (
	"context"
	"fmt"
	"io/fs"
)

// Controller is the host name of steps that run on the controller.
const Controller = "controller"

// Output is what one command produced. Stdout and Stderr may be capped; the
// byte counts are the full sizes.
type Output struct {
	Cmd         string `json:"cmd,omitempty"`
	Stdout      string `json:"stdout,omitempty"`
	Stderr      string `json:"stderr,omitempty"`
	StdoutBytes int64  `json:"stdout_bytes,omitempty"`
	StderrBytes int64  `json:"stderr_bytes,omitempty"`
	ExitCode    int    `json:"exit_code"`
}

// File is a remote file's content with its metadata.
type File struct {
	Data   []byte      `json:"data"`
	Mode   fs.FileMode `json:"mode"`
	UID    int         `json:"uid"`
	GID    int         `json:"gid"`
	Exists bool        `json:"exists"`
}

// Target is one host as a step sees it. Query and ReadFile only read and
// run for real in a dry run; Exec and WriteFile change the host and are
// recorded instead of performed in a dry run (see Dry). On a real host
// Query and Exec run a command the same way: the difference is the
// promise the caller makes, which decides what a dry run does with it.
type Target interface {
	Name() string
	// Query runs a read-only shell command. A non-zero exit is not an error:
	// it is reported in Output.ExitCode. Errors are transport failures.
	Query(ctx context.Context, cmd string, stdin []byte) (Output, error)
	// Exec runs a shell command that changes the host, with Query's
	// error rules.
	Exec(ctx context.Context, cmd string, stdin []byte) (Output, error)
	// ReadFile returns the file; a missing file gives File{Exists: false}
	// and no error.
	ReadFile(ctx context.Context, path string) (File, error)
	// WriteFile replaces path atomically (temp file + rename) with f's data,
	// mode and owner.
	WriteFile(ctx context.Context, path string, f File) error
}

// UndoRecord says how to revert what a step did on one host: a step kind
// and its parameters. It is stored in the journal, so that `sgerun
// rollback` can replay it later.
type UndoRecord struct {
	Kind   string         `json:"kind"`
	Params map[string]any `json:"params"`
}

// Connector hands out the targets steps run on.
type Connector interface {
	// Target returns the target for an inventory host; one connection per
	// host for the connector's life.
	Target(ctx context.Context, host string) (Target, error)
	// Local returns the controller.
	Local() Target
	// Reach checks that a host answers SSH from the controller.
	Reach(ctx context.Context, host string) error
}

// AddressConnector is an optional ability of a Connector: reach a host on
// another address than its own (a fence network).
type AddressConnector interface {
	TargetAt(ctx context.Context, host, address string) (Target, error)
}

// Connect returns c's target for host, reached at address when one is
// given (a fence network) and c can (AddressConnector).
func Connect(ctx context.Context, c Connector, host, address string) (Target, error) {
	if address == "" {
		return c.Target(ctx, host)
	}
	ac, ok := c.(AddressConnector)
	if !ok {
		return nil, fmt.Errorf("connect %s at %s: not supported by this connector", host, address)
	}
	return ac.TargetAt(ctx, host, address)
}
