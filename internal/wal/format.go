package wal

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// Format constants (05-storage §4.1).
const (
	// HeaderSize is the size of a segment header.
	HeaderSize = 80
	// FormatVersion is the only segment format version this build reads and writes.
	FormatVersion = 1
	// FramePrefixSize is the size of the len and crc fields.
	FramePrefixSize = 8
	// frameFixed is type + seq, the part of len that is not the sealed payload.
	frameFixed = 9
	// MinFrameLen is the smallest valid value of the len field (empty payload).
	MinFrameLen = frameFixed + crypt.TagSize
	// MaxFrameSize is the largest frame, prefix included.
	MaxFrameSize = 1 << 20
	// MaxFrameLen is the largest valid value of the len field.
	MaxFrameLen = MaxFrameSize - FramePrefixSize
	// MaxPayloadSize is the largest plaintext payload Append accepts.
	MaxPayloadSize = MaxFrameLen - frameFixed - crypt.TagSize
)

// Record types (05-storage §4.1). The WAL checks only that a type is known;
// the payload codec lives in internal/session.
const (
	TypeSessionPut    byte = 1
	TypeSessionTouch  byte = 2
	TypeSessionRevoke byte = 3
	TypeSessionExpire byte = 4
	TypePartitionDrop byte = 5
	TypeReset         byte = 6
)

// ValidType reports whether t is a record type of format version 1.
func ValidType(t byte) bool { return t >= TypeSessionPut && t <= TypeReset }

// TypeName returns the 05-storage §4.1 name of a record type.
func TypeName(t byte) string {
	switch t {
	case TypeSessionPut:
		return "SESSION_PUT"
	case TypeSessionTouch:
		return "SESSION_TOUCH"
	case TypeSessionRevoke:
		return "SESSION_REVOKE"
	case TypeSessionExpire:
		return "SESSION_EXPIRE"
	case TypePartitionDrop:
		return "PARTITION_DROP"
	case TypeReset:
		return "RESET"
	}
	return fmt.Sprintf("TYPE(%d)", t)
}

var magic = [8]byte{'T', 'O', 'K', 'M', 'W', 'A', 'L', 0}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrCorrupt matches every *CorruptionError except key mismatches: a bad
	// header or frame, a seq gap, an unknown record type or format version.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrKeyMismatch means a segment was written under another master key
	// (run tokmesh-walctl rekey, or configure the right key).
	ErrKeyMismatch = errors.New("wal: master key ID mismatch")
	// ErrFormatVersion means a segment has a format version (or header flags)
	// this build does not understand.
	ErrFormatVersion = errors.New("wal: unknown format version")
	// ErrSeqGap means seqs do not continue without a gap, within a segment,
	// between segments, or from the snapshot's covered seq.
	ErrSeqGap = errors.New("wal: seq gap")
	// ErrClosed is returned by Wait and Sync for records the writer did not
	// make durable before Close.
	ErrClosed = errors.New("wal: writer closed")
	// ErrRecordTooLarge is the fatal error for a payload above MaxPayloadSize.
	ErrRecordTooLarge = errors.New("wal: record too large")
	// ErrInvalidType is the fatal error for an Append of an unknown record type.
	ErrInvalidType = errors.New("wal: invalid record type")
)

// Corruption kinds, used in CorruptionError.Kind and Problem.Kind.
const (
	KindShortHeader   = "short-header"
	KindBadHeader     = "bad-header"
	KindFormatVersion = "format-version"
	KindKeyMismatch   = "key-mismatch"
	KindSegmentID     = "segment-id-mismatch"
	KindShortFrame    = "short-frame"
	KindBadLength     = "bad-length"
	KindCRC           = "crc-mismatch"
	KindTag           = "tag-mismatch"
	KindUnknownType   = "unknown-type"
	KindSeqGap        = "seq-gap"
	KindTornTail      = "torn-tail"
)

// CorruptionError describes the first defect that stops recovery: the file,
// the byte offset of the bad header (0) or frame, and the seq expected or
// found there. errors.Is matches ErrCorrupt (unless it is a key mismatch) and
// the specific sentinel in Err (ErrKeyMismatch, ErrFormatVersion, ErrSeqGap).
type CorruptionError struct {
	File   string
	Offset int64
	Seq    uint64
	Kind   string
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("wal: %s: %s at offset %d (seq %d): %v", e.File, e.Kind, e.Offset, e.Seq, e.Err)
}

// Unwrap returns the cause, which wraps one of the package sentinels.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is makes every corruption other than a key mismatch match ErrCorrupt.
func (e *CorruptionError) Is(target error) bool {
	return target == ErrCorrupt && e.Kind != KindKeyMismatch
}

// KeyMismatchError is the cause inside a key-mismatch *CorruptionError: the
// key ID in the segment header and the ID of the key that tried to read it.
// It matches ErrKeyMismatch, so callers can tell the operator which key the
// data needs without parsing the message.
type KeyMismatchError struct {
	Written crypt.KeyID // the segment header's key ID
	Loaded  crypt.KeyID // the configured key's ID
}

func (e *KeyMismatchError) Error() string {
	return fmt.Sprintf("%v: segment was written under key %s, the loaded key is %s", ErrKeyMismatch, e.Written, e.Loaded)
}

// Unwrap returns ErrKeyMismatch.
func (e *KeyMismatchError) Unwrap() error { return ErrKeyMismatch }

func corruptf(file string, off int64, seq uint64, kind string, sentinel error, format string, args ...any) *CorruptionError {
	return &CorruptionError{File: file, Offset: off, Seq: seq, Kind: kind, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

// Header is a decoded segment header.
type Header struct {
	Version   uint16
	Cipher    crypt.CipherID
	Flags     uint8
	KeyID     crypt.KeyID
	SegmentID uint64
	FirstSeq  uint64
	Salt      [crypt.SaltSize]byte
	CreatedAt int64 // Unix milliseconds
}

// Encode returns the 80-byte header with its CRC.
func (h *Header) Encode() [HeaderSize]byte {
	var b [HeaderSize]byte
	copy(b[0:8], magic[:])
	binary.BigEndian.PutUint16(b[8:10], h.Version)
	b[10] = byte(h.Cipher)
	b[11] = h.Flags
	copy(b[12:20], h.KeyID[:])
	binary.BigEndian.PutUint64(b[20:28], h.SegmentID)
	binary.BigEndian.PutUint64(b[28:36], h.FirstSeq)
	copy(b[36:68], h.Salt[:])
	binary.BigEndian.PutUint64(b[68:76], uint64(h.CreatedAt))
	binary.BigEndian.PutUint32(b[76:80], crc32.Checksum(b[:76], castagnoli))
	return b
}

// headerError is a header decode failure before a file name is known.
type headerError struct {
	kind     string
	sentinel error
	msg      string
}

func (e *headerError) Error() string { return e.kind + ": " + e.msg }
func (e *headerError) Unwrap() error { return e.sentinel }

// DecodeHeader parses and checks a segment header: size, magic, format
// version, CRC, flags and cipher. It never panics.
func DecodeHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, &headerError{KindShortHeader, ErrCorrupt, fmt.Sprintf("header has %d of %d bytes", len(b), HeaderSize)}
	}
	if !bytes.Equal(b[0:8], magic[:]) {
		return h, &headerError{KindBadHeader, ErrCorrupt, "bad magic"}
	}
	h.Version = binary.BigEndian.Uint16(b[8:10])
	crcOK := crc32.Checksum(b[:76], castagnoli) == binary.BigEndian.Uint32(b[76:80])
	if h.Version != FormatVersion {
		if crcOK {
			return h, &headerError{KindFormatVersion, ErrFormatVersion, fmt.Sprintf("format version %d (this build reads %d)", h.Version, FormatVersion)}
		}
		return h, &headerError{KindBadHeader, ErrCorrupt, fmt.Sprintf("header CRC mismatch (version field reads %d)", h.Version)}
	}
	if !crcOK {
		return h, &headerError{KindBadHeader, ErrCorrupt, "header CRC mismatch"}
	}
	h.Cipher = crypt.CipherID(b[10])
	h.Flags = b[11]
	copy(h.KeyID[:], b[12:20])
	h.SegmentID = binary.BigEndian.Uint64(b[20:28])
	h.FirstSeq = binary.BigEndian.Uint64(b[28:36])
	copy(h.Salt[:], b[36:68])
	h.CreatedAt = int64(binary.BigEndian.Uint64(b[68:76]))
	if h.Flags != 0 {
		return h, &headerError{KindFormatVersion, ErrFormatVersion, fmt.Sprintf("unknown header flags %#x", h.Flags)}
	}
	if h.Cipher != crypt.AES256GCM && h.Cipher != crypt.ChaCha20Poly1305 {
		return h, &headerError{KindBadHeader, ErrCorrupt, fmt.Sprintf("unknown cipher id %d", h.Cipher)}
	}
	if h.SegmentID == 0 || h.FirstSeq == 0 {
		return h, &headerError{KindBadHeader, ErrCorrupt, fmt.Sprintf("segment id %d, first seq %d: both start at 1", h.SegmentID, h.FirstSeq)}
	}
	return h, nil
}

// Frame is a decoded record frame. Sealed aliases the input buffer.
type Frame struct {
	Type   byte
	Seq    uint64
	Sealed []byte // ciphertext + tag
	Size   int    // total bytes of the frame, prefix included
}

// frameError is a framing failure: its kind is one of KindShortFrame,
// KindBadLength or KindCRC.
type frameError struct {
	kind string
	msg  string
}

func (e *frameError) Error() string { return e.kind + ": " + e.msg }
func (e *frameError) Unwrap() error { return ErrCorrupt }

// DecodeFrame parses the frame at the start of b and checks its length and
// CRC (not its tag, which needs the segment key; not its type). It never panics.
func DecodeFrame(b []byte) (Frame, error) {
	f, kind := parseFrame(b)
	switch kind {
	case "":
		return f, nil
	case KindBadLength:
		return Frame{}, &frameError{kind, fmt.Sprintf("frame length %d outside [%d, %d]", binary.BigEndian.Uint32(b), MinFrameLen, MaxFrameLen)}
	case KindShortFrame:
		if len(b) < FramePrefixSize {
			return Frame{}, &frameError{kind, fmt.Sprintf("%d bytes left, a frame prefix needs %d", len(b), FramePrefixSize)}
		}
		return Frame{}, &frameError{kind, fmt.Sprintf("frame needs %d bytes, %d left", FramePrefixSize+int(binary.BigEndian.Uint32(b)), len(b))}
	}
	return Frame{}, &frameError{kind, "frame CRC mismatch"}
}

// parseFrame is DecodeFrame without allocation: it returns the defect kind
// ("" when the framing and CRC are fine).
func parseFrame(b []byte) (Frame, string) {
	if len(b) < FramePrefixSize {
		return Frame{}, KindShortFrame
	}
	n := binary.BigEndian.Uint32(b[0:4])
	if n < MinFrameLen || n > MaxFrameLen {
		return Frame{}, KindBadLength
	}
	end := FramePrefixSize + int(n)
	if len(b) < end {
		return Frame{}, KindShortFrame
	}
	body := b[FramePrefixSize:end:end]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:8]) {
		return Frame{}, KindCRC
	}
	return Frame{Type: body[0], Seq: binary.BigEndian.Uint64(body[1:9]), Sealed: body[frameFixed:], Size: end}, ""
}

// frameLen is the total size of a frame holding a payload of n bytes.
func frameLen(n int) int { return FramePrefixSize + frameFixed + n + crypt.TagSize }

// sealer holds per-segment scratch so that sealing and opening allocate nothing.
type sealer struct {
	aead  cipher.AEAD
	segID uint64
	nonce [crypt.NonceSize]byte
	aad   [17]byte
}

func (s *sealer) setup(seq uint64, typ byte) {
	s.nonce = crypt.Nonce(seq)
	binary.BigEndian.PutUint64(s.aad[0:8], s.segID)
	binary.BigEndian.PutUint64(s.aad[8:16], seq)
	s.aad[16] = typ
}

// appendFrame appends a sealed frame to buf.
func (s *sealer) appendFrame(buf []byte, seq uint64, typ byte, payload []byte) []byte {
	start := len(buf)
	n := frameFixed + len(payload) + crypt.TagSize
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = append(buf, 0, 0, 0, 0, typ)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	s.setup(seq, typ)
	buf = s.aead.Seal(buf, s.nonce[:], payload, s.aad[:])
	binary.BigEndian.PutUint32(buf[start+4:start+8], crc32.Checksum(buf[start+FramePrefixSize:], castagnoli))
	return buf
}

// open authenticates and decrypts a frame's payload into dst (which may be
// f.Sealed[:0] to decrypt in place).
func (s *sealer) open(dst []byte, f *Frame) ([]byte, error) {
	s.setup(f.Seq, f.Type)
	return s.aead.Open(dst, s.nonce[:], f.Sealed, s.aad[:])
}
