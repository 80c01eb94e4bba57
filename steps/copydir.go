package steps

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// copyDirSpec copies a directory tree to a new path with cp -a and verifies
// the copy.
type copyDirSpec struct {
	Src string `yaml:"src"`
	Dst string `yaml:"dst"`
	// Ignore lists glob patterns (matched against the relative path and the
	// base name) whose sizes may differ between source and copy, such as a
	// live qmaster's growing messages file. Their presence is still checked.
	Ignore []string `yaml:"ignore"`
	// Drop lists glob patterns of entries left out of the copy (removed
	// from it right after cp), such as the old qmaster's qmaster.pid,
	// heartbeat and lock: a new qmaster must not find them.
	Drop []string `yaml:"drop"`
	// BDB copies a Berkeley DB environment the way db_hotbackup does:
	// every data file first, then the log files, never the __db.*
	// region files, so that catastrophic recovery of the copy
	// (db_recover -c) finds every log record the data files may need,
	// even when a process still wrote to the environment.
	BDB bool `yaml:"bdb"`
	// Live says the source may still be written (an unfenced master): the
	// file list is checked, sizes are not.
	Live bool `yaml:"live"`
}

func (s *copyDirSpec) Mutates() bool { return true }

// Do copies the tree and verifies the copy.
func (s *copyDirSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	return s.copy(ctx, t, env, true)
}

// Plan records the copy; there is no copy to verify in a dry run.
func (s *copyDirSpec) Plan(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	return s.copy(ctx, t, env, false)
}

func (s *copyDirSpec) copy(ctx context.Context, t target.Target, env Runtime, verify bool) (Result, error) {
	res := Result{Data: map[string]any{"src": s.Src, "dst": s.Dst, "files": 0, "bytes": 0}}
	out, err := t.Query(ctx, "test -d "+shell.Quote(s.Src), nil)
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("source %s is not a directory on %s", s.Src, t.Name())
	}
	out, err = t.Query(ctx, "test -e "+shell.Quote(s.Dst)+" || test -L "+shell.Quote(s.Dst), nil)
	if err != nil {
		return res, err
	}
	if out.ExitCode == 0 {
		return res, fmt.Errorf("destination %s already exists on %s; copy_dir never overwrites", s.Dst, t.Name())
	}
	// dst did not exist: removing it undoes the copy, whole or partial.
	undo := &target.UndoRecord{Kind: "remove_dir", Params: map[string]any{"path": s.Dst}}
	if err := env.prepare(undo); err != nil {
		return res, err
	}
	res.Undo = undo
	out, err = t.Exec(ctx, s.copyCmd(), nil)
	res.Output = out
	if err != nil {
		return res, err
	}
	if out.ExitCode != 0 {
		return res, fmt.Errorf("copy %s: exit status %d%s", s.Src, out.ExitCode, lastLine(out.Stderr))
	}
	res.Changed = true
	if !verify {
		return res, nil
	}
	src, err := listTree(ctx, t, s.Src)
	if err != nil {
		return res, err
	}
	dst, err := listTree(ctx, t, s.Dst)
	if err != nil {
		return res, err
	}
	drop := s.Drop
	if s.BDB {
		drop = append(slices.Clone(drop), bdbRegions)
	}
	for p := range src {
		if ignored(p, drop) {
			delete(src, p)
		}
	}
	ignore := s.Ignore
	if s.Live {
		ignore = []string{"*"}
	}
	files, bytes, err := compareTrees(src, dst, ignore)
	res.Data["files"], res.Data["bytes"] = files, bytes
	if err != nil {
		return res, fmt.Errorf("verify copy %s: %w", s.Dst, err)
	}
	return res, nil
}

// bdbRegions matches a Berkeley DB environment's region files, which are
// rebuilt by recovery and never copied.
const bdbRegions = "__db.*"

// copyCmd is the shell command that makes the copy.
func (s *copyDirSpec) copyCmd() string {
	src, dst := shell.Quote(s.Src), shell.Quote(s.Dst)
	var b strings.Builder
	if s.BDB {
		// The directory itself with its mode and owner, then the data
		// files, then the logs (db_hotbackup's order), then anything else.
		b.WriteString("set -e; mkdir -- " + dst + "; chown --reference=" + src + " -- " + dst +
			"; chmod --reference=" + src + " -- " + dst + "; cd -- " + src +
			"; for f in * .[!.]*; do case $f in __db.*|log.*) continue;; esac; if [ -e \"$f\" ]; then cp -a -- \"$f\" " + dst + "/; fi; done" +
			"; for f in log.*; do if [ -e \"$f\" ]; then cp -a -- \"$f\" " + dst + "/; fi; done")
	} else {
		b.WriteString("cp -a -- " + src + " " + dst)
	}
	for _, p := range s.Drop {
		b.WriteString(" && (cd -- " + dst + " && rm -rf -- " + shellGlob(p) + ")")
	}
	return b.String()
}

// shellGlob quotes a glob pattern for the shell, keeping *, ? and [...]
// live.
func shellGlob(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch {
		case strings.ContainsRune("*?[]!", r):
			b.WriteRune(r)
		case r == '/' || r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteString(shell.Quote(string(r)))
		}
	}
	return b.String()
}

type entry struct {
	typ  string
	size int64
}

// listTree lists every entry below dir with its type and size (GNU find).
func listTree(ctx context.Context, t target.Target, dir string) (map[string]entry, error) {
	cmd := "cd " + shell.Quote(dir) + " && find . -mindepth 1 -printf '%P\\t%y\\t%s\\n'"
	out, err := t.Query(ctx, cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if out.ExitCode != 0 {
		return nil, fmt.Errorf("list %s: exit status %d%s", dir, out.ExitCode, lastLine(out.Stderr))
	}
	if out.StdoutBytes > int64(len(out.Stdout)) {
		return nil, fmt.Errorf("list %s: listing truncated at %d of %d bytes", dir, len(out.Stdout), out.StdoutBytes)
	}
	m := map[string]entry{}
	for _, line := range strings.Split(strings.TrimRight(out.Stdout, "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		size, _ := strconv.ParseInt(f[2], 10, 64)
		m[f[0]] = entry{typ: f[1], size: size}
	}
	return m, nil
}

func compareTrees(src, dst map[string]entry, ignore []string) (files int, bytes int64, err error) {
	var problems []string
	for p, e := range src {
		d, ok := dst[p]
		switch {
		case !ok:
			problems = append(problems, "missing "+p)
		case d.typ != e.typ:
			problems = append(problems, fmt.Sprintf("%s: type %s, want %s", p, d.typ, e.typ))
		case e.typ == "f" && d.size != e.size && !ignored(p, ignore):
			problems = append(problems, fmt.Sprintf("%s: %d bytes, want %d", p, d.size, e.size))
		}
		if e.typ == "f" {
			files++
			bytes += d.size
		}
	}
	for p := range dst {
		if _, ok := src[p]; !ok {
			problems = append(problems, "unexpected "+p)
		}
	}
	if len(problems) > 0 {
		problems = sortedCopy(problems)
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return files, bytes, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return files, bytes, nil
}

func ignored(p string, patterns []string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
		if ok, _ := path.Match(pat, path.Base(p)); ok {
			return true
		}
	}
	return false
}

func copyDirKind() Kind {
	return Kind{
		Name:     "copy_dir",
		Doc:      "cp -a a directory to a new path that must not exist (a BDB environment data files first, then logs), leave out drop patterns, then verify file list and sizes; undo removes the copy",
		DataKeys: []string{"src", "dst", "files", "bytes"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &copyDirSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkAbs(n, "src", s.Src); err != nil {
				return nil, err
			}
			if err := checkAbs(n, "dst", s.Dst); err != nil {
				return nil, err
			}
			if path.Clean(s.Src) == path.Clean(s.Dst) {
				return nil, posErr(n, "src and dst are the same path")
			}
			for _, p := range append(slices.Clone(s.Ignore), s.Drop...) {
				if _, err := path.Match(p, ""); err != nil {
					return nil, posErr(n, "bad pattern %q", p)
				}
			}
			for _, p := range s.Drop {
				if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
					return nil, posErr(n, "drop pattern %q must name entries inside the copy", p)
				}
			}
			return s, nil
		},
	}
}

// removeDirSpec removes a tree that a copy_dir created.
type removeDirSpec struct {
	Path string `yaml:"path"`
}

func (s *removeDirSpec) Mutates() bool { return true }

func (s *removeDirSpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	out, err := t.Exec(ctx, "rm -rf -- "+shell.Quote(s.Path), nil)
	if err == nil && out.ExitCode != 0 {
		err = fmt.Errorf("rm -rf %s: exit status %d%s", s.Path, out.ExitCode, lastLine(out.Stderr))
	}
	return Result{Output: out, Changed: true}, err
}

func removeDirKind() Kind {
	return Kind{
		Name:     "remove_dir",
		Doc:      "undo of copy_dir: remove the copy",
		UndoOnly: true,
		New: func(n *yaml.Node) (Spec, error) {
			s := &removeDirSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkAbs(n, "path", s.Path); err != nil {
				return nil, err
			}
			if c := path.Clean(s.Path); strings.Count(c, "/") < 2 {
				return nil, posErr(n, "refusing to remove %s: too close to /", c)
			}
			return s, nil
		},
	}
}
