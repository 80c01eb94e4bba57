package sshexec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/pkg/sftp"
)

// FileInfo describes a remote file.
type FileInfo struct {
	// Mode holds the type and permission bits, setuid/setgid/sticky
	// included.
	Mode fs.FileMode
	// UID and GID are the numeric owner and group; -1 if the server did
	// not report them.
	UID, GID int
	// Size is the length in bytes.
	Size int64
	// ModTime is the modification time (one-second resolution).
	ModTime time.Time
}

func toFileInfo(fi os.FileInfo) FileInfo {
	out := FileInfo{Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime(), UID: -1, GID: -1}
	if st, ok := fi.Sys().(*sftp.FileStat); ok {
		out.UID, out.GID = int(st.UID), int(st.GID)
	}
	return out
}

// sftpClient returns the connection's SFTP session, starting it on first
// use and again after it broke.
func (c *Client) sftpClient(ctx context.Context) (*sftp.Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	sc, err := sftp.NewClient(c.ssh)
	if err != nil {
		return nil, fmt.Errorf("start sftp on %s: %w", c.host.Name, err)
	}
	c.sftp = sc
	go func() {
		_ = sc.Wait()
		c.sftpMu.Lock()
		if c.sftp == sc {
			c.sftp = nil
		}
		c.sftpMu.Unlock()
	}()
	return sc, nil
}

// Stat describes the remote file at path (symbolic links are followed).
// A missing file gives an error matching fs.ErrNotExist. Like every file
// operation, Stat checks ctx before it starts but is not interrupted by
// it.
func (c *Client) Stat(ctx context.Context, path string) (FileInfo, error) {
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return FileInfo{}, fmt.Errorf("stat %s:%s: %w", c.host.Name, path, err)
	}
	fi, err := sc.Stat(path)
	if err != nil {
		return FileInfo{}, fmt.Errorf("stat %s:%s: %w", c.host.Name, path, err)
	}
	return toFileInfo(fi), nil
}

// ReadFile returns the content of the remote file at path and its
// description. A missing file gives an error matching fs.ErrNotExist.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, FileInfo, error) {
	wrap := func(err error) error { return fmt.Errorf("read %s:%s: %w", c.host.Name, path, err) }
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return nil, FileInfo{}, wrap(err)
	}
	f, err := sc.Open(path)
	if err != nil {
		return nil, FileInfo{}, wrap(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, FileInfo{}, wrap(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, FileInfo{}, wrap(err)
	}
	info := toFileInfo(fi)
	info.Size = int64(len(data))
	return data, info, nil
}

// WriteFileAtomic replaces the remote file at path with data, so that a
// reader sees either the old or the new content, never a mix.
//
// It writes a temporary file ".<name>.sgerun-tmp-<random>" in the same
// directory, sets its owner to uid:gid (a negative value leaves that id
// as the SSH user's) and its mode to mode, flushes it to disk when the
// server supports fsync@openssh.com, and renames it over path
// (posix-rename@openssh.com, else a plain SFTP rename). On any error the
// temporary file is removed.
//
// The owner is not copied from the old file: to keep it (SGE's qmaster
// fails when act_qmaster becomes root-owned), pass the UID and GID from
// Stat or ReadFile.
func (c *Client) WriteFileAtomic(ctx context.Context, path string, data []byte, mode fs.FileMode, uid, gid int) error {
	wrap := func(err error) error { return fmt.Errorf("write %s:%s: %w", c.host.Name, path, err) }
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return wrap(err)
	}
	tmp, err := tempName(path)
	if err != nil {
		return wrap(err)
	}
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return wrap(fmt.Errorf("create temporary file: %w", err))
	}
	renamed := false
	defer func() {
		_ = f.Close()
		if !renamed {
			_ = sc.Remove(tmp)
		}
	}()

	// Owner before mode: chown clears the setuid and setgid bits.
	if uid >= 0 || gid >= 0 {
		if uid < 0 || gid < 0 {
			fi, err := f.Stat()
			if err != nil {
				return wrap(fmt.Errorf("stat temporary file: %w", err))
			}
			cur := toFileInfo(fi)
			if uid < 0 {
				uid = cur.UID
			}
			if gid < 0 {
				gid = cur.GID
			}
		}
		if err := f.Chown(uid, gid); err != nil {
			return wrap(fmt.Errorf("chown %d:%d: %w", uid, gid, err))
		}
	}
	if err := f.Chmod(mode); err != nil {
		return wrap(fmt.Errorf("chmod %v: %w", mode, err))
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if _, err := f.Write(data); err != nil {
		return wrap(fmt.Errorf("write temporary file: %w", err))
	}
	if v, ok := sc.HasExtension("fsync@openssh.com"); ok && v == "1" {
		if err := f.Sync(); err != nil {
			return wrap(fmt.Errorf("fsync: %w", err))
		}
	}
	if err := f.Close(); err != nil {
		return wrap(fmt.Errorf("close temporary file: %w", err))
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); ok {
		err = sc.PosixRename(tmp, path)
	} else {
		err = sc.Rename(tmp, path)
	}
	if err != nil {
		return wrap(fmt.Errorf("rename into place: %w", err))
	}
	renamed = true
	return nil
}

func tempName(p string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random temporary name: %w", err)
	}
	return path.Join(path.Dir(p), "."+path.Base(p)+".sgerun-tmp-"+hex.EncodeToString(b[:])), nil
}

// Remove removes the remote file (or empty directory) at path. A missing
// file gives an error matching fs.ErrNotExist.
func (c *Client) Remove(ctx context.Context, path string) error {
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return fmt.Errorf("remove %s:%s: %w", c.host.Name, path, err)
	}
	if err := sc.Remove(path); err != nil {
		return fmt.Errorf("remove %s:%s: %w", c.host.Name, path, err)
	}
	return nil
}
