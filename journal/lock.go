package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrLocked is matched by the error of a lock that another run holds.
var ErrLocked = errors.New("locked")

// LockInfo is what a lock file records about its holder.
type LockInfo struct {
	RunID     string    `json:"run_id"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Time      time.Time `json:"time"`
	Inventory string    `json:"inventory"`
}

// LockedError says who holds a lock and whether it looks stale.
type LockedError struct {
	Path  string
	Info  LockInfo
	Stale string // why the lock looks stale; "" when it looks live
}

func (e *LockedError) Error() string {
	who := fmt.Sprintf("run %s (pid %d on %s, since %s)", e.Info.RunID, e.Info.PID, e.Info.Host,
		e.Info.Time.Format(time.RFC3339))
	if e.Stale != "" {
		return fmt.Sprintf("stale lock %s held by %s: %s; use --force to take it over", e.Path, who, e.Stale)
	}
	return fmt.Sprintf("another run holds %s: %s", e.Path, who)
}

// Is makes a LockedError match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockPath is the lock file for an inventory under the state directory.
func LockPath(stateDir, inventory string) string {
	abs, err := filepath.Abs(inventory)
	if err != nil {
		abs = inventory
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(stateDir, "locks", hex.EncodeToString(sum[:8])+".lock")
}

// Acquire takes the lock at path: the file appears, complete, only if no
// other run's lock is there (see publishLock). A lock whose holder is dead
// (same host, no such pid) or older than maxAge is stale: it is reported,
// and taken over only when force is set. The returned func releases it.
func Acquire(path string, info LockInfo, force bool, maxAge time.Duration) (func() error, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	data, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode lock: %w", err)
	}
	for attempt := 0; attempt < 2; attempt++ {
		err := publishLock(path, data)
		if err == nil {
			return func() error { return releaseIfOurs(path, info) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		held, rerr := readLock(path)
		if rerr != nil {
			if errors.Is(rerr, os.ErrNotExist) {
				continue // released meanwhile
			}
			held = LockInfo{}
		}
		le := &LockedError{Path: path, Info: held, Stale: staleReason(held, rerr, maxAge)}
		if le.Stale == "" || !force {
			return nil, le
		}
		// Move the stale lock aside and try once more; only one
		// contender's link succeeds in that retry.
		if err := os.Rename(path, fmt.Sprintf("%s.stale-%d", path, os.Getpid())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("take over stale lock: %w", err)
		}
	}
	return nil, fmt.Errorf("take lock %s: %w", path, ErrLocked)
}

// publishLock makes the lock file appear at path complete or not at all: it
// writes and syncs a private temp file, then hard-links it to path, which
// fails with EEXIST when another run holds the lock. A contender therefore
// never reads a lock file that its holder has created but not yet written
// (an O_EXCL create followed by a write leaves that window open).
func publishLock(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return err
		}
		return fmt.Errorf("take lock: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		// Not taken after all: a lock left here would need --force.
		os.Remove(path)
		return fmt.Errorf("take lock: %w", err)
	}
	return nil
}

// ReadLock returns the holder of a lock, if any.
func ReadLock(path string) (LockInfo, bool) {
	info, err := readLock(path)
	return info, err == nil
}

func readLock(path string) (LockInfo, error) {
	var info LockInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("decode lock: %w", err)
	}
	return info, nil
}

func staleReason(info LockInfo, readErr error, maxAge time.Duration) string {
	if readErr != nil {
		return "unreadable lock file: " + readErr.Error()
	}
	host, _ := os.Hostname()
	if info.Host == host && info.PID > 0 && !pidAlive(info.PID) {
		return fmt.Sprintf("pid %d is not running", info.PID)
	}
	if maxAge > 0 && time.Since(info.Time) > maxAge {
		return fmt.Sprintf("older than %s", maxAge)
	}
	return ""
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func releaseIfOurs(path string, info LockInfo) error {
	held, err := readLock(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("release lock: %w", err)
	}
	if held.RunID != info.RunID || held.PID != info.PID {
		return nil
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	return nil
}
