package engine

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	case EntryAPIKeys:
		return "api_keys"
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
func (e *Engine) Snapshot() (res SnapshotResult, err error) {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if err := e.Fatal(); err != nil {
		return SnapshotResult{}, err
	}
	start := time.Now()
	if f := e.cfg.OnSnapshot; f != nil {
		defer func() { f(time.Since(start), err) }()
	}
	snapDir := filepath.Join(e.cfg.DataDir, datadir.SnapshotDir)
	// Read the position under appendMu so no record is half-assigned.
	e.appendMu.Lock()
	covered := e.wal.LastSeq()
	parts := append([]partState(nil), e.parts...)
	e.appendMu.Unlock()
	walBytes := e.wal.Stats().BytesWritten

	path := filepath.Join(snapDir, snapshot.FileName(covered))
	res, err = e.writeSnapshotFile(path, snapshot.KindSnapshot, covered, parts, nil)
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
// One goroutine reads, decrypts and hashes the file; GOMAXPROCS workers
// decode entries and insert them (shards lock independently). The file's
// trailer hash is only known at the end, so a corrupt file may leave partial
// state: the caller resets the store before trying another.
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
	if info, err := snapshot.Inspect(path); err == nil {
		e.store.Reserve(int(info.Trailer.Counts[EntrySession]))
	}

	// The reading goroutine verifies and decompresses whole chunks; the
	// workers walk their entries.
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan []byte, workers)
	free := make(chan []byte, workers*2+1)
	var (
		wg        sync.WaitGroup
		nSess     atomic.Int64
		nTomb     atomic.Int64
		failMu    sync.Mutex
		workerErr error
	)
	fail := func(err error) {
		failMu.Lock()
		if workerErr == nil {
			workerErr = err
		}
		failMu.Unlock()
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld := e.store.NewLoader()
			for chunk := range work {
				var sess, tomb int64
				for rest := chunk; len(rest) > 0; {
					var typ byte
					var p []byte
					typ, p, rest = snapshot.ParseEntry(rest)
					switch typ {
					case EntrySession:
						if err := ld.LoadSessionBinary(p); err != nil {
							fail(fmt.Errorf("session entry: %w", err))
						}
						sess++
					case EntryTombstone:
						t, err := session.DecodeTombstoneBinary(p)
						if err == nil {
							err = e.store.LoadTombstone(t)
						}
						if err != nil {
							fail(fmt.Errorf("tombstone entry: %w", err))
						}
						tomb++
					case EntryPartition:
						part, epoch, pseq, err := DecodePartitionEntry(p)
						if err != nil {
							fail(err)
						} else if int(part) < len(e.parts) {
							e.parts[part] = partState{epoch: epoch, pseq: pseq} // one entry per partition
						}
					default:
						fail(fmt.Errorf("unknown snapshot entry type %d", typ))
					}
				}
				nSess.Add(sess)
				nTomb.Add(tomb)
				select {
				case free <- chunk[:0]:
				default:
				}
			}
		}()
	}
	var rerr error
	for {
		var buf []byte
		select {
		case buf = <-free:
		default:
		}
		chunk, err := r.NextChunk(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
		work <- chunk
	}
	close(work)
	wg.Wait()
	if err := cmp.Or(rerr, workerErr); err != nil {
		return 0, 0, 0, err
	}
	return int(nSess.Load()), int(nTomb.Load()), h.CoveredSeq, nil
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
