package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

const (
	segPrefix  = "wal-"
	segSuffix  = ".log"
	tempSuffix = ".tmp"
	bakSuffix  = ".bak"
)

func segmentName(id uint64) string { return fmt.Sprintf("wal-%020d.log", id) }

// parseSegmentName accepts exactly wal-<20 digits>.log.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != len(segPrefix)+20+len(segSuffix) || !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[len(segPrefix) : len(segPrefix)+20]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || id == 0 {
		return 0, false
	}
	return id, true
}

// isTempName matches the temp files this package creates next to segments.
func isTempName(name string) bool {
	return strings.HasPrefix(name, segPrefix) && strings.HasSuffix(name, tempSuffix)
}

func dirOf(path string) string { return filepath.Dir(path) }

// SegmentInfo describes one segment. ListSegments fills the header fields
// (Path, ID, FirstSeq, Bytes, Cipher, KeyID, CreatedAt); InspectSegments also
// fills LastSeq, Records and CountByType from the plaintext framing.
type SegmentInfo struct {
	Path        string
	ID          uint64
	FirstSeq    uint64
	LastSeq     uint64 // FirstSeq-1 for an empty segment
	Records     int
	CountByType map[byte]int
	Bytes       int64
	Cipher      crypt.CipherID
	KeyID       crypt.KeyID
	CreatedAt   int64 // Unix milliseconds
	// Err is set when the header is unreadable (a *CorruptionError); only
	// Path, ID and Bytes are valid then.
	Err error
	// BadOffset is the offset of the first frame InspectSegments could not
	// parse (0 = none); counting stops there.
	BadOffset int64
}

// ListSegments lists the segments in dir sorted by ID, reading only their
// headers. A missing dir holds no segments. A segment whose header cannot
// be read has Err set; the returned error is for listing failures only.
func ListSegments(dir string) ([]SegmentInfo, error) { return listSegments(OSFS{}, dir) }

func listSegments(fsys FS, dir string) ([]SegmentInfo, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var out []SegmentInfo
	for _, n := range names {
		id, ok := parseSegmentName(n)
		if !ok {
			continue
		}
		si := SegmentInfo{Path: joinPath(dir, n), ID: id}
		h, size, err := readHeaderSize(fsys, si.Path)
		si.Bytes = size
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				return nil, err
			}
			si.Err = err
		} else if h.SegmentID != id {
			si.Err = corruptf(si.Path, 0, h.FirstSeq, KindSegmentID, ErrCorrupt, "header says segment %d, file name says %d", h.SegmentID, id)
		} else {
			si.FirstSeq, si.LastSeq = h.FirstSeq, h.FirstSeq-1
			si.Cipher, si.KeyID, si.CreatedAt = h.Cipher, h.KeyID, h.CreatedAt
		}
		out = append(out, si)
	}
	// Names are zero-padded, so lexical order is ID order.
	return out, nil
}

// ReadHeader reads and checks a segment header; it needs no key. Decode
// failures are *CorruptionError.
func ReadHeader(path string) (Header, error) { return readHeader(OSFS{}, path) }

func readHeader(fsys FS, path string) (Header, error) {
	h, _, err := readHeaderSize(fsys, path)
	return h, err
}

func readHeaderSize(fsys FS, path string) (Header, int64, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return Header{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, 0, err
	}
	var b [HeaderSize]byte
	n, err := f.ReadAt(b[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Header{}, st.Size(), err
	}
	h, err := DecodeHeader(b[:n])
	if err != nil {
		return h, st.Size(), headerCorruption(path, err)
	}
	return h, st.Size(), nil
}

func headerCorruption(path string, err error) error {
	var he *headerError
	if errors.As(err, &he) {
		return &CorruptionError{File: path, Offset: 0, Kind: he.kind, Err: fmt.Errorf("%w: %s", he.sentinel, he.msg)}
	}
	return err
}

// segment is one segment file loaded for checking.
type segment struct {
	path string
	data []byte
	hdr  Header
	seal *sealer // nil: framing and CRC only
	idx  *crcIndex
}

// frameAt checks the frame at off: framing, CRC and, with a key, the AEAD
// tag. The plaintext goes to *scratch (data is never modified).
func (s *segment) frameAt(off int, scratch *[]byte) (Frame, []byte, string) {
	return s.frameAtFresh(off, scratch, math.MaxUint64)
}

// frameAtFresh is frameAt, except that the plaintext of a record with seq >
// freshAfter is decrypted into a new slice that the caller may keep.
func (s *segment) frameAtFresh(off int, scratch *[]byte, freshAfter uint64) (Frame, []byte, string) {
	f, kind := parseFrame(s.data[off:])
	if kind != "" {
		return f, nil, kind
	}
	if s.seal == nil {
		return f, nil, ""
	}
	fresh := f.Seq > freshAfter
	dst := (*scratch)[:0]
	if fresh {
		dst = make([]byte, 0, len(f.Sealed)-crypt.TagSize)
	}
	pt, err := s.seal.open(dst, &f)
	if err != nil {
		return f, nil, KindTag
	}
	if !fresh {
		*scratch = pt[:0]
	}
	return f, pt, ""
}

// nextValid returns the first offset >= from holding a frame whose CRC (and
// tag, with a key) checks out, or -1. Candidate CRCs come from a crcIndex, so
// a scan is linear in the segment size whatever the garbage looks like.
func (s *segment) nextValid(from int, scratch *[]byte) int {
	n := len(s.data)
	for p := from; p+FramePrefixSize+MinFrameLen <= n; p++ {
		l := binary.BigEndian.Uint32(s.data[p:])
		if l < MinFrameLen || l > MaxFrameLen || p+FramePrefixSize+int(l) > n {
			continue
		}
		if s.idx == nil {
			s.idx = newCRCIndex(s.data)
		}
		if s.idx.sum(p+FramePrefixSize, p+FramePrefixSize+int(l)) != binary.BigEndian.Uint32(s.data[p+4:]) {
			continue
		}
		if _, _, kind := s.frameAt(p, scratch); kind == "" {
			return p
		}
	}
	return -1
}

// frameMessage explains a frame defect for error messages.
func frameMessage(data []byte, off int, kind string) string {
	switch kind {
	case KindTag:
		return "AEAD tag check failed"
	case KindCRC:
		return "frame CRC mismatch"
	}
	_, err := DecodeFrame(data[off:])
	if err != nil {
		return err.Error()
	}
	return kind
}

// loadSegment reads a listed segment and prepares its sealer. A key whose ID
// differs from the header's is a key-mismatch *CorruptionError.
func loadSegment(fsys FS, si *SegmentInfo, key *crypt.MasterKey, buf []byte) (*segment, []byte, error) {
	if si.Err != nil {
		return nil, buf, si.Err
	}
	data, err := readAll(fsys, si.Path, buf)
	if err != nil {
		return nil, data, fmt.Errorf("wal: read %s: %w", si.Path, err)
	}
	h, err := DecodeHeader(data)
	if err != nil {
		return nil, data, headerCorruption(si.Path, err)
	}
	if h.SegmentID != si.ID {
		return nil, data, corruptf(si.Path, 0, h.FirstSeq, KindSegmentID, ErrCorrupt, "header says segment %d, file name says %d", h.SegmentID, si.ID)
	}
	s := &segment{path: si.Path, data: data, hdr: h}
	if key != nil {
		if h.KeyID != key.ID() {
			return s, data, &CorruptionError{File: si.Path, Offset: 0, Seq: h.FirstSeq, Kind: KindKeyMismatch,
				Err: &KeyMismatchError{Written: h.KeyID, Loaded: key.ID()}}
		}
		aead, err := key.FileAEAD(h.Cipher, h.Salt[:], crypt.PurposeWAL)
		if err != nil {
			return s, data, corruptf(si.Path, 0, h.FirstSeq, KindBadHeader, ErrCorrupt, "%v", err)
		}
		s.seal = &sealer{aead: aead, segID: h.SegmentID}
	}
	return s, data, nil
}

// ReplayOptions controls Replay.
type ReplayOptions struct {
	// AfterSeq is the snapshot's covered seq: records up to it are checked
	// but not passed to fn, and segments wholly below it are not read.
	AfterSeq uint64
	// TruncateTornTail truncates (and fsyncs) a torn tail of the last segment.
	TruncateTornTail bool
	// FS is the file system; nil means the real one.
	FS FS
}

// TornTail describes a torn tail found (and maybe truncated) by Replay.
type TornTail struct {
	File         string
	Offset       int64 // where the first bad frame started
	BytesDropped int64
	Truncated    bool
}

// ReplayResult summarizes a replay.
type ReplayResult struct {
	// LastSeq is the last seq in the WAL, or AfterSeq if that is higher.
	LastSeq  uint64
	Records  int // records passed to fn
	Segments int // segments read
	TornTail *TornTail
	// Bytes is the WAL written after AfterSeq: the frame bytes of the
	// records passed to fn plus the header of every segment holding one
	// (what a writer's BytesWritten would have counted for them). It lets
	// a restarted node keep counting WAL growth since its last snapshot.
	Bytes int64
	// FirstCreatedAt is the created_at (Unix ms) of the first segment
	// holding a record after AfterSeq, or 0 when there is none.
	FirstCreatedAt int64
}

// Replay calls fn for every record with seq > opts.AfterSeq in seq order
// across all segments. payload is a fresh slice that fn may keep. It follows
// 05-storage §6 step 5: in the last segment, a bad frame followed by no
// valid frame is a torn tail (truncated when opts.TruncateTornTail); any
// other bad frame, a seq gap, an unknown type or format version, or a key
// mismatch is a *CorruptionError. An error from fn is returned as is.
func Replay(dir string, key *crypt.MasterKey, opts ReplayOptions, fn func(seq uint64, typ byte, payload []byte) error) (ReplayResult, error) {
	res := ReplayResult{LastSeq: opts.AfterSeq}
	if key == nil {
		return res, errors.New("wal: replay needs the master key")
	}
	fsys := orOS(opts.FS)
	segs, err := listSegments(fsys, dir)
	if err != nil {
		return res, err
	}
	// Skip the segments whose successor starts at or below AfterSeq+1: all
	// their records are covered by the snapshot.
	start := 0
	for start < len(segs)-1 && segs[start+1].Err == nil && segs[start+1].FirstSeq <= opts.AfterSeq+1 {
		start++
	}
	var (
		buf, scratch []byte
		prevLast     uint64
		havePrev     bool
	)
	for i := start; i < len(segs); i++ {
		si := &segs[i]
		last := i == len(segs)-1
		var s *segment
		s, buf, err = loadSegment(fsys, si, key, buf)
		if err != nil {
			return res, err
		}
		h := &s.hdr
		if havePrev && h.FirstSeq != prevLast+1 {
			return res, corruptf(s.path, 0, h.FirstSeq, KindSeqGap, ErrSeqGap, "segment starts at seq %d, the previous one ends at %d", h.FirstSeq, prevLast)
		}
		if !havePrev && opts.AfterSeq > 0 && h.FirstSeq > opts.AfterSeq+1 {
			return res, corruptf(s.path, 0, h.FirstSeq, KindSeqGap, ErrSeqGap, "WAL resumes at seq %d but the snapshot covers only up to %d", h.FirstSeq, opts.AfterSeq)
		}
		res.Segments++
		expected := h.FirstSeq
		counted := false // this segment's header is in res.Bytes
		for off := HeaderSize; off < len(s.data); {
			f, pt, kind := s.frameAtFresh(off, &scratch, opts.AfterSeq)
			if kind != "" {
				if last && s.nextValid(off+1, &scratch) < 0 {
					tt := &TornTail{File: s.path, Offset: int64(off), BytesDropped: int64(len(s.data) - off)}
					if opts.TruncateTornTail {
						if err := truncateFile(fsys, s.path, int64(off)); err != nil {
							return res, err
						}
						tt.Truncated = true
					}
					res.TornTail = tt
					break
				}
				return res, corruptf(s.path, int64(off), expected, kind, ErrCorrupt, "%s", frameMessage(s.data, off, kind))
			}
			if f.Seq != expected {
				return res, corruptf(s.path, int64(off), f.Seq, KindSeqGap, ErrSeqGap, "found seq %d, expected %d", f.Seq, expected)
			}
			if !ValidType(f.Type) {
				return res, corruptf(s.path, int64(off), f.Seq, KindUnknownType, ErrCorrupt, "unknown record type %d", f.Type)
			}
			if f.Seq > opts.AfterSeq {
				if err := fn(f.Seq, f.Type, pt); err != nil {
					return res, err
				}
				res.Records++
				if !counted {
					counted = true
					res.Bytes += HeaderSize
					if res.FirstCreatedAt == 0 {
						res.FirstCreatedAt = h.CreatedAt
					}
				}
				res.Bytes += int64(f.Size)
			}
			expected++
			off += f.Size
		}
		prevLast, havePrev = expected-1, true
		res.LastSeq = max(res.LastSeq, prevLast)
	}
	return res, nil
}

func truncateFile(fsys FS, path string, size int64) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: truncate %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("wal: truncate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("wal: fsync %s: %w", path, err)
	}
	return f.Close()
}
