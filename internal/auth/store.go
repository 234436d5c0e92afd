package auth

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
	"github.com/yndnr/tokmesh-go/internal/datadir"
)

// Control-store files inside <data_dir>/control/.
const (
	// SnapshotFileName holds the key table as of the log's base index.
	SnapshotFileName = "keys.snap"
	// LogFileName holds the commands applied after the snapshot.
	LogFileName = "keys.log"

	// fileHeaderSize: magic 8 | version u16 | cipher u8 | flags u8 |
	// key ID 8 | salt 32 | index u64 | created_at i64 | crc32c u32.
	fileHeaderSize     = 72
	storeFormatVersion = 1
	// A record is len u32 | crc32c u32 | index u64 | sealed command, where
	// len counts index + sealed and the CRC covers the same bytes.
	recordPrefix = 8
	minRecordLen = 8 + crypt.TagSize
	maxRecordLen = 1 << 20

	kindLog  byte = 'L'
	kindSnap byte = 'S'

	// DefaultCompactAfter is the number of log records that triggers compaction.
	DefaultCompactAfter = 1000
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func magicFor(kind byte) [8]byte {
	return [8]byte{'T', 'M', 'K', 'E', 'Y', 'S', kind, 0}
}

// fileHeader is the plaintext header of keys.log and keys.snap.
type fileHeader struct {
	kind      byte
	cipher    crypt.CipherID
	keyID     crypt.KeyID
	salt      [crypt.SaltSize]byte
	index     uint64 // log: base index (last index before its first record); snapshot: covered index
	createdAt int64
}

func (h *fileHeader) encode() []byte {
	b := make([]byte, fileHeaderSize)
	m := magicFor(h.kind)
	copy(b[0:8], m[:])
	binary.BigEndian.PutUint16(b[8:10], storeFormatVersion)
	b[10] = byte(h.cipher)
	b[11] = 0
	copy(b[12:20], h.keyID[:])
	copy(b[20:52], h.salt[:])
	binary.BigEndian.PutUint64(b[52:60], h.index)
	binary.BigEndian.PutUint64(b[60:68], uint64(h.createdAt))
	binary.BigEndian.PutUint32(b[68:72], crc32.Checksum(b[:68], castagnoli))
	return b
}

// decodeFileHeader checks magic, version, CRC, flags, cipher and key ID.
func decodeFileHeader(b []byte, kind byte, key crypt.KeyID) (fileHeader, error) {
	var h fileHeader
	m := magicFor(kind)
	switch {
	case len(b) < fileHeaderSize:
		return h, fmt.Errorf("%w: header has %d of %d bytes", ErrCorrupt, len(b), fileHeaderSize)
	case !bytes.Equal(b[0:8], m[:]):
		return h, fmt.Errorf("%w: bad magic", ErrCorrupt)
	case crc32.Checksum(b[:68], castagnoli) != binary.BigEndian.Uint32(b[68:72]):
		return h, fmt.Errorf("%w: header CRC mismatch", ErrCorrupt)
	case binary.BigEndian.Uint16(b[8:10]) != storeFormatVersion:
		return h, fmt.Errorf("%w: format version %d (this build reads %d)", ErrCorrupt, binary.BigEndian.Uint16(b[8:10]), storeFormatVersion)
	case b[11] != 0:
		return h, fmt.Errorf("%w: unknown header flags %#x", ErrCorrupt, b[11])
	}
	h.kind = kind
	h.cipher = crypt.CipherID(b[10])
	if h.cipher != crypt.AES256GCM && h.cipher != crypt.ChaCha20Poly1305 {
		return h, fmt.Errorf("%w: %v", ErrCorrupt, crypt.ErrUnknownCipher)
	}
	copy(h.keyID[:], b[12:20])
	copy(h.salt[:], b[20:52])
	h.index = binary.BigEndian.Uint64(b[52:60])
	h.createdAt = int64(binary.BigEndian.Uint64(b[60:68]))
	if h.keyID != key {
		return h, fmt.Errorf("%w: file written under master key %s, configured key is %s (configure the right key or run tokmesh-walctl rekey)",
			ErrKeyMismatch, h.keyID, key)
	}
	return h, nil
}

func recordAAD(kind byte, index uint64) []byte {
	var a [9]byte
	a[0] = kind
	binary.BigEndian.PutUint64(a[1:], index)
	return a[:]
}

// sealRecord frames one sealed payload; the nonce is the record index.
func sealRecord(aead cipher.AEAD, kind byte, index uint64, payload []byte) []byte {
	n := crypt.Nonce(index)
	out := make([]byte, recordPrefix+8, recordPrefix+8+len(payload)+crypt.TagSize)
	binary.BigEndian.PutUint64(out[recordPrefix:], index)
	out = aead.Seal(out, n[:], payload, recordAAD(kind, index))
	binary.BigEndian.PutUint32(out[0:4], uint32(len(out)-recordPrefix))
	binary.BigEndian.PutUint32(out[4:8], crc32.Checksum(out[recordPrefix:], castagnoli))
	return out
}

// recordStatus is the outcome of reading one record.
type recordStatus int

const (
	recOK recordStatus = iota
	recTorn
	recCorrupt
)

// readRecord reads the record at b[0:]. atEOF-dependent defects (a short
// prefix, a length running past EOF, a CRC mismatch on a record that ends
// exactly at EOF, an all-zero tail) are torn; anything else is corrupt.
func readRecord(b []byte, aead cipher.AEAD, kind byte) (index uint64, payload []byte, size int, st recordStatus, err error) {
	if len(b) < recordPrefix {
		return 0, nil, 0, recTorn, errors.New("short record prefix")
	}
	l := int(binary.BigEndian.Uint32(b[0:4]))
	if l < minRecordLen || l > maxRecordLen {
		if allZero(b) {
			return 0, nil, 0, recTorn, errors.New("zero-filled tail")
		}
		return 0, nil, 0, recCorrupt, fmt.Errorf("record length %d outside %d..%d", l, minRecordLen, maxRecordLen)
	}
	if recordPrefix+l > len(b) {
		return 0, nil, 0, recTorn, fmt.Errorf("record of %d bytes runs past end of file", l)
	}
	body := b[recordPrefix : recordPrefix+l]
	size = recordPrefix + l
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:8]) {
		if size == len(b) {
			return 0, nil, 0, recTorn, errors.New("CRC mismatch in final record")
		}
		return 0, nil, 0, recCorrupt, errors.New("record CRC mismatch")
	}
	index = binary.BigEndian.Uint64(body[:8])
	n := crypt.Nonce(index)
	payload, err = aead.Open(nil, n[:], body[8:], recordAAD(kind, index))
	if err != nil {
		return index, nil, size, recCorrupt, fmt.Errorf("record %d: authentication tag mismatch", index)
	}
	return index, payload, size, recOK, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// StoreOptions configures OpenStore.
type StoreOptions struct {
	// Dir is the control directory, normally <data_dir>/control (created 0700).
	Dir string
	// MasterKey derives the per-file keys (purpose "control").
	MasterKey *crypt.MasterKey
	// Cipher is used for new files; 0 means crypt.AutoCipher(). Existing
	// files are read with the cipher they record.
	Cipher crypt.CipherID
	// CompactAfter is the number of log records after which the log is
	// folded into a new snapshot; 0 means DefaultCompactAfter.
	CompactAfter int
	// ReadOnly opens for inspection (tools): no truncation, no compaction,
	// Apply fails.
	ReadOnly bool
	// Now is the clock for header timestamps; nil means time.Now.
	Now func() time.Time
	// Logger receives compaction warnings; nil discards.
	Logger *slog.Logger
}

// Recovery describes what OpenStore found.
type Recovery struct {
	// SnapshotIndex is the index covered by keys.snap (0 when absent).
	SnapshotIndex uint64
	// Replayed is the number of log records applied on top of the snapshot.
	Replayed int
	// TornTailBytes is the size of a torn final record that was dropped.
	TornTailBytes int64
}

// Store is the standalone control store: the key State, persisted as an
// encrypted snapshot plus an append-only command log in Dir. Apply makes a
// command durable (write + fsync) before applying it; Open replays snapshot
// + log. It implements Backend.
type Store struct {
	opts     StoreOptions
	mu       sync.Mutex
	state    *State
	index    uint64
	view     atomic.Pointer[View]
	log      *os.File
	logAEAD  cipher.AEAD
	logOff   int64
	logCount int
	failed   error
	closed   bool
	subs     map[int]func(*View, Change)
	nextSub  int
	recovery Recovery
}

// Backend is where the Manager sends commands: the standalone Store, or
// (later) the Raft FSM, which has the same semantics.
type Backend interface {
	// Apply makes cmd durable and applies it, returning the resulting key.
	Apply(ctx context.Context, cmd Command) (Key, error)
	// View returns the latest applied key table.
	View() *View
	// Subscribe calls fn after every applied command (in apply order, with
	// the backend's lock held: fn must not call back into the backend).
	Subscribe(fn func(*View, Change)) (cancel func())
}

var _ Backend = (*Store)(nil)

// OpenStore loads (or creates) the control store. A torn final log record
// is dropped; any other defect returns a *CorruptError matching ErrCorrupt,
// or ErrKeyMismatch when a file was written under another master key. A
// writable store that replayed anything starts a fresh snapshot and log, so
// no nonce is ever reused under a log's key.
func OpenStore(opts StoreOptions) (*Store, error) {
	if opts.MasterKey == nil {
		return nil, errors.New("auth: control store needs a master key")
	}
	if opts.Cipher == 0 {
		opts.Cipher = crypt.AutoCipher()
	}
	if opts.CompactAfter <= 0 {
		opts.CompactAfter = DefaultCompactAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Store{opts: opts, state: NewState(), subs: map[int]func(*View, Change){}}
	needCompact, logH, logData, err := s.load()
	if err != nil {
		return nil, err
	}
	s.view.Store(s.state.View(s.index))
	if opts.ReadOnly {
		return s, nil
	}
	switch {
	case logData == nil: // fresh store: the log first, so a snapshot never exists without one
		if err := s.newLog(opts.MasterKey); err != nil {
			return nil, err
		}
		if err := s.writeSnapshot(opts.MasterKey); err != nil {
			s.closeFile()
			return nil, err
		}
	case needCompact:
		if err := s.compactLocked(opts.MasterKey); err != nil {
			s.closeFile()
			return nil, err
		}
	default:
		f, err := os.OpenFile(filepath.Join(opts.Dir, LogFileName), os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		aead, err := opts.MasterKey.FileAEAD(logH.cipher, logH.salt[:], crypt.PurposeControl)
		if err != nil {
			f.Close()
			return nil, err
		}
		s.log, s.logAEAD, s.logOff = f, aead, int64(len(logData))
	}
	return s, nil
}

func (s *Store) corrupt(file string, off int64, err error) error {
	return &CorruptError{File: filepath.Join(s.opts.Dir, file), Offset: off, Err: err}
}

// load reads snapshot and log into s.state. needCompact is true when the
// log holds records or a torn tail, or no snapshot exists. logData is nil
// for a fresh store.
func (s *Store) load() (needCompact bool, logH fileHeader, logData []byte, err error) {
	snapData, err := os.ReadFile(filepath.Join(s.opts.Dir, SnapshotFileName))
	haveSnap := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, logH, nil, err
	}
	if haveSnap {
		if err := s.loadSnapshot(snapData); err != nil {
			return false, logH, nil, err
		}
	}
	logData, err = os.ReadFile(filepath.Join(s.opts.Dir, LogFileName))
	if errors.Is(err, fs.ErrNotExist) {
		if haveSnap {
			return false, logH, nil, s.corrupt(LogFileName, 0, fmt.Errorf("%w: %s is missing but %s exists", ErrCorrupt, LogFileName, SnapshotFileName))
		}
		return false, logH, nil, nil
	}
	if err != nil {
		return false, logH, nil, err
	}
	logH, valid, err := s.replayLog(logData)
	if err != nil {
		return false, logH, nil, err
	}
	needCompact = valid > fileHeaderSize || s.recovery.TornTailBytes > 0 || !haveSnap
	return needCompact, logH, logData[:valid], nil
}

// loadSnapshot decodes keys.snap into s.state.
func (s *Store) loadSnapshot(data []byte) error {
	h, err := decodeFileHeader(data, kindSnap, s.opts.MasterKey.ID())
	if err != nil {
		return s.corrupt(SnapshotFileName, 0, err)
	}
	aead, err := s.opts.MasterKey.FileAEAD(h.cipher, h.salt[:], crypt.PurposeControl)
	if err != nil {
		return err
	}
	idx, payload, size, st, rerr := readRecord(data[fileHeaderSize:], aead, kindSnap)
	if st != recOK {
		return s.corrupt(SnapshotFileName, fileHeaderSize, fmt.Errorf("%w: %v", ErrCorrupt, rerr))
	}
	if fileHeaderSize+size != len(data) {
		return s.corrupt(SnapshotFileName, int64(fileHeaderSize+size), fmt.Errorf("%w: trailing bytes", ErrCorrupt))
	}
	state, sidx, derr := UnmarshalState(payload)
	if derr != nil {
		return s.corrupt(SnapshotFileName, fileHeaderSize, fmt.Errorf("%w: %v", ErrCorrupt, derr))
	}
	if idx != h.index || sidx != h.index {
		return s.corrupt(SnapshotFileName, fileHeaderSize, fmt.Errorf("%w: index mismatch (header %d, record %d, state %d)", ErrCorrupt, h.index, idx, sidx))
	}
	s.state, s.index = state, h.index
	s.recovery.SnapshotIndex = h.index
	return nil
}

// replayLog applies the records of keys.log that follow s.index. It returns
// the log header and the length of the valid prefix (a torn final record
// is excluded and reported in s.recovery).
func (s *Store) replayLog(data []byte) (fileHeader, int, error) {
	h, err := decodeFileHeader(data, kindLog, s.opts.MasterKey.ID())
	if err != nil {
		return h, 0, s.corrupt(LogFileName, 0, err)
	}
	// Without a snapshot the log must hold the whole history (base 0): a
	// store is initialised log-first, and compaction writes the snapshot
	// before it replaces the log.
	if h.index > s.index {
		return h, 0, s.corrupt(LogFileName, 0, fmt.Errorf("%w: log starts after index %d but the snapshot covers only %d", ErrCorrupt, h.index, s.index))
	}
	aead, err := s.opts.MasterKey.FileAEAD(h.cipher, h.salt[:], crypt.PurposeControl)
	if err != nil {
		return h, 0, err
	}
	off := fileHeaderSize
	next := h.index + 1
	for off < len(data) {
		idx, payload, size, st, rerr := readRecord(data[off:], aead, kindLog)
		if st == recTorn {
			s.recovery.TornTailBytes = int64(len(data) - off)
			break
		}
		if st == recCorrupt {
			return h, 0, s.corrupt(LogFileName, int64(off), fmt.Errorf("%w: %v", ErrCorrupt, rerr))
		}
		if idx != next {
			return h, 0, s.corrupt(LogFileName, int64(off), fmt.Errorf("%w: record index %d, expected %d", ErrCorrupt, idx, next))
		}
		cmd, derr := DecodeCommand(payload)
		if derr != nil {
			return h, 0, s.corrupt(LogFileName, int64(off), fmt.Errorf("%w: record %d: %v", ErrCorrupt, idx, derr))
		}
		if idx > s.index {
			if _, _, aerr := s.state.Apply(&cmd); aerr != nil {
				return h, 0, s.corrupt(LogFileName, int64(off), fmt.Errorf("%w: record %d does not apply: %v", ErrCorrupt, idx, aerr))
			}
			s.index = idx
			s.recovery.Replayed++
		}
		next++
		off += size
	}
	if next-1 < s.index {
		// The log is replaced only after the snapshot is durable, so it
		// always reaches the snapshot's index; if not, a newer log was lost.
		return h, 0, s.corrupt(LogFileName, int64(off), fmt.Errorf("%w: log ends at index %d before the snapshot's %d", ErrCorrupt, next-1, s.index))
	}
	return h, off, nil
}

// Recovery reports what OpenStore found (for the startup log).
func (s *Store) Recovery() Recovery { return s.recovery }

// newLog atomically replaces keys.log with an empty log whose base is the
// current index and a fresh salt, and makes it the append target.
func (s *Store) newLog(mk *crypt.MasterKey) error {
	salt, err := crypt.NewSalt()
	if err != nil {
		return err
	}
	h := fileHeader{kind: kindLog, cipher: s.opts.Cipher, keyID: mk.ID(), salt: salt, index: s.index, createdAt: s.opts.Now().UnixMilli()}
	aead, err := mk.FileAEAD(h.cipher, salt[:], crypt.PurposeControl)
	if err != nil {
		return err
	}
	path := filepath.Join(s.opts.Dir, LogFileName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(h.encode()); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	// From here the previous log file is unlinked: appends must go to f.
	s.closeFile()
	s.log, s.logAEAD, s.logOff, s.logCount = f, aead, fileHeaderSize, 0
	if err := datadir.SyncDir(s.opts.Dir); err != nil {
		s.failed = fmt.Errorf("fsync %s: %w", s.opts.Dir, err)
		return s.failed
	}
	return nil
}

// compactLocked writes the state as a new snapshot and starts an empty log.
func (s *Store) compactLocked(mk *crypt.MasterKey) error {
	if err := s.writeSnapshot(mk); err != nil {
		return err
	}
	return s.newLog(mk)
}

// writeSnapshot atomically replaces keys.snap with the current state.
func (s *Store) writeSnapshot(mk *crypt.MasterKey) error {
	salt, err := crypt.NewSalt()
	if err != nil {
		return err
	}
	h := fileHeader{kind: kindSnap, cipher: s.opts.Cipher, keyID: mk.ID(), salt: salt, index: s.index, createdAt: s.opts.Now().UnixMilli()}
	aead, err := mk.FileAEAD(h.cipher, salt[:], crypt.PurposeControl)
	if err != nil {
		return err
	}
	body := sealRecord(aead, kindSnap, s.index, s.state.MarshalBinary(s.index))
	if err := datadir.WriteFileAtomic(filepath.Join(s.opts.Dir, SnapshotFileName), append(h.encode(), body...), 0o600); err != nil {
		return fmt.Errorf("write control snapshot: %w", err)
	}
	return nil
}

// Compact folds the log into a new snapshot now.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	return s.compactLocked(s.opts.MasterKey)
}

func (s *Store) writable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.opts.ReadOnly:
		return errors.New("auth: control store opened read-only")
	case s.failed != nil:
		return fmt.Errorf("%w: %v", ErrStoreFailed, s.failed)
	}
	return nil
}

// Apply checks cmd against the state, appends it to the log, fsyncs, then
// applies it and notifies subscribers. A rejected command (ErrNotFound,
// ErrKeyExists, ErrInvalidCommand) is not logged. A write or fsync error
// fails the store for good (ErrStoreFailed) without applying the command.
func (s *Store) Apply(ctx context.Context, cmd Command) (Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return Key{}, err
	}
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	payload := EncodeCommand(&cmd)
	// Apply what replay will decode, so the two can never diverge.
	dc, err := DecodeCommand(payload)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	if err := s.state.Check(&dc); err != nil {
		return Key{}, err
	}
	idx := s.index + 1
	rec := sealRecord(s.logAEAD, kindLog, idx, payload)
	if len(rec)-recordPrefix > maxRecordLen {
		return Key{}, fmt.Errorf("%w: command of %d bytes too large", ErrInvalidCommand, len(payload))
	}
	if _, err := s.log.WriteAt(rec, s.logOff); err != nil {
		s.failed = fmt.Errorf("write %s: %w", LogFileName, err)
		return Key{}, fmt.Errorf("%w: %v", ErrStoreFailed, s.failed)
	}
	if err := s.log.Sync(); err != nil {
		s.failed = fmt.Errorf("fsync %s: %w", LogFileName, err)
		return Key{}, fmt.Errorf("%w: %v", ErrStoreFailed, s.failed)
	}
	s.logOff += int64(len(rec))
	s.logCount++
	k, ch, err := s.state.Apply(&dc)
	if err != nil { // unreachable: Check passed under the same lock
		s.failed = err
		return Key{}, fmt.Errorf("%w: apply after check: %v", ErrStoreFailed, err)
	}
	s.index = idx
	v := s.state.View(idx)
	s.view.Store(v)
	for _, fn := range s.subs {
		fn(v, ch)
	}
	if s.logCount >= s.opts.CompactAfter {
		if err := s.compactLocked(s.opts.MasterKey); err != nil {
			// The command is durable in the old log; a failure before the
			// new log was renamed into place leaves a consistent store and
			// compaction is retried next time. A later failure set s.failed.
			s.opts.Logger.Warn("control store compaction failed", "err", err)
		}
	}
	return k, nil
}

// View returns the latest applied key table (lock-free).
func (s *Store) View() *View { return s.view.Load() }

// Index returns the index of the last applied command.
func (s *Store) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// Subscribe registers fn, called after each applied command with the store
// lock held (fn must not call back into the store).
func (s *Store) Subscribe(fn func(*View, Change)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, id)
	}
}

func (s *Store) closeFile() error {
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	s.log = nil
	return err
}

// Close releases the log file. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeFile()
}
