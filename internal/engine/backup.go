package engine

// Backups (05-storage §7): a backup is a snapshot file of kind 2
// (snapshot.KindBackup, HKDF purpose "backup") in <data_dir>/backups/
// <backup_id>.tmbak, plus <backup_id>.json holding the backup object of
// 02-http-api §5.1. The header's Meta embeds the part of that object known
// when the header is written (ID, description, creator, node, mode, cipher,
// key ID, API key count), so an uploaded file needs no sidecar. The rest
// cannot be in the header: sessions and tombstones are counted while the
// shards are streamed (they are in the authenticated trailer counts), and
// size_bytes and sha256 describe the finished file, trailer included, so
// they can only live outside it (the sidecar; recomputed for uploads).
//
// Content: EntryPartition, then the API key table as one or more
// EntryAPIKeys fragments (concatenated in file order; opaque to the engine),
// then sessions and tombstones shard by shard. Like a snapshot, a backup is
// fuzzy across shards: shards are copied one at a time under their read
// lock while writes continue, so each session is internally consistent but
// a change spanning shards (revoke-all) that races the copy may be partly
// included. The pre-restore backup is taken with business traffic drained
// and is therefore a point-in-time copy.
//
// At most one backup or restore runs at a time (ErrBusy). The per-engine
// state (that lock, the maintenance flag, the business gate and the restore
// jobs) lives in backupState.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
)

// EntryAPIKeys is the backup entry type holding (a fragment of) the encoded
// API key table. Only backups carry it; snapshots never do.
const EntryAPIKeys byte = 4

// Backup file naming and limits.
const (
	BackupIDPrefix       = "tmbk-"
	BackupFileExt        = ".tmbak"
	backupSidecarExt     = ".json"
	uploadPrefix         = ".upload-" // uploaded restore files waiting for their job
	MaxBackupDescription = 256        // bytes (02-http-api §5)
)

var backupIDPattern = regexp.MustCompile(`^tmbk-[0-9a-hjkmnp-tv-z]{26}$`)

// Sentinel errors of the backup and restore API.
var (
	// ErrBusy means another backup or restore is running (TM-ADMIN-4091).
	ErrBusy = errors.New("another backup or restore is in progress")
	// ErrBackupNotFound means no backup has that ID (TM-ADMIN-4041).
	ErrBackupNotFound = errors.New("backup not found")
	// ErrJobNotFound means no restore job has that ID (TM-ADMIN-4041).
	ErrJobNotFound = errors.New("restore job not found")
	// ErrInvalidBackup means a file was rejected before anything changed:
	// bad magic, version, checksum, tag, wrong key ID, not a backup, or a
	// different partition count (TM-ADMIN-4221).
	ErrInvalidBackup = errors.New("backup file rejected")
)

// BackupOptions describes a backup to create.
type BackupOptions struct {
	Description string // ≤ MaxBackupDescription bytes
	CreatedBy   string // API key ID or LOCAL_ADMIN
	// APIKeys is the encoded API key table of the control store (hashes
	// only). The engine stores it as EntryAPIKeys without looking inside.
	APIKeys     []byte
	APIKeyCount int
}

// BackupInfo is the backup object of 02-http-api §5.1.
type BackupInfo struct {
	BackupID    string `json:"backup_id"`
	Description string `json:"description"`
	CreatedAt   int64  `json:"created_at"`
	CreatedBy   string `json:"created_by"`
	NodeID      string `json:"node_id"`
	Mode        string `json:"mode"`
	ClusterID   string `json:"cluster_id"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
	Sessions    int64  `json:"sessions"`
	Tombstones  int64  `json:"tombstones"`
	APIKeys     int    `json:"api_keys"`
	Cipher      string `json:"cipher"`
	KeyID       string `json:"key_id"`
}

// backupMeta is the header Meta of a backup: the backup object minus what
// only exists once the file is complete (size_bytes, sha256) or once the
// shards were streamed (sessions, tombstones — see the trailer counts).
type backupMeta struct {
	BackupID    string `json:"backup_id"`
	Description string `json:"description"`
	CreatedAt   int64  `json:"created_at"`
	CreatedBy   string `json:"created_by"`
	NodeID      string `json:"node_id"`
	Mode        string `json:"mode"`
	ClusterID   string `json:"cluster_id"`
	APIKeys     int    `json:"api_keys"`
	Cipher      string `json:"cipher"`
	KeyID       string `json:"key_id"`
}

// info completes the meta into a backup object with what the trailer and
// the finished file say.
func (m *backupMeta) info(tr snapshot.Trailer, size int64, sum [32]byte) BackupInfo {
	return BackupInfo{
		BackupID: m.BackupID, Description: m.Description, CreatedAt: m.CreatedAt, CreatedBy: m.CreatedBy,
		NodeID: m.NodeID, Mode: m.Mode, ClusterID: m.ClusterID, APIKeys: m.APIKeys, Cipher: m.Cipher, KeyID: m.KeyID,
		Sessions: int64(tr.Counts[EntrySession]), Tombstones: int64(tr.Counts[EntryTombstone]),
		SizeBytes: size, SHA256: hex.EncodeToString(sum[:]),
	}
}

// ---- per-engine backup/restore state ----

// backupState is the engine's backup/restore state. Lock order:
// op → gate → snapMu → appendMu; mu is a leaf.
type backupState struct {
	op          sync.Mutex   // held by the running backup or restore (TryLock: ErrBusy)
	busy        atomic.Bool  // op is held (for Busy, which must not touch op)
	maintenance atomic.Bool  // restore in progress: /ready 503, business 503 TM-ADMIN-5031
	gate        sync.RWMutex // business requests (EnterBusiness: read) vs a restore (write)

	mu    sync.Mutex
	jobs  map[string]*RestoreJob
	order []string // job IDs, oldest first
	hook  func(stage string) error
}

// maxRestoreJobs bounds the remembered restore jobs (oldest forgotten first).
const maxRestoreJobs = 100

// bk returns the engine's backup/restore state. It survives Close, so a
// request admitted before Close can still exit after it.
func (e *Engine) bk() *backupState { return e.bkState }

// Maintenance reports whether a restore is running: /ready answers 503
// (maintenance: "restoring") and every business request 503 TM-ADMIN-5031
// with Retry-After: 5.
func (e *Engine) Maintenance() bool { return e.bk().maintenance.Load() }

// EnterBusiness admits one business request (HTTP or RESP) and must be
// paired with ExitBusiness when it returns true. It returns false during a
// restore (answer 503 TM-ADMIN-5031). A restore turns maintenance on and
// then waits for every admitted request to exit before it touches the
// store, so no business write can interleave with the replacement.
func (e *Engine) EnterBusiness() bool {
	st := e.bk()
	if !st.gate.TryRLock() {
		return false
	}
	if st.maintenance.Load() {
		st.gate.RUnlock()
		return false
	}
	return true
}

// ExitBusiness ends a request admitted by EnterBusiness.
func (e *Engine) ExitBusiness() { e.bk().gate.RUnlock() }

// BusinessExit returns ExitBusiness as a func value made once, for callers
// that hand it around per request (a method value allocates each time).
func (e *Engine) BusinessExit() func() { return e.exitBusiness }

// Busy reports whether a backup or restore is running (a hint: callers
// use it to refuse an upload early; Backup and StartRestore decide).
func (e *Engine) Busy() bool { return e.bk().busy.Load() }

// tryOp takes the one-backup-or-restore lock; release with endOp.
func (st *backupState) tryOp() bool {
	if !st.op.TryLock() {
		return false
	}
	st.busy.Store(true)
	return true
}

func (st *backupState) endOp() {
	st.busy.Store(false)
	st.op.Unlock()
}

// ---- create ----

// BackupDir returns <data_dir>/backups (uploads are staged there too).
func (e *Engine) BackupDir() string { return filepath.Join(e.cfg.DataDir, datadir.BackupDir) }

func (e *Engine) nowMs() int64 {
	if e.cfg.Now != nil {
		return e.cfg.Now()
	}
	return time.Now().UnixMilli()
}

func newPrefixedULID(prefix string) (string, error) {
	id, err := ulid.New(ulid.Timestamp(time.Now()), rand.Reader)
	if err != nil {
		return "", err
	}
	return prefix + strings.ToLower(id.String()), nil
}

// ValidBackupID reports whether id has the form tmbk-<lower-case ULID>.
func ValidBackupID(id string) bool { return backupIDPattern.MatchString(id) }

// Backup writes a backup of the current state: <backup_id>.tmbak (written
// to a temp file, fsynced, verified, renamed) and its <backup_id>.json
// sidecar. It returns ErrBusy while another backup or restore runs.
//
// A backup is also a snapshot trigger (05 §5): once it is written, the
// snapshot loop takes a regular snapshot if the WAL grew since the last
// one, so the backup's point in time is covered in snapshots/ too and the
// WAL before it can be dropped. The backup does not wait for it.
func (e *Engine) Backup(opts BackupOptions) (BackupInfo, error) {
	st := e.bk()
	if !st.tryOp() {
		return BackupInfo{}, ErrBusy
	}
	defer st.endOp()
	info, err := e.backupLocked(opts)
	if err == nil {
		select {
		case e.snapKick <- struct{}{}:
		default: // one already pending
		}
	}
	return info, err
}

// backupLocked creates a backup; the caller holds bk().op.
func (e *Engine) backupLocked(opts BackupOptions) (BackupInfo, error) {
	if err := e.check(); err != nil {
		return BackupInfo{}, err
	}
	if len(opts.Description) > MaxBackupDescription {
		return BackupInfo{}, fmt.Errorf("backup description longer than %d bytes", MaxBackupDescription)
	}
	dir := e.BackupDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return BackupInfo{}, err
	}
	e.removeStaleBackupTemps()
	id, err := newPrefixedULID(BackupIDPrefix)
	if err != nil {
		return BackupInfo{}, err
	}
	mode := "standalone"
	if e.node.ClusterID != "" {
		mode = "cluster"
	}
	meta := backupMeta{
		BackupID: id, Description: opts.Description, CreatedAt: time.Now().UnixMilli(), CreatedBy: opts.CreatedBy,
		NodeID: e.node.NodeID, Mode: mode, ClusterID: e.node.ClusterID, APIKeys: opts.APIKeyCount,
		Cipher: e.ciph.String(), KeyID: e.key.ID().String(),
	}
	metaJSON, err := json.Marshal(&meta)
	if err != nil {
		return BackupInfo{}, err
	}

	e.snapMu.Lock()
	e.appendMu.Lock()
	covered := e.wal.LastSeq()
	parts := append([]partState(nil), e.parts...)
	e.appendMu.Unlock()
	path := filepath.Join(dir, id+BackupFileExt)
	w, err := snapshot.Create(path, snapshot.WriteOptions{
		Key: e.key, Cipher: e.ciph, Kind: snapshot.KindBackup,
		NodeID: e.node.NodeID, ClusterID: e.node.ClusterID, Partitions: uint32(e.node.Partitions),
		CoveredSeq: covered, Meta: metaJSON, CreatedAt: meta.CreatedAt,
	})
	if err == nil {
		err = e.writeState(w, parts, opts.APIKeys)
	}
	e.snapMu.Unlock()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup %s: %w", id, err)
	}
	fi := w.Info()
	info := meta.info(fi.Trailer, fi.Bytes, fi.FileSHA256)
	if err := writeSidecar(dir, info); err != nil {
		os.Remove(path)
		return BackupInfo{}, fmt.Errorf("backup %s: sidecar: %w", id, err)
	}
	e.log.Info("backup written", "backup_id", id, "sessions", info.Sessions, "tombstones", info.Tombstones,
		"api_keys", info.APIKeys, "size_bytes", info.SizeBytes, "covered_seq", covered)
	return info, nil
}

// writeState streams partition state, the API key table and every shard's
// sessions and tombstones into w, then commits it (or aborts on error).
// It is writeSnapshotFile plus the EntryAPIKeys fragments.
func (e *Engine) writeState(w *snapshot.Writer, parts []partState, apiKeys []byte) error {
	buf := make([]byte, 0, 1024)
	fail := func(err error) error { w.Abort(); return err }
	for i := range parts {
		if parts[i].epoch == 0 && parts[i].pseq == 0 {
			continue
		}
		buf = appendPartitionEntry(buf[:0], uint16(i), parts[i])
		if err := w.Add(EntryPartition, buf); err != nil {
			return fail(err)
		}
	}
	if err := addAPIKeys(w, apiKeys); err != nil {
		return fail(err)
	}
	var addErr error
	for i := 0; i < e.store.NumShards() && addErr == nil; i++ {
		e.store.RangeShard(i, func(s *session.Session) {
			if addErr == nil {
				buf = session.AppendSessionBinary(buf[:0], s)
				addErr = w.Add(EntrySession, buf)
			}
		}, func(t *session.Tombstone) {
			if addErr == nil {
				buf = session.AppendTombstoneBinary(buf[:0], t)
				addErr = w.Add(EntryTombstone, buf)
			}
		})
	}
	if addErr != nil {
		return fail(addErr)
	}
	return w.Commit()
}

func appendPartitionEntry(buf []byte, p uint16, ps partState) []byte {
	buf = binary.BigEndian.AppendUint16(buf, p)
	buf = binary.AppendUvarint(buf, ps.epoch)
	return binary.AppendUvarint(buf, ps.pseq)
}

// addAPIKeys stores the key table as EntryAPIKeys fragments of at most
// MaxPayload bytes each; readers concatenate them in file order.
func addAPIKeys(w *snapshot.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), w.MaxPayload())
		if err := w.Add(EntryAPIKeys, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// writeSidecar writes <id>.json atomically (0600).
func writeSidecar(dir string, info BackupInfo) error {
	b, err := json.Marshal(&info)
	if err != nil {
		return err
	}
	return datadir.WriteFileAtomic(filepath.Join(dir, info.BackupID+backupSidecarExt), append(b, '\n'), 0o600)
}

// removeStaleBackupTemps deletes temp files a crash left in backups/ (a
// backup's .tmbak.tmp or .json.tmp, an upload never handed to a job). Call
// it only while holding bk().op, so no backup or restore is using them.
func (e *Engine) removeStaleBackupTemps() {
	ents, err := os.ReadDir(e.BackupDir())
	if err != nil {
		return
	}
	for _, d := range ents {
		n := d.Name()
		if !d.Type().IsRegular() {
			continue
		}
		stale := strings.HasPrefix(n, BackupIDPrefix) && strings.HasSuffix(n, ".tmp")
		if strings.HasPrefix(n, uploadPrefix) {
			// An upload may be streaming right now (it holds no lock until
			// its job starts): only day-old leftovers are stale.
			fi, err := d.Info()
			stale = err == nil && time.Since(fi.ModTime()) > 24*time.Hour
		}
		if stale {
			if err := os.Remove(filepath.Join(e.BackupDir(), n)); err == nil {
				e.log.Warn("removed a stale temporary backup file", "file", n)
			}
		}
	}
}

// ---- list, get, download, retention ----

// BackupPath returns the .tmbak path of a backup (ID case-insensitive), or
// ErrBackupNotFound.
func (e *Engine) BackupPath(id string) (string, error) {
	id = strings.ToLower(id)
	if !ValidBackupID(id) {
		return "", ErrBackupNotFound
	}
	p := filepath.Join(e.BackupDir(), id+BackupFileExt)
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return "", ErrBackupNotFound
	}
	return p, nil
}

// GetBackup returns one backup object, or ErrBackupNotFound.
func (e *Engine) GetBackup(id string) (BackupInfo, error) {
	p, err := e.BackupPath(id)
	if err != nil {
		return BackupInfo{}, err
	}
	return e.loadBackupInfo(p)
}

// ListBackups returns one page of backups, newest first, and the total.
// page ≥ 1, size ≥ 1.
func (e *Engine) ListBackups(page, size int) ([]BackupInfo, int, error) {
	all, err := e.allBackups()
	if err != nil {
		return nil, 0, err
	}
	if page < 1 || size < 1 {
		return nil, 0, fmt.Errorf("invalid page %d or size %d", page, size)
	}
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	return all[from:to], len(all), nil
}

// allBackups returns every backup, newest first (created_at, then ID).
func (e *Engine) allBackups() ([]BackupInfo, error) {
	ents, err := os.ReadDir(e.BackupDir())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []BackupInfo
	for _, d := range ents {
		id, ok := strings.CutSuffix(d.Name(), BackupFileExt)
		if !ok || !d.Type().IsRegular() || !ValidBackupID(id) {
			continue
		}
		info, err := e.loadBackupInfo(filepath.Join(e.BackupDir(), d.Name()))
		if err != nil {
			e.log.Warn("backup unreadable, not listed", "file", d.Name(), "error", err.Error())
			continue
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b BackupInfo) int {
		if a.CreatedAt != b.CreatedAt {
			return cmpInt64(b.CreatedAt, a.CreatedAt)
		}
		return strings.Compare(b.BackupID, a.BackupID)
	})
	return out, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadBackupInfo reads the sidecar of a .tmbak; when it is missing (a crash
// between the file's rename and the sidecar's) it is rebuilt from the file.
func (e *Engine) loadBackupInfo(path string) (BackupInfo, error) {
	id := strings.TrimSuffix(filepath.Base(path), BackupFileExt)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), id+backupSidecarExt))
	if err == nil {
		var info BackupInfo
		if err := json.Unmarshal(b, &info); err == nil && info.BackupID == id {
			return info, nil
		}
	}
	info, err := describeBackupFile(path)
	if err != nil {
		return BackupInfo{}, err
	}
	if info.BackupID != id {
		return BackupInfo{}, fmt.Errorf("%s: header names backup %q", path, info.BackupID)
	}
	if err := writeSidecar(filepath.Dir(path), info); err != nil {
		e.log.Warn("could not rewrite a backup sidecar", "backup_id", id, "error", err.Error())
	}
	return info, nil
}

// describeBackupFile builds the backup object of a file from its header,
// its trailer counts (Inspect: no key needed, CRC-checked only) and a hash
// of the whole file.
func describeBackupFile(path string) (BackupInfo, error) {
	in, err := snapshot.Inspect(path)
	if err != nil {
		return BackupInfo{}, err
	}
	var meta backupMeta
	if err := json.Unmarshal(in.Header.Meta, &meta); err != nil {
		return BackupInfo{}, fmt.Errorf("%s: backup metadata: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return BackupInfo{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return BackupInfo{}, err
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return meta.info(in.Trailer, in.Bytes, sum), nil
}

// PruneBackups applies storage.backup.retention_days / retain_min: backups
// created more than retentionDays days ago are deleted, except the newest
// retainMin, which are always kept. retentionDays 0 keeps everything. It
// returns the deleted IDs, or ErrBusy (try again later) while a backup or
// restore runs.
func (e *Engine) PruneBackups(retentionDays, retainMin int) ([]string, error) {
	return e.pruneBackups(time.Now(), retentionDays, retainMin)
}

func (e *Engine) pruneBackups(now time.Time, retentionDays, retainMin int) ([]string, error) {
	st := e.bk()
	if !st.tryOp() {
		return nil, ErrBusy
	}
	defer st.endOp()
	e.removeStaleBackupTemps()
	if retentionDays <= 0 {
		return nil, nil
	}
	all, err := e.allBackups()
	if err != nil {
		return nil, err
	}
	cutoff := now.Add(-time.Duration(retentionDays) * 24 * time.Hour).UnixMilli()
	var deleted []string
	for i, b := range all {
		if i < retainMin || b.CreatedAt >= cutoff {
			continue
		}
		dir := e.BackupDir()
		if err := os.Remove(filepath.Join(dir, b.BackupID+BackupFileExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return deleted, err
		}
		if err := os.Remove(filepath.Join(dir, b.BackupID+backupSidecarExt)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return deleted, err
		}
		deleted = append(deleted, b.BackupID)
	}
	if len(deleted) > 0 {
		if err := datadir.SyncDir(e.BackupDir()); err != nil {
			return deleted, err
		}
		e.log.Info("backup retention", "deleted", len(deleted), "retention_days", retentionDays, "retain_min", retainMin)
	}
	return deleted, nil
}
