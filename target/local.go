package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sgerun/sgerun/sshexec"
)

// Local is the local executor: it runs commands on the controller itself
// with sh -c.
type Local struct {
	// Cap bounds kept output per stream.
	Cap int
	// Environ is added to the environment of every command, as
	// "KEY=value" strings.
	Environ []string
}

// Name is the controller's host name in runbooks.
func (t *Local) Name() string { return Controller }

// Query runs a read-only command with sh -c, as Exec does: whether a
// command changes the host is the caller's promise (see Target).
func (t *Local) Query(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	return t.run(ctx, cmd, stdin)
}

// Exec runs a command that changes the controller with sh -c.
func (t *Local) Exec(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	return t.run(ctx, cmd, stdin)
}

func (t *Local) run(ctx context.Context, cmd string, stdin []byte) (Output, error) {
	capn := t.Cap
	if capn == 0 {
		capn = DefaultOutputCap
	}
	stdout, stderr := sshexec.NewCappedBuffer(capn), sshexec.NewCappedBuffer(capn)
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), t.Environ...)
	c.Stdout, c.Stderr = stdout, stderr
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := Output{Cmd: cmd}
	if err := c.Start(); err != nil {
		return out, fmt.Errorf("start local command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// Kill the whole process group: cancellation reaches children too.
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(2 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			err = <-done
		}
		err = fmt.Errorf("local command: %w", ctx.Err())
	}
	out.Stdout, out.Stderr = stdout.String(), stderr.String()
	out.StdoutBytes, out.StderrBytes = stdout.Total(), stderr.Total()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		out.ExitCode = ee.ExitCode()
		if out.ExitCode < 0 {
			out.ExitCode = 128
		}
		return out, nil
	}
	return out, err
}

// ReadFile reads a local file.
func (t *Local) ReadFile(_ context.Context, path string) (File, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return File{}, nil
	}
	if err != nil {
		return File{}, fmt.Errorf("stat %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", path, err)
	}
	f := File{Data: data, Mode: fi.Mode().Perm(), UID: -1, GID: -1, Exists: true}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		f.UID, f.GID = int(st.Uid), int(st.Gid)
	}
	return f, nil
}

// WriteFile replaces a local file atomically, keeping mode and owner.
func (t *Local) WriteFile(_ context.Context, path string, f File) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".sgerun-tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(f.Data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	err = errors.Join(werr, serr, cerr, os.Chmod(name, f.Mode.Perm()))
	if err == nil && (f.UID >= 0 || f.GID >= 0) {
		err = os.Lchown(name, f.UID, f.GID)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
