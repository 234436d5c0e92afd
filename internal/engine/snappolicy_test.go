package engine

import (
	"fmt"
	"testing"
	"time"
)

func TestSetSnapshotPolicy_EnablesATriggerThatWasOffAtOpen(t *testing.T) {
	e := mustOpen(t, testConfig(t.TempDir())) // both triggers off
	defer e.Close()
	if iv, th := e.SnapshotPolicy(); iv != 0 || th != 0 {
		t.Fatalf("policy at open = %v, %d", iv, th)
	}
	for i := range 20 {
		create(t, e, fmt.Sprintf("token-snap-policy-%04d", i), "u")
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if e.lastSnapSeq.Load() != 0 {
		t.Fatal("snapshot taken with every trigger off")
	}
	e.SetSnapshotPolicy(0, 1) // one WAL byte
	if iv, th := e.SnapshotPolicy(); iv != 0 || th != 1 {
		t.Fatalf("policy = %v, %d", iv, th)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.lastSnapSeq.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no snapshot after lowering the WAL threshold")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.SetSnapshotPolicy(-time.Second, -1)
	if iv, th := e.SnapshotPolicy(); iv != 0 || th != 0 {
		t.Fatalf("negative policy stored as %v, %d", iv, th)
	}
}

// writeWALBytes creates sessions until this process's WAL writer has
// written at least n bytes, and syncs.
func writeWALBytes(t *testing.T, e *Engine, prefix string, n int64) {
	t.Helper()
	for i := 0; e.wal.Stats().BytesWritten < n; i++ {
		create(t, e, fmt.Sprintf("token-%s-%06d", prefix, i), "u")
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
}

// waitSnapshot waits up to d for a snapshot covering more than seq.
func waitSnapshot(e *Engine, seq uint64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for e.lastSnapSeq.Load() <= seq {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

const testWALThreshold = 64 << 10

// The WAL-growth trigger counts the WAL since the last snapshot, also the
// part written before a restart (05-storage §5).
func TestSnapshotWALThreshold_CountsWALWrittenBeforeARestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotWALThreshold = testWALThreshold
	e := mustOpen(t, cfg)
	writeWALBytes(t, e, "before", testWALThreshold*6/10)
	if e.lastSnapSeq.Load() != 0 {
		t.Fatal("snapshot taken below the threshold")
	}
	e.Close() // no shutdown snapshot: the WAL since the last one stays

	e = mustOpen(t, cfg)
	defer e.Close()
	if waitSnapshot(e, 0, 1500*time.Millisecond) {
		t.Fatal("snapshot taken at 60% of the threshold")
	}
	writeWALBytes(t, e, "after", testWALThreshold*5/10) // 110% in all
	if !waitSnapshot(e, 0, 5*time.Second) {
		t.Fatalf("no snapshot with %d WAL bytes before and %d after the restart (threshold %d)",
			-e.lastSnapWAL.Load(), e.wal.Stats().BytesWritten, testWALThreshold)
	}
}

func TestSnapshotWALThreshold_NoSnapshotWhileTheWALAcrossRestartsStaysUnder(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SnapshotWALThreshold = testWALThreshold
	e := mustOpen(t, cfg)
	writeWALBytes(t, e, "before", testWALThreshold*3/10)
	e.Close()

	e = mustOpen(t, cfg)
	defer e.Close()
	writeWALBytes(t, e, "after", testWALThreshold*3/10) // 60% in all
	if waitSnapshot(e, 0, 2500*time.Millisecond) {
		t.Fatal("snapshot taken at 60% of the threshold")
	}
}

// A node that restarts with more WAL since its last snapshot than the
// threshold snapshots right after recovery, without waiting for new writes.
func TestSnapshotWALThreshold_AlreadyPassedAtRestartSnapshotsAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	e := mustOpen(t, cfg) // threshold off while writing
	create(t, e, "token-covered-000", "u")
	if _, err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	covered := e.lastSnapSeq.Load()
	writeWALBytes(t, e, "tail", testWALThreshold*12/10)
	e.Close()

	cfg.SnapshotWALThreshold = testWALThreshold
	e = mustOpen(t, cfg)
	defer e.Close()
	if got := e.Recovery().CoveredSeq; got != covered {
		t.Fatalf("recovered from covered_seq %d, want %d", got, covered)
	}
	if !waitSnapshot(e, covered, 5*time.Second) {
		t.Fatal("no snapshot after recovering a WAL tail above the threshold")
	}
}

// The interval timer runs from the last snapshot, not from the start of
// this process: a node whose last snapshot is already older than the
// interval snapshots at the first check after recovery.
func TestSnapshotInterval_RunsFromTheLastSnapshotAcrossARestart(t *testing.T) {
	const interval = 3 * time.Second
	dir := t.TempDir()
	cfg := testConfig(dir)
	e := mustOpen(t, cfg)
	create(t, e, "token-interval-000", "u")
	if _, err := e.Snapshot(); err != nil {
		t.Fatal(err)
	}
	snappedAt := time.Now()
	covered := e.lastSnapSeq.Load()
	create(t, e, "token-interval-001", "u")
	e.Close()

	// Fresh snapshot: a restart does not snapshot early.
	cfg.SnapshotInterval = time.Minute
	e = mustOpen(t, cfg)
	if waitSnapshot(e, covered, 1500*time.Millisecond) {
		t.Fatal("snapshot taken right after a restart although the last one is fresh")
	}
	e.Close()

	time.Sleep(time.Until(snappedAt.Add(interval)))
	cfg.SnapshotInterval = interval
	opened := time.Now()
	e = mustOpen(t, cfg)
	defer e.Close()
	if !waitSnapshot(e, covered, 2500*time.Millisecond) {
		t.Fatalf("no snapshot %v after a restart whose last snapshot was %v old (interval %v)",
			time.Since(opened), opened.Sub(snappedAt), interval)
	}
}
