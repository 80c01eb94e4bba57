package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/sgerun/sgerun/shell"
	"go.yaml.in/yaml/v3"
)

// lockFileSpec takes a lock file on a (shared) filesystem with O_EXCL
// semantics (the shell's noclobber), as sge_shadowd takes its lock. Its undo
// removes the lock.
type lockFileSpec struct {
	Path   string `yaml:"path"`
	Holder string `yaml:"holder"`
	// Force takes the lock over when another holder left it; the previous
	// content is kept for the undo and in the journal.
	Force bool `yaml:"force"`
}

func (s *lockFileSpec) Mutates() bool { return true }

func (s *lockFileSpec) Do(ctx context.Context, t Target, _ Env) (Result, error) {
	res := Result{Data: map[string]any{"path": s.Path, "previous": ""}}
	old, err := t.ReadFile(ctx, s.Path)
	if err != nil {
		return res, fmt.Errorf("read lock %s: %w", s.Path, err)
	}
	if old.Exists {
		res.Data["previous"] = strings.TrimSpace(string(old.Data))
		if !s.Force {
			return res, fmt.Errorf("%w: lock %s on %s is held: %s (undo or finish that run first: sgerun rollback/resume, or --force)",
				ErrRefused, s.Path, t.Name(), strings.TrimSpace(string(old.Data)))
		}
		if err := t.WriteFile(ctx, s.Path, File{Data: []byte(s.Holder + "\n"), Mode: old.Mode, UID: old.UID, GID: old.GID}); err != nil {
			return res, fmt.Errorf("take over lock %s: %w", s.Path, err)
		}
		res.Changed, res.Undo = true, restoreRecord(s.Path, old)
		return res, nil
	}
	cmd := "set -C && umask 022 && printf '%s\\n' " + shell.Quote(s.Holder) + " > " + shell.Quote(s.Path)
	out, err := t.Exec(ctx, cmd, nil)
	res.Output = out
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("%w: could not take lock %s on %s (taken meanwhile?)%s", ErrRefused, s.Path, t.Name(), lastLine(out.Stderr))
	}
	res.Changed, res.Undo = true, restoreRecord(s.Path, File{})
	return res, nil
}

func lockFileKind() Kind {
	return Kind{
		Name:     "lock_file",
		Doc:      "take a lock file with O_EXCL semantics (shared filesystem); refused (exit 3) when held; undo removes it",
		DataKeys: []string{"path", "previous"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &lockFileSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkAbs(n, "path", s.Path); err != nil {
				return nil, err
			}
			return s, require(n, "holder", s.Holder)
		},
	}
}
