package engine

// Restore (05-storage §7) replaces the node's sessions with a backup's, as
// an asynchronous job owned by the engine (Close waits for it).
//
// StartRestore validates the whole file before anything changes (magic,
// version, key ID, every chunk checksum and tag, the trailer, kind and
// partition count, and decodes every entry) and starts the job. The job:
//
//  1. turns maintenance on and waits until every business request admitted
//     by EnterBusiness has exited, so no business write interleaves;
//  2. takes the pre-restore backup (description "pre-restore") — after the
//     drain, so it is exactly the state the job may have to go back to;
//  3. hands the backup's API key table to RestoreCallbacks.MergeKeys, which
//     adds the keys that do not exist and never changes existing ones;
//  4. replaces the store, holding snapMu so no periodic snapshot can see a
//     half-replaced store: sessions become the backup's, minus those
//     expired now and minus any whose ID or token hash is tombstoned now
//     (in the backup or currently); the current tombstones are kept and the
//     backup's added, so a token revoked before the restore never validates
//     again;
//  5. commits: holding appendMu (no record can take a seq meanwhile) it
//     writes snapshots/snapshot-<R>.snap of the restored state with
//     covered_seq R = the next WAL seq, then appends the RESET record, which
//     gets seq R, and waits until it is fsynced;
//  6. turns maintenance off; the job succeeds.
//
// The commit point is the rename of snapshot-<R>.snap. A crash before it
// recovers the pre-restore state (no RESET is in the WAL yet, and the new
// snapshot does not exist); a crash after it recovers from that snapshot,
// the newest, whose covered_seq is the RESET's seq: the RESET is never
// replayed over the restored state, and records after it are. The RESET is
// written after the snapshot rather than before because a RESET that
// became durable before the snapshot would, after a crash, be replayed over
// the pre-restore snapshot and leave an empty store. Older snapshots are
// deleted after the commit (and the WAL they needed): they describe the
// replaced history, and a recovery that fell back to one of them would
// replay the RESET and come up empty instead of refusing to start.
//
// Any failure before the commit point puts the pre-restore state back from
// the pre-restore backup (in memory only: the durable state never changed);
// if even that fails the engine fail-stops and a restart recovers the
// pre-restore state. API keys added in step 3 stay (keys are never
// deleted).
//
// Known limit: the sweeper is not paused. Its EXPIRE records written while
// the store is replaced only remove sessions and tombstones already due
// (unobservable), and they precede the RESET, so recovery from the restore
// snapshot never replays them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Restore job states.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// RestoreJobIDPrefix starts every restore job ID.
const RestoreJobIDPrefix = "tmrj-"

// preRestoreDescription is the description of the backup a restore takes
// before it changes anything.
const preRestoreDescription = "pre-restore"

// RestoreJob is the restore job object of 02-http-api §5.1.
type RestoreJob struct {
	JobID              string `json:"job_id"`
	Status             string `json:"status"`
	Progress           int    `json:"progress"`
	Message            string `json:"message"`
	BackupID           string `json:"backup_id"`
	PreRestoreBackupID string `json:"pre_restore_backup_id"`
	StartedAt          int64  `json:"started_at"`
	FinishedAt         int64  `json:"finished_at"`
	RestoredSessions   int    `json:"restored_sessions"`
	AddedAPIKeys       int    `json:"added_api_keys"`
}

// Done reports whether the job has ended.
func (j RestoreJob) Done() bool { return j.Status == JobSucceeded || j.Status == JobFailed }

// RestoreSource names what to restore: a backup of this node, or an
// uploaded file.
type RestoreSource struct {
	BackupID string // a backup in <data_dir>/backups (case-insensitive)
	// Upload is the path of an uploaded file (see CreateUploadFile). The
	// engine owns it from the call on and deletes it when StartRestore
	// fails or the job ends.
	Upload string
}

// RestoreCallbacks connect a restore to the control store and the audit
// log. Each may be nil.
type RestoreCallbacks struct {
	// KeyTable returns the current encoded API key table, stored in the
	// pre-restore backup.
	KeyTable func() (data []byte, count int, err error)
	// MergeKeys receives the backup's encoded key table and adds the keys
	// that do not exist now; existing keys are never changed (a disabled
	// key stays disabled). It returns how many keys it added.
	MergeKeys func(data []byte) (added int, err error)
	// Finished is called once, from the job's goroutine, when the job
	// ended (audit restore.finish). It must not block for long.
	Finished func(RestoreJob)
}

// restorePlan is what validation learned about a backup file.
type restorePlan struct {
	path     string
	upload   bool
	meta     backupMeta
	tombs    []session.Tombstone
	apiKeys  []byte
	sessions int
}

// CreateUploadFile creates an empty file (0600) in <data_dir>/backups to
// stream a restore upload into; pass its path as RestoreSource.Upload.
func (e *Engine) CreateUploadFile() (*os.File, error) {
	if err := os.MkdirAll(e.BackupDir(), 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(e.BackupDir(), uploadPrefix+"*.tmp")
}

// StartRestore validates the source and starts a restore job, returning
// it in state pending. Errors: ErrBusy, ErrBackupNotFound,
// ErrInvalidBackup (nothing was changed), ErrClosed, or I/O errors.
func (e *Engine) StartRestore(src RestoreSource, createdBy string, cb RestoreCallbacks) (RestoreJob, error) {
	handedOff := false
	if src.Upload != "" {
		defer func() {
			if !handedOff {
				os.Remove(src.Upload)
			}
		}()
	}
	if err := e.check(); err != nil {
		return RestoreJob{}, err
	}
	st := e.bk()
	if !st.tryOp() {
		return RestoreJob{}, ErrBusy
	}
	defer func() {
		if !handedOff {
			st.endOp()
		}
	}()
	path := src.Upload
	if src.BackupID != "" {
		if path != "" {
			return RestoreJob{}, errors.New("restore: give a backup ID or an upload, not both")
		}
		p, err := e.BackupPath(src.BackupID)
		if err != nil {
			return RestoreJob{}, err
		}
		path = p
	}
	if path == "" {
		return RestoreJob{}, errors.New("restore: no backup ID or upload given")
	}
	plan, err := e.inspectBackup(path)
	if err != nil {
		return RestoreJob{}, err
	}
	plan.upload = src.Upload != ""
	id, err := newPrefixedULID(RestoreJobIDPrefix)
	if err != nil {
		return RestoreJob{}, err
	}
	job := &RestoreJob{JobID: id, Status: JobPending, BackupID: plan.meta.BackupID, StartedAt: time.Now().UnixMilli()}

	e.wg.Add(1)
	select {
	case <-e.stop: // Close began: it may not wait for us
		e.wg.Done()
		return RestoreJob{}, ErrClosed
	default:
	}
	st.addJob(job)
	handedOff = true
	out := *job
	go e.runRestore(st, job, plan, createdBy, cb)
	e.log.Warn("restore started", "job_id", id, "backup_id", plan.meta.BackupID, "upload", plan.upload, "created_by", createdBy)
	return out, nil
}

// GetRestoreJob returns a job by ID (case-insensitive) or "latest".
func (e *Engine) GetRestoreJob(id string) (RestoreJob, error) {
	st := e.bk()
	st.mu.Lock()
	defer st.mu.Unlock()
	id = strings.ToLower(id)
	if id == "latest" {
		if len(st.order) == 0 {
			return RestoreJob{}, ErrJobNotFound
		}
		id = st.order[len(st.order)-1]
	}
	j, ok := st.jobs[id]
	if !ok {
		return RestoreJob{}, ErrJobNotFound
	}
	return *j, nil
}

func (st *backupState) addJob(j *RestoreJob) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.jobs[j.JobID] = j
	st.order = append(st.order, j.JobID)
	for len(st.order) > maxRestoreJobs {
		delete(st.jobs, st.order[0])
		st.order = st.order[1:]
	}
}

// update changes a job under the state lock and returns a copy.
func (st *backupState) update(j *RestoreJob, fn func(j *RestoreJob)) RestoreJob {
	st.mu.Lock()
	defer st.mu.Unlock()
	fn(j)
	return *j
}

// runHook runs the test hook for a stage; production has none.
func (st *backupState) runHook(stage string) error {
	st.mu.Lock()
	h := st.hook
	st.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(stage)
}

// setRestoreHook installs a test hook called at the restore stages
// "drained", "before-commit" (store replaced, nothing durable yet),
// "snapshot-written" (restore snapshot complete but not committed; runs
// under appendMu), "after-snapshot" (commit point passed, RESET not yet
// appended) and "after-reset". An error at the first three fails the
// restore; the last two cannot fail it.
func (e *Engine) setRestoreHook(fn func(stage string) error) {
	st := e.bk()
	st.mu.Lock()
	st.hook = fn
	st.mu.Unlock()
}

func (e *Engine) stopping() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// runRestore is the job goroutine; it owns st.op and the upload file.
func (e *Engine) runRestore(st *backupState, job *RestoreJob, plan *restorePlan, createdBy string, cb RestoreCallbacks) {
	defer e.wg.Done()
	defer st.endOp()
	if plan.upload {
		defer os.Remove(plan.path)
	}
	st.update(job, func(j *RestoreJob) { j.Status, j.Progress = JobRunning, 5 })

	st.maintenance.Store(true)
	st.gate.Lock() // waits for the admitted business requests to exit
	err := e.restore(st, job, plan, createdBy, cb)
	st.gate.Unlock()
	st.maintenance.Store(false)

	final := st.update(job, func(j *RestoreJob) {
		j.FinishedAt = time.Now().UnixMilli()
		if err != nil {
			j.Status, j.Message = JobFailed, err.Error()
			return
		}
		j.Status, j.Progress, j.Message = JobSucceeded, 100, "restore completed"
	})
	if err != nil {
		e.log.Error("restore failed", "job_id", final.JobID, "backup_id", final.BackupID, "error", err.Error())
	} else {
		e.log.Warn("restore completed", "job_id", final.JobID, "backup_id", final.BackupID,
			"restored_sessions", final.RestoredSessions, "added_api_keys", final.AddedAPIKeys, "pre_restore_backup_id", final.PreRestoreBackupID)
	}
	if cb.Finished != nil {
		cb.Finished(final)
	}
}

// restore runs steps 2–5 with maintenance on and business drained. Its
// error is the job's message.
func (e *Engine) restore(st *backupState, job *RestoreJob, plan *restorePlan, createdBy string, cb RestoreCallbacks) error {
	st.update(job, func(j *RestoreJob) { j.Progress = 10 })
	if err := st.runHook("drained"); err != nil {
		return fmt.Errorf("restore aborted before any change: %w", err)
	}
	if e.stopping() {
		return errors.New("the node is shutting down; nothing was changed")
	}
	var (
		keys  []byte
		nKeys int
		err   error
	)
	if cb.KeyTable != nil {
		if keys, nKeys, err = cb.KeyTable(); err != nil {
			return fmt.Errorf("reading the API key table for the pre-restore backup failed: %v; nothing was changed", err)
		}
	}
	pre, err := e.backupLocked(BackupOptions{Description: preRestoreDescription, CreatedBy: createdBy, APIKeys: keys, APIKeyCount: nKeys})
	if err != nil {
		return fmt.Errorf("the pre-restore backup failed: %v; nothing was changed", err)
	}
	st.update(job, func(j *RestoreJob) { j.PreRestoreBackupID, j.Progress = pre.BackupID, 30 })
	if e.stopping() {
		return errors.New("the node is shutting down; nothing was changed")
	}

	added := 0
	if len(plan.apiKeys) > 0 && cb.MergeKeys != nil {
		added, err = cb.MergeKeys(plan.apiKeys)
		if err != nil {
			return fmt.Errorf("merging the backup's API keys failed: %v; sessions were not changed (keys already added, if any, stay: keys are never deleted)", err)
		}
	}
	st.update(job, func(j *RestoreJob) { j.AddedAPIKeys, j.Progress = added, 40 })

	prePath := filepath.Join(e.BackupDir(), pre.BackupID+BackupFileExt)
	restored, err := e.replaceAndCommit(st, job, plan, prePath)
	if err != nil {
		if added > 0 {
			return fmt.Errorf("%v; the %d API keys added from the backup stay (keys are never deleted)", err, added)
		}
		return err
	}
	st.update(job, func(j *RestoreJob) { j.RestoredSessions, j.Progress = restored, 95 })
	return nil
}

// replaceAndCommit is steps 4 and 5. It holds snapMu throughout, so no
// other snapshot sees the store while it is replaced or rolled back.
func (e *Engine) replaceAndCommit(st *backupState, job *RestoreJob, plan *restorePlan, prePath string) (int, error) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if err := e.check(); err != nil {
		return 0, fmt.Errorf("restore not started: %w; nothing was changed", err)
	}
	now := e.nowMs()
	grace := e.store.Config().ExpiredGrace // the store's rule: 0 = default, < 0 = none
	switch {
	case grace == 0:
		grace = session.DefaultConfig().ExpiredGrace
	case grace < 0:
		grace = 0
	}

	// Tombstones: the current ones plus the backup's (the higher version
	// wins per ID). Every one of them, due or not, blocks its session ID
	// and token hash: a revoked token never validates again.
	byID := make(map[session.ID]session.Tombstone, len(plan.tombs))
	addTomb := func(t session.Tombstone) {
		if old, ok := byID[t.ID]; !ok || t.Version > old.Version {
			byID[t.ID] = t
		}
	}
	for i := 0; i < e.store.NumShards(); i++ {
		e.store.RangeShard(i, nil, func(t *session.Tombstone) { addTomb(*t) })
	}
	for _, t := range plan.tombs {
		addTomb(t)
	}
	blockedTok := make(map[session.TokenHash]struct{}, len(byID))
	tombs := make([]session.Tombstone, 0, len(byID))
	for _, t := range byID {
		blockedTok[t.TokenHash] = struct{}{}
		if now <= t.ExpiresAt+grace {
			tombs = append(tombs, t)
		}
	}
	keep := func(s *session.Session) bool {
		if _, ok := byID[s.ID]; ok {
			return false
		}
		if _, ok := blockedTok[s.TokenHash]; ok {
			return false
		}
		return s.EffectiveExpiry() >= now
	}

	// Replace memory. From here on, an error must put the pre-restore
	// state back.
	restored, err := e.loadRestored(plan.path, tombs, keep)
	if err == nil {
		st.update(job, func(j *RestoreJob) { j.Progress = 70 })
		err = st.runHook("before-commit")
	}
	if err == nil {
		err = e.commitRestore(st, plan.path, tombs, keep)
		if err == nil {
			st.update(job, func(j *RestoreJob) { j.Progress = 90 })
			return restored, nil
		}
		if errors.Is(err, errCommitted) {
			return restored, err
		}
	}
	if rbErr := e.loadBackupAsIs(prePath); rbErr != nil {
		fatal := fmt.Errorf("restore failed (%v) and putting the pre-restore state back from %s failed too: %w", err, prePath, rbErr)
		e.onFatal(fatal)
		return 0, fmt.Errorf("%v; the node stops serving, and a restart recovers the pre-restore state", fatal)
	}
	return 0, fmt.Errorf("restore failed: %v; the pre-restore state was put back (backup %s)", err,
		strings.TrimSuffix(filepath.Base(prePath), BackupFileExt))
}

// errCommitted marks a failure after the commit point: the restored state
// is durable and stays.
var errCommitted = errors.New("the restored state is committed")

// loadRestored empties the store and loads the restored tombstones and the
// backup's sessions that keep accepts; it returns how many it loaded.
func (e *Engine) loadRestored(path string, tombs []session.Tombstone, keep func(*session.Session) bool) (int, error) {
	e.store.Reset()
	for _, t := range tombs {
		if err := e.store.LoadTombstone(t); err != nil {
			return 0, fmt.Errorf("loading tombstone %s: %w", t.ID, err)
		}
	}
	n := 0
	err := e.rangeBackup(path, func(typ byte, payload []byte) error {
		if typ != EntrySession {
			return nil
		}
		s, err := session.DecodeTrustedSessionBinary(payload)
		if err != nil {
			return err
		}
		if !keep(s) {
			return nil
		}
		n++
		return e.store.LoadSession(s)
	})
	return n, err
}

// commitRestore writes the restore snapshot and the RESET record (step 5).
// Errors after the snapshot's rename wrap errCommitted.
func (e *Engine) commitRestore(st *backupState, path string, tombs []session.Tombstone, keep func(*session.Session) bool) error {
	snapDir := filepath.Join(e.cfg.DataDir, datadir.SnapshotDir)
	// appendMu keeps every other record out of the WAL until the RESET
	// took seq R. Writers that arrive meanwhile (the sweeper) wait inside
	// their shard lock, so nothing here may take a shard lock: the snapshot
	// is written from the backup file and the tombstone list, which are
	// exactly what loadRestored put in the store.
	e.appendMu.Lock()
	if err := e.Fatal(); err != nil {
		e.appendMu.Unlock()
		return err
	}
	r := e.wal.LastSeq() + 1
	walBytes := e.wal.Stats().BytesWritten
	parts := make([]partState, len(e.parts))
	for i, p := range e.parts {
		parts[i] = partState{epoch: p.epoch} // RESET restarts every partition's pseq
	}
	snapPath := filepath.Join(snapDir, snapshot.FileName(r))
	err := e.writeRestoreSnapshot(snapPath, r, parts, path, tombs, keep)
	if err != nil {
		e.appendMu.Unlock()
		return fmt.Errorf("writing the restore snapshot: %w", err)
	}
	// Commit point passed: snapPath is durable and the newest snapshot.
	_ = st.runHook("after-snapshot")
	seq := e.wal.Append(byte(session.RecordReset), (&session.Record{Type: session.RecordReset}).AppendBinary(nil))
	for i := range e.parts {
		e.parts[i].pseq = 0
	}
	e.appendMu.Unlock()
	e.lastSnapSeq.Store(r)
	e.lastSnapWAL.Store(walBytes)
	if seq != r {
		return fmt.Errorf("%w, but the RESET record got seq %d instead of %d", errCommitted, seq, r)
	}
	_ = st.runHook("after-reset")
	if err := e.wait(seq, true); err != nil {
		return fmt.Errorf("%w, but the RESET record could not be made durable: %v", errCommitted, err)
	}
	if _, err := snapshot.Prune(snapDir, 1); err != nil {
		e.log.Warn("restore: removing the pre-restore snapshots failed", "error", err.Error())
	}
	if _, err := wal.DeleteCovered(filepath.Join(e.cfg.DataDir, datadir.WALDir), r); err != nil {
		e.log.Warn("restore: WAL retention failed", "error", err.Error())
	}
	e.log.Info("restore committed", "snapshot", snapPath, "covered_seq", r)
	return nil
}

// writeRestoreSnapshot writes snapshot-<r>.snap: partition state, the
// restored tombstones, and the backup's sessions that keep accepts.
func (e *Engine) writeRestoreSnapshot(snapPath string, r uint64, parts []partState, backupPath string, tombs []session.Tombstone, keep func(*session.Session) bool) error {
	w, err := snapshot.Create(snapPath, snapshot.WriteOptions{
		Key: e.key, Cipher: e.ciph, Kind: snapshot.KindSnapshot,
		NodeID: e.node.NodeID, ClusterID: e.node.ClusterID,
		Partitions: uint32(e.node.Partitions), CoveredSeq: r,
	})
	if err != nil {
		return err
	}
	buf := make([]byte, 0, 1024)
	err = func() error {
		for i := range parts {
			if parts[i].epoch == 0 {
				continue
			}
			buf = appendPartitionEntry(buf[:0], uint16(i), parts[i])
			if err := w.Add(EntryPartition, buf); err != nil {
				return err
			}
		}
		for i := range tombs {
			buf = session.AppendTombstoneBinary(buf[:0], &tombs[i])
			if err := w.Add(EntryTombstone, buf); err != nil {
				return err
			}
		}
		return e.rangeBackup(backupPath, func(typ byte, payload []byte) error {
			if typ != EntrySession {
				return nil
			}
			s, err := session.DecodeTrustedSessionBinary(payload)
			if err != nil {
				return err
			}
			if !keep(s) {
				return nil
			}
			return w.Add(EntrySession, payload)
		})
	}()
	if err != nil {
		w.Abort()
		return err
	}
	if err := e.bk().runHook("snapshot-written"); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// loadBackupAsIs replaces the store with a backup's sessions and
// tombstones exactly as they are (rollback to the pre-restore backup).
func (e *Engine) loadBackupAsIs(path string) error {
	e.store.Reset()
	return e.rangeBackup(path, func(typ byte, payload []byte) error {
		switch typ {
		case EntrySession:
			s, err := session.DecodeTrustedSessionBinary(payload)
			if err != nil {
				return err
			}
			return e.store.LoadSession(s)
		case EntryTombstone:
			t, err := session.DecodeTombstoneBinary(payload)
			if err != nil {
				return err
			}
			return e.store.LoadTombstone(t)
		}
		return nil
	})
}

// rangeBackup streams the verified entries of a backup file. fn sees each
// entry once the chunk holding it was authenticated; the whole file is
// verified (trailer) before rangeBackup returns nil.
func (e *Engine) rangeBackup(path string, fn func(typ byte, payload []byte) error) error {
	r, err := snapshot.Open(path, e.key)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		typ, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(typ, payload); err != nil {
			return err
		}
	}
}

// inspectBackup is step 1: it reads and verifies the whole file and
// decodes every entry, without changing anything. Content problems are
// ErrInvalidBackup.
func (e *Engine) inspectBackup(path string) (*restorePlan, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidBackup, fmt.Sprintf(format, args...))
	}
	r, err := snapshot.Open(path, e.key)
	if err != nil {
		return nil, classifyBackupErr(err)
	}
	defer r.Close()
	h := r.Header()
	if h.Kind != snapshot.KindBackup {
		return nil, invalid("the file is a %s, not a backup", h.Kind)
	}
	if int(h.Partitions) != e.node.Partitions {
		return nil, invalid("the backup has %d partitions, this node has %d", h.Partitions, e.node.Partitions)
	}
	plan := &restorePlan{path: path}
	if err := json.Unmarshal(h.Meta, &plan.meta); err != nil {
		return nil, invalid("backup metadata: %v", err)
	}
	if plan.meta.BackupID != "" && !ValidBackupID(plan.meta.BackupID) {
		return nil, invalid("backup metadata names an invalid backup ID")
	}
	p := e.node.Partitions
	routed := func(id session.ID, th *session.TokenHash) bool {
		return id[8] == th[2] && id.Partition() == th.Partition(p)
	}
	for {
		typ, payload, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, classifyBackupErr(err)
		}
		switch typ {
		case EntrySession:
			s, err := session.DecodeSessionBinary(payload)
			if err != nil {
				return nil, invalid("session entry: %v", err)
			}
			if !routed(s.ID, &s.TokenHash) || s.CreatedAt != s.ID.Time() {
				return nil, invalid("session %s does not match its token hash or timestamp", s.ID)
			}
			plan.sessions++
		case EntryTombstone:
			t, err := session.DecodeTombstoneBinary(payload)
			if err != nil {
				return nil, invalid("tombstone entry: %v", err)
			}
			if !routed(t.ID, &t.TokenHash) {
				return nil, invalid("tombstone %s does not match its token hash", t.ID)
			}
			plan.tombs = append(plan.tombs, t)
		case EntryPartition:
			if _, _, _, err := DecodePartitionEntry(payload); err != nil {
				return nil, invalid("%v", err)
			}
		case EntryAPIKeys:
			plan.apiKeys = append(plan.apiKeys, payload...)
		default:
			return nil, invalid("unknown entry type %d", typ)
		}
	}
	if plan.meta.APIKeys > 0 && len(plan.apiKeys) == 0 {
		return nil, invalid("the metadata announces %d API keys but the file holds no key table", plan.meta.APIKeys)
	}
	return plan, nil
}

// classifyBackupErr makes file-content problems ErrInvalidBackup and
// leaves I/O errors as they are.
func classifyBackupErr(err error) error {
	var ce *snapshot.CorruptionError
	if errors.As(err, &ce) || errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrKeyMismatch) ||
		errors.Is(err, snapshot.ErrFormatVersion) {
		return fmt.Errorf("%w: %v", ErrInvalidBackup, err)
	}
	return err
}
