package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// ---- helpers ----

// clockConfig is testConfig with a clock the test moves.
func clockConfig(dir string) (Config, *atomic.Int64) {
	cfg := testConfig(dir)
	clock := &atomic.Int64{}
	clock.Store(time.Now().UnixMilli())
	cfg.Now = clock.Load
	return cfg, clock
}

func waitJob(t *testing.T, e *Engine, id string) RestoreJob {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		j, err := e.GetRestoreJob(id)
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		if j.Done() {
			return j
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("job %s did not finish", id)
	return RestoreJob{}
}

func restoreSync(t *testing.T, e *Engine, src RestoreSource, cb RestoreCallbacks) RestoreJob {
	t.Helper()
	j, err := e.StartRestore(src, "LOCAL_ADMIN", cb)
	if err != nil {
		t.Fatalf("start restore: %v", err)
	}
	if j.Status != JobPending || !strings.HasPrefix(j.JobID, RestoreJobIDPrefix) {
		t.Fatalf("new job %+v", j)
	}
	return waitJob(t, e, j.JobID)
}

// mustBackup creates a backup and waits until the snapshot loop has acted
// on the snapshot request the backup makes (05 §5: a snapshot, or none when
// the WAL did not grow), so tests that watch snapshots/ or the WAL see a
// settled data dir.
func mustBackup(t *testing.T, e *Engine, desc string, keys []byte, n int) BackupInfo {
	t.Helper()
	kicks := e.kicksDone.Load()
	b, err := e.Backup(BackupOptions{Description: desc, CreatedBy: "tmak-test", APIKeys: keys, APIKeyCount: n})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); e.kicksDone.Load() == kicks; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the snapshot loop did not act on the backup's snapshot request")
		}
	}
	return b
}

func validateErr(e *Engine, tok string) error {
	_, err := e.Validate(tok, false, loopback, "")
	return err
}

func wantValidate(t *testing.T, e *Engine, tok string, want error) {
	t.Helper()
	err := validateErr(e, tok)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("validate %s: got %v, want %v", tok, err, want)
	}
}

// copyDataDir copies a data dir as a crash would leave it (what was handed
// to the OS), without the LOCK file.
func copyDataDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		if rel == datadir.LockFile {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func listSnapshots(t *testing.T, dir string) []string {
	t.Helper()
	s, err := snapshot.List(filepath.Join(dir, datadir.SnapshotDir))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// resetSeqs returns the seqs of the RESET records in the WAL.
func resetSeqs(t *testing.T, dir string) []uint64 {
	t.Helper()
	key := testKey(t)
	var seqs []uint64
	_, err := wal.Replay(filepath.Join(dir, datadir.WALDir), key, wal.ReplayOptions{}, func(seq uint64, typ byte, _ []byte) error {
		if session.RecordType(typ) == session.RecordReset {
			seqs = append(seqs, seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func testKey(t *testing.T) *crypt.MasterKey {
	t.Helper()
	raw, _ := hex.DecodeString(testKeyHex)
	k, err := crypt.NewMasterKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ---- backup ----

func TestBackup_WritesVerifiedFileAndSidecarWithTheBackupObject(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	defer e.Close()
	for i := range 30 {
		create(t, e, fmt.Sprintf("token-backup-%05d", i), "u")
	}
	s := create(t, e, "token-backup-revoked", "u")
	if _, err := e.Revoke(s.ID); err != nil {
		t.Fatal(err)
	}
	keys := bytes.Repeat([]byte("k"), snapshot.MaxPayload*2+100) // spans three EntryAPIKeys fragments
	b := mustBackup(t, e, "nightly", keys, 3)

	if !ValidBackupID(b.BackupID) || b.Description != "nightly" || b.CreatedBy != "tmak-test" || b.Sessions != 30 ||
		b.Tombstones != 1 || b.APIKeys != 3 || b.Mode != "standalone" || b.ClusterID != "" || b.NodeID != e.Node().NodeID ||
		b.KeyID != e.KeyID().String() || b.Cipher != e.Cipher().String() || b.CreatedAt == 0 {
		t.Fatalf("backup object %+v", b)
	}
	path := filepath.Join(dir, datadir.BackupDir, b.BackupID+".tmbak")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if b.SizeBytes != int64(len(raw)) || b.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("size/sha256 do not describe the file: %+v", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	info, err := snapshot.Verify(path, e.key)
	if err != nil || info.Header.Kind != snapshot.KindBackup {
		t.Fatalf("verify: %v kind %v", err, info.Header.Kind)
	}
	var meta map[string]any
	if err := json.Unmarshal(info.Header.Meta, &meta); err != nil || meta["backup_id"] != b.BackupID || meta["description"] != "nightly" {
		t.Fatalf("header meta %s", info.Header.Meta)
	}
	if _, ok := meta["sha256"]; ok {
		t.Fatal("the header cannot hold the file's own hash")
	}
	var side BackupInfo
	sideRaw, _ := os.ReadFile(filepath.Join(dir, datadir.BackupDir, b.BackupID+".json"))
	if err := json.Unmarshal(sideRaw, &side); err != nil || side != b {
		t.Fatalf("sidecar %s vs %+v", sideRaw, b)
	}
	plan, err := e.inspectBackup(path)
	if err != nil || !bytes.Equal(plan.apiKeys, keys) || plan.sessions != 30 || len(plan.tombs) != 1 {
		t.Fatalf("inspect: %v keys %d sessions %d", err, len(plan.apiKeys), plan.sessions)
	}

	got, err := e.GetBackup(strings.ToUpper(b.BackupID[:5]) + strings.ToUpper(b.BackupID[5:]))
	if err != nil || got != b {
		t.Fatalf("get (IDs are case-insensitive): %+v %v", got, err)
	}
	// A crash between the file's rename and the sidecar's: rebuilt from the file.
	os.Remove(filepath.Join(dir, datadir.BackupDir, b.BackupID+".json"))
	if got, err := e.GetBackup(b.BackupID); err != nil || got != b {
		t.Fatalf("rebuilt sidecar: %+v %v", got, err)
	}
	for _, id := range []string{"tmbk-nope", "../snapshots/x", "tmbk-01jh8w3m5v00gq1t7c2r9x4bzd"} {
		if _, err := e.GetBackup(id); !errors.Is(err, ErrBackupNotFound) {
			t.Fatalf("%s: %v", id, err)
		}
	}
}

func TestBackup_ListIsNewestFirstWithPaging(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir()))
	defer e.Close()
	var ids []string
	for i := range 5 {
		ids = append(ids, mustBackup(t, e, fmt.Sprintf("b%d", i), nil, 0).BackupID)
		time.Sleep(2 * time.Millisecond)
	}
	items, total, err := e.ListBackups(1, 2)
	if err != nil || total != 5 || len(items) != 2 || items[0].BackupID != ids[4] || items[1].BackupID != ids[3] {
		t.Fatalf("page 1: %v %d %+v", err, total, items)
	}
	items, total, _ = e.ListBackups(3, 2)
	if total != 5 || len(items) != 1 || items[0].BackupID != ids[0] {
		t.Fatalf("page 3: %+v", items)
	}
	if items, _, _ := e.ListBackups(4, 2); len(items) != 0 {
		t.Fatalf("page past the end: %+v", items)
	}
}

func TestBackup_RetentionDeletesOldButKeepsNewestRetainMin(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	defer e.Close()
	var ids []string
	for i := range 4 {
		ids = append(ids, mustBackup(t, e, fmt.Sprintf("b%d", i), nil, 0).BackupID)
		time.Sleep(2 * time.Millisecond)
	}
	if del, err := e.pruneBackups(time.Now().Add(30*24*time.Hour), 0, 1); err != nil || len(del) != 0 {
		t.Fatalf("retention_days 0 keeps everything: %v %v", del, err)
	}
	if del, err := e.pruneBackups(time.Now(), 7, 1); err != nil || len(del) != 0 {
		t.Fatalf("young backups are kept: %v %v", del, err)
	}
	del, err := e.pruneBackups(time.Now().Add(8*24*time.Hour), 7, 2)
	if err != nil || len(del) != 2 || del[0] != ids[1] || del[1] != ids[0] {
		t.Fatalf("deleted %v (%v), want the two oldest", del, err)
	}
	items, total, _ := e.ListBackups(1, 10)
	if total != 2 || items[0].BackupID != ids[3] || items[1].BackupID != ids[2] {
		t.Fatalf("left %+v", items)
	}
	for _, id := range del {
		if _, err := os.Stat(filepath.Join(dir, datadir.BackupDir, id+".json")); !os.IsNotExist(err) {
			t.Fatalf("sidecar of %s left behind", id)
		}
	}
}

// ---- restore ----

func TestRestore_ReplacesSessionsKeepsAndAddsTombstonesDropsExpiredAndMergesKeys(t *testing.T) {
	dir := t.TempDir()
	cfg, clock := clockConfig(dir)
	e := mustOpen(t, cfg)
	defer func() { e.Close() }()

	var kept []string
	for i := range 20 {
		tok := fmt.Sprintf("token-kept-%05d", i)
		create(t, e, tok, fmt.Sprintf("u%d", i%3))
		kept = append(kept, tok)
	}
	revokedBefore := create(t, e, "token-revoked-before", "u")
	if _, err := e.Revoke(revokedBefore.ID); err != nil {
		t.Fatal(err)
	}
	revokedAfter := create(t, e, "token-revoked-after", "u")
	renewed := create(t, e, "token-renewed-after", "u")
	short, err := e.Create(session.CreateRequest{Token: "token-expires-before-restore", UserID: "u", TTLSeconds: 60, TTLSet: true, CreatedBy: "LOCAL_ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	backupKeys := []byte("encoded key table from the backup")
	b := mustBackup(t, e, "before changes", backupKeys, 2)

	// Changes after the backup.
	if _, err := e.Revoke(revokedAfter.ID); err != nil {
		t.Fatal(err)
	}
	renewedNow, err := e.Renew(renewed.ID, 7000)
	if err != nil {
		t.Fatal(err)
	}
	create(t, e, "token-created-after", "u")
	clock.Add(5 * 60 * 1000) // the short session is past expiry + grace

	var merged []byte
	job := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{
		KeyTable:  func() ([]byte, int, error) { return []byte("current key table"), 1, nil },
		MergeKeys: func(data []byte) (int, error) { merged = append([]byte(nil), data...); return 2, nil },
	})
	if job.Status != JobSucceeded || job.Progress != 100 || job.BackupID != b.BackupID || job.AddedAPIKeys != 2 ||
		job.RestoredSessions != 21 || job.FinishedAt < job.StartedAt || e.Maintenance() {
		t.Fatalf("job %+v (maintenance %v)", job, e.Maintenance())
	}
	if !bytes.Equal(merged, backupKeys) {
		t.Fatalf("MergeKeys got %q", merged)
	}
	pre, err := e.GetBackup(job.PreRestoreBackupID)
	if err != nil || pre.Description != "pre-restore" || pre.Sessions != 23 || pre.APIKeys != 1 {
		t.Fatalf("pre-restore backup %+v %v", pre, err)
	}
	if latest, _ := e.GetRestoreJob("latest"); latest != job {
		t.Fatalf("latest %+v", latest)
	}

	check := func(e *Engine) {
		t.Helper()
		for _, tok := range kept {
			wantValidate(t, e, tok, nil)
		}
		wantValidate(t, e, "token-revoked-before", session.ErrRevoked) // backup tombstone added
		wantValidate(t, e, "token-revoked-after", session.ErrRevoked)  // current tombstone kept
		wantValidate(t, e, "token-created-after", session.ErrNotFound) // not in the backup
		wantValidate(t, e, "token-expires-before-restore", session.ErrNotFound)
		got, err := e.Get(renewed.ID)
		if err != nil || got.Version != renewed.Version || got.ExpiresAt != renewed.ExpiresAt || got.ExpiresAt == renewedNow.ExpiresAt {
			t.Fatalf("renewed session is not the backup's: %+v %v", got, err)
		}
		if _, err := e.Get(short.Session.ID); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("expired session restored: %v", err)
		}
		if err := e.store.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
	check(e)
	st := e.Store().Stats()
	if st.Live != 21 || st.Tombstones != 2 {
		t.Fatalf("stats %+v", st)
	}

	// The restore snapshot is the only one, covers the RESET, and recovery
	// from it (plus the records after it) gives the restored state.
	snaps := listSnapshots(t, dir)
	resets := resetSeqs(t, dir)
	if len(snaps) != 1 || len(resets) != 1 {
		t.Fatalf("snapshots %v, RESET seqs %v", snaps, resets)
	}
	if h, _ := snapshot.ReadHeader(snaps[0]); h.CoveredSeq != resets[0] {
		t.Fatalf("restore snapshot covers %d, RESET is seq %d", h.CoveredSeq, resets[0])
	}
	restored := state(e)
	e.Close()
	e = mustOpen(t, cfg)
	equalState(t, restored, state(e))
	check(e)

	// Writes after the restore survive a crash (no shutdown snapshot).
	after := create(t, e, "token-after-restore", "v")
	if _, err := e.Revoke(e2id(t, e, kept[0])); err != nil {
		t.Fatal(err)
	}
	want := state(e)
	e.Close()
	e = mustOpen(t, cfg)
	equalState(t, want, state(e))
	wantValidate(t, e, kept[0], session.ErrRevoked)
	if _, err := e.Get(after.ID); err != nil {
		t.Fatal(err)
	}
}

func e2id(t *testing.T, e *Engine, tok string) session.ID {
	t.Helper()
	s, err := e.Validate(tok, false, loopback, "")
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func TestRestore_TokenRevokedAfterTheBackupNeverValidatesAgain(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	s := create(t, e, "token-revoke-me-please", "u")
	b := mustBackup(t, e, "", nil, 0)
	if _, err := e.Revoke(s.ID); err != nil {
		t.Fatal(err)
	}
	if j := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{}); j.Status != JobSucceeded {
		t.Fatalf("%+v", j)
	}
	wantValidate(t, e, "token-revoke-me-please", session.ErrRevoked)
	if _, err := e.Create(session.CreateRequest{Token: "token-revoke-me-please", UserID: "u", CreatedBy: "x"}); !errors.Is(err, session.ErrTokenConflict) {
		t.Fatalf("revoked token reusable after restore: %v", err)
	}
	// Restoring the same backup again, and recovering, changes nothing.
	if j := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{}); j.Status != JobSucceeded {
		t.Fatalf("%+v", j)
	}
	wantValidate(t, e, "token-revoke-me-please", session.ErrRevoked)
	e.Close()
	e = mustOpen(t, testConfig(dir))
	defer e.Close()
	wantValidate(t, e, "token-revoke-me-please", session.ErrRevoked)
}

// TestRestore_CrashBeforeCommitRecoversPreRestoreStateAfterItTheRestoredOne
// copies the data dir at each stage (what a crash would leave) and
// recovers each copy.
func TestRestore_CrashBeforeCommitRecoversPreRestoreStateAfterItTheRestoredOne(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	defer e.Close()
	for i := range 50 {
		create(t, e, fmt.Sprintf("token-crash-%05d", i), "u")
	}
	if _, err := e.Snapshot(); err != nil { // an older snapshot plus a WAL tail
		t.Fatal(err)
	}
	b := mustBackup(t, e, "", nil, 0)
	s := create(t, e, "token-crash-after-backup", "u")
	x := create(t, e, "token-crash-revoked-later", "u")
	if _, err := e.Revoke(x.ID); err != nil {
		t.Fatal(err)
	}
	e.Revoke(s.ID)
	create(t, e, "token-crash-live-after", "u")
	pre := state(e)

	images := map[string]string{}
	e.setRestoreHook(func(stage string) error {
		images[stage] = copyDataDir(t, dir)
		return nil
	})
	j := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{})
	if j.Status != JobSucceeded {
		t.Fatalf("%+v", j)
	}
	restored := state(e)
	if strings.Join(pre, "\n") == strings.Join(restored, "\n") {
		t.Fatal("the restore changed nothing; the test proves nothing")
	}
	for stage, want := range map[string][]string{
		"drained": pre, "before-commit": pre, "snapshot-written": pre,
		"after-snapshot": restored, "after-reset": restored,
	} {
		img, ok := images[stage]
		if !ok {
			t.Fatalf("stage %s never ran", stage)
		}
		c := mustOpen(t, testConfig(img))
		got := state(c)
		c.Close()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("crash at %s: recovered %d entries, want %d (pre-restore %d, restored %d)", stage, len(got), len(want), len(pre), len(restored))
		}
	}
}

func TestRestore_FailureBeforeCommitPutsThePreRestoreStateBack(t *testing.T) {
	for _, stage := range []string{"before-commit", "snapshot-written"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			e := mustOpen(t, testConfig(dir))
			defer e.Close()
			for i := range 20 {
				create(t, e, fmt.Sprintf("token-rollback-%05d", i), "u")
			}
			b := mustBackup(t, e, "", nil, 0)
			s := create(t, e, "token-rollback-after", "u")
			r := create(t, e, "token-rollback-revoked", "u")
			e.Revoke(r.ID)
			pre := state(e)
			snapsBefore := listSnapshots(t, dir)

			e.setRestoreHook(func(st string) error {
				if st == stage {
					return errors.New("injected failure")
				}
				return nil
			})
			j := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{})
			if j.Status != JobFailed || !strings.Contains(j.Message, "injected failure") || !strings.Contains(j.Message, "pre-restore state was put back") || e.Maintenance() {
				t.Fatalf("%+v", j)
			}
			equalState(t, pre, state(e))
			if err := e.store.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			if got := listSnapshots(t, dir); strings.Join(got, ",") != strings.Join(snapsBefore, ",") {
				t.Fatalf("snapshots changed: %v → %v", snapsBefore, got)
			}
			if len(resetSeqs(t, dir)) != 0 {
				t.Fatal("a RESET reached the WAL")
			}
			wantValidate(t, e, "token-rollback-revoked", session.ErrRevoked)
			if _, err := e.Get(s.ID); err != nil {
				t.Fatal(err)
			}
			create(t, e, "token-rollback-writes-go-on", "u") // appendMu was released
			pre = state(e)
			e.Close()
			e2 := mustOpen(t, testConfig(dir))
			defer e2.Close()
			equalState(t, pre, state(e2))
		})
	}
}

func TestRestore_MergeKeysFailureChangesNoSession(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir()))
	defer e.Close()
	b := mustBackup(t, e, "", []byte("keys"), 1)
	create(t, e, "token-merge-fails-01", "u")
	pre := state(e)
	j := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{
		MergeKeys: func([]byte) (int, error) { return 0, errors.New("control store unavailable") },
	})
	if j.Status != JobFailed || !strings.Contains(j.Message, "control store unavailable") || j.PreRestoreBackupID == "" {
		t.Fatalf("%+v", j)
	}
	equalState(t, pre, state(e))
}

func TestRestore_ConcurrentBackupOrRestoreIsRefusedAndBusinessIsGated(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir()))
	defer e.Close()
	create(t, e, "token-concurrent-001", "u")
	b := mustBackup(t, e, "", nil, 0)
	reached, release := make(chan struct{}), make(chan struct{})
	e.setRestoreHook(func(stage string) error {
		if stage == "before-commit" {
			close(reached)
			<-release
		}
		return nil
	})
	j, err := e.StartRestore(RestoreSource{BackupID: b.BackupID}, "LOCAL_ADMIN", RestoreCallbacks{})
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	if !e.Maintenance() || e.EnterBusiness() || !e.Busy() {
		t.Fatalf("maintenance %v busy %v", e.Maintenance(), e.Busy())
	}
	if _, err := e.Backup(BackupOptions{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("backup during restore: %v", err)
	}
	if _, err := e.StartRestore(RestoreSource{BackupID: b.BackupID}, "x", RestoreCallbacks{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second restore: %v", err)
	}
	if _, err := e.PruneBackups(1, 1); !errors.Is(err, ErrBusy) {
		t.Fatalf("prune during restore: %v", err)
	}
	if cur, _ := e.GetRestoreJob(j.JobID); cur.Status != JobRunning || cur.Progress < 70 {
		t.Fatalf("running job %+v", cur)
	}
	close(release)
	if j := waitJob(t, e, j.JobID); j.Status != JobSucceeded {
		t.Fatalf("%+v", j)
	}
	if e.Maintenance() || !e.EnterBusiness() {
		t.Fatal("maintenance still on")
	}
	e.ExitBusiness()
	if _, err := e.Backup(BackupOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestRestore_WaitsForAdmittedBusinessRequestsBeforeTouchingTheStore(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir()))
	defer e.Close()
	b := mustBackup(t, e, "", nil, 0)
	if !e.EnterBusiness() { // a request in flight
		t.Fatal("not admitted")
	}
	var drained atomic.Bool
	e.setRestoreHook(func(stage string) error {
		if stage == "drained" {
			drained.Store(true)
		}
		return nil
	})
	j, err := e.StartRestore(RestoreSource{BackupID: b.BackupID}, "LOCAL_ADMIN", RestoreCallbacks{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !e.Maintenance() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if drained.Load() || !e.Maintenance() || e.EnterBusiness() {
		t.Fatalf("restore went on with a request in flight (drained %v)", drained.Load())
	}
	e.ExitBusiness()
	if j := waitJob(t, e, j.JobID); j.Status != JobSucceeded || !drained.Load() {
		t.Fatalf("%+v", j)
	}
}

func TestRestore_RejectsBadFilesBeforeChangingAnything(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	defer e.Close()
	create(t, e, "token-reject-000001", "u")
	b := mustBackup(t, e, "", []byte("keys"), 1)
	good, _ := os.ReadFile(filepath.Join(dir, datadir.BackupDir, b.BackupID+".tmbak"))
	snap, err := e.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snapRaw, _ := os.ReadFile(snap.Path)

	otherDir := t.TempDir()
	ocfg := testConfig(otherDir)
	ocfg.Getenv = func(k string) string {
		if k == "TOKMESH_ENCRYPTION_KEY" {
			return strings.Repeat("ab", 32)
		}
		return ""
	}
	o := mustOpen(t, ocfg)
	ob := mustBackup(t, o, "", nil, 0)
	otherRaw, _ := os.ReadFile(filepath.Join(otherDir, datadir.BackupDir, ob.BackupID+".tmbak"))
	o.Close()

	pcfg := testConfig(t.TempDir())
	pcfg.Partitions = 64
	p := mustOpen(t, pcfg)
	pb := mustBackup(t, p, "", nil, 0)
	partRaw, _ := os.ReadFile(filepath.Join(p.cfg.DataDir, datadir.BackupDir, pb.BackupID+".tmbak"))
	p.Close()

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x01
	pre := state(e)
	for name, content := range map[string][]byte{
		"flipped byte": flipped, "truncated": good[:len(good)-10], "trailing byte": append(bytes.Clone(good), 0),
		"bad magic": append([]byte("NOTMAGIC"), good[8:]...), "empty": nil, "other key": otherRaw,
		"a snapshot": snapRaw, "other partition count": partRaw,
	} {
		f, err := e.CreateUploadFile()
		if err != nil {
			t.Fatal(err)
		}
		f.Write(content)
		f.Close()
		_, err = e.StartRestore(RestoreSource{Upload: f.Name()}, "x", RestoreCallbacks{
			MergeKeys: func([]byte) (int, error) { t.Error("keys merged from a bad file"); return 0, nil },
		})
		if !errors.Is(err, ErrInvalidBackup) {
			t.Errorf("%s: got %v, want ErrInvalidBackup", name, err)
		}
		if _, serr := os.Stat(f.Name()); !os.IsNotExist(serr) {
			t.Errorf("%s: upload not removed", name)
		}
	}
	if _, err := e.StartRestore(RestoreSource{BackupID: "tmbk-01jh8w3m5v00gq1t7c2r9x4bzd"}, "x", RestoreCallbacks{}); !errors.Is(err, ErrBackupNotFound) {
		t.Fatalf("unknown backup: %v", err)
	}
	equalState(t, pre, state(e))
	if _, total, _ := e.ListBackups(1, 100); total != 1 {
		t.Fatalf("a pre-restore backup was taken for a rejected file (%d backups)", total)
	}
	if _, err := e.GetRestoreJob("latest"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("latest without any job: %v", err)
	}
}

func TestRestore_FromAnUploadedFile(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir))
	defer e.Close()
	create(t, e, "token-upload-restore-1", "u")
	b := mustBackup(t, e, "", nil, 0)
	raw, _ := os.ReadFile(filepath.Join(dir, datadir.BackupDir, b.BackupID+".tmbak"))
	create(t, e, "token-upload-restore-2", "u")
	f, err := e.CreateUploadFile()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(f, bytes.NewReader(raw))
	f.Close()
	j := restoreSync(t, e, RestoreSource{Upload: f.Name()}, RestoreCallbacks{})
	if j.Status != JobSucceeded || j.BackupID != b.BackupID || j.RestoredSessions != 1 {
		t.Fatalf("%+v", j)
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Fatal("upload not removed after the job")
	}
	wantValidate(t, e, "token-upload-restore-1", nil)
	wantValidate(t, e, "token-upload-restore-2", session.ErrNotFound)
}

func TestRestore_CloseWaitsForTheJob(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir()))
	b := mustBackup(t, e, "", nil, 0)
	create(t, e, "token-close-during-restore", "u")
	reached, release := make(chan struct{}), make(chan struct{})
	e.setRestoreHook(func(stage string) error {
		if stage == "drained" {
			close(reached)
			<-release
		}
		return nil
	})
	finished := make(chan RestoreJob, 1)
	if _, err := e.StartRestore(RestoreSource{BackupID: b.BackupID}, "x", RestoreCallbacks{Finished: func(j RestoreJob) { finished <- j }}); err != nil {
		t.Fatal(err)
	}
	<-reached
	closed := make(chan error)
	go func() { closed <- e.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while the restore job ran")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	j := <-finished
	if j.Status != JobFailed || !strings.Contains(j.Message, "shutting down") {
		t.Fatalf("%+v", j)
	}
	if _, err := e.StartRestore(RestoreSource{BackupID: b.BackupID}, "x", RestoreCallbacks{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("restore after close: %v", err)
	}
}

// TestRestore_UnderLoadWithSweeper runs restores while business writers
// (through the gate) and the sweeper keep going: acknowledged revocations
// never validate again, in memory and after recovery, and sessions created
// after the last restore survive.
func TestRestore_UnderLoadWithSweeper(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SweepInterval = 5 * time.Millisecond
	cfg.Session.ExpiredGrace = -1
	e := mustOpen(t, cfg)
	for i := range 200 {
		create(t, e, fmt.Sprintf("token-load-base-%05d", i), fmt.Sprintf("u%d", i%5))
	}
	b := mustBackup(t, e, "", nil, 0)

	var (
		restoresDone atomic.Int64
		stop         = make(chan struct{})
		done         = make(chan struct{})
		mu           = make(chan struct{}, 1)
		revoked      []string
		survivors    []string
	)
	const restores = 3
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !e.EnterBusiness() {
					time.Sleep(time.Millisecond)
					continue
				}
				after := restoresDone.Load() == restores
				tok := fmt.Sprintf("token-load-w%d-%06d", w, i)
				ttl := int64(3600)
				if i%4 == 0 {
					ttl = 1 // work for the sweeper
				}
				res, err := e.Create(session.CreateRequest{Token: tok, UserID: fmt.Sprintf("w%d", w), TTLSeconds: ttl, TTLSet: true, CreatedBy: "x"})
				if err == nil && i%3 == 0 {
					if ok, rerr := e.Revoke(res.Session.ID); rerr == nil && ok {
						mu <- struct{}{}
						revoked = append(revoked, tok)
						<-mu
					}
				} else if err == nil && after && ttl > 1 {
					mu <- struct{}{}
					survivors = append(survivors, tok)
					<-mu
				}
				e.ExitBusiness()
			}
		}()
	}
	for range restores {
		time.Sleep(30 * time.Millisecond)
		if j := restoreSync(t, e, RestoreSource{BackupID: b.BackupID}, RestoreCallbacks{}); j.Status != JobSucceeded {
			t.Fatalf("%+v", j)
		}
		restoresDone.Add(1)
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	for range 4 {
		<-done
	}
	check := func(e *Engine) {
		t.Helper()
		for _, tok := range revoked {
			if err := validateErr(e, tok); err == nil {
				t.Fatalf("revoked %s validates", tok)
			}
		}
		for _, tok := range survivors {
			wantValidate(t, e, tok, nil)
		}
		if err := e.store.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
	check(e)
	if len(revoked) == 0 || len(survivors) == 0 {
		t.Fatalf("the load did nothing: %d revoked, %d survivors", len(revoked), len(survivors))
	}
	e.Close()
	e = mustOpen(t, cfg)
	defer e.Close()
	check(e)
}

func TestBusinessGate_RequestAdmittedBeforeCloseMayExitAfterIt(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir()))
	if !e.EnterBusiness() || e.Maintenance() || e.Busy() {
		t.Fatal("gate closed on an idle engine")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e.ExitBusiness() // must not panic
	if !e.EnterBusiness() {
		t.Fatal("gate state lost")
	}
	e.ExitBusiness()
}

// TestBackup_TriggersASnapshot: backup creation is a snapshot trigger
// (05 §5) even with the timer and WAL-growth triggers off; a second backup
// with no write in between adds no snapshot.
func TestBackup_TriggersASnapshot(t *testing.T) {
	dir := t.TempDir()
	e := mustOpen(t, testConfig(dir)) // interval and wal_threshold 0
	defer e.Close()
	for i := range 5 {
		create(t, e, fmt.Sprintf("token-kick-%05d", i), "u")
	}
	snapDir := filepath.Join(dir, datadir.SnapshotDir)
	waitSnapshots := func(want int) []string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			files, err := snapshot.List(snapDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) == want || time.Now().After(deadline) {
				return files
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if files := waitSnapshots(0); len(files) != 0 {
		t.Fatalf("snapshots before any backup: %v", files)
	}
	mustBackup(t, e, "first", nil, 0)
	files := waitSnapshots(1)
	if len(files) != 1 {
		t.Fatalf("after a backup: %d snapshots, want 1", len(files))
	}
	h, err := snapshot.ReadHeader(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if h.CoveredSeq != e.wal.LastSeq() {
		t.Fatalf("snapshot covers seq %d, WAL is at %d", h.CoveredSeq, e.wal.LastSeq())
	}
	mustBackup(t, e, "second", nil, 0)
	time.Sleep(300 * time.Millisecond)
	if files := waitSnapshots(1); len(files) != 1 {
		t.Fatalf("a backup with nothing new to cover wrote a snapshot: %v", files)
	}
}
