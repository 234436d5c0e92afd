package snapshot

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// WriteOptions configures Create.
type WriteOptions struct {
	Key        *crypt.MasterKey // required
	Cipher     crypt.CipherID   // required: crypt.AES256GCM or crypt.ChaCha20Poly1305 (callers resolve "auto")
	Kind       Kind             // KindSnapshot or KindBackup
	NodeID     string           // ≤ MaxIDLen bytes
	ClusterID  string           // ≤ MaxIDLen bytes; "" when standalone
	Partitions uint32
	CoveredSeq uint64
	Meta       []byte // ≤ MaxMetaSize bytes; the backup object JSON for KindBackup
	CreatedAt  int64  // Unix milliseconds; 0 = now

	// Test hooks (unexported so production callers cannot set them).
	salt         *[crypt.SaltSize]byte // fixed salt for deterministic fixtures
	chunkLimit   int                   // plaintext bytes per chunk; 0 = MaxChunkPlaintext
	noCompress   bool                  // write every chunk with framing version 1 (the golden fixtures)
	beforeVerify func(tmp string)      // runs after the temp file is closed, before verification
}

// writeBufferSize is the bufio buffer in front of the file; sealed chunks
// larger than it are written straight through.
const writeBufferSize = 64 << 10

// Writer streams entries into a new snapshot or backup file. Memory use is
// at most three chunk buffers (~3 MiB: one filling, one being sealed, the
// previous one being hashed in the background) plus a 64 KiB write buffer,
// whatever the number of entries. Create a Writer with Create; finish it with Commit or Abort.
type Writer struct {
	path, tmp    string
	key          *crypt.MasterKey
	f            *os.File
	bw           *bufio.Writer
	h            hash.Hash     // SHA-256 of every byte written so far
	hashing      chan struct{} // closed when the background hash of the previous chunk ends; nil if none
	off          int64
	hdr          Header
	aead         cipher.AEAD
	aad          [chunkAADSize]byte
	buf          []byte // entries of the chunk being filled; buf[0] is reserved for the framing version
	out          []byte // the sealed form of the previous chunk (possibly still being hashed); cap = 1 + s2 bound + tag
	spare        []byte // the other output buffer; nil until needed
	compress     bool
	limit        int
	maxPayload   int
	chunks       uint64
	counts       [MaxEntryTypes]uint64
	beforeVerify func(string)

	err    error // sticky write error
	closed bool
	info   Info
}

// Create starts a file that will appear at path after Commit. It writes to
// path+".tmp" (mode 0600), replacing any stale temp file.
func Create(path string, o WriteOptions) (*Writer, error) {
	if o.Key == nil {
		return nil, errors.New("snapshot: create: no master key")
	}
	if o.Cipher != crypt.AES256GCM && o.Cipher != crypt.ChaCha20Poly1305 {
		return nil, fmt.Errorf("snapshot: create: %w: %d", crypt.ErrUnknownCipher, uint8(o.Cipher))
	}
	purpose, ok := o.Kind.purpose()
	if !ok {
		return nil, fmt.Errorf("snapshot: create: invalid kind %d", uint8(o.Kind))
	}
	if len(o.NodeID) > MaxIDLen || len(o.ClusterID) > MaxIDLen {
		return nil, fmt.Errorf("snapshot: create: node or cluster ID longer than %d bytes", MaxIDLen)
	}
	if len(o.Meta) > MaxMetaSize {
		return nil, fmt.Errorf("snapshot: create: metadata larger than %d bytes", MaxMetaSize)
	}
	limit := MaxChunkPlaintext
	if o.chunkLimit > 0 && o.chunkLimit < MaxChunkPlaintext {
		limit = o.chunkLimit
	}
	hdr := Header{
		Version:    FormatVersion,
		Kind:       o.Kind,
		Cipher:     o.Cipher,
		KeyID:      o.Key.ID(),
		CreatedAt:  o.CreatedAt,
		NodeID:     o.NodeID,
		ClusterID:  o.ClusterID,
		Partitions: o.Partitions,
		CoveredSeq: o.CoveredSeq,
	}
	if len(o.Meta) > 0 {
		hdr.Meta = bytes.Clone(o.Meta)
	}
	if hdr.CreatedAt == 0 {
		hdr.CreatedAt = time.Now().UnixMilli()
	}
	if o.salt != nil {
		hdr.Salt = *o.salt
	} else {
		s, err := crypt.NewSalt()
		if err != nil {
			return nil, fmt.Errorf("snapshot: create: salt: %w", err)
		}
		hdr.Salt = s
	}
	aead, err := o.Key.FileAEAD(hdr.Cipher, hdr.Salt[:], purpose)
	if err != nil {
		return nil, fmt.Errorf("snapshot: create: %w", err)
	}

	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot: create: remove stale temp file: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("snapshot: create: %w", err)
	}
	w := &Writer{
		path:         path,
		tmp:          tmp,
		key:          o.Key,
		f:            f,
		bw:           bufio.NewWriterSize(f, writeBufferSize),
		h:            sha256.New(),
		hdr:          hdr,
		aead:         aead,
		buf:          make([]byte, 1, limit),
		limit:        limit,
		compress:     !o.noCompress,
		maxPayload:   limit - 2 - uvarintLen(uint64(limit)),
		beforeVerify: o.beforeVerify,
	}
	if err := w.write(appendHeader(nil, &w.hdr)); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

// wait joins the background hash of the previous chunk, if any.
func (w *Writer) wait() {
	if w.hashing != nil {
		<-w.hashing
		w.hashing = nil
	}
}

// write appends p to the file and the running hash.
func (w *Writer) write(p []byte) error {
	w.wait()
	if _, err := w.bw.Write(p); err != nil {
		w.err = fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
		return w.err
	}
	w.h.Write(p)
	w.off += int64(len(p))
	return nil
}

// MaxPayload returns the largest payload Add accepts.
func (w *Writer) MaxPayload() int { return w.maxPayload }

// Add appends one entry. The payload is copied; the caller may reuse it.
// A payload above MaxPayload returns ErrPayloadTooLarge and leaves the
// writer usable; a write error is sticky.
func (w *Writer) Add(typ byte, payload []byte) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if len(payload) > w.maxPayload {
		return fmt.Errorf("%w: %d bytes (max %d)", ErrPayloadTooLarge, len(payload), w.maxPayload)
	}
	need := 1 + uvarintLen(uint64(len(payload))) + len(payload)
	if len(w.buf)+need > w.limit {
		if err := w.flushChunk(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, typ)
	w.buf = binary.AppendUvarint(w.buf, uint64(len(payload)))
	w.buf = append(w.buf, payload...)
	w.counts[typ]++
	return nil
}

// flushChunk compresses, seals and writes the pending chunk, if it holds
// any entry.
//
// The entries are S2-compressed (framing version 2) when that makes the
// chunk smaller, which it does several times over for sessions: it shrinks
// the bytes that must be hashed, sealed, written and read back at recovery.
// SHA-256 is still the costliest step on CPUs without SHA extensions, so a
// large chunk is hashed in a background goroutine while it is written to
// the file and while the next chunk fills; the hash is joined before any
// further byte is hashed, so it always sees the file in order.
func (w *Writer) flushChunk() error {
	if len(w.buf) <= 1 {
		return nil
	}
	entries := w.buf[1:]
	out := w.out
	if need := 1 + s2.MaxEncodedLen(len(entries)) + crypt.TagSize; cap(out) < need {
		out = make([]byte, 0, max(need, 1+s2.MaxEncodedLen(w.limit)+crypt.TagSize))
	}
	out = out[:1]
	out[0] = chunkFramingVersion
	if w.compress {
		enc := s2.Encode(out[1:1+s2.MaxEncodedLen(len(entries))], entries)
		if len(enc) < len(entries) {
			out = out[:1+len(enc)]
			out[0] = chunkFramingS2
		}
	}
	if out[0] == chunkFramingVersion {
		out = append(out, entries...)
	}
	w.buf = w.buf[:1]

	nonce := crypt.Nonce(w.chunks)
	chunkAAD(&w.aad, &w.hdr.Salt, w.chunks)
	// Seal in place: out has room for the tag, so no allocation.
	sealed := w.aead.Seal(out[:0], nonce[:], out, w.aad[:])
	var prefix [chunkPrefixSize]byte
	binary.BigEndian.PutUint32(prefix[0:4], uint32(len(sealed)))
	binary.BigEndian.PutUint32(prefix[4:8], crc32.Checksum(sealed, castagnoli))
	if err := w.write(prefix[:]); err != nil { // joins the previous chunk's hash
		return err
	}
	w.out = sealed[:0]
	if len(sealed) < asyncHashMin {
		if err := w.write(sealed); err != nil {
			return err
		}
	} else {
		done := make(chan struct{})
		w.hashing = done
		h := w.h
		go func() {
			defer close(done)
			h.Write(sealed)
		}()
		// Writing only reads sealed, so it may run alongside the hash.
		if _, err := w.bw.Write(sealed); err != nil {
			w.err = fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
			return w.err
		}
		w.off += int64(len(sealed))
		// Seal the next chunk into the other buffer; this one stays
		// untouched until the hash is joined (the next flush joins it
		// before writing anything).
		w.out, w.spare = w.spare, w.out
	}
	w.chunks++
	return nil
}

// Commit finishes the file: last chunk, trailer, fsync, close, a full
// re-read and Verify of the temp file, rename to the final path and fsync of
// the directory. On any failure it removes the file and returns the error.
//
// Verification happens before the rename (the spec lists it after): the
// result is the same — the file counts only once verified — but an existing
// file at path is never replaced by one that failed verification.
func (w *Writer) Commit() error {
	if w.closed {
		return ErrClosed
	}
	err := w.commit()
	w.closed = true
	w.wait()
	if err != nil {
		if w.f != nil {
			w.f.Close()
			w.f = nil
		}
		os.Remove(w.tmp)
		return err
	}
	return nil
}

func (w *Writer) commit() error {
	if w.err != nil {
		return w.err
	}
	if err := w.flushChunk(); err != nil {
		return err
	}
	digest, fileSum, err := w.writeTrailer()
	if err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("snapshot: fsync %s: %w", w.tmp, err)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("snapshot: close %s: %w", w.tmp, err)
	}
	if w.beforeVerify != nil {
		w.beforeVerify(w.tmp)
	}

	info, err := Verify(w.tmp, w.key)
	if err != nil {
		return fmt.Errorf("snapshot: verify after write: %w", err)
	}
	if info.Bytes != w.off || info.Trailer.SHA256 != digest || info.FileSHA256 != fileSum {
		return &CorruptionError{File: w.tmp, Chunk: -1, Kind: ProblemFileHash,
			Err: fmt.Errorf("%w: file read back differs from what was written", ErrCorrupt)}
	}

	if err := os.Rename(w.tmp, w.path); err != nil {
		return fmt.Errorf("snapshot: rename: %w", err)
	}
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		os.Remove(w.path)
		return fmt.Errorf("snapshot: fsync dir: %w", err)
	}
	w.info = info
	return nil
}

// writeTrailer writes the trailer and returns the trailer hash (over every
// byte before the hash field) and the hash of the complete file.
func (w *Writer) writeTrailer() (digest, fileSum [32]byte, err error) {
	t := make([]byte, 0, 4+8+2+MaxEntryTypes*9+32+crypt.TagSize+4)
	t = binary.BigEndian.AppendUint32(t, 0) // end-of-chunks marker
	t = binary.BigEndian.AppendUint64(t, w.chunks)
	var types uint16
	for _, c := range w.counts {
		if c > 0 {
			types++
		}
	}
	t = binary.BigEndian.AppendUint16(t, types)
	for typ, c := range w.counts {
		if c > 0 {
			t = append(t, byte(typ))
			t = binary.BigEndian.AppendUint64(t, c)
		}
	}
	if err := w.write(t); err != nil {
		return digest, fileSum, err
	}
	w.h.Sum(digest[:0])
	nonce := crypt.Nonce(w.chunks)
	tag := w.aead.Seal(nil, nonce[:], nil, trailerAAD(digest[:]))
	rest := make([]byte, 0, 32+crypt.TagSize+4)
	rest = append(rest, digest[:]...)
	rest = append(rest, tag...)
	crc := crc32.Update(crc32.Checksum(t, castagnoli), castagnoli, rest)
	rest = binary.BigEndian.AppendUint32(rest, crc)
	if err := w.write(rest); err != nil {
		return digest, fileSum, err
	}
	w.h.Sum(fileSum[:0])
	return digest, fileSum, nil
}

// Abort discards the file. It is safe to call after Commit (no-op) and more
// than once.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.wait()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	os.Remove(w.tmp)
}

// Info returns what was written; valid after a successful Commit.
func (w *Writer) Info() Info { return w.info }

// syncDir fsyncs a directory so a rename in it is durable. Windows cannot
// open directories for sync; NTFS journals renames itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
