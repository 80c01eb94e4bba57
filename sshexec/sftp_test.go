package sshexec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sgerun/sgerun/internal/sshtest"
)

func TestWriteFileAtomic(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1, SFTP: true})
	c, err := newPool(t, e.config()).Client(testCtx(t), hostFor(e.srv.Hosts()[0]))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "act_qmaster")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader holding the old file keeps seeing the old content: the
	// file is replaced by a rename, not rewritten in place.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	const uid, gid = 1234, 2345
	if err := c.WriteFileAtomic(ctx, path, []byte("new\n"), 0o640, uid, gid); err != nil {
		t.Fatalf("WriteFileAtomic: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != uid || sys.Gid != gid {
		t.Errorf("mode %v owner %d:%d, want 0640 %d:%d", st.Mode().Perm(), sys.Uid, sys.Gid, uid, gid)
	}
	buf := make([]byte, 16)
	n, _ := old.Read(buf)
	if string(buf[:n]) != "old\n" {
		t.Errorf("old file handle reads %q: file was rewritten in place", buf[:n])
	}

	data, info, err := c.ReadFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "new\n" || info.UID != uid || info.GID != gid || info.Mode.Perm() != 0o640 || info.Size != 4 {
		t.Errorf("ReadFile = %q %+v", data, info)
	}
	if si, err := c.Stat(ctx, path); err != nil || si.UID != uid || si.Mode.Perm() != 0o640 || !si.Mode.IsRegular() {
		t.Errorf("Stat = %+v, %v", si, err)
	}

	// uid/gid < 0: owned by the SSH user (root here).
	other := filepath.Join(dir, "other")
	if err := c.WriteFileAtomic(ctx, other, []byte("x"), 0o644, -1, -1); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(other); st.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) || st.Mode().Perm() != 0o644 {
		t.Errorf("other: mode %v uid %d", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid)
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only act_qmaster and other", names)
	}

	// A failed write leaves no temporary file.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(sub, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFileAtomic(ctx, filepath.Join(sub, "isdir"), []byte("x"), 0o644, -1, -1); err == nil {
		t.Errorf("renaming a file over a directory succeeded")
	}
	if entries, _ := os.ReadDir(sub); len(entries) != 1 {
		t.Errorf("failed write left %d entries in %s, want 1", len(entries), sub)
	}
}

func TestMissingFiles(t *testing.T) {
	e := newEnv(t, sshtest.Options{Hosts: 1, SFTP: true})
	c, err := newPool(t, e.config()).Client(testCtx(t), hostFor(e.srv.Hosts()[0]))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := c.ReadFile(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile: %v, want fs.ErrNotExist", err)
	}
	if _, err := c.Stat(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat: %v, want fs.ErrNotExist", err)
	}
	if err := c.Remove(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove: %v, want fs.ErrNotExist", err)
	}
	if err := c.WriteFileAtomic(ctx, missing, nil, 0o600, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, missing); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file still there after Remove")
	}
}
