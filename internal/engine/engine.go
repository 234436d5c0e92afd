// Package engine is the apply path of a TokMesh node: it owns the session
// store, the WAL writer and the snapshotter, and recovers them at start.
//
// Invariants:
//   - Every accepted change is journaled inside the store's critical section,
//     so WAL order equals apply order; rejected requests write nothing.
//   - A caller is acknowledged only after the WAL reached the durability its
//     sync mode promises; revocations wait for an fsync in every mode when
//     storage.wal.sync_revocations is on.
//   - Recovery loads the newest valid snapshot and replays the WAL tail in
//     seq order; a torn tail in the last segment is truncated, any other
//     corruption refuses to start (exit 65).
package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/gcfloor"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/snapshot"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Config is everything the engine needs; the server fills it from the typed
// configuration (08-config).
type Config struct {
	DataDir    string
	NodeID     string // "" = generated once and kept in node.json
	Partitions int    // cluster.partitions; fixed by node.json after the first start
	Shards     int    // 0 = 256

	Session session.Config // Partitions, Shards, Journal and Now are set by the engine

	SyncMode        wal.SyncMode
	SyncInterval    time.Duration // 100ms
	SyncRevocations bool          // true
	SegmentSize     int64         // 64 MiB

	SnapshotInterval     time.Duration // 1h; 0 disables the timer
	SnapshotWALThreshold int64         // 256 MiB; 0 disables
	SnapshotRetain       int           // 2
	SnapshotOnClose      bool          // snapshot at shutdown when the WAL grew

	SweepInterval time.Duration // 100ms; <0 disables the sweeper goroutine (tests drive it)

	KeyFile string // security.encryption.key_file
	Cipher  string // auto | aes-256-gcm | chacha20-poly1305
	Getenv  func(string) string

	Logger  *slog.Logger
	Now     func() int64    // unix ms; nil = wall clock
	OnFatal func(err error) // fail-stop hook (the server stops listeners and exits 1)
	// OnFsync observes every WAL fsync (duration, records made durable).
	OnFsync func(d time.Duration, records uint64)

	// Event hooks for metrics (09-observability §1); each is optional. They
	// run on the caller's goroutine — OnValidate on the validate hot path —
	// so they must be cheap, non-blocking and allocation-free. Counting here
	// counts every operation once, whichever API (HTTP, RESP, admin socket)
	// asked for it.
	//
	// OnValidate reports every Validate the store answered: err is nil
	// (valid), session.ErrTokenMalformed, ErrNotFound, ErrExpired or
	// ErrRevoked. A storage failure is not a validation result and is not
	// reported.
	OnValidate func(err error)
	// OnSessionOp reports every Create, Touch, Renew, Revoke and RevokeUser
	// call, once, with op OpCreate … OpRevokeAll and the call's error (nil
	// = success; a Revoke of an unknown, expired or revoked session is a
	// success).
	OnSessionOp func(op string, err error)
	// OnSweepRound reports every sweeper round: how long it held its shard
	// lock and the expired sessions and tombstones it removed.
	OnSweepRound func(held time.Duration, expired, tombstones int)
	// OnSnapshot reports every snapshot write (timer, WAL threshold,
	// shutdown; not backups) with its duration and error.
	OnSnapshot func(d time.Duration, err error)
}

// Session operations reported to Config.OnSessionOp; the values are the op
// label of tokmesh_session_operations_total.
const (
	OpCreate    = "create"
	OpTouch     = "touch"
	OpRenew     = "renew"
	OpRevoke    = "revoke"
	OpRevokeAll = "revoke_all"
)

// DefaultConfig returns the defaults of 08-config for a data dir.
func DefaultConfig(dataDir string) Config {
	return Config{
		DataDir:    dataDir,
		Partitions: 256,
		Shards:     256,
		Session: session.Config{
			MaxPerUser:     50,
			OnExceed:       session.QuotaReject,
			ExpiredGrace:   10_000,
			TTLDefault:     7200,
			TTLMax:         720 * 3600,
			SweepSample:    20,
			SweepMaxRounds: 4,
		},
		SyncMode:             wal.SyncInterval,
		SyncInterval:         100 * time.Millisecond,
		SyncRevocations:      true,
		SegmentSize:          64 << 20,
		SnapshotInterval:     time.Hour,
		SnapshotWALThreshold: 256 << 20,
		SnapshotRetain:       2,
		SnapshotOnClose:      true,
		SweepInterval:        100 * time.Millisecond,
		Cipher:               "auto",
	}
}

// Exit codes shared by the server and walctl (08-config §2, 05-storage §8).
const (
	ExitRuntime  = 1
	ExitDataErr  = 65
	ExitLocked   = 75
	ExitConfig   = 78
	ExitNoKey    = 78
	ExitIOFailed = 74
)

// StartupError is a refusal to start with the process exit code it implies.
type StartupError struct {
	Code int
	Err  error
}

func (e *StartupError) Error() string { return e.Err.Error() }
func (e *StartupError) Unwrap() error { return e.Err }

// ErrClosed is returned by operations on a closed engine.
var ErrClosed = errors.New("engine: closed")

// ErrStorage wraps a fatal WAL/snapshot failure (TM-SYS-5001).
var ErrStorage = errors.New("storage failure")

// partState is the replication position of one partition.
type partState struct {
	epoch uint64
	pseq  uint64
}

// Engine is a recovered, running session engine on one data dir.
type Engine struct {
	exitBusiness func() // ExitBusiness, made once (BusinessExit)
	cfg          Config
	log          *slog.Logger
	lock         *datadir.Lock
	node         datadir.Node
	key          *crypt.MasterKey
	ciph         crypt.CipherID
	store        *session.Store
	wal          *wal.Writer

	appendMu sync.Mutex // journal: serializes seq/pseq assignment (lock order: shard → appendMu → WAL queue)
	parts    []partState

	snapMu       sync.Mutex    // one snapshot at a time
	snapKick     chan struct{} // a backup asks the snapshot loop for a snapshot (05 §5)
	kicksDone    atomic.Uint64 // kicks the loop has acted on (tests wait for them)
	snapInterval atomic.Int64  // ns; 0 disables the timer (hot: SetSnapshotPolicy)
	snapWALBytes atomic.Int64  // 0 disables the WAL-size trigger (hot)
	lastSnapSeq  atomic.Uint64
	lastSnapWAL  atomic.Int64 // WAL bytes written when the last snapshot started (negative: WAL inherited from before Open)
	lastSnapAt   time.Time    // when the last snapshot before Open was taken, as recovery found it; start of the interval timer
	recoveryInfo RecoveryInfo

	bkState *backupState // backup/restore jobs, maintenance flag, business gate

	fatal     atomic.Pointer[error]
	closed    atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// RecoveryInfo describes what the last Open recovered.
type RecoveryInfo struct {
	Snapshot      string // "" when none
	CoveredSeq    uint64
	Sessions      int
	Tombstones    int
	WALRecords    int
	LastSeq       uint64
	TornTail      string // "" or "file@offset (N bytes dropped)"
	Duration      time.Duration
	KeySource     crypt.KeySource
	SnapshotsSkip []string // invalid snapshots passed over
	SnapshotLoad  time.Duration
	WALReplay     time.Duration
}

// Open locks the data dir, loads the key, recovers and starts the background
// loops. The returned error is a *StartupError for refusals.
func Open(cfg Config) (*Engine, error) {
	start := time.Now()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Shards == 0 {
		cfg.Shards = 256
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 256
	}
	if cfg.SnapshotRetain < 1 {
		cfg.SnapshotRetain = 2
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 100 * time.Millisecond
	}
	if cfg.SegmentSize <= 0 {
		cfg.SegmentSize = 64 << 20
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), snapKick: make(chan struct{}, 1),
		bkState: &backupState{jobs: map[string]*RestoreJob{}}}
	e.exitBusiness = e.ExitBusiness
	e.SetSnapshotPolicy(cfg.SnapshotInterval, cfg.SnapshotWALThreshold)
	lock, err := datadir.Acquire(cfg.DataDir)
	if err != nil {
		if errors.Is(err, datadir.ErrLocked) {
			return nil, &StartupError{Code: ExitRuntime, Err: err}
		}
		return nil, &StartupError{Code: ExitRuntime, Err: fmt.Errorf("data dir %s: %w", cfg.DataDir, err)}
	}
	e.lock = lock
	if err := e.recover(); err != nil {
		lock.Release()
		return nil, err
	}
	e.recoveryInfo.Duration = time.Since(start)
	e.startLoops()
	return e, nil
}

func (e *Engine) recover() error {
	// Nearly everything recovery allocates stays live, so collections
	// during it would only re-mark the growing heap (a fifth of recovery
	// CPU): the collector is paused until it ends (a GOMEMLIMIT still
	// applies).
	defer gcfloor.Pause()()
	dir := e.cfg.DataDir
	if err := datadir.EnsureLayout(dir); err != nil {
		return &StartupError{Code: ExitRuntime, Err: err}
	}
	if err := e.loadNode(); err != nil {
		return err
	}
	walDir := filepath.Join(dir, datadir.WALDir)
	snapDir := filepath.Join(dir, datadir.SnapshotDir)
	segs, err := wal.ListSegments(walDir)
	if err != nil {
		return &StartupError{Code: ExitDataErr, Err: e.corruptionMsg(err)}
	}
	snaps, err := snapshot.List(snapDir)
	if err != nil {
		return &StartupError{Code: ExitRuntime, Err: err}
	}
	hasData := len(segs) > 0 || len(snaps) > 0
	key, src, err := crypt.LoadMasterKey(crypt.LoadOptions{KeyFile: e.cfg.KeyFile, DataDir: dir, Getenv: e.cfg.Getenv, AllowGenerate: !hasData})
	if err != nil {
		switch {
		case errors.Is(err, crypt.ErrNoKey):
			return &StartupError{Code: ExitNoKey, Err: fmt.Errorf("data dir %s holds encrypted data but %w", dir, err)}
		case errors.Is(err, crypt.ErrKeyFilePermissions):
			return &StartupError{Code: ExitConfig, Err: fmt.Errorf("TM-CFG-1004: %w", err)}
		default:
			return &StartupError{Code: ExitConfig, Err: fmt.Errorf("TM-CFG-1003: master key: %w", err)}
		}
	}
	e.key = key
	e.recoveryInfo.KeySource = src
	if src == crypt.SourceDataDir || src == crypt.SourceGenerated {
		e.log.Warn("MASTER KEY IS STORED INSIDE THE DATA DIR: anyone who copies the data dir can decrypt it; production keys belong outside it (security.encryption.key_file or TOKMESH_ENCRYPTION_KEY)",
			"key_file", filepath.Join(dir, crypt.DefaultKeyFileName), "generated", src == crypt.SourceGenerated)
	}
	e.ciph, err = crypt.ParseCipher(e.cfg.Cipher)
	if err != nil {
		return &StartupError{Code: ExitConfig, Err: err}
	}
	e.log.Info("encryption at rest", "cipher", e.ciph.String(), "key_id", key.ID().String(), "key_source", string(src))

	scfg := e.cfg.Session
	scfg.Partitions = e.node.Partitions
	scfg.Shards = e.cfg.Shards
	scfg.Now = e.cfg.Now
	scfg.Journal = e // Apply/Load (recovery) never journal; live operations do
	scfg.OnSweepRound = e.cfg.OnSweepRound
	store, err := session.NewStore(scfg)
	if err != nil {
		return &StartupError{Code: ExitConfig, Err: err}
	}
	e.store = store
	e.parts = make([]partState, e.node.Partitions)
	// Secondary lists are built after recovery, in the background (or by
	// the first operation that needs one): see session.Store.DeferLists.
	store.DeferLists()

	// Newest valid snapshot.
	var covered uint64
	tSnap := time.Now()
	for _, path := range snaps {
		n, t, cs, err := e.loadSnapshot(path)
		if err != nil {
			if errors.Is(err, snapshot.ErrKeyMismatch) {
				var written crypt.KeyID
				if h, herr := snapshot.ReadHeader(path); herr == nil {
					written = h.KeyID
				}
				return &StartupError{Code: ExitDataErr, Err: e.keyMismatch(path, written, err)}
			}
			e.log.Warn("snapshot unusable, trying an older one", "file", path, "error", err.Error())
			e.recoveryInfo.SnapshotsSkip = append(e.recoveryInfo.SnapshotsSkip, path)
			store.Reset()
			store.DeferLists()
			e.parts = make([]partState, e.node.Partitions)
			continue
		}
		e.recoveryInfo.Snapshot, e.recoveryInfo.Sessions, e.recoveryInfo.Tombstones = path, n, t
		covered = cs
		break
	}
	if len(snaps) > 0 && e.recoveryInfo.Snapshot == "" {
		return &StartupError{Code: ExitDataErr, Err: fmt.Errorf("no valid snapshot among %d in %s; run `tokmesh-walctl verify --data-dir %s` to see why", len(snaps), snapDir, dir)}
	}
	e.recoveryInfo.CoveredSeq = covered
	e.recoveryInfo.SnapshotLoad = time.Since(tSnap)
	tWAL := time.Now()
	if covered == 0 && len(segs) > 0 && segs[0].Err == nil && segs[0].FirstSeq != 1 {
		return &StartupError{Code: ExitDataErr, Err: e.corruptionMsg(fmt.Errorf("%s starts at seq %d but no snapshot covers seq 1..%d (snapshots missing?)",
			segs[0].Path, segs[0].FirstSeq, segs[0].FirstSeq-1))}
	}

	// WAL tail: decoded in order here, applied by per-shard workers (records
	// of one session always land on the same worker, so their order holds).
	rp := newReplayer(e)
	res, err := wal.Replay(walDir, key, wal.ReplayOptions{AfterSeq: covered, TruncateTornTail: true}, func(seq uint64, typ byte, payload []byte) error {
		return rp.add(seq, session.RecordType(typ), payload)
	})
	if werr := rp.close(); err == nil {
		err = werr
	}
	if err != nil {
		var km *wal.KeyMismatchError
		var ce *wal.CorruptionError
		if errors.As(err, &km) && errors.As(err, &ce) {
			return &StartupError{Code: ExitDataErr, Err: e.keyMismatch(ce.File, km.Written, err)}
		}
		return &StartupError{Code: ExitDataErr, Err: e.corruptionMsg(err)}
	}
	if res.TornTail != nil {
		e.recoveryInfo.TornTail = fmt.Sprintf("%s@%d (%d bytes dropped)", res.TornTail.File, res.TornTail.Offset, res.TornTail.BytesDropped)
		e.log.Warn("WAL torn tail truncated", "file", res.TornTail.File, "offset", res.TornTail.Offset, "bytes_dropped", res.TornTail.BytesDropped)
	}
	e.recoveryInfo.WALRecords = res.Records
	e.recoveryInfo.WALReplay = time.Since(tWAL)
	last := max(res.LastSeq, covered)
	// An unusable snapshot's name says how far the data once reached. If
	// the older snapshot and the WAL do not get that far, starting would
	// silently drop acknowledged writes — revocations among them, so
	// revoked tokens would validate again (05 §6 step 3's rule, for the
	// gap that no WAL segment shows).
	for _, p := range e.recoveryInfo.SnapshotsSkip {
		if claimed, ok := snapshot.ParseFileName(filepath.Base(p)); ok && claimed > last {
			return &StartupError{Code: ExitDataErr, Err: fmt.Errorf(
				"snapshot %s is unusable and covered up to seq %d, but the older snapshot and the WAL reach only seq %d: "+
					"starting would silently lose seq %d..%d (revoked sessions among them would come back); "+
					"restore the newest backup, or move %s out of %s to accept the loss",
				p, claimed, last, last+1, claimed, filepath.Base(p), snapDir)}
		}
	}
	e.recoveryInfo.LastSeq = last
	e.lastSnapSeq.Store(covered)
	e.seedSnapshotTriggers(res)

	w, err := wal.Open(wal.Options{
		Dir: walDir, Key: key, Cipher: e.ciph,
		SyncMode: e.cfg.SyncMode, SyncInterval: e.cfg.SyncInterval, SegmentSize: e.cfg.SegmentSize,
		OnFatal: e.onFatal, OnFsync: e.cfg.OnFsync,
	}, last+1)
	if err != nil {
		return &StartupError{Code: ExitRuntime, Err: fmt.Errorf("open WAL: %w", err)}
	}
	e.wal = w
	if e.cfg.SyncMode == wal.SyncNone {
		e.log.Warn("storage.wal.sync_mode is none: acknowledged writes can be lost on a crash; use it for tests only")
	}
	st := e.store.Stats()
	e.log.Info("recovery complete", "snapshot", e.recoveryInfo.Snapshot, "covered_seq", covered,
		"wal_records", res.Records, "last_seq", last, "live", st.Live, "tombstones", st.Tombstones)
	return nil
}

// keyMismatch is the refusal for a file recovery cannot read because it was
// sealed under another master key (04-security §11: exit 65 naming
// `tokmesh-walctl rekey`). Nothing is damaged, so unlike corruptionMsg it
// points at the key configuration and never at walctl repair, which would
// throw away good data. written is the file's key ID (zero if unknown).
func (e *Engine) keyMismatch(file string, written crypt.KeyID, err error) error {
	return &keyMismatchError{file: file, dataDir: e.cfg.DataDir, written: written, loaded: e.key.ID(),
		source: describeKeySource(e.recoveryInfo.KeySource, e.cfg.KeyFile, e.cfg.DataDir), err: err}
}

type keyMismatchError struct {
	file, dataDir   string
	written, loaded crypt.KeyID
	source          string // where the configured key came from
	err             error  // wraps wal.ErrKeyMismatch or snapshot.ErrKeyMismatch
}

func (e *keyMismatchError) Error() string {
	written, oldKey := "another master key", "<old key file>"
	if e.written != (crypt.KeyID{}) {
		written = "master key " + e.written.String()
		oldKey = "<file holding key " + e.written.String() + ">"
	}
	return fmt.Sprintf("%s: the data in %s was written under %s, but the configured key (%s) is %s: "+
		"configure the key it was written with (security.encryption.key_file or TOKMESH_ENCRYPTION_KEY), "+
		"or re-encrypt the data dir under the configured key with `tokmesh-walctl rekey --data-dir %s --key-file %s --new-key-file <file holding key %s>`",
		e.file, e.dataDir, written, e.source, e.loaded, e.dataDir, oldKey, e.loaded)
}

func (e *keyMismatchError) Unwrap() error { return e.err }

// describeKeySource names where the master key was loaded from, in the
// words an operator would use to change it.
func describeKeySource(src crypt.KeySource, keyFile, dataDir string) string {
	switch src {
	case crypt.SourceEnv:
		return "from TOKMESH_ENCRYPTION_KEY"
	case crypt.SourceFile:
		return "from security.encryption.key_file " + keyFile
	case crypt.SourceDataDir, crypt.SourceGenerated:
		return "from " + filepath.Join(dataDir, crypt.DefaultKeyFileName)
	}
	return string(src)
}

// seedSnapshotTriggers carries the snapshot triggers over a restart
// (05-storage §5: WAL growth and time since the last snapshot, not since
// this process started). Without it a node that restarts before reaching
// storage.snapshot.wal_threshold forgets the WAL it already wrote and, if
// it keeps crashing, replays an ever longer WAL.
//
// The WAL the new writer counts starts at zero, so the recovered WAL after
// the snapshot's covered_seq enters as a negative baseline. The interval
// timer starts at the loaded snapshot's created_at, or with no snapshot at
// the creation of the first segment replayed; with nothing replayed there
// is nothing to snapshot and it starts now.
func (e *Engine) seedSnapshotTriggers(res wal.ReplayResult) {
	e.lastSnapWAL.Store(-res.Bytes)
	now := time.Now()
	e.lastSnapAt = now
	if res.Records == 0 {
		return
	}
	at := res.FirstCreatedAt
	if e.recoveryInfo.Snapshot != "" {
		if h, err := snapshot.ReadHeader(e.recoveryInfo.Snapshot); err == nil {
			at = h.CreatedAt
		}
	}
	if at > 0 && at < now.UnixMilli() {
		e.lastSnapAt = time.UnixMilli(at)
	}
	if res.Bytes > 0 {
		e.log.Info("WAL since the last snapshot carried over", "bytes", res.Bytes, "records", res.Records,
			"since", e.lastSnapAt.UTC().Format(time.RFC3339))
	}
}

func (e *Engine) corruptionMsg(err error) error {
	return fmt.Errorf("%w; the data dir cannot be recovered automatically: run `tokmesh-walctl verify --data-dir %s` to see the damage and `tokmesh-walctl repair --data-dir %s` to drop everything from the first bad record on (the damaged files are kept as .bak)", err, e.cfg.DataDir, e.cfg.DataDir)
}

func (e *Engine) loadNode() error {
	n, err := datadir.ReadNode(e.cfg.DataDir)
	switch {
	case err == nil:
		if e.cfg.Partitions != 0 && n.Partitions != e.cfg.Partitions {
			e.log.Warn("cluster.partitions differs from node.json; keeping the data dir's value", "configured", e.cfg.Partitions, "node_json", n.Partitions)
		}
		if e.cfg.NodeID != "" && n.NodeID != e.cfg.NodeID {
			e.log.Warn("cluster.node_id differs from node.json; keeping the data dir's value", "configured", e.cfg.NodeID, "node_json", n.NodeID)
		}
	case errors.Is(err, os.ErrNotExist):
		id := e.cfg.NodeID
		if id == "" {
			nid, gerr := NewNodeID()
			if gerr != nil {
				return &StartupError{Code: ExitRuntime, Err: gerr}
			}
			id = nid
		}
		n = datadir.Node{FormatVersion: datadir.NodeFormatVersion, NodeID: id, Partitions: e.cfg.Partitions, CreatedAt: time.Now().UnixMilli()}
		if err := datadir.WriteNode(e.cfg.DataDir, n); err != nil {
			return &StartupError{Code: ExitRuntime, Err: err}
		}
	default:
		return &StartupError{Code: ExitDataErr, Err: err}
	}
	if n.Partitions < 1 || n.Partitions > 65536 {
		return &StartupError{Code: ExitDataErr, Err: fmt.Errorf("node.json: invalid partition count %d", n.Partitions)}
	}
	e.node = n
	// Every later engine record names the node (09-observability §2).
	e.log = e.log.With("node_id", n.NodeID)
	return nil
}

// replayer applies recovered WAL records with one worker per group of
// shards. The reading goroutine only peeks at each record's head (for the
// partition position and the routing) and copies it into the batch of the
// worker that owns the record's shard — records of one session, and of
// one token, always land on the same worker, so their order holds; the
// workers decode and apply. Partition-wide records (RESET,
// PARTITION_DROP) drain every worker first, so they apply exactly between
// the records around them.
type replayer struct {
	e       *Engine
	workers []chan *replayBatch
	cur     []*replayBatch
	free    chan *replayBatch
	wg      sync.WaitGroup
	errMu   sync.Mutex
	err     error // first record that did not decode
}

// replayBatch holds records for one worker: types, seqs and payloads
// back to back in buf.
type replayBatch struct {
	typs []session.RecordType
	seqs []uint64
	offs []int
	buf  []byte
}

const replayBatchBytes = 64 << 10

func newReplayer(e *Engine) *replayer {
	n := max(1, runtime.GOMAXPROCS(0))
	rp := &replayer{e: e, free: make(chan *replayBatch, 4*n)}
	rp.start(n)
	return rp
}

func (rp *replayer) start(n int) {
	rp.workers, rp.cur = nil, nil
	for range n {
		ch := make(chan *replayBatch, 2)
		rp.workers = append(rp.workers, ch)
		rp.cur = append(rp.cur, rp.batch())
		rp.wg.Add(1)
		go func() {
			defer rp.wg.Done()
			ld := rp.e.store.NewLoader()
			for b := range ch {
				for i, typ := range b.typs {
					// Version rules make replay idempotent; stale records
					// are ignored, so only a record that does not decode
					// stops recovery.
					_, err := ld.ApplyRecordBinary(typ, b.buf[b.offs[i]:b.offs[i+1]])
					if err != nil {
						rp.fail(fmt.Errorf("seq %d: %w", b.seqs[i], err))
					}
				}
				b.typs, b.seqs, b.offs, b.buf = b.typs[:0], b.seqs[:0], b.offs[:0], b.buf[:0]
				select {
				case rp.free <- b:
				default:
				}
			}
		}()
	}
}

func (rp *replayer) batch() *replayBatch {
	select {
	case b := <-rp.free:
		return b
	default:
		return &replayBatch{buf: make([]byte, 0, replayBatchBytes+4096)}
	}
}

func (rp *replayer) fail(err error) {
	rp.errMu.Lock()
	if rp.err == nil {
		rp.err = err
	}
	rp.errMu.Unlock()
}

// add routes one record (payload valid only during the call).
func (rp *replayer) add(seq uint64, typ session.RecordType, payload []byte) error {
	h, err := session.PeekRecord(typ, payload)
	if err != nil {
		return fmt.Errorf("seq %d: %w", seq, err)
	}
	rp.e.advancePartition(h.Partition, h.Epoch, h.PSeq)
	switch typ {
	case session.RecordReset, session.RecordPartitionDrop:
		rp.drain()
		if typ == session.RecordReset {
			rp.e.store.Reset()
			rp.e.store.DeferLists()
			for i := range rp.e.parts {
				rp.e.parts[i].pseq = 0
			}
		} else {
			rp.e.store.DropPartition(h.Partition)
		}
		return nil
	}
	w := rp.e.store.ShardOf(h.ID) % len(rp.workers)
	b := rp.cur[w]
	b.typs = append(b.typs, typ)
	b.seqs = append(b.seqs, seq)
	b.offs = append(b.offs, len(b.buf))
	b.buf = append(b.buf, payload...)
	if len(b.buf) >= replayBatchBytes {
		rp.send(w)
	}
	return nil
}

func (rp *replayer) send(w int) {
	b := rp.cur[w]
	if len(b.typs) == 0 {
		return
	}
	b.offs = append(b.offs, len(b.buf))
	rp.workers[w] <- b
	rp.cur[w] = rp.batch()
}

// drain waits until every worker applied what it was given.
func (rp *replayer) drain() {
	n := len(rp.workers)
	rp.close()
	rp.start(n)
}

// close hands over the last batches, waits for the workers and returns
// the first decode error.
func (rp *replayer) close() error {
	for w, ch := range rp.workers {
		rp.send(w)
		close(ch)
	}
	rp.wg.Wait()
	return rp.err
}

// advancePartition moves a partition's replication position forward.
func (e *Engine) advancePartition(part uint16, epoch, pseq uint64) {
	if int(part) < len(e.parts) {
		p := &e.parts[part]
		p.epoch = max(p.epoch, epoch)
		p.pseq = max(p.pseq, pseq)
	}
}

// Record implements session.Journal. It runs inside the store's critical
// section: it stamps the partition position, encodes the record and queues
// it on the WAL, whose Append assigns the gap-free node seq.
func (e *Engine) Record(r *session.Record) uint64 {
	e.appendMu.Lock()
	if int(r.Partition) < len(e.parts) {
		p := &e.parts[r.Partition]
		p.pseq++
		r.Epoch, r.PSeq = p.epoch, p.pseq
	}
	payload := r.AppendBinary(make([]byte, 0, 256))
	seq := e.wal.Append(byte(r.Type), payload)
	e.appendMu.Unlock()
	return seq
}

func (e *Engine) onFatal(err error) {
	werr := fmt.Errorf("%w: %v", ErrStorage, err)
	if !e.fatal.CompareAndSwap(nil, &werr) {
		return
	}
	e.log.Error("storage failure: the node stops serving (fail-stop); restart recovers the durable state",
		"code", string(apierr.SysStorage), "error", err.Error())
	if e.cfg.OnFatal != nil {
		go e.cfg.OnFatal(werr)
	}
}

// Fatal returns the fail-stop error, if any.
func (e *Engine) Fatal() error {
	if p := e.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *Engine) wait(seq uint64, durable bool) error {
	if seq == 0 {
		return nil
	}
	if err := e.wal.Wait(seq, durable); err != nil {
		if errors.Is(err, ErrStorage) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}

func (e *Engine) check() error {
	if e.closed.Load() {
		return ErrClosed
	}
	return e.Fatal()
}

// Store exposes the store for read-only helpers (stats, tests).
func (e *Engine) Store() *session.Store { return e.store }

// Node returns the data dir identity.
func (e *Engine) Node() datadir.Node { return e.node }

// KeyID returns the master key ID.
func (e *Engine) KeyID() crypt.KeyID { return e.key.ID() }

// Recovery describes the last recovery.
func (e *Engine) Recovery() RecoveryInfo { return e.recoveryInfo }

// Partitions returns P.
func (e *Engine) Partitions() int { return e.node.Partitions }

// sessionOp reports a finished session operation (Config.OnSessionOp).
func (e *Engine) sessionOp(op string, err error) {
	if f := e.cfg.OnSessionOp; f != nil {
		f(op, err)
	}
}

// Create creates a session and returns once it is as durable as the sync
// mode promises (an eviction is a revocation and waits for an fsync).
func (e *Engine) Create(req session.CreateRequest) (session.CreateResult, error) {
	res, err := e.create(req)
	e.sessionOp(OpCreate, err)
	return res, err
}

func (e *Engine) create(req session.CreateRequest) (session.CreateResult, error) {
	if err := e.check(); err != nil {
		return session.CreateResult{}, err
	}
	res, err := e.store.Create(req)
	if err != nil {
		return res, err
	}
	durable := !res.EvictedID.IsZero() && e.cfg.SyncRevocations
	return res, e.wait(res.Seq, durable)
}

// Get returns a session without side effects.
func (e *Engine) Get(id session.ID) (session.Session, error) {
	if err := e.check(); err != nil {
		return session.Session{}, err
	}
	return e.store.Get(id)
}

// Validate looks a token up; with touch it records activity.
func (e *Engine) Validate(token string, touch bool, ip netip.Addr, ua string) (session.Session, error) {
	if err := e.check(); err != nil {
		return session.Session{}, err
	}
	s, seq, err := e.store.Validate(token, touch, ip, ua)
	if err != nil {
		e.validated(err)
		return s, err
	}
	if err := e.wait(seq, false); err != nil {
		if touch {
			e.sessionOp(OpTouch, err)
		}
		return s, err
	}
	e.validated(nil)
	if touch {
		// A validation with touch touches the live session it found (01
		// §3): it counts as a touch too (09 §1 session operations).
		e.sessionOp(OpTouch, nil)
	}
	return s, nil
}

// validated reports a validation result (Config.OnValidate).
func (e *Engine) validated(err error) {
	if f := e.cfg.OnValidate; f != nil {
		f(err)
	}
}

// Touch records activity on a session.
func (e *Engine) Touch(id session.ID, ip netip.Addr, ua string) (session.Session, error) {
	s, err := e.touch(id, ip, ua)
	e.sessionOp(OpTouch, err)
	return s, err
}

func (e *Engine) touch(id session.ID, ip netip.Addr, ua string) (session.Session, error) {
	if err := e.check(); err != nil {
		return session.Session{}, err
	}
	s, seq, err := e.store.Touch(id, ip, ua)
	if err != nil {
		return s, err
	}
	return s, e.wait(seq, false)
}

// Renew sets expires_at = now + ttl.
func (e *Engine) Renew(id session.ID, ttlSeconds int64) (session.Session, error) {
	s, err := e.renew(id, ttlSeconds)
	e.sessionOp(OpRenew, err)
	return s, err
}

func (e *Engine) renew(id session.ID, ttlSeconds int64) (session.Session, error) {
	if err := e.check(); err != nil {
		return session.Session{}, err
	}
	s, seq, err := e.store.Renew(id, ttlSeconds)
	if err != nil {
		return s, err
	}
	return s, e.wait(seq, false)
}

// Revoke ends a session; it returns after the revocation is durable.
func (e *Engine) Revoke(id session.ID) (bool, error) {
	ok, err := e.revoke(id)
	e.sessionOp(OpRevoke, err)
	return ok, err
}

func (e *Engine) revoke(id session.ID) (bool, error) {
	if err := e.check(); err != nil {
		return false, err
	}
	ok, seq, err := e.store.Revoke(id)
	if err != nil {
		return ok, err
	}
	return ok, e.wait(seq, e.cfg.SyncRevocations)
}

// RevokeUser revokes every live session of a user except one.
func (e *Engine) RevokeUser(userID string, except session.ID) (int, error) {
	n, err := e.revokeUser(userID, except)
	e.sessionOp(OpRevokeAll, err)
	return n, err
}

func (e *Engine) revokeUser(userID string, except session.ID) (int, error) {
	if err := e.check(); err != nil {
		return 0, err
	}
	n, seq, err := e.store.RevokeUser(userID, except)
	if err != nil {
		return n, err
	}
	return n, e.wait(seq, e.cfg.SyncRevocations)
}

// List returns live sessions matching a query.
func (e *Engine) List(q session.ListQuery) (session.ListResult, error) {
	if err := e.check(); err != nil {
		return session.ListResult{}, err
	}
	return e.store.List(q)
}

// Sweep runs one sweeper tick (expiry + coalesced touch flush).
func (e *Engine) Sweep() int {
	if e.check() != nil {
		return 0
	}
	n := e.store.Sweep()
	e.store.FlushTouches()
	return n
}

// WALStats returns the writer's counters.
func (e *Engine) WALStats() wal.Stats { return e.wal.Stats() }

// Sync writes and fsyncs everything queued so far.
func (e *Engine) Sync() error { return e.wal.Sync() }

// bigRecovery is the number of recovered sessions + WAL records from which
// the GC runs and memory is returned to the OS once the lists are built.
var bigRecovery = 100_000

func (e *Engine) startLoops() {
	if e.store.ListsPending() > 0 {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			t := time.Now()
			e.store.BuildLists(e.stop)
			e.log.Debug("secondary lists built", "duration_ms", time.Since(t).Milliseconds())
			// Recovery ran with the GC paused: its garbage (and the heap
			// grown for it) would otherwise stay resident until the heap
			// doubled again. Collect once and hand the free memory back,
			// so a restarted node's RSS matches a settled one's.
			if e.recoveryInfo.Sessions+int(e.recoveryInfo.WALRecords) >= bigRecovery {
				select {
				case <-e.stop:
				default:
					debug.FreeOSMemory()
				}
			}
		}()
	}
	if e.cfg.SweepInterval > 0 {
		e.wg.Add(1)
		go e.sweepLoop()
	}
	// The snapshot loop always runs: SetSnapshotPolicy may enable a trigger
	// that was off at Open.
	e.wg.Add(1)
	go e.snapshotLoop()
}

// SetSnapshotPolicy changes the snapshot triggers (storage.snapshot.interval
// and wal_threshold, hot-reloadable): a snapshot is taken once interval has
// passed since the last one, or once walThreshold WAL bytes were written
// since it. Zero disables a trigger; negative values count as zero. The
// loop checks once a second.
func (e *Engine) SetSnapshotPolicy(interval time.Duration, walThreshold int64) {
	e.snapInterval.Store(int64(max(interval, 0)))
	e.snapWALBytes.Store(max(walThreshold, 0))
}

// SnapshotPolicy returns the snapshot triggers in force.
func (e *Engine) SnapshotPolicy() (interval time.Duration, walThreshold int64) {
	return time.Duration(e.snapInterval.Load()), e.snapWALBytes.Load()
}

func (e *Engine) sweepLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.Sweep()
		}
	}
}

func (e *Engine) snapshotLoop() {
	defer e.wg.Done()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	// Recovery set lastSnapAt and lastSnapWAL from the data dir, so a
	// snapshot the previous process owed comes at the first check.
	last := e.lastSnapAt
	for {
		kicked := false
		select {
		case <-e.stop:
			return
		case <-check.C:
		case <-e.snapKick:
			kicked = true
		}
		e.maybeSnapshot(kicked, &last)
		if kicked {
			e.kicksDone.Add(1)
		}
	}
}

// maybeSnapshot takes a snapshot when a trigger fired (kicked: a backup
// asked for one) and the WAL grew since the last snapshot.
func (e *Engine) maybeSnapshot(kicked bool, last *time.Time) {
	interval, threshold := e.SnapshotPolicy()
	due := interval > 0 && time.Since(*last) >= interval
	grown := threshold > 0 && e.wal.Stats().BytesWritten-e.lastSnapWAL.Load() >= threshold
	if !due && !grown && !kicked {
		return
	}
	*last = time.Now()
	if e.wal.LastSeq() == e.lastSnapSeq.Load() {
		return
	}
	if _, err := e.Snapshot(); err != nil {
		e.log.Error("snapshot failed", "code", string(apierr.SysStorage), "error", err.Error())
	}
}

// Close stops the loops, takes a final snapshot when the WAL grew, flushes
// and closes the WAL and releases the data dir lock.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		close(e.stop)
		e.wg.Wait()
		var errs []error
		if e.cfg.SnapshotOnClose && e.Fatal() == nil && e.wal.LastSeq() != e.lastSnapSeq.Load() {
			if _, err := e.Snapshot(); err != nil {
				errs = append(errs, fmt.Errorf("shutdown snapshot: %w", err))
			}
		}
		e.closed.Store(true)
		if err := e.wal.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := e.lock.Release(); err != nil {
			errs = append(errs, err)
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// MasterKey returns the loaded master key (for the control store and
// backups, which derive their own per-file keys from it).
func (e *Engine) MasterKey() *crypt.MasterKey { return e.key }

// Cipher returns the cipher used for new files.
func (e *Engine) Cipher() crypt.CipherID { return e.ciph }
