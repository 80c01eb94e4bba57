package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sgerun/sgerun/target"
)

// listing renders find's "%P\t%y\t%s" lines.
func listing(entries ...string) target.Output {
	return target.Output{Stdout: strings.Join(entries, "\n") + "\n"}
}

func TestCopyDir(t *testing.T) {
	const src, dst = "/spool/qmaster", "/spool/qmaster.new"
	srcList := listing("job_scripts\td\t4096", "job_scripts/1\tf\t10", "messages\tf\t100", "qmaster.pid\tf\t5", "heartbeat\tf\t6")
	tests := []struct {
		name, params string
		srcList      target.Output
		dstList      target.Output
		copyExit     int
		cmd          []string // substrings of the copy command, in this order
		notCmd       []string // substrings it must not hold
		files        int
		bytes        int64
		err          string
	}{
		{name: "copy, drop and verify", params: "{src: " + src + ", dst: " + dst + ", drop: [qmaster.pid, heartbeat]}",
			srcList: srcList, dstList: listing("job_scripts\td\t4096", "job_scripts/1\tf\t10", "messages\tf\t100"),
			cmd:   []string{"cp -a -- /spool/qmaster /spool/qmaster.new", "&& (cd -- /spool/qmaster.new && rm -rf -- qmaster.pid)", "rm -rf -- heartbeat"},
			files: 2, bytes: 110},
		{name: "a size that differs fails", params: "{src: " + src + ", dst: " + dst + "}",
			srcList: listing("messages\tf\t100"), dstList: listing("messages\tf\t90"), err: "messages: 90 bytes, want 100"},
		{name: "ignore lets a growing file differ", params: "{src: " + src + ", dst: " + dst + ", ignore: [messag*]}",
			srcList: listing("messages\tf\t100"), dstList: listing("messages\tf\t90"), files: 1, bytes: 90},
		{name: "ignore still wants the file", params: "{src: " + src + ", dst: " + dst + ", ignore: [messages]}",
			srcList: listing("messages\tf\t100", "a\tf\t1"), dstList: listing("a\tf\t1"), err: "missing messages"},
		{name: "live: sizes may differ, the list may not", params: "{src: " + src + ", dst: " + dst + ", live: true}",
			srcList: listing("a\tf\t100", "b\tf\t1"), dstList: listing("a\tf\t5", "c\tf\t1"), err: "missing b; unexpected c"},
		{name: "a changed type fails", params: "{src: " + src + ", dst: " + dst + "}",
			srcList: listing("a\td\t4096"), dstList: listing("a\tf\t0"), err: "a: type f, want d"},
		{name: "bdb: data files, then logs, never regions", params: "{src: /spool/db, dst: /spool/db.new, bdb: true}",
			srcList: listing("sge\tf\t8192", "log.0000000001\tf\t100", "__db.001\tf\t24576"),
			dstList: listing("sge\tf\t8192", "log.0000000001\tf\t100"),
			cmd: []string{"mkdir -- /spool/db.new", "chown --reference=/spool/db -- /spool/db.new", "chmod --reference=/spool/db",
				"case $f in __db.*|log.*) continue;; esac", "for f in log.*"},
			notCmd: []string{"cp -a -- /spool/db /spool/db.new"}, files: 2, bytes: 8292},
		{name: "failed cp", params: "{src: " + src + ", dst: " + dst + "}", copyExit: 1, err: "copy /spool/qmaster: exit status 1"},
		{name: "truncated listing", params: "{src: " + src + ", dst: " + dst + "}",
			srcList: target.Output{Stdout: "a\tf\t1\n", StdoutBytes: 1 << 20}, dstList: listing("a\tf\t1"), err: "listing truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := kindSpec(t, "copy_dir", tt.params).(*copyDirSpec)
			f := newFake(t, "h").
				on("test -d "+s.Src, target.Output{}).
				on("test -e "+s.Dst, target.Output{ExitCode: 1}).
				on("cd "+s.Src+" && find", tt.srcList).
				on("cd "+s.Dst+" && find", tt.dstList).
				on("cp -a", target.Output{ExitCode: tt.copyExit, Stderr: "cp: error"})
			j := &journal{f: f}
			res, err := s.Do(context.Background(), f, Runtime{Prepare: j.prepare})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			// The undo (remove the copy) is journaled before the copy and
			// returned even when the copy or its check failed.
			execs := f.cmds("exec")
			if len(execs) != 1 {
				t.Fatalf("execs %q, want the one copy", execs)
			}
			if len(j.records) != 1 || j.records[0].Kind != "remove_dir" || j.records[0].Params["path"] != s.Dst || res.Undo != j.records[0] {
				t.Fatalf("journaled %+v, undo %+v", j.records, res.Undo)
			}
			if f.calls[j.at[0]].op != "exec" {
				t.Errorf("undo journaled after the copy")
			}
			last := -1
			for _, sub := range tt.cmd {
				i := strings.Index(execs[0], sub)
				if i < 0 || i < last {
					t.Errorf("copy command lacks %q (in order):\n%s", sub, execs[0])
				}
				last = i
			}
			for _, sub := range tt.notCmd {
				if strings.Contains(execs[0], sub) {
					t.Errorf("copy command holds %q:\n%s", sub, execs[0])
				}
			}
			if tt.err == "" && (res.Data["files"] != tt.files || res.Data["bytes"] != tt.bytes || !res.Changed) {
				t.Errorf("data %v changed %v, want %d files %d bytes", res.Data, res.Changed, tt.files, tt.bytes)
			}
		})
	}
}

func TestCopyDirRefuses(t *testing.T) {
	const params = "{src: /spool/qmaster, dst: /spool/qmaster.new}"
	tests := []struct {
		name string
		f    func(t *testing.T) *fakeTarget
		jerr error
		err  string
	}{
		{"source is no directory", func(t *testing.T) *fakeTarget {
			return newFake(t, "h").on("test -d", target.Output{ExitCode: 1})
		}, nil, "source /spool/qmaster is not a directory on h"},
		{"destination exists", func(t *testing.T) *fakeTarget {
			return newFake(t, "h").on("test -d", target.Output{}).on("test -e", target.Output{})
		}, nil, "never overwrites"},
		{"journal fails", func(t *testing.T) *fakeTarget {
			return newFake(t, "h").on("test -d", target.Output{}).on("test -e", target.Output{ExitCode: 1})
		}, errors.New("journal gone"), "journal gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f(t)
			j := &journal{f: f, err: tt.jerr}
			res, err := kindSpec(t, "copy_dir", params).Do(context.Background(), f, Runtime{Prepare: j.prepare})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if len(f.cmds("exec")) != 0 || res.Undo != nil || res.Changed {
				t.Errorf("refused copy ran %v, undo %v", f.cmds("exec"), res.Undo)
			}
		})
	}
	for _, bad := range []string{
		"{src: /a, dst: b}", "{src: a, dst: /b}", "{src: /a/, dst: /a}", "{src: /a, dst: \"/b\\n\"}", "{src: /a}",
		"{src: /a, dst: /b, drop: [/etc]}", "{src: /a, dst: /b, drop: [../x]}", "{src: /a, dst: /b, drop: ['']}", "{src: /a, dst: /b, ignore: ['[']}",
	} {
		if _, err := newSpecErr("copy_dir", bad); err == nil {
			t.Errorf("copy_dir %s accepted", bad)
		}
	}
}

func TestCopyDirQuotes(t *testing.T) {
	s := kindSpec(t, "copy_dir", "{src: \"/sp ool/q'm\", dst: \"/sp ool/$(x)\", drop: ['a b*']}").(*copyDirSpec)
	cmd := s.copyCmd()
	if !strings.Contains(cmd, `cp -a -- '/sp ool/q'\''m' '/sp ool/$(x)'`) || !strings.Contains(cmd, "rm -rf -- a' 'b*") {
		t.Errorf("copy command not quoted: %s", cmd)
	}
}

func TestRemoveDir(t *testing.T) {
	f := newFake(t, "h").on("rm -rf", target.Output{})
	res, err := kindSpec(t, "remove_dir", "{path: /spool/qmaster.new}").Do(context.Background(), f, Runtime{})
	if c := f.cmds("exec"); err != nil || len(c) != 1 || c[0] != "rm -rf -- /spool/qmaster.new" || !res.Changed {
		t.Errorf("remove_dir: %v %q", err, c)
	}
	f = newFake(t, "h").on("rm -rf", target.Output{ExitCode: 1, Stderr: "busy"})
	if _, err := kindSpec(t, "remove_dir", "{path: /spool/x}").Do(context.Background(), f, Runtime{}); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("failed rm: %v", err)
	}
	for _, bad := range []string{"{path: /}", "{path: /spool}", "{path: /spool/}", "{path: spool/x}", "{}"} {
		if _, err := newSpecErr("remove_dir", bad); err == nil {
			t.Errorf("remove_dir %s accepted", bad)
		}
	}
}
