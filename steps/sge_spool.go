package steps

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/sgerun/sgerun/sge"
	"github.com/sgerun/sgerun/shell"
	"github.com/sgerun/sgerun/target"
	"go.yaml.in/yaml/v3"
)

// sgeCopySpoolSpec copies a cell's spool to fresh stamped paths and makes
// the copy ready for a new qmaster: qmaster_spool_dir without the old
// qmaster's pid, heartbeat and shutdown lock; the spool database (a
// Berkeley DB environment in db_hotbackup's order, or a classic spool dir)
// when it lies apart from qmaster_spool_dir; file lists and sizes
// verified; a BDB copy recovered (db_recover, catastrophic with
// Catastrophic) and verified (db_verify); then the job ids of the copy
// listed, so that a later step can check that no job was lost. The undo,
// journaled before the first copy starts, removes both copies.
type sgeCopySpoolSpec struct {
	// Bootstrap is the bootstrap text the paths come from (the master's
	// spool as the shadow's bootstrap names it).
	Bootstrap string `yaml:"bootstrap"`
	// Stamp makes the copies' names: <path>.<Tag>-<Stamp>.
	Stamp string `yaml:"stamp"`
	// Tag is "sgerun" (default) or another word, such as "orig" for a
	// spool copied back by a takeback.
	Tag     string `yaml:"tag"`
	SGERoot string `yaml:"sge_root"`
	SGECell string `yaml:"sge_cell"`
	// Live says the source may still be written (an unfenced master):
	// the file lists are checked, sizes are not; recovery checks the copy.
	Live bool `yaml:"live"`
	// Catastrophic recovers a BDB copy with db_recover -c, replaying every
	// log the copy holds (a copy of a spool a qmaster was writing).
	Catastrophic bool `yaml:"catastrophic"`
}

func (s *sgeCopySpoolSpec) Mutates() bool { return true }

// Do copies, verifies, recovers and lists the jobs.
func (s *sgeCopySpoolSpec) Do(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	return s.run(ctx, t, env, true)
}

// Plan checks the sources and destinations and records the copies and the
// recovery; there is no copy to verify or list.
func (s *sgeCopySpoolSpec) Plan(ctx context.Context, t target.Target, env Runtime) (Result, error) {
	return s.run(ctx, t, env, false)
}

// spoolCopies returns the copies to make: qmaster_spool_dir first, then
// the spool database when it is a directory of its own.
func (s *sgeCopySpoolSpec) spoolCopies(b sge.Bootstrap) []copyDirSpec {
	q := copyDirSpec{Src: b.QmasterSpoolDir, Dst: stampedPath(b.QmasterSpoolDir, s.Tag, s.Stamp),
		// the old qmaster's pid, heartbeat and shutdown lock are not the
		// new one's; an unfenced master may still append to messages
		Drop: []string{"qmaster.pid", "heartbeat", "lock"}, Ignore: []string{"messages"}}
	out := []copyDirSpec{q}
	if path.Clean(b.SpoolDir()) != path.Clean(b.QmasterSpoolDir) {
		out = append(out, copyDirSpec{Src: b.SpoolDir(), Dst: stampedPath(b.SpoolDir(), s.Tag, s.Stamp),
			BDB: b.SpoolingMethod == "berkeleydb", Live: s.Live})
	}
	return out
}

func (s *sgeCopySpoolSpec) run(ctx context.Context, t target.Target, env Runtime, wet bool) (Result, error) {
	b := sge.ParseBootstrap(s.Bootstrap)
	res := Result{Data: map[string]any{"method": b.SpoolingMethod, "qmaster_spool_dir": "", "spool_dir": "",
		"spooling_params": "", "jobs": "", "files": 0, "bytes": int64(0)}}
	if err := copyable(b); err != nil {
		return res, err
	}
	copies := s.spoolCopies(b)
	dbDst := copies[len(copies)-1].Dst
	res.Data["qmaster_spool_dir"], res.Data["spool_dir"], res.Data["spooling_params"] = copies[0].Dst, dbDst, b.Respool(dbDst)
	var paths []string
	for _, c := range copies {
		if err := checkCopyEnds(ctx, t, c.Src, c.Dst); err != nil {
			return res, err
		}
		paths = append(paths, c.Dst)
	}
	// The destinations did not exist: removing them undoes the copy,
	// whole or partial.
	undo := &target.UndoRecord{Kind: "sge_remove_spool_copy", Params: map[string]any{"paths": paths}}
	if err := env.prepare(undo); err != nil {
		return res, err
	}
	res.Undo, res.Changed = undo, true
	var log []string
	files, bytes := 0, int64(0)
	for _, c := range copies {
		out, err := t.Exec(ctx, c.copyCmd(), nil)
		if err == nil && out.ExitCode != 0 {
			err = fmt.Errorf("exit status %d%s", out.ExitCode, lastLine(out.Stderr))
		}
		if err != nil {
			return res, fmt.Errorf("copy %s: %w", c.Src, err)
		}
		if !wet {
			continue
		}
		n, size, err := verifyCopy(ctx, t, c)
		if err != nil {
			return res, err
		}
		files, bytes = files+n, bytes+size
		log = append(log, fmt.Sprintf("copied %s to %s: %d files, %d bytes", c.Src, c.Dst, n, size))
	}
	res.Data["files"], res.Data["bytes"] = files, bytes
	if b.SpoolingMethod == "berkeleydb" {
		out, err := t.Exec(ctx, "sh -s", []byte(bdbRecoverScript(s.SGERoot, s.SGECell, dbDst, s.Catastrophic)))
		if err == nil && out.ExitCode != 0 {
			err = fmt.Errorf("exit status %d%s", out.ExitCode, lastLine(out.Stderr))
		}
		if err != nil {
			return res, fmt.Errorf("recover and verify the BDB copy %s: %w", dbDst, err)
		}
		log = append(log, strings.TrimSpace(out.Stdout))
	}
	if wet {
		jobs, err := s.listJobs(ctx, t, b.SpoolingMethod, dbDst)
		if err != nil {
			return res, err
		}
		res.Data["jobs"] = strings.Join(jobs, " ")
		log = append(log, fmt.Sprintf("%d job(s) in the copy: %s", len(jobs), strings.Join(jobs, " ")))
	}
	res.Stdout = strings.Join(log, "\n") + "\n"
	return res, nil
}

// checkCopyEnds makes sure src is a directory and dst does not exist.
func checkCopyEnds(ctx context.Context, t target.Target, src, dst string) error {
	out, err := t.Query(ctx, "test -d "+shell.Quote(src), nil)
	if err != nil {
		return err
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("source %s is not a directory on %s", src, t.Name())
	}
	out, err = t.Query(ctx, "test -e "+shell.Quote(dst)+" || test -L "+shell.Quote(dst), nil)
	if err != nil {
		return err
	}
	if out.ExitCode == 0 {
		return fmt.Errorf("destination %s already exists on %s; a spool copy never overwrites", dst, t.Name())
	}
	return nil
}

// verifyCopy compares the copy's file list and sizes with the source's.
func verifyCopy(ctx context.Context, t target.Target, c copyDirSpec) (int, int64, error) {
	src, err := listTree(ctx, t, c.Src)
	if err != nil {
		return 0, 0, err
	}
	dst, err := listTree(ctx, t, c.Dst)
	if err != nil {
		return 0, 0, err
	}
	drop := c.Drop
	if c.BDB {
		drop = append(slices.Clone(drop), bdbRegions)
	}
	for p := range src {
		if ignored(p, drop) {
			delete(src, p)
		}
	}
	ignore := c.Ignore
	if c.Live {
		ignore = []string{"*"}
	}
	files, bytes, err := compareTrees(src, dst, ignore)
	if err != nil {
		return files, bytes, fmt.Errorf("verify copy %s: %w", c.Dst, err)
	}
	return files, bytes, nil
}

// bdbRecoverScript recovers and verifies a copied BDB environment and
// gives it its directory's owner (qmaster runs as the admin user). The
// db tools are found under their Debian names too.
func bdbRecoverScript(root, cell, dir string, catastrophic bool) string {
	flag, what := "", "db_recover"
	if catastrophic {
		// catastrophic recovery: replay every log the copy holds
		flag, what = " -c", "db_recover -c"
	}
	return "set -e\n" + sge.Env(root, cell) + "\n" +
		"d=" + shell.Quote(dir) + "\n" +
		`tool() { for t in "$1" "db5.3_${1#db_}" "db4.8_${1#db_}"; do command -v "$t" >/dev/null 2>&1 && { echo "$t"; return 0; }; done; echo "no $1 found (install db-util)" >&2; return 1; }` + "\n" +
		`recover=$(tool db_recover); verify=$(tool db_verify)` + "\n" +
		`"$recover"` + flag + ` -h "$d"` + "\n" +
		`for f in "$d"/sge*; do [ -f "$f" ] && "$verify" -q -h "$d" "$f"; done` + "\n" +
		`chown -R "$(stat -c %u:%g "$d")" "$d"` + "\n" +
		"echo '" + what + ", db_verify: ok'\n"
}

// listJobs lists the job ids of a spool copy: the sge_job database of a
// BDB copy (db_dump), the jobs/ tree of a classic one. A copy whose jobs
// cannot be listed fails the step: no list, no check that no job is lost.
func (s *sgeCopySpoolSpec) listJobs(ctx context.Context, t target.Target, method, dir string) ([]string, error) {
	var cmd string
	if method == "berkeleydb" {
		cmd = sge.Env(s.SGERoot, s.SGECell) + `d=` + shell.Quote(dir) + `; ` +
			`for t in db_dump db5.3_dump db4.8_dump; do command -v "$t" >/dev/null 2>&1 && break; done; ` +
			`command -v "$t" >/dev/null 2>&1 || { echo "no db_dump found (install db-util)" >&2; exit 1; }; ` +
			`out=$("$t" -p -h "$d" "$d/sge_job") || { echo "db_dump of sge_job failed: no job list, so no check that no job is lost" >&2; exit 1; }; ` +
			`printf '%s\n' "$out" | sed -n 's/^ JOB: *\([0-9][0-9]*\).*/\1/p'`
	} else {
		// classic spooling keeps job 1234567 as jobs/00/0123/4567
		cmd = `cd ` + shell.Quote(dir+"/jobs") + ` 2>/dev/null || exit 0; ` +
			`find . -mindepth 3 -maxdepth 3 || { echo "cannot list the jobs of the spool copy" >&2; exit 1; }`
	}
	out, err := t.Query(ctx, cmd, nil)
	if err != nil {
		return nil, fmt.Errorf("list the jobs of %s: %w", dir, err)
	}
	if out.ExitCode != 0 {
		return nil, fmt.Errorf("list the jobs of %s: exit status %d%s", dir, out.ExitCode, lastLine(out.Stderr))
	}
	if method == "berkeleydb" {
		return uniqueIDs(strings.Fields(out.Stdout)), nil
	}
	var ids []string
	for _, line := range strings.Split(out.Stdout, "\n") {
		f := strings.Split(strings.TrimPrefix(strings.TrimSpace(line), "./"), "/")
		if len(f) == 3 && len(f[0]) == 2 && len(f[1]) == 4 && len(f[2]) == 4 && allDigits(f[0]+f[1]+f[2]) {
			ids = append(ids, f[0]+f[1]+f[2])
		}
	}
	return uniqueIDs(ids), nil
}

// uniqueIDs returns the numeric ids without leading zeros, sorted as
// numbers, each once.
func uniqueIDs(ids []string) []string {
	seen := map[int]bool{}
	var ns []int
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || seen[n] {
			continue
		}
		seen[n] = true
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(n)
	}
	return out
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// stampedPath turns a spool path into a fresh sibling, p.<tag>-<stamp>,
// replacing an earlier sgerun stamp instead of stacking them.
func stampedPath(p, tag, stamp string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndex(p, ".sgerun-"); i > strings.LastIndex(p, "/") {
		p = p[:i]
	}
	if tag == "" {
		tag = "sgerun"
	}
	return p + "." + tag + "-" + stamp
}

func sgeCopySpoolKind() Kind {
	return Kind{
		Name:     "sge_copy_spool",
		Doc:      "copy the spool bootstrap names to <path>.sgerun-<stamp>: qmaster_spool_dir without qmaster.pid, heartbeat and lock, the BDB environment (data files, then logs, no __db.*) or classic spool dir; verify file lists and sizes, db_recover and db_verify a BDB copy, list its job ids; undo removes the copies",
		DataKeys: []string{"method", "qmaster_spool_dir", "spool_dir", "spooling_params", "jobs", "files", "bytes"},
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeCopySpoolSpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if err := checkCell(n, s.SGERoot, s.SGECell); err != nil {
				return nil, err
			}
			if err := require(n, "stamp", s.Stamp); err != nil {
				return nil, err
			}
			for _, w := range []string{s.Stamp, s.Tag} {
				if strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
					return nil, posErr(n, "stamp and tag must be letters, digits and _: %q", w)
				}
			}
			return s, nil
		},
	}
}

// sgeRemoveSpoolCopySpec is sge_copy_spool's undo: remove the copies.
type sgeRemoveSpoolCopySpec struct {
	Paths []string `yaml:"paths"`
}

func (s *sgeRemoveSpoolCopySpec) Mutates() bool { return true }

func (s *sgeRemoveSpoolCopySpec) Do(ctx context.Context, t target.Target, _ Runtime) (Result, error) {
	var q []string
	for _, p := range s.Paths {
		q = append(q, shell.Quote(p))
	}
	out, err := t.Exec(ctx, "rm -rf -- "+strings.Join(q, " "), nil)
	if err == nil && out.ExitCode != 0 {
		err = fmt.Errorf("rm -rf %s: exit status %d%s", strings.Join(s.Paths, " "), out.ExitCode, lastLine(out.Stderr))
	}
	return Result{Output: out, Changed: true}, err
}

func sgeRemoveSpoolCopyKind() Kind {
	return Kind{
		Name:     "sge_remove_spool_copy",
		Doc:      "undo of sge_copy_spool: remove the copies",
		UndoOnly: true,
		New: func(n *yaml.Node) (Spec, error) {
			s := &sgeRemoveSpoolCopySpec{}
			if err := decodeStrict(n, s); err != nil {
				return nil, err
			}
			if len(s.Paths) == 0 {
				return nil, posErr(n, "%q needs at least one path", "paths")
			}
			for _, p := range s.Paths {
				if err := checkAbs(n, "paths", p); err != nil {
					return nil, err
				}
				if c := path.Clean(p); strings.Count(c, "/") < 2 {
					return nil, posErr(n, "refusing to remove %s: too close to /", c)
				}
			}
			return s, nil
		},
	}
}
