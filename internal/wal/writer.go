package wal

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// SyncMode is storage.wal.sync_mode (05-storage §4.3).
type SyncMode uint8

const (
	// SyncInterval acknowledges a record once write(2) returned for it and
	// fsyncs every Options.SyncInterval when there is unsynced data. It is the
	// zero value because it is the configured default.
	SyncInterval SyncMode = iota
	// SyncAlways acknowledges a record only after an fsync covering it (group commit).
	SyncAlways
	// SyncNone acknowledges at once; fsync only on roll, Close and durable waits. Tests only.
	SyncNone
)

// String returns the configuration name of the mode.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncMode(%d)", uint8(m))
}

// ParseSyncMode maps "always", "interval" or "none" to a SyncMode.
func ParseSyncMode(s string) (SyncMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	}
	return 0, fmt.Errorf("wal: unknown sync mode %q (want always, interval or none)", s)
}

// Defaults applied by Open to zero Options fields.
const (
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultSegmentSize  = 64 << 20
)

// Options configures a Writer.
type Options struct {
	// Dir is the wal/ directory; created (0700) if missing.
	Dir string
	// Key is the master key; segments are sealed under HKDF(Key, salt, "tokmesh/wal/v1").
	Key *crypt.MasterKey
	// Cipher is used for new segments; 0 means crypt.AutoCipher().
	Cipher crypt.CipherID
	// SyncMode decides when Wait returns (see SyncMode).
	SyncMode SyncMode
	// SyncInterval is the fsync period in interval mode; 0 means 100ms.
	SyncInterval time.Duration
	// SegmentSize is the size at which a segment rolls, in bytes; 0 means 64 MiB.
	SegmentSize int64
	// FS is the file system; nil means the real one.
	FS FS
	// OnFatal is called once, from the writer goroutine, with the first write
	// or fsync error. The writer is dead afterwards (fail-stop). It must not
	// block or call Close (Close waits for the writer goroutine).
	OnFatal func(error)
	// OnFsync, if set, is called from the writer goroutine after every
	// successful fsync with its duration and how many records it made
	// durable (metrics). It must not block.
	OnFsync func(d time.Duration, records uint64)
}

// Stats are the writer's counters since Open.
type Stats struct {
	BytesWritten int64         // header and frame bytes written
	Segments     int           // segments created, the first one included
	SegmentID    uint64        // current segment
	Records      uint64        // records written
	Batches      uint64        // write(2) batches
	Fsyncs       uint64        // file fsyncs
	LastFsync    time.Duration // duration of the most recent fsync
	LastFsyncAt  time.Time     // when the most recent fsync completed (zero: none yet)
	// RecordsByType counts the records written, indexed by record type
	// (TypeSessionPut … TypeReset; index 0 is unused).
	RecordsByType [TypeReset + 1]uint64
	QueueDepth    int    // records appended but not yet taken by the writer
	LastSeq       uint64 // last assigned seq
	WrittenSeq    uint64 // highest seq written to the OS
	SyncedSeq     uint64 // highest seq covered by an fsync
}

type record struct {
	typ     byte
	payload []byte
}

type waiter struct {
	seq uint64
	err error
	ch  chan struct{}
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

// waitHeap is a min-heap of waiters by seq, so a batch wakes exactly the
// waiters it covers.
type waitHeap []*waiter

func (h *waitHeap) push(w *waiter) {
	*h = append(*h, w)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].seq <= s[i].seq {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *waitHeap) pop() *waiter {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = nil
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].seq < s[l].seq {
			m = r
		}
		if s[i].seq <= s[m].seq {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// release wakes every waiter with seq <= upTo (all of them when all is set).
func (h *waitHeap) release(upTo uint64, all bool, err error) {
	for len(*h) > 0 && (all || (*h)[0].seq <= upTo) {
		w := h.pop()
		w.err = err
		w.ch <- struct{}{}
	}
}

const (
	flushThreshold = 4 << 20  // write(2) at most this much at once
	maxKeptBuf     = 16 << 20 // do not keep a larger batch buffer

	// Backpressure in mode none: while the queue holds more than this, Wait
	// waits for the record to be written as in mode interval, so that the
	// queue cannot grow without bound when the disk is slower than the callers.
	maxQueueRecords = 1 << 16
	maxQueueBytes   = 64 << 20
)

// Writer appends records to the WAL. Append and Wait are safe for concurrent
// use; one goroutine owned by the Writer does all I/O.
type Writer struct {
	opts Options
	fs   FS
	mode SyncMode

	mu       sync.Mutex
	queue    []record
	qBytes   int    // payload bytes in queue
	qFirst   uint64 // seq of queue[0]
	nextSeq  uint64
	written  uint64
	synced   uint64
	syncReq  uint64 // highest seq a durable waiter needs fsynced
	err      error  // fatal error
	closing  bool
	closeSeq uint64 // first seq appended after Close began (dropped)
	stopped  bool
	writeW   waitHeap
	syncW    waitHeap

	kick      chan struct{}
	done      chan struct{}
	fatalOnce sync.Once

	// Owned by the writer goroutine (and by Open before it starts).
	f           File
	seal        sealer
	segPath     string
	segSize     int64
	buf         []byte
	spare       []record
	lastWritten uint64
	lastSynced  uint64

	bytesWritten atomic.Int64
	segments     atomic.Int64
	segID        atomic.Uint64
	records      atomic.Uint64
	batches      atomic.Uint64
	fsyncs       atomic.Uint64
	lastFsync    atomic.Int64
	lastFsyncAt  atomic.Int64 // Unix ns, 0 = none yet
	byType       [TypeReset + 1]atomic.Uint64
}

// Open starts a new segment (ID = highest existing + 1) whose first seq is
// nextSeq and starts the writer goroutine. Call it after Replay (with
// TruncateTornTail) so that the previous last segment has no torn tail;
// nextSeq is ReplayResult.LastSeq + 1 (at least 1).
func Open(opts Options, nextSeq uint64) (*Writer, error) {
	if opts.Key == nil {
		return nil, errors.New("wal: Options.Key is required")
	}
	if opts.Dir == "" {
		return nil, errors.New("wal: Options.Dir is required")
	}
	if nextSeq == 0 {
		return nil, errors.New("wal: seqs start at 1")
	}
	if opts.SyncMode > SyncNone {
		return nil, fmt.Errorf("wal: invalid sync mode %d", opts.SyncMode)
	}
	if opts.Cipher == 0 {
		opts.Cipher = crypt.AutoCipher()
	}
	if opts.Cipher != crypt.AES256GCM && opts.Cipher != crypt.ChaCha20Poly1305 {
		return nil, fmt.Errorf("%w: %d", crypt.ErrUnknownCipher, opts.Cipher)
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	fsys := orOS(opts.FS)
	names, err := fsys.ReadDir(opts.Dir)
	if isNotExist(err) {
		if err := fsys.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("wal: create %s: %w", opts.Dir, err)
		}
		if err := fsys.SyncDir(dirOf(opts.Dir)); err != nil {
			return nil, fmt.Errorf("wal: fsync %s: %w", dirOf(opts.Dir), err)
		}
		names, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", opts.Dir, err)
	}
	var maxID uint64
	removed := false
	for _, n := range names {
		if isTempName(n) {
			// Leftover of an interrupted segment creation or rekey: never a segment.
			if err := fsys.Remove(joinPath(opts.Dir, n)); err != nil {
				return nil, fmt.Errorf("wal: remove stale %s: %w", n, err)
			}
			removed = true
			continue
		}
		if id, ok := parseSegmentName(n); ok && id > maxID {
			maxID = id
		}
	}
	if removed {
		if err := fsys.SyncDir(opts.Dir); err != nil {
			return nil, fmt.Errorf("wal: fsync %s: %w", opts.Dir, err)
		}
	}
	if maxID > 0 {
		last := joinPath(opts.Dir, segmentName(maxID))
		if h, err := readHeader(fsys, last); err == nil && h.FirstSeq > nextSeq {
			return nil, fmt.Errorf("%w: %s starts at seq %d, a new segment cannot start at %d", ErrSeqGap, last, h.FirstSeq, nextSeq)
		}
	}
	w := &Writer{
		opts:        opts,
		fs:          fsys,
		mode:        opts.SyncMode,
		nextSeq:     nextSeq,
		closeSeq:    math.MaxUint64,
		written:     nextSeq - 1,
		synced:      nextSeq - 1,
		lastWritten: nextSeq - 1,
		lastSynced:  nextSeq - 1,
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	if err := w.createSegment(maxID+1, nextSeq); err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// Append assigns the next seq to a record and queues it for the writer. It
// does no I/O and takes ownership of payload. An unknown type or a payload
// above MaxPayloadSize fails the writer (fail-stop) when it is written: a seq
// cannot be skipped. After a fatal error or Close the record is dropped and
// Wait reports why.
func (w *Writer) Append(typ byte, payload []byte) uint64 {
	w.mu.Lock()
	seq := w.nextSeq
	w.nextSeq++
	wake := false
	if w.err == nil && !w.closing {
		if len(w.queue) == 0 {
			w.qFirst = seq
			wake = true
		}
		w.queue = append(w.queue, record{typ, payload})
		w.qBytes += len(payload)
	}
	w.mu.Unlock()
	if wake {
		w.poke()
	}
	return seq
}

func (w *Writer) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Wait blocks until seq is acknowledged under the sync mode: always → an
// fsync covering seq completed; interval → seq was written to the OS
// (write(2) returned); none → at once, unless more than 65536 records or
// 64 MiB are queued, in which case it waits as in interval (backpressure).
// With durable it waits for an fsync covering seq in every mode, prompting
// one at once instead of waiting for the interval ticker. It returns the
// writer's fatal error (or ErrClosed) if seq was not acknowledged before the
// writer failed (or closed). Call it without holding locks.
func (w *Writer) Wait(seq uint64, durable bool) error {
	needSync := durable || w.mode == SyncAlways
	w.mu.Lock()
	if seq >= w.nextSeq {
		w.mu.Unlock()
		return fmt.Errorf("wal: wait for seq %d, which was never appended", seq)
	}
	if needSync && w.synced >= seq {
		w.mu.Unlock()
		return nil
	}
	if err := w.err; err != nil {
		w.mu.Unlock()
		return err
	}
	if seq >= w.closeSeq {
		w.mu.Unlock()
		return ErrClosed
	}
	if !needSync && (w.written >= seq || (w.mode == SyncNone && len(w.queue) < maxQueueRecords && w.qBytes < maxQueueBytes)) {
		w.mu.Unlock()
		return nil
	}
	if w.stopped {
		w.mu.Unlock()
		return ErrClosed
	}
	wt := waiterPool.Get().(*waiter)
	wt.seq, wt.err = seq, nil
	kick := false
	if needSync {
		w.syncW.push(wt)
		if w.mode != SyncAlways && seq > w.syncReq {
			w.syncReq = seq
			kick = true
		}
	} else {
		w.writeW.push(wt)
	}
	w.mu.Unlock()
	if kick {
		w.poke()
	}
	<-wt.ch
	err := wt.err
	wt.err = nil
	waiterPool.Put(wt)
	return err
}

// LastSeq returns the last assigned seq.
func (w *Writer) LastSeq() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextSeq - 1
}

// Sync writes and fsyncs everything appended so far.
func (w *Writer) Sync() error { return w.Wait(w.LastSeq(), true) }

// Close writes and fsyncs everything queued, closes the segment and stops
// the writer goroutine. It is idempotent and returns the fatal error, if any.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closing {
		w.closing = true
		w.closeSeq = w.nextSeq
	}
	w.mu.Unlock()
	w.poke()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Err returns the fatal error, or nil while the writer is healthy.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	s := Stats{QueueDepth: len(w.queue), LastSeq: w.nextSeq - 1, WrittenSeq: w.written, SyncedSeq: w.synced}
	w.mu.Unlock()
	s.BytesWritten = w.bytesWritten.Load()
	s.Segments = int(w.segments.Load())
	s.SegmentID = w.segID.Load()
	s.Records = w.records.Load()
	s.Batches = w.batches.Load()
	s.Fsyncs = w.fsyncs.Load()
	s.LastFsync = time.Duration(w.lastFsync.Load())
	if at := w.lastFsyncAt.Load(); at != 0 {
		s.LastFsyncAt = time.Unix(0, at)
	}
	for i := range w.byType {
		s.RecordsByType[i] = w.byType[i].Load()
	}
	return s
}

// run is the writer goroutine: it drains the whole queue, seals it into one
// buffer, writes it with one write(2) and fsyncs once if anyone needs it.
func (w *Writer) run() {
	defer close(w.done)
	var tickC <-chan time.Time
	if w.mode == SyncInterval {
		t := time.NewTicker(w.opts.SyncInterval)
		defer t.Stop()
		tickC = t.C
	}
	tick := false
	for {
		w.mu.Lock()
		batch, first := w.queue, w.qFirst
		w.queue, w.spare = w.spare, nil
		w.qBytes = 0
		closing, syncReq, failed := w.closing, w.syncReq, w.err != nil
		w.mu.Unlock()
		if failed {
			w.idleUntilClose()
			return
		}
		if len(batch) > 0 {
			if err := w.writeBatch(batch, first); err != nil {
				w.fail(err)
				continue
			}
		}
		clear(batch)
		w.spare = batch[:0]

		// A durable waiter whose record is still queued is served after the
		// next batch: syncing now would cost an extra fsync.
		needSync := w.mode == SyncAlways || tick || closing ||
			(syncReq > w.lastSynced && (syncReq <= w.lastWritten || len(batch) == 0))
		if needSync && w.lastWritten > w.lastSynced {
			woke, err := w.sync()
			if err != nil {
				w.fail(err)
				continue
			}
			if woke > 1 {
				// Let the callers just released append their next records
				// before the next batch is taken; otherwise batches
				// alternate between one record and all the others, halving
				// the records per fsync.
				runtime.Gosched()
			}
		}
		tick = false
		if len(batch) > 0 {
			continue
		}
		if closing {
			w.finish()
			return
		}
		select {
		case <-w.kick:
		case <-tickC:
			tick = true
		}
	}
}

func (w *Writer) writeBatch(batch []record, first uint64) error {
	buf := w.buf[:0]
	var byType [TypeReset + 1]uint64 // added to the stats once the batch is written
	for i := range batch {
		r := &batch[i]
		seq := first + uint64(i)
		if !ValidType(r.typ) {
			return fmt.Errorf("%w: seq %d has type %d", ErrInvalidType, seq, r.typ)
		}
		if len(r.payload) > MaxPayloadSize {
			return fmt.Errorf("%w: seq %d has %d bytes (max %d)", ErrRecordTooLarge, seq, len(r.payload), MaxPayloadSize)
		}
		n := frameLen(len(r.payload))
		size := w.segSize + int64(len(buf))
		if size > HeaderSize && size+int64(n) > w.opts.SegmentSize {
			if err := w.flush(buf, seq-1); err != nil {
				return err
			}
			buf = buf[:0]
			if err := w.roll(seq); err != nil {
				return err
			}
		} else if len(buf) > 0 && len(buf)+n > flushThreshold {
			if err := w.flush(buf, seq-1); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = w.seal.appendFrame(buf, seq, r.typ, r.payload)
		byType[r.typ]++
	}
	err := w.flush(buf, first+uint64(len(batch))-1)
	if err == nil {
		for t, n := range byType {
			if n > 0 {
				w.byType[t].Add(n)
			}
		}
	}
	if cap(buf) > maxKeptBuf {
		buf = nil
	}
	w.buf = buf[:0]
	return err
}

// flush writes buf, whose last record is lastSeq, and releases the waiters
// that only need the record written.
func (w *Writer) flush(buf []byte, lastSeq uint64) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := w.f.Write(buf)
	w.segSize += int64(n)
	w.bytesWritten.Add(int64(n))
	if err == nil && n != len(buf) {
		err = errors.New("short write")
	}
	if err != nil {
		return fmt.Errorf("wal: write %s: %w", w.segPath, err)
	}
	w.batches.Add(1)
	w.records.Add(lastSeq - w.lastWritten)
	w.lastWritten = lastSeq
	w.mu.Lock()
	w.written = lastSeq
	w.writeW.release(lastSeq, false, nil)
	w.mu.Unlock()
	return nil
}

// sync fsyncs the segment and releases the covered waiters; it returns how
// many it released.
func (w *Writer) sync() (int, error) {
	start := time.Now()
	if err := w.f.Sync(); err != nil {
		return 0, fmt.Errorf("wal: fsync %s: %w", w.segPath, err)
	}
	end := time.Now()
	took := end.Sub(start)
	w.lastFsync.Store(int64(took))
	w.lastFsyncAt.Store(end.UnixNano())
	w.fsyncs.Add(1)
	if w.opts.OnFsync != nil {
		w.opts.OnFsync(took, w.lastWritten-w.lastSynced)
	}
	w.lastSynced = w.lastWritten
	w.mu.Lock()
	w.synced = w.lastSynced
	n := len(w.syncW)
	w.syncW.release(w.lastSynced, false, nil)
	n -= len(w.syncW)
	w.mu.Unlock()
	return n, nil
}

// roll fsyncs and closes the current segment and starts the next one.
func (w *Writer) roll(firstSeq uint64) error {
	if w.lastWritten > w.lastSynced {
		if _, err := w.sync(); err != nil {
			return err
		}
	}
	f := w.f
	w.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", w.segPath, err)
	}
	return w.createSegment(w.segID.Load()+1, firstSeq)
}

// createSegment writes the header to a temp file, fsyncs it, renames it into
// place, fsyncs the directory and opens the segment for appending, so a
// segment file never exists with a partial header.
func (w *Writer) createSegment(id, firstSeq uint64) error {
	salt, err := crypt.NewSalt()
	if err != nil {
		return fmt.Errorf("wal: salt: %w", err)
	}
	h := Header{
		Version:   FormatVersion,
		Cipher:    w.opts.Cipher,
		KeyID:     w.opts.Key.ID(),
		SegmentID: id,
		FirstSeq:  firstSeq,
		Salt:      salt,
		CreatedAt: time.Now().UnixMilli(),
	}
	aead, err := w.opts.Key.FileAEAD(h.Cipher, salt[:], crypt.PurposeWAL)
	if err != nil {
		return fmt.Errorf("wal: segment key: %w", err)
	}
	path := joinPath(w.opts.Dir, segmentName(id))
	if err := createSegmentFile(w.fs, path, &h); err != nil {
		return err
	}
	f, err := w.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", path, err)
	}
	w.f = f
	w.segPath = path
	w.segSize = HeaderSize
	w.seal = sealer{aead: aead, segID: id}
	w.segID.Store(id)
	w.segments.Add(1)
	w.bytesWritten.Add(HeaderSize)
	return nil
}

// createSegmentFile atomically creates path holding only the header.
func createSegmentFile(fsys FS, path string, h *Header) error {
	tmp := path + tempSuffix
	hb := h.Encode()
	if err := writeFileSync(fsys, tmp, hb[:]); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("wal: create %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("wal: rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(dirOf(path)); err != nil {
		return fmt.Errorf("wal: fsync dir of %s: %w", path, err)
	}
	return nil
}

// fail makes err the writer's fatal error, fails every waiter and calls OnFatal once.
func (w *Writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	err = w.err
	clear(w.queue)
	w.queue = w.queue[:0]
	w.writeW.release(0, true, err)
	w.syncW.release(0, true, err)
	w.mu.Unlock()
	if w.f != nil {
		_ = w.f.Close() // no fsync: the file's durable state is unknown
		w.f = nil
	}
	w.fatalOnce.Do(func() {
		if w.opts.OnFatal != nil {
			w.opts.OnFatal(err)
		}
	})
}

func (w *Writer) idleUntilClose() {
	for {
		w.mu.Lock()
		c := w.closing
		if c {
			w.stopped = true
		}
		w.mu.Unlock()
		if c {
			return
		}
		<-w.kick
	}
}

// finish closes the segment after the final sync and fails the waiters of
// records appended after Close began.
func (w *Writer) finish() {
	var cerr error
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			cerr = fmt.Errorf("wal: close %s: %w", w.segPath, err)
		}
		w.f = nil
	}
	w.mu.Lock()
	if cerr != nil && w.err == nil {
		// Everything was fsynced; a close error is reported but loses nothing.
		w.err = cerr
	}
	w.stopped = true
	rest := ErrClosed
	if w.err != nil {
		rest = w.err
	}
	w.writeW.release(0, true, rest)
	w.syncW.release(0, true, rest)
	w.mu.Unlock()
}
