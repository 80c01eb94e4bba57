package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// lockFileSpec takes a lock file on a (shared) filesystem: the holder's line
// is written to a temp file beside it, which is then hard-linked to the
// lock's path (lockCommand). link(2) fails when the lock exists, also over
// NFS, so the lock appears with its holder or not at all: no run ever
// reads an empty lock another is still writing. Its undo
// removes the lock, and only while it still holds this holder's line, so
// that undoing a failed attempt never removes another run's lock. The undo
// is journaled before the lock is taken.
type lockFileSpec struct {
	Path   string `yaml:"path"`
	Holder string `yaml:"holder"`
	// Force takes the lock over when another holder left it; the previous
	// content is kept for the undo and in the journal.
	Force bool `yaml:"force"`
}

func (s *lockFileSpec) Mutates() bool { return true }

func (s *lockFileSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	res := Result{Data: map[string]any{"path": s.Path, "previous": ""}}
	old, err := t.ReadFile(ctx, s.Path)
	if err != nil {
		return res, fmt.Errorf("read lock %s: %w", s.Path, err)
	}
	if old.Exists {
		prev := strings.TrimSpace(string(old.Data))
		res.Data["previous"] = prev
		if prev == strings.TrimSpace(s.Holder) {
			// A resumed run checking its own lock again: it holds it, and
			// the undo journaled when it was taken still stands.
			res.Data["held_by_this_run"] = true
			return res, nil
		}
		if !s.Force {
			return res, fmt.Errorf("%w: lock %s on %s is held: %s (undo or finish that run first: sgerun rollback/resume, or --force)",
				ErrRefused, s.Path, t.Name(), prev)
		}
		undo := restoreRecord(s.Path, old)
		if err := env.prepare(undo); err != nil {
			return res, err
		}
		if err := t.WriteFile(ctx, s.Path, target.File{Data: []byte(s.Holder + "\n"), Mode: old.Mode, UID: old.UID, GID: old.GID}); err != nil {
			return res, fmt.Errorf("take over lock %s: %w", s.Path, err)
		}
		res.Changed, res.Undo = true, undo
		return res, nil
	}
	undo := unlockRecord(s.Path, s.Holder)
	if err := env.prepare(undo); err != nil {
		return res, err
	}
	out, err := t.Exec(ctx, lockCommand(s.Path, s.Holder), nil)
	res.Output = out
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("%w: could not take lock %s on %s (taken meanwhile?)%s", ErrRefused, s.Path, t.Name(), lastLine(out.Stderr))
	}
	res.Changed, res.Undo = true, undo
	return res, nil
}

// lockCommand writes holder's line to a temp file beside path and links it
// to path; it exits non-zero, with ln's message, when path exists.
func lockCommand(path, holder string) string {
	return "p=" + shell.Quote(path) + `; t=$(mktemp "$p.tmp.XXXXXX") || exit 2; ` +
		"printf '%s\\n' " + shell.Quote(holder) + ` > "$t" && chmod 0644 "$t" && ln "$t" "$p"; rc=$?; rm -f "$t"; exit $rc`
}

func unlockRecord(path, holder string) *target.UndoRecord {
	return &target.UndoRecord{Kind: "unlock_file", Params: map[string]any{"path": path, "holder": holder}}
}

// unlockFileSpec is lock_file's undo: remove the lock file while it holds
// Holder; a lock another run holds is left alone.
type unlockFileSpec struct {
	Path   string `yaml:"path"`
	Holder string `yaml:"holder"`
}

func (s *unlockFileSpec) Mutates() bool { return true }

func (s *unlockFileSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	res := Result{Data: map[string]any{"path": s.Path}}
	cur, err := t.ReadFile(ctx, s.Path)
	if err != nil {
		return res, fmt.Errorf("read lock %s: %w", s.Path, err)
	}
	if !cur.Exists {
		return res, nil
	}
	if strings.TrimSpace(string(cur.Data)) != strings.TrimSpace(s.Holder) {
		res.Data["left"] = "held by another: " + strings.TrimSpace(string(cur.Data))
		return res, nil
	}
	out, err := t.Exec(ctx, "rm -f -- "+shell.Quote(s.Path), nil)
	res.Output, res.Changed = out, true
	if err == nil && out.ExitCode != 0 {
		err = fmt.Errorf("remove lock %s: exit %d%s", s.Path, out.ExitCode, lastLine(out.Stderr))
	}
	return res, err
}

func lockFileKind() Kind {
	return Kind{
		Name:     "lock_file",
		Recheck:  true,
		Doc:      "take a lock file (a temp file hard-linked into place, safe on NFS); refused (exit 3) when held by another run; undo removes it",
		DataKeys: []string{"path", "previous", "held_by_this_run"},
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

func unlockFileKind() Kind {
	return Kind{
		Name:     "unlock_file",
		Doc:      "undo of lock_file: remove the lock while it holds this run's holder line",
		UndoOnly: true,
		New: func(n *yaml.Node) (Spec, error) {
			s := &unlockFileSpec{}
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
