// Package audit is TokMesh's node-local, tamper-evident audit log
// (04-security §9): JSON Lines in <data_dir>/audit/audit-YYYYMMDD.jsonl (UTC
// day; directory 0700, files 0600), one record per line.
//
// Invariants:
//   - Hash chain: every record's prev_hash is the lower-case hex SHA-256 of
//     the previous record's exact line (without its newline); the first
//     record of a data dir has 64 zeros. The chain continues across daily
//     files and restarts, and seq has no gaps. Verify recomputes it.
//   - Admin writes fail closed: Attempt returns only after its line was
//     handed to the OS (write(2) returned), or returns an error and the
//     caller must refuse the operation (TM-SYS-5032).
//   - Session traffic never blocks on audit: Record enqueues into a bounded
//     queue and, when it is full, drops the record, counts it and writes an
//     audit.dropped record as soon as possible.
//   - The log never contains tokens, secrets, token hashes or session data.
//     The API takes typed fields for that reason; callers fill Details and
//     must keep it free of them (see Record).
//
// Lock order: Log.qmu (Record vs Close) and Log.mu (file and chain state)
// are never held together.
package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options (telemetry.audit.*).
const (
	DefaultBufferSize    = 10000
	DefaultRetentionDays = 90
)

// retentionEvery is how often old files are deleted.
const retentionEvery = 24 * time.Hour

// ErrClosed is returned by Attempt after Close.
var ErrClosed = errors.New("audit: log closed")

// Options configure a Log.
type Options struct {
	// BufferSize is the capacity of the asynchronous queue
	// (telemetry.audit.buffer_size); default 10,000.
	BufferSize int
	// RetentionDays: files of days older than this are deleted at Open and
	// every 24 h (telemetry.audit.retention_days); default 90.
	RetentionDays int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnDrop is called from the log's writer goroutine with the number of
	// records lost since the previous call (queue overflow or a failed
	// asynchronous write); it should add n to tokmesh_audit_dropped_total.
	// It must not block.
	OnDrop func(n int)
	// Logger receives audit failures (ERROR) and retention (INFO); nil
	// discards.
	Logger *slog.Logger
}

// Log appends records to the audit files of one data dir. It is safe for
// concurrent use.
type Log struct {
	dir    string
	nodeID string
	now    func() time.Time
	onDrop func(int)
	log    *slog.Logger
	// drained, when set (tests), runs in the writer after it has drained
	// a batch from the queue and before it writes it.
	drained func()

	mu       sync.Mutex // guards everything below up to the blank line
	f        *os.File
	fi       os.FileInfo // of f, to notice the file being deleted or replaced
	statAt   time.Time   // last check of fi (batches of session records re-check at most every statEvery)
	fday     string      // day of f; never goes backwards
	fsize    int64
	seq      uint64
	lastHash string
	buf      bytes.Buffer
	failing  bool // the last asynchronous write failed (log once per episode)
	closed   bool

	qmu      sync.RWMutex // Record (read) vs Close (write)
	qclosed  bool
	queue    chan Record
	kick     chan struct{}
	pruneNow chan struct{} // a retention change asks retainLoop for a run now
	stop     chan struct{}
	wg       sync.WaitGroup

	retention atomic.Int64
	dropped   atomic.Uint64 // total lost
	toReport  atomic.Uint64 // lost, not yet passed to OnDrop
	toRecord  atomic.Uint64 // lost, not yet written as audit.dropped
	written   atomic.Uint64
}

// Open opens the audit directory dir (<data_dir>/audit), creating it with
// mode 0700, recovers seq and hash from the newest file's last line, deletes
// expired files and starts the writer and retention goroutines (stopped by
// Close). A last line cut short by a crash is truncated with a WARN; a last
// line that is complete but not a valid record fails Open, since the chain
// cannot be continued (tokmesh-walctl audit verify shows where).
func Open(dir, nodeID string, o Options) (*Log, error) {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.RetentionDays <= 0 {
		o.RetentionDays = DefaultRetentionDays
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{
		dir: dir, nodeID: nodeID, now: o.Now, onDrop: o.OnDrop,
		log:      o.Logger.With("component", "audit"),
		lastHash: ZeroHash,
		queue:    make(chan Record, o.BufferSize),
		kick:     make(chan struct{}, 1),
		pruneNow: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	l.retention.Store(int64(o.RetentionDays))
	if err := l.recover(); err != nil {
		return nil, err
	}
	l.prune()
	l.wg.Add(2)
	go l.writer()
	go l.retainLoop()
	return l, nil
}

// recover finds the chain head: the last line of the newest non-empty file.
func (l *Log) recover() error {
	files, err := listFiles(l.dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	for i := len(files) - 1; i >= 0; i-- {
		line, err := l.lastLine(files[i].path)
		if err != nil {
			return err
		}
		if line == nil {
			continue // empty file
		}
		rec, err := parseLine(line)
		if err != nil {
			return fmt.Errorf("audit: cannot continue the hash chain: last line of %s: %w (run tokmesh-walctl audit verify)", files[i].path, err)
		}
		l.seq, l.lastHash, l.fday = rec.Seq, lineHash(line), files[i].day
		return nil
	}
	return nil
}

// lastLine returns the last complete line of path, truncating an
// incomplete final line (a write cut short by a crash), or nil when the
// file holds no line.
func (l *Log) lastLine(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	rl, err := newReverseLines(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("audit: read %s: %w", path, err)
	}
	for {
		line, off, err := rl.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: read %s: %w", path, err)
		}
		if rl.Partial {
			rl.Partial = false
			l.log.Warn("truncating an incomplete last audit line", "file", path, "offset", off, "bytes", st.Size()-off)
			if err := f.Truncate(off); err != nil {
				return nil, fmt.Errorf("audit: truncate %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return nil, fmt.Errorf("audit: sync %s: %w", path, err)
			}
			continue
		}
		return bytes.Clone(line), nil
	}
}

// Attempt appends r with result "attempt" synchronously: when it returns
// nil the line has been handed to the OS (write(2) returned; no fsync). An
// error means the record is not in the log and the caller must refuse the
// admin operation with 503 TM-SYS-5032.
func (l *Log) Attempt(r Record) error {
	r.Result = ResultAttempt
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.appendLocked(&r)
}

// Write appends r synchronously, like Attempt, but keeps its result (""
// is written as success). It is for events that must be in the log before
// the node goes on — config.load and server.start at startup, server.stop
// at shutdown — not for session traffic, which uses Record. An error means
// the record is not in the log.
func (l *Log) Write(r Record) error {
	if r.Result == "" {
		r.Result = ResultSuccess
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.appendLocked(&r)
}

// Record enqueues r for asynchronous writing and never blocks. When the
// queue is full the record is dropped and counted (Dropped, OnDrop), an
// ERROR is logged and an audit.dropped record with the count follows as
// soon as possible. Records after Close are counted as dropped.
func (l *Log) Record(r Record) {
	l.qmu.RLock()
	if l.qclosed {
		l.qmu.RUnlock()
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- r:
		l.qmu.RUnlock()
		return
	default:
	}
	l.qmu.RUnlock()
	l.lose(1)
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// lose accounts for n records that will never be written.
func (l *Log) lose(n uint64) {
	l.dropped.Add(n)
	l.toReport.Add(n)
	l.toRecord.Add(n)
}

// LastHash is the SHA-256 of the newest record's line (audit_last_hash of
// GET /admin/v1/status, for external anchoring); 64 zeros when empty.
func (l *Log) LastHash() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastHash
}

// LastSeq is the seq of the newest record (0 when empty).
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// Dropped is the number of records lost since Open.
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Written is the number of records written since Open
// (tokmesh_audit_records_total).
func (l *Log) Written() uint64 { return l.written.Load() }

// SetRetentionDays changes the retention (hot-reloadable, 08-config §4:
// it takes effect immediately): a changed value triggers a retention run
// in the background at once, not only at the next daily one. Values ≤ 0
// are ignored.
func (l *Log) SetRetentionDays(days int) {
	if days <= 0 || l.retention.Swap(int64(days)) == int64(days) {
		return
	}
	select {
	case l.pruneNow <- struct{}{}:
	default: // a run is already pending; it reads the new value
	}
}

// Close stops accepting records, writes everything queued (and the
// audit.dropped record if needed), stops the goroutines, fsyncs and closes
// the file. It is safe to call more than once.
func (l *Log) Close() error {
	l.qmu.Lock()
	already := l.qclosed
	l.qclosed = true
	l.qmu.Unlock()
	if already {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.closeFileLocked()
}

func (l *Log) closeFileLocked() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f, l.fi = nil, nil
	if err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

// appendLocked stamps r (seq, time, node ID, prev_hash), writes its line
// with one write(2) and advances the chain only if that succeeded.
func (l *Log) appendLocked(r *Record) error {
	now := l.now().UTC().Truncate(time.Millisecond)
	if err := l.ensureFileLocked(now); err != nil {
		return err
	}
	r.Seq, r.Time, r.NodeID, r.PrevHash = l.seq+1, now, l.nodeID, l.lastHash
	if r.Actor == "" {
		r.Actor = ActorSystem
	}
	l.buf.Reset()
	if err := encodeLine(&l.buf, r); err != nil {
		return err
	}
	line := l.buf.Bytes()
	n, err := l.f.Write(line)
	if err != nil {
		if n > 0 {
			// Never leave half a line: the next record would follow it.
			if terr := l.f.Truncate(l.fsize); terr != nil {
				l.log.Error("cannot remove a partial audit line; audit verify will report it", "file", l.f.Name(), "error", terr.Error())
			}
		}
		_ = l.closeFileLocked() // reopen next time
		return fmt.Errorf("audit: write %s: %w", filepath.Join(l.dir, fileName(l.fday)), err)
	}
	l.fsize += int64(n)
	l.seq++
	l.lastHash = lineHash(line[:len(line)-1])
	l.written.Add(1)
	return nil
}

// appendBatchLocked is appendLocked for several records: one file check and
// one write(2). Either every line is written and the chain advances over
// all of them, or none is (a partial write is truncated away).
func (l *Log) appendBatchLocked(rs []Record) error {
	now := l.now().UTC().Truncate(time.Millisecond)
	// Session records (non-blocking, best effort) re-check the file's
	// identity at most every statEvery; admin records (Attempt, fail
	// closed) check it every time.
	if l.f == nil || dayOf(now) != l.fday || time.Since(l.statAt) >= statEvery {
		if err := l.ensureFileLocked(now); err != nil {
			return err
		}
	}
	seq, last := l.seq, l.lastHash
	l.buf.Reset()
	for i := range rs {
		r := &rs[i]
		r.Seq, r.Time, r.NodeID, r.PrevHash = seq+1, now, l.nodeID, last
		if r.Actor == "" {
			r.Actor = ActorSystem
		}
		start := l.buf.Len()
		if err := encodeLine(&l.buf, r); err != nil {
			return err
		}
		line := l.buf.Bytes()[start:]
		last = lineHash(line[:len(line)-1])
		seq++
	}
	n, err := l.f.Write(l.buf.Bytes())
	if err != nil {
		if n > 0 {
			if terr := l.f.Truncate(l.fsize); terr != nil {
				l.log.Error("cannot remove partial audit lines; audit verify will report them", "file", l.f.Name(), "error", terr.Error())
			}
		}
		_ = l.closeFileLocked() // reopen next time
		return fmt.Errorf("audit: write %s: %w", filepath.Join(l.dir, fileName(l.fday)), err)
	}
	l.fsize += int64(n)
	l.seq, l.lastHash = seq, last
	l.written.Add(uint64(len(rs)))
	return nil
}

// statEvery bounds how often batches of session records check that the
// audit file was not deleted or replaced.
const statEvery = 100 * time.Millisecond

// ensureFileLocked opens the file of now's UTC day (or keeps the current
// one if the clock went backwards), and reopens it if it was deleted or
// replaced underneath. It does not recreate a missing directory: that is
// an error (fail closed).
func (l *Log) ensureFileLocked(now time.Time) error {
	day := dayOf(now)
	if day < l.fday {
		day = l.fday
	}
	path := filepath.Join(l.dir, fileName(day))
	l.statAt = time.Now()
	if l.f != nil && day == l.fday {
		st, err := os.Stat(path)
		if err == nil && os.SameFile(st, l.fi) {
			return nil
		}
		l.log.Error("audit file deleted or replaced while open; reopening", "file", path)
	}
	if l.f != nil {
		if err := l.closeFileLocked(); err != nil {
			l.log.Error("closing previous audit file", "error", err.Error())
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: open: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("audit: open: %s is not a regular file", path)
	}
	if st.Size() == 0 {
		syncDir(l.dir) // make the new file's name durable
	}
	l.f, l.fi, l.fday, l.fsize = f, st, day, st.Size()
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not supported everywhere
		d.Close()
	}
}

// writer drains the queue until Close.
func (l *Log) writer() {
	defer l.wg.Done()
	const maxBatch = 256
	batch := make([]Record, 0, maxBatch)
	for {
		select {
		case r := <-l.queue:
			// Drain what else is queued: one write(2) for the batch
			// instead of per record (session writes under load). Yielding
			// once first lets the producers that are ready to run (all
			// of them on one P) add their records to this batch.
			runtime.Gosched()
			batch = append(batch[:0], r)
		drain:
			for len(batch) < maxBatch {
				select {
				case r := <-l.queue:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			if l.drained != nil {
				l.drained()
			}
			l.writeAsync(batch)
		case <-l.kick:
		case <-l.stop:
			for {
				select {
				case r := <-l.queue:
					l.writeAsync([]Record{r})
					l.flushDrops()
				default:
					l.flushDrops()
					return
				}
			}
		}
		l.flushDrops()
	}
}

func (l *Log) writeAsync(rs []Record) {
	for i := range rs {
		if rs[i].Result == "" {
			rs[i].Result = ResultSuccess
		}
	}
	l.mu.Lock()
	err := l.appendBatchLocked(rs)
	wasFailing := l.failing
	l.failing = err != nil
	l.mu.Unlock()
	clear(rs) // drop references (details maps) until the slot is reused
	switch {
	case err != nil:
		l.lose(uint64(len(rs)))
		if !wasFailing {
			l.log.Error("audit records could not be written; records are being lost", "records", len(rs), "error", err.Error())
		}
	case wasFailing:
		l.log.Info("audit log writable again")
	}
}

// flushDrops reports losses to OnDrop and writes the audit.dropped record.
func (l *Log) flushDrops() {
	if n := l.toReport.Swap(0); n > 0 {
		l.log.Error("audit records dropped", "count", n, "total", l.dropped.Load())
		if l.onDrop != nil {
			l.onDrop(int(n))
		}
	}
	n := l.toRecord.Swap(0)
	if n == 0 {
		return
	}
	r := Record{Actor: ActorSystem, Action: ActionDropped, Result: ResultFailure, Details: map[string]any{"count": n}}
	l.mu.Lock()
	err := l.appendLocked(&r)
	l.mu.Unlock()
	if err != nil {
		l.toRecord.Add(n) // retried after the next record
	}
}

// retainLoop deletes expired files every 24 h, and after each retention
// change, until Close.
func (l *Log) retainLoop() {
	defer l.wg.Done()
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.prune()
		case <-l.pruneNow:
			l.prune()
		}
	}
}

// prune deletes the files of days older than the retention, never the
// newest file (it holds the chain head) nor the one being written.
func (l *Log) prune() {
	days := int(l.retention.Load())
	cutoff := dayOf(l.now().AddDate(0, 0, -days))
	files, err := listFiles(l.dir)
	if err != nil {
		l.log.Error("audit retention: listing files", "error", err.Error())
		return
	}
	l.mu.Lock()
	current := l.fday
	l.mu.Unlock()
	for i, f := range files {
		if i == len(files)-1 || f.day >= cutoff || f.day == current {
			continue
		}
		if err := os.Remove(f.path); err != nil {
			l.log.Error("audit retention: deleting file", "file", f.path, "error", err.Error())
			continue
		}
		l.log.Info("audit retention: deleted file", "file", f.path, "retention_days", days)
	}
}
