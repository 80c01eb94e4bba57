package steps

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sgerun/sgerun/target"
)

// undoRestores runs rec (a restore_file record) on f and checks path is
// back to old (or gone when it did not exist).
func undoRestores(t *testing.T, f *fakeTarget, rec *target.UndoRecord, path string, old target.File) {
	t.Helper()
	if rec == nil || rec.Kind != "restore_file" {
		t.Fatalf("undo %+v, want restore_file", rec)
	}
	params, err := yaml.Marshal(rec.Params)
	if err != nil {
		t.Fatal(err)
	}
	s := kindSpec(t, "restore_file", string(params))
	if !old.Exists {
		f.on("rm -f -- "+path, target.Output{})
	}
	if _, err := s.Do(context.Background(), f, Runtime{}); err != nil {
		t.Fatalf("undo: %v", err)
	}
	if !old.Exists {
		if !f.ran("rm -f -- " + path) {
			t.Errorf("undo of a new file did not remove it: %v", f.cmds("exec"))
		}
		return
	}
	got := f.files[path]
	if !bytes.Equal(got.Data, old.Data) || got.Mode.Perm() != old.Mode.Perm() || got.UID != old.UID || got.GID != old.GID {
		t.Errorf("after undo %s = %q %v %d:%d, want %q %v %d:%d", path, got.Data, got.Mode, got.UID, got.GID, old.Data, old.Mode, old.UID, old.GID)
	}
}

func TestPut(t *testing.T) {
	existing := target.File{Data: []byte("old\n"), Mode: 0o600, UID: 5, GID: 6}
	tests := []struct {
		name, params string
		old          *target.File // nil: no file
		replies      map[string]target.Output
		want         target.File // written; zero Data with wantWrite false: nothing written
		wantWrite    bool
		err          string
	}{
		{name: "new file: 0644, connecting user", params: "{path: /etc/x, content: \"a\\n\"}",
			want: target.File{Data: []byte("a\n"), Mode: 0o644, UID: -1, GID: -1}, wantWrite: true},
		{name: "existing file keeps mode and owner", params: "{path: /etc/x, content: new}", old: &existing,
			want: target.File{Data: []byte("new"), Mode: 0o600, UID: 5, GID: 6}, wantWrite: true},
		{name: "mode and numeric owner", params: "{path: /etc/x, content: new, mode: '0640', owner: '7', group: '8'}", old: &existing,
			want: target.File{Data: []byte("new"), Mode: 0o640, UID: 7, GID: 8}, wantWrite: true},
		{name: "owner and group by name", params: "{path: /etc/x, content: new, owner: sgeadmin, group: adm}", old: &existing,
			replies: map[string]target.Output{"id -u -- sgeadmin": {Stdout: "398\n"}, "getent group -- adm": {Stdout: "4\n"}},
			want:    target.File{Data: []byte("new"), Mode: 0o600, UID: 398, GID: 4}, wantWrite: true},
		{name: "unknown owner", params: "{path: /etc/x, content: new, owner: nobody2}", old: &existing,
			replies: map[string]target.Output{"id -u -- nobody2": {ExitCode: 1}}, err: `unknown user "nobody2"`},
		{name: "same bytes: nothing written", params: "{path: /etc/x, content: \"old\\n\"}", old: &existing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "h")
			for sub, out := range tt.replies {
				f.on(sub, out)
			}
			var old target.File
			if tt.old != nil {
				old = *tt.old
				f.put("/etc/x", string(old.Data), old)
				old.Exists = true
			}
			j := &journal{f: f}
			res, err := kindSpec(t, "put", tt.params).Do(context.Background(), f, Runtime{Prepare: j.prepare})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if len(f.cmds("write")) != 0 || len(j.records) != 0 {
					t.Errorf("a failed put wrote or journaled")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			writes := 0
			for _, c := range f.calls {
				if c.op == "write" {
					writes++
				}
			}
			if !tt.wantWrite {
				if writes != 0 || res.Changed || res.Undo != nil || len(j.records) != 0 {
					t.Errorf("unchanged file: writes %d changed %v undo %v", writes, res.Changed, res.Undo)
				}
				return
			}
			got := f.files["/etc/x"]
			if writes != 1 || !bytes.Equal(got.Data, tt.want.Data) || got.Mode != tt.want.Mode || got.UID != tt.want.UID || got.GID != tt.want.GID {
				t.Fatalf("wrote %d times: %q %v %d:%d, want %q %v %d:%d", writes, got.Data, got.Mode, got.UID, got.GID,
					tt.want.Data, tt.want.Mode, tt.want.UID, tt.want.GID)
			}
			if !res.Changed || len(j.records) != 1 || j.records[0] != res.Undo {
				t.Fatalf("changed %v, journaled %v, undo %v", res.Changed, j.records, res.Undo)
			}
			if j.at[0] != len(f.calls)-1 {
				t.Errorf("undo journaled after the write (at call %d of %d)", j.at[0], len(f.calls))
			}
			if res.Data["existed"] != old.Exists {
				t.Errorf("existed = %v", res.Data["existed"])
			}
			undoRestores(t, f, res.Undo, "/etc/x", old)
		})
	}
}

func TestPutJournalFailureWritesNothing(t *testing.T) {
	f := newFake(t, "h")
	j := &journal{f: f, err: errors.New("disk full")}
	_, err := kindSpec(t, "put", "{path: /etc/x, content: a}").Do(context.Background(), f, Runtime{Prepare: j.prepare})
	if err == nil || !strings.Contains(err.Error(), "journal undo: disk full") {
		t.Fatalf("err = %v", err)
	}
	if f.files["/etc/x"].Exists {
		t.Error("written although its undo could not be journaled")
	}
}

func TestPutParams(t *testing.T) {
	for _, bad := range []string{"{path: etc/x, content: a}", "{content: a}", "{path: /x, mode: '999'}", "{path: /x, mode: rw}", "{path: \"/x\\n\"}"} {
		if _, err := newSpecErr("put", bad); err == nil {
			t.Errorf("put %s accepted", bad)
		}
	}
}

func TestEditKVStep(t *testing.T) {
	const boot = "# bootstrap\nadmin_user   sgeadmin\nspooling_params\t/var/spool/db\n"
	old := target.File{Data: []byte(boot), Mode: 0o644, UID: 0, GID: 398, Exists: true}
	f := newFake(t, "h").put("/sge/common/bootstrap", boot, old)
	j := &journal{f: f}
	res, err := kindSpec(t, "edit_kv", "{path: /sge/common/bootstrap, set: {spooling_params: /new/db}}").Do(context.Background(), f, Runtime{Prepare: j.prepare})
	if err != nil {
		t.Fatal(err)
	}
	got := f.files["/sge/common/bootstrap"]
	if want := "# bootstrap\nadmin_user   sgeadmin\nspooling_params\t/new/db\n"; string(got.Data) != want {
		t.Errorf("bootstrap = %q, want %q", got.Data, want)
	}
	if got.Mode != fs.FileMode(0o644) || got.UID != 0 || got.GID != 398 {
		t.Errorf("mode/owner not kept: %v %d:%d", got.Mode, got.UID, got.GID)
	}
	if res.Data["old"].(map[string]any)["spooling_params"] != "/var/spool/db" || res.Data["new"].(map[string]any)["spooling_params"] != "/new/db" {
		t.Errorf("data %v", res.Data)
	}
	if len(j.records) != 1 || j.at[0] != len(f.calls)-1 {
		t.Errorf("undo not journaled before the write: %v at %v", j.records, j.at)
	}
	undoRestores(t, f, res.Undo, "/sge/common/bootstrap", old)

	// Again with the same value: nothing to do.
	f2 := newFake(t, "h").put("/b", "k v\n", target.File{Mode: 0o644})
	res, err = kindSpec(t, "edit_kv", "{path: /b, set: {k: v}}").Do(context.Background(), f2, Runtime{})
	if err != nil || res.Changed || res.Undo != nil || len(f2.calls) != 0 {
		t.Errorf("same value: err %v changed %v undo %v calls %v", err, res.Changed, res.Undo, f2.calls)
	}
}

func TestEditKVStepRefuses(t *testing.T) {
	f := newFake(t, "h").put("/b", "k v\n", target.File{Mode: 0o644})
	if _, err := kindSpec(t, "edit_kv", "{path: /missing, set: {k: v}}").Do(context.Background(), f, Runtime{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := kindSpec(t, "edit_kv", "{path: /b, set: {typo: v}}").Do(context.Background(), f, Runtime{}); err == nil || !strings.Contains(err.Error(), "typo") {
		t.Errorf("missing key: %v", err)
	}
	res, err := kindSpec(t, "edit_kv", "{path: /b, set: {new: x}, append: true}").Do(context.Background(), f, Runtime{})
	if err != nil || string(f.files["/b"].Data) != "k v\nnew x\n" || !res.Changed {
		t.Errorf("append: %v %q", err, f.files["/b"].Data)
	}
	for _, bad := range []string{"{path: /b}", "{path: /b, set: {}}", "{path: b, set: {k: v}}", "{path: /b, set: {'a b': v}}", "{path: /b, set: {k: \"v\\n\"}}"} {
		if _, err := newSpecErr("edit_kv", bad); err == nil {
			t.Errorf("edit_kv %s accepted", bad)
		}
	}
}

func TestRestoreFile(t *testing.T) {
	f := newFake(t, "h").put("/etc/x", "changed", target.File{Mode: 0o600, UID: 1, GID: 1})
	s := kindSpec(t, "restore_file", "{path: /etc/x, existed: true, data: b2xkCg==, mode: '0640', uid: 5, gid: 6}")
	res, err := s.Do(context.Background(), f, Runtime{})
	if got := f.files["/etc/x"]; err != nil || string(got.Data) != "old\n" || got.Mode != 0o640 || got.UID != 5 || got.GID != 6 || !res.Changed {
		t.Errorf("restore: %v %q %v %d:%d", err, got.Data, got.Mode, got.UID, got.GID)
	}

	f = newFake(t, "h").on("rm -f -- '/etc/new file'", target.Output{})
	if _, err := kindSpec(t, "restore_file", "{path: /etc/new file, existed: false}").Do(context.Background(), f, Runtime{}); err != nil {
		t.Fatal(err)
	}
	if c := f.cmds("exec"); len(c) != 1 || c[0] != "rm -f -- '/etc/new file'" {
		t.Errorf("removal of a file that did not exist: %v", c)
	}

	f = newFake(t, "h").on("rm -f", target.Output{ExitCode: 1, Stderr: "Permission denied"})
	if _, err := kindSpec(t, "restore_file", "{path: /etc/x, existed: false}").Do(context.Background(), f, Runtime{}); err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("failed rm: %v", err)
	}
	f = newFake(t, "h")
	if _, err := kindSpec(t, "restore_file", "{path: /etc/x, existed: true, data: '!!', mode: '0644'}").Do(context.Background(), f, Runtime{}); err == nil || len(f.calls) != 0 {
		t.Errorf("bad undo data: err %v, calls %v", err, f.calls)
	}
	if !Kinds()["restore_file"].UndoOnly {
		t.Error("restore_file must be undo-only")
	}
}
