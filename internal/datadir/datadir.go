// Package datadir owns the layout of a TokMesh data directory: the exclusive
// LOCK file that keeps a second server (or tokmesh-walctl) out, node.json,
// and the sub-directory names of 05-storage §1.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Sub-directory and file names inside a data dir.
const (
	LockFile          = "LOCK"
	NodeFile          = "node.json"
	WALDir            = "wal"
	SnapshotDir       = "snapshots"
	BackupDir         = "backups"
	ControlDir        = "control"
	AuditDir          = "audit"
	NodeFormatVersion = 1
)

// ErrLocked is returned when another live process holds the data dir lock.
var ErrLocked = errors.New("data dir is locked by a running process")

// LockedError says who holds the lock.
type LockedError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("data dir %s is locked by a running process (pid %d); stop it first", e.Dir, e.PID)
	}
	return fmt.Sprintf("data dir %s is locked by a running process; stop it first", e.Dir)
}

// Is makes errors.Is(err, ErrLocked) work.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// Lock is a held data-dir lock. The OS releases it when the process dies,
// so a SIGKILLed server never leaves a stale lock behind.
type Lock struct {
	f    *os.File
	path string
}

// Acquire creates dir (0700) if needed and takes its exclusive lock without
// waiting. The lock file records the holder's pid for error messages.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		pid := 0
		if b, rerr := os.ReadFile(path); rerr == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// Release drops the lock. It is safe to call on a nil Lock and more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// Node is the content of node.json: identity and fixed layout, no secrets.
type Node struct {
	FormatVersion int    `json:"format_version"`
	NodeID        string `json:"node_id"`
	ClusterID     string `json:"cluster_id"`
	Partitions    int    `json:"partitions"`
	CreatedAt     int64  `json:"created_at"`
}

// ReadNode reads node.json; it returns os.ErrNotExist (wrapped) when absent.
func ReadNode(dir string) (Node, error) {
	var n Node
	b, err := os.ReadFile(filepath.Join(dir, NodeFile))
	if err != nil {
		return n, err
	}
	if err := json.Unmarshal(b, &n); err != nil {
		return n, fmt.Errorf("%s: %w", filepath.Join(dir, NodeFile), err)
	}
	if n.FormatVersion > NodeFormatVersion {
		return n, fmt.Errorf("%s: format version %d is newer than this build supports (%d)", filepath.Join(dir, NodeFile), n.FormatVersion, NodeFormatVersion)
	}
	return n, nil
}

// WriteNode writes node.json atomically (temp file, fsync, rename, dir fsync).
func WriteNode(dir string, n Node) error {
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, NodeFile), append(b, '\n'), 0o600)
}

// WriteFileAtomic writes data to path through a temp file, fsync, rename and
// a directory fsync, so readers see the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory so a rename or create in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isSyncDirUnsupported(err) {
		return err
	}
	return nil
}

// EnsureLayout creates the sub-directories (0700).
func EnsureLayout(dir string) error {
	for _, sub := range []string{WALDir, SnapshotDir, BackupDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	return nil
}
