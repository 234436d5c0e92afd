package engine

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Snapshot entry types (the chunk payload codec is session's binary format).
const (
	EntrySession   byte = 1
	EntryTombstone byte = 2
	EntryPartition byte = 3 // u16 partition, uvarint epoch, uvarint pseq
)

// EntryName names a snapshot entry type for tools.
func EntryName(t byte) string {
	switch t {
	case EntrySession:
		return "session"
	case EntryTombstone:
		return "tombstone"
	case EntryPartition:
		return "partition"
	}
	return fmt.Sprintf("entry(%d)", t)
}

// NewNodeID returns "tmnd-" + a fresh lower-case ULID.
func NewNodeID() (string, error) {
	id, err := ulid.New(ulid.Timestamp(time.Now()), rand.Reader)
	if err != nil {
		return "", err
	}
	return "tmnd-" + strings.ToLower(id.String()), nil
}

// SnapshotResult describes a written snapshot.
type SnapshotResult struct {
	Path       string
	CoveredSeq uint64
	Sessions   int
	Tombstones int
	Duration   time.Duration
	Deleted    int // WAL segments removed by retention
}

// Snapshot writes a consistent snapshot while writes continue: covered_seq
// is the WAL seq when it starts, shards are copied one at a time under their
// read lock, and replaying the WAL after covered_seq over it yields the live
// state because replay is idempotent under the version rules.
func (e *Engine) Snapshot() (SnapshotResult, error) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if err := e.Fatal(); err != nil {
		return SnapshotResult{}, err
	}
	start := time.Now()
	snapDir := filepath.Join(e.cfg.DataDir, datadir.SnapshotDir)
	// Read the position under appendMu so no record is half-assigned.
	e.appendMu.Lock()
	covered := e.wal.LastSeq()
	parts := append([]partState(nil), e.parts...)
	e.appendMu.Unlock()
	walBytes := e.wal.Stats().BytesWritten

	path := filepath.Join(snapDir, snapshot.FileName(covered))
	res, err := e.writeSnapshotFile(path, snapshot.KindSnapshot, covered, parts, nil)
	if err != nil {
		return res, err
	}
	e.lastSnapSeq.Store(covered)
	e.lastSnapWAL.Store(walBytes)

	// Retention: keep the newest N snapshots, then drop WAL segments that the
	// oldest retained snapshot covers.
	if _, err := snapshot.Prune(snapDir, e.cfg.SnapshotRetain); err != nil {
		e.log.Warn("snapshot retention failed", "error", err.Error())
	}
	if remaining, err := snapshot.List(snapDir); err == nil && len(remaining) > 0 {
		oldest := remaining[len(remaining)-1]
		if h, err := snapshot.ReadHeader(oldest); err == nil {
			n, err := wal.DeleteCovered(filepath.Join(e.cfg.DataDir, datadir.WALDir), h.CoveredSeq)
			if err != nil {
				e.log.Warn("WAL retention failed", "error", err.Error())
			}
			res.Deleted = n
		}
	}
	res.Duration = time.Since(start)
	e.log.Info("snapshot written", "file", path, "covered_seq", covered, "sessions", res.Sessions,
		"tombstones", res.Tombstones, "duration_ms", res.Duration.Milliseconds(), "wal_segments_deleted", res.Deleted)
	return res, nil
}

func (e *Engine) writeSnapshotFile(path string, kind snapshot.Kind, covered uint64, parts []partState, meta []byte) (SnapshotResult, error) {
	res := SnapshotResult{Path: path, CoveredSeq: covered}
	w, err := snapshot.Create(path, snapshot.WriteOptions{
		Key: e.key, Cipher: e.ciph, Kind: kind,
		NodeID: e.node.NodeID, ClusterID: e.node.ClusterID,
		Partitions: uint32(e.node.Partitions), CoveredSeq: covered, Meta: meta,
	})
	if err != nil {
		return res, err
	}
	buf := make([]byte, 0, 1024)
	var addErr error
	for i := range parts {
		if parts[i].epoch == 0 && parts[i].pseq == 0 {
			continue
		}
		buf = binary.BigEndian.AppendUint16(buf[:0], uint16(i))
		buf = binary.AppendUvarint(buf, parts[i].epoch)
		buf = binary.AppendUvarint(buf, parts[i].pseq)
		if err := w.Add(EntryPartition, buf); err != nil {
			w.Abort()
			return res, err
		}
	}
	for i := 0; i < e.store.NumShards() && addErr == nil; i++ {
		e.store.RangeShard(i, func(s *session.Session) {
			if addErr != nil {
				return
			}
			buf = session.AppendSessionBinary(buf[:0], s)
			addErr = w.Add(EntrySession, buf)
			res.Sessions++
		}, func(t *session.Tombstone) {
			if addErr != nil {
				return
			}
			buf = session.AppendTombstoneBinary(buf[:0], t)
			addErr = w.Add(EntryTombstone, buf)
			res.Tombstones++
		})
	}
	if addErr != nil {
		w.Abort()
		return res, addErr
	}
	if err := w.Commit(); err != nil {
		return res, err
	}
	return res, nil
}

// loadSnapshot reads and applies a snapshot file into the (empty) store.
// The file's trailer hash is only known at the end, so a corrupt file may
// leave partial state: the caller resets the store before trying another.
func (e *Engine) loadSnapshot(path string) (sessions, tombstones int, covered uint64, err error) {
	r, err := snapshot.Open(path, e.key)
	if err != nil {
		return 0, 0, 0, err
	}
	defer r.Close()
	h := r.Header()
	if int(h.Partitions) != e.node.Partitions {
		return 0, 0, 0, fmt.Errorf("snapshot has %d partitions, data dir has %d", h.Partitions, e.node.Partitions)
	}
	for {
		typ, payload, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return sessions, tombstones, h.CoveredSeq, nil
			}
			return 0, 0, 0, err
		}
		switch typ {
		case EntrySession:
			s, err := session.DecodeSessionBinary(payload)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("session entry: %w", err)
			}
			if err := e.store.LoadSession(s); err != nil {
				return 0, 0, 0, err
			}
			sessions++
		case EntryTombstone:
			t, err := session.DecodeTombstoneBinary(payload)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("tombstone entry: %w", err)
			}
			if err := e.store.LoadTombstone(t); err != nil {
				return 0, 0, 0, err
			}
			tombstones++
		case EntryPartition:
			p, epoch, pseq, err := DecodePartitionEntry(payload)
			if err != nil {
				return 0, 0, 0, err
			}
			if int(p) < len(e.parts) {
				e.parts[p] = partState{epoch: epoch, pseq: pseq}
			}
		default:
			return 0, 0, 0, fmt.Errorf("unknown snapshot entry type %d", typ)
		}
	}
}

// DecodePartitionEntry decodes an EntryPartition payload.
func DecodePartitionEntry(b []byte) (partition uint16, epoch, pseq uint64, err error) {
	if len(b) < 2 {
		return 0, 0, 0, errors.New("partition entry too short")
	}
	partition = binary.BigEndian.Uint16(b)
	b = b[2:]
	epoch, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, 0, errors.New("partition entry: bad epoch")
	}
	pseq, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return 0, 0, 0, errors.New("partition entry: bad pseq")
	}
	return partition, epoch, pseq, nil
}
