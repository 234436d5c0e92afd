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
	"io"
	"os"
	"slices"

	"github.com/klauspost/compress/s2"
	"github.com/yndnr/tokmesh-go/internal/crypt"
)

const readBufferSize = 64 << 10

// errReaderClosed is returned by Next after Close.
var errReaderClosed = errors.New("snapshot: reader is closed")

// asyncHashMin is the chunk size from which a chunk is hashed in the
// background. SHA-256 is the most expensive step on CPUs without SHA
// extensions; hashing chunk N concurrently with its decryption and with the
// caller's processing of its entries roughly halves load time on two cores.
const asyncHashMin = 256 << 10

// source reads exact byte counts, hashing and counting every byte consumed.
// At most one background hash (of a chunk body) runs at a time; every other
// use of h waits for it first, so the hash always sees bytes in file order.
type source struct {
	r       *bufio.Reader
	h       hash.Hash
	off     int64
	hashing chan struct{} // closed when the background hash finishes; nil if none
}

func newSource(r io.Reader) source {
	return source{r: bufio.NewReaderSize(r, readBufferSize), h: sha256.New()}
}

// wait joins the background hash, if any.
func (s *source) wait() {
	if s.hashing != nil {
		<-s.hashing
		s.hashing = nil
	}
}

func (s *source) readFull(p []byte) error {
	s.wait()
	n, err := io.ReadFull(s.r, p)
	s.h.Write(p[:n])
	s.off += int64(n)
	return err
}

// sum returns the hash of every byte consumed so far.
func (s *source) sum(b []byte) []byte {
	s.wait()
	return s.h.Sum(b)
}

// appendN reads exactly n more bytes onto dst. It grows dst at most 64 KiB
// ahead of the bytes that actually arrived, so a huge length field in a
// short file cannot force a huge allocation. n must already be bounded.
// With hash false the caller must pass the bytes to hashAsync next.
func (s *source) appendN(dst []byte, n int, hash bool) ([]byte, error) {
	const step = 64 << 10
	s.wait()
	for n > 0 {
		k := min(n, step)
		dst = slices.Grow(dst, k)
		l := len(dst)
		dst = dst[:l+k]
		m, err := io.ReadFull(s.r, dst[l:])
		s.off += int64(m)
		if hash {
			s.h.Write(dst[l : l+m])
		}
		if err != nil {
			return dst[:l], err
		}
		n -= k
	}
	return dst, nil
}

// hashAsync adds p to the hash, in the background when p is large. The
// caller must not modify p until the next wait (every other source method
// waits first).
func (s *source) hashAsync(p []byte) {
	s.wait()
	if len(p) < asyncHashMin {
		s.h.Write(p)
		return
	}
	done := make(chan struct{})
	s.hashing = done
	h := s.h
	go func() {
		defer close(done)
		h.Write(p)
	}()
}

// Reader streams the entries of a snapshot or backup file, verifying each
// chunk before returning any of its entries and the trailer before
// returning io.EOF.
type Reader struct {
	name    string
	f       *os.File
	src     source
	hdr     Header
	aead    cipher.AEAD
	aad     [chunkAADSize]byte
	buf     []byte // sealed chunk buffer, reused; may be being hashed in the background
	plain   []byte // decrypted chunk buffer, reused
	dec     []byte // decompressed entries of a framing-2 chunk, reused
	inDec   bool   // the current chunk's entries are in dec (framing 2)
	pt      []byte // entries of the current chunk not yet returned
	chunks  uint64 // chunks read so far
	counts  [MaxEntryTypes]uint64
	trailer Trailer
	fileSum [32]byte
	err     error // sticky; io.EOF once the trailer verified
}

// Open opens path and reads its header. It checks the magic, the format
// version (a newer one → ErrFormatVersion), the header CRC and the key ID
// (→ ErrKeyMismatch). Entries and the trailer are verified as Next reaches
// them.
func Open(path string, key *crypt.MasterKey) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	r, err := newReader(f, path, key)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// NewReader reads a snapshot or backup from a stream (for example an
// upload). Errors carry an empty File name. Close does not close rd.
func NewReader(rd io.Reader, key *crypt.MasterKey) (*Reader, error) {
	return newReader(rd, "", key)
}

func newReader(rd io.Reader, name string, key *crypt.MasterKey) (*Reader, error) {
	if key == nil {
		return nil, errors.New("snapshot: open: no master key")
	}
	r := &Reader{name: name, src: newSource(rd)}
	hdr, err := readHeader(&r.src, name)
	if err != nil {
		return nil, err
	}
	if hdr.KeyID != key.ID() {
		return nil, &CorruptionError{File: name, Offset: 0, Chunk: -1, Kind: ProblemKeyMismatch,
			Err: fmt.Errorf("%w: file key ID %s, loaded key ID %s (see tokmesh-walctl rekey)", ErrKeyMismatch, hdr.KeyID, key.ID())}
	}
	purpose, _ := hdr.Kind.purpose() // validated by readHeader
	aead, err := key.FileAEAD(hdr.Cipher, hdr.Salt[:], purpose)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	r.hdr = hdr
	r.aead = aead
	return r, nil
}

// ReadHeader reads and checks the header of path (magic, version, CRC); it
// needs no key.
func ReadHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	s := newSource(f)
	return readHeader(&s, path)
}

// readErr turns a short read into a truncation error and anything else into
// a plain I/O error.
func readErr(name string, err error, off, chunk int64, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptionError{File: name, Offset: off, Chunk: chunk, Kind: ProblemTruncated,
			Err: fmt.Errorf("%w: file ends inside the %s", ErrTruncated, what)}
	}
	if name == "" {
		return fmt.Errorf("snapshot: read: %w", err)
	}
	return fmt.Errorf("snapshot: read %s: %w", name, err)
}

func readHeader(s *source, name string) (Header, error) {
	var h Header
	bad := func(kind string, err error) error {
		return &CorruptionError{File: name, Offset: 0, Chunk: -1, Kind: kind, Err: err}
	}
	short := func(err error) error { return readErr(name, err, 0, -1, "header") }

	b := make([]byte, headerFixedSize, 256)
	if n, err := io.ReadFull(s.r, b[:len(Magic)]); err != nil {
		s.h.Write(b[:n])
		s.off += int64(n)
		if n > 0 && string(b[:n]) != Magic[:n] {
			return h, bad(ProblemBadMagic, fmt.Errorf("%w: not a snapshot file (bad magic)", ErrCorrupt))
		}
		return h, short(err)
	}
	s.h.Write(b[:len(Magic)])
	s.off += int64(len(Magic))
	if string(b[:len(Magic)]) != Magic {
		return h, bad(ProblemBadMagic, fmt.Errorf("%w: not a snapshot file (bad magic)", ErrCorrupt))
	}
	if err := s.readFull(b[len(Magic):headerFixedSize]); err != nil {
		return h, short(err)
	}
	h.Version = binary.BigEndian.Uint16(b[8:10])
	if h.Version > FormatVersion {
		return h, bad(ProblemFormatVersion, fmt.Errorf("%w: file has version %d, this build reads up to %d", ErrFormatVersion, h.Version, FormatVersion))
	}
	if h.Version == 0 {
		return h, bad(ProblemBadHeader, fmt.Errorf("%w: format version 0", ErrCorrupt))
	}
	h.Kind = Kind(b[10])
	h.Cipher = crypt.CipherID(b[11])
	copy(h.KeyID[:], b[12:20])
	copy(h.Salt[:], b[20:52])
	h.CreatedAt = int64(binary.BigEndian.Uint64(b[52:60]))

	var err error
	readString := func() (string, error) {
		l := len(b)
		if b, err = s.appendN(b, 2, true); err != nil {
			return "", short(err)
		}
		n := int(binary.BigEndian.Uint16(b[l:]))
		if n > MaxIDLen {
			return "", bad(ProblemBadHeader, fmt.Errorf("%w: ID length %d exceeds %d", ErrCorrupt, n, MaxIDLen))
		}
		if b, err = s.appendN(b, n, true); err != nil {
			return "", short(err)
		}
		return string(b[l+2:]), nil
	}
	if h.NodeID, err = readString(); err != nil {
		return h, err
	}
	if h.ClusterID, err = readString(); err != nil {
		return h, err
	}
	l := len(b)
	if b, err = s.appendN(b, 4+8+4, true); err != nil {
		return h, short(err)
	}
	h.Partitions = binary.BigEndian.Uint32(b[l:])
	h.CoveredSeq = binary.BigEndian.Uint64(b[l+4:])
	metaLen := binary.BigEndian.Uint32(b[l+12:])
	if metaLen > MaxMetaSize {
		return h, bad(ProblemBadHeader, fmt.Errorf("%w: metadata length %d exceeds %d", ErrCorrupt, metaLen, MaxMetaSize))
	}
	l = len(b)
	if b, err = s.appendN(b, int(metaLen), true); err != nil {
		return h, short(err)
	}
	if metaLen > 0 {
		h.Meta = bytes.Clone(b[l:])
	}
	var crc [4]byte
	if err := s.readFull(crc[:]); err != nil {
		return h, short(err)
	}
	if got, want := crc32.Checksum(b, castagnoli), binary.BigEndian.Uint32(crc[:]); got != want {
		return h, bad(ProblemHeaderChecksum, fmt.Errorf("%w: header CRC32C %08x, stored %08x", ErrCorrupt, got, want))
	}
	if _, ok := h.Kind.purpose(); !ok {
		return h, bad(ProblemBadHeader, fmt.Errorf("%w: unknown file kind %d", ErrCorrupt, uint8(h.Kind)))
	}
	if h.Cipher != crypt.AES256GCM && h.Cipher != crypt.ChaCha20Poly1305 {
		return h, bad(ProblemBadHeader, fmt.Errorf("%w: %w: %d", ErrCorrupt, crypt.ErrUnknownCipher, uint8(h.Cipher)))
	}
	return h, nil
}

// Header returns the file header.
func (r *Reader) Header() Header { return r.hdr }

// Trailer returns the verified trailer; it is the zero Trailer until Next
// has returned io.EOF.
func (r *Reader) Trailer() Trailer { return r.trailer }

// Info returns the header, trailer, size and whole-file hash; complete only
// after Next has returned io.EOF.
func (r *Reader) Info() Info {
	return Info{Header: r.hdr, Trailer: r.trailer, Bytes: r.src.off, FileSHA256: r.fileSum}
}

// Next returns the next entry. The payload aliases an internal buffer and is
// valid until the next call. After the last entry Next verifies the trailer
// and returns io.EOF; any problem is returned as a *CorruptionError (or an
// I/O error) and repeated by every later call.
func (r *Reader) Next() (typ byte, payload []byte, err error) {
	for len(r.pt) == 0 {
		if r.err != nil {
			return 0, nil, r.err
		}
		if err := r.advance(); err != nil {
			r.err = err
			return 0, nil, err
		}
	}
	// The chunk's framing was validated by scanEntries when it was loaded.
	typ, payload, n, _ := parseEntry(r.pt)
	r.pt = r.pt[n:]
	return typ, payload, nil
}

// NextChunk returns the entries of the next chunk, verified like Next's,
// decoded into buf (grown when too small; pass the returned slice back to
// reuse it). The caller owns the result: unlike Next's payloads it stays
// valid across calls, so chunks can be handed to other goroutines. Walk it
// with ParseEntry. After the last chunk it verifies the trailer and returns
// io.EOF. It must not be mixed with Next within a chunk.
func (r *Reader) NextChunk(buf []byte) ([]byte, error) {
	if len(r.pt) > 0 {
		return nil, errors.New("snapshot: NextChunk called with entries of the current chunk unread")
	}
	if r.err != nil {
		return nil, r.err
	}
	dec := r.dec
	r.dec = buf[:0]
	err := r.advance()
	buf, r.dec = r.dec, dec
	if err != nil {
		r.err = err
		return nil, err
	}
	entries := r.pt
	r.pt = nil
	if !r.inDec {
		// A framing-1 chunk lives in the reader's decryption buffer.
		entries = append(buf[:0], entries...)
	}
	return entries, nil
}

// ParseEntry splits the first entry off chunk entries returned by
// NextChunk: its type, its payload and the remaining entries.
func ParseEntry(b []byte) (typ byte, payload, rest []byte) {
	typ, payload, n, _ := parseEntry(b) // framing verified when the chunk was read
	return typ, payload, b[n:]
}

// Close releases the file. It does not close a stream given to NewReader.
func (r *Reader) Close() error {
	r.src.wait()
	if r.err == nil {
		r.err = errReaderClosed
	}
	r.pt = nil
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// advance loads and verifies the next chunk, or verifies the trailer and
// returns io.EOF.
func (r *Reader) advance() error {
	start := r.src.off
	idx := int64(r.chunks)
	var p [chunkPrefixSize]byte
	if err := r.src.readFull(p[:4]); err != nil {
		if errors.Is(err, io.EOF) {
			// A clean end where a chunk or the trailer should begin.
			return &CorruptionError{File: r.name, Offset: start, Chunk: -1, Kind: ProblemTruncated,
				Err: fmt.Errorf("%w: file ends after %d chunks, where another chunk or the trailer should begin", ErrTruncated, r.chunks)}
		}
		return readErr(r.name, err, start, idx, "chunk length")
	}
	n := binary.BigEndian.Uint32(p[:4])
	if n == 0 {
		return r.readTrailer(start)
	}
	bad := func(kind string, err error) error {
		return &CorruptionError{File: r.name, Offset: start, Chunk: idx, Kind: kind, Err: err}
	}
	if n < minSealedChunk || n > maxSealedChunk {
		return bad(ProblemChunkLength, fmt.Errorf("%w: %w: %d bytes", ErrCorrupt, errChunkLenInvalid, n))
	}
	if err := r.src.readFull(p[4:8]); err != nil {
		return readErr(r.name, err, start, idx, "chunk")
	}
	buf, err := r.src.appendN(r.buf[:0], int(n), false)
	r.buf = buf[:0]
	if err != nil {
		return readErr(r.name, err, start, idx, "chunk")
	}
	r.src.hashAsync(buf)
	if got, want := crc32.Checksum(buf, castagnoli), binary.BigEndian.Uint32(p[4:8]); got != want {
		return bad(ProblemChunkChecksum, fmt.Errorf("%w: chunk CRC32C %08x, stored %08x", ErrCorrupt, got, want))
	}
	nonce := crypt.Nonce(r.chunks)
	chunkAAD(&r.aad, &r.hdr.Salt, r.chunks)
	pt, err := r.aead.Open(r.plain[:0], nonce[:], buf, r.aad[:])
	if cap(pt) > cap(r.plain) {
		r.plain = pt[:0]
	}
	if err != nil {
		return bad(ProblemChunkAuth, fmt.Errorf("%w: chunk authentication failed (tampered with or out of place)", ErrCorrupt))
	}
	entries, dec, kind, err := chunkEntries(pt, r.dec)
	r.dec, r.inDec = dec, len(pt) > 0 && pt[0] == chunkFramingS2
	if err != nil {
		return bad(kind, err)
	}
	if err := scanEntries(entries, &r.counts); err != nil {
		return bad(ProblemEntryFraming, fmt.Errorf("%w: %w", ErrCorrupt, err))
	}
	r.pt = entries
	r.chunks++
	return nil
}

// chunkEntries returns the entries of a decrypted chunk plaintext pt,
// decompressing a framing-2 chunk into dec (reused when large enough; the
// possibly grown buffer is returned). The decoded size is bounded before
// anything is allocated. On error it also returns the problem kind.
func chunkEntries(pt, dec []byte) (entries, buf []byte, kind string, err error) {
	if len(pt) == 0 {
		return nil, dec, ProblemEntryFraming, fmt.Errorf("%w: %w", ErrCorrupt, errEmptyChunk)
	}
	switch pt[0] {
	case chunkFramingVersion:
		return pt[1:], dec, "", nil
	case chunkFramingS2:
		n, err := s2.DecodedLen(pt[1:])
		if err != nil || n > MaxChunkPlaintext-1 {
			return nil, dec, ProblemEntryFraming, fmt.Errorf("%w: %w", ErrCorrupt, errChunkS2)
		}
		if cap(dec) < n {
			dec = make([]byte, n, max(n, 256<<10))
		}
		entries, err := s2.Decode(dec[:n], pt[1:])
		if err != nil || len(entries) != n {
			return nil, dec, ProblemEntryFraming, fmt.Errorf("%w: %w", ErrCorrupt, errChunkS2)
		}
		return entries, dec, "", nil
	default:
		return nil, dec, ProblemFormatVersion, fmt.Errorf("%w: %w %d", ErrFormatVersion, errChunkFraming, pt[0])
	}
}

// readTrailer reads the trailer that starts at start (its zero marker has
// been consumed) and returns io.EOF when it checks out.
func (r *Reader) readTrailer(start int64) error {
	bad := func(kind string, err error) error {
		return &CorruptionError{File: r.name, Offset: start, Chunk: -1, Kind: kind, Err: err}
	}
	t := make([]byte, 4, 4+10+MaxEntryTypes*9+32+crypt.TagSize)
	t, err := r.src.appendN(t, 8+2, true)
	if err != nil {
		return readErr(r.name, err, start, -1, "trailer")
	}
	chunks := binary.BigEndian.Uint64(t[4:12])
	ntypes := int(binary.BigEndian.Uint16(t[12:14]))
	if ntypes > MaxEntryTypes {
		return bad(ProblemTrailerFormat, fmt.Errorf("%w: trailer lists %d entry types", ErrCorrupt, ntypes))
	}
	if t, err = r.src.appendN(t, ntypes*9, true); err != nil {
		return readErr(r.name, err, start, -1, "trailer")
	}
	var digest [32]byte
	r.src.sum(digest[:0])
	if t, err = r.src.appendN(t, 32+crypt.TagSize, true); err != nil {
		return readErr(r.name, err, start, -1, "trailer")
	}
	var crc [4]byte
	if err := r.src.readFull(crc[:]); err != nil {
		return readErr(r.name, err, start, -1, "trailer")
	}
	r.src.sum(r.fileSum[:0])

	tr, tag, kind, err := decodeTrailer(t, binary.BigEndian.Uint32(crc[:]))
	if err != nil {
		return bad(kind, err)
	}
	if tr.SHA256 != digest {
		return bad(ProblemFileHash, fmt.Errorf("%w: SHA-256 of the file does not match the trailer", ErrCorrupt))
	}
	nonce := crypt.Nonce(chunks)
	if _, err := r.aead.Open(nil, nonce[:], tag, trailerAAD(digest[:])); err != nil {
		return bad(ProblemTrailerAuth, fmt.Errorf("%w: trailer authentication failed", ErrCorrupt))
	}
	counts := tr.Counts
	if chunks != r.chunks {
		return bad(ProblemTrailerCounts, fmt.Errorf("%w: trailer says %d chunks, file has %d", ErrCorrupt, chunks, r.chunks))
	}
	for typ, c := range r.counts {
		if counts[byte(typ)] != c {
			return bad(ProblemTrailerCounts, fmt.Errorf("%w: trailer says %d entries of type %d, file has %d", ErrCorrupt, counts[byte(typ)], typ, c))
		}
	}
	var one [1]byte
	switch n, err := io.ReadFull(r.src.r, one[:]); {
	case n > 0:
		return bad(ProblemTrailingData, fmt.Errorf("%w: bytes after the trailer", ErrCorrupt))
	case !errors.Is(err, io.EOF):
		return readErr(r.name, err, r.src.off, -1, "trailer")
	}
	r.trailer = tr
	return io.EOF
}

// trailerFixedSize is the trailer size without its per-type count entries.
const trailerFixedSize = 4 + 8 + 2 + 32 + crypt.TagSize + 4

// decodeTrailer checks the CRC and structure of a trailer: t runs from the
// zero marker through the tag, crc is the stored CRC. It returns the
// trailer (SHA256 as stored) and the tag; on failure a Problem kind.
func decodeTrailer(t []byte, crc uint32) (Trailer, []byte, string, error) {
	if got := crc32.Checksum(t, castagnoli); got != crc {
		return Trailer{}, nil, ProblemTrailerChecksum, fmt.Errorf("%w: trailer CRC32C %08x, stored %08x", ErrCorrupt, got, crc)
	}
	ntypes := int(binary.BigEndian.Uint16(t[12:14]))
	if len(t) != trailerFixedSize-4+9*ntypes {
		return Trailer{}, nil, ProblemTrailerFormat, fmt.Errorf("%w: trailer length does not match its %d entry types", ErrCorrupt, ntypes)
	}
	tr := Trailer{Chunks: binary.BigEndian.Uint64(t[4:12]), Counts: make(map[byte]uint64, ntypes)}
	prev := -1
	for i := range ntypes {
		e := t[14+i*9:]
		typ, c := int(e[0]), binary.BigEndian.Uint64(e[1:9])
		if typ <= prev || c == 0 {
			return Trailer{}, nil, ProblemTrailerFormat, fmt.Errorf("%w: trailer entry counts not strictly ordered or zero", ErrCorrupt)
		}
		prev = typ
		tr.Counts[byte(typ)] = c
	}
	l := 14 + 9*ntypes
	copy(tr.SHA256[:], t[l:l+32])
	return tr, t[l+32 : l+32+crypt.TagSize], "", nil
}

// Verify fully checks a file: header, every chunk's CRC and AEAD tag, the
// entry framing, and the trailer's checksum, hash, tag and counts. Content
// problems are *CorruptionError values. On failure the returned Info holds
// the header if it could be read.
func Verify(path string, key *crypt.MasterKey) (Info, error) {
	r, err := Open(path, key)
	if err != nil {
		return Info{}, err
	}
	defer r.Close()
	for {
		if _, _, err := r.Next(); err != nil {
			if err == io.EOF {
				return r.Info(), nil
			}
			return Info{Header: r.hdr}, err
		}
	}
}
