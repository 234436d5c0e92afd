package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// Magic opens every snapshot and backup file.
const Magic = "TOKMSNAP"

// FormatVersion is the file format version this package writes. Readers
// refuse files with a higher version (ErrFormatVersion).
const FormatVersion uint16 = 1

// Limits of the format. Readers reject any length field above them before
// allocating.
const (
	// MaxChunkPlaintext is the largest plaintext of one chunk (1 MiB),
	// including the chunk's framing-version byte.
	MaxChunkPlaintext = 1 << 20
	// MaxPayload is the largest entry payload: a chunk holding only that
	// entry (version byte, type byte, 3-byte uvarint length, payload) is
	// exactly MaxChunkPlaintext bytes.
	MaxPayload = MaxChunkPlaintext - 1 - 1 - 3
	// MaxIDLen bounds the node and cluster ID strings in the header.
	MaxIDLen = 1024
	// MaxMetaSize bounds the header metadata (the backup object JSON).
	MaxMetaSize = 1 << 20
	// MaxEntryTypes is the number of distinct entry type values.
	MaxEntryTypes = 256
)

// The first plaintext byte of every chunk is its framing version: 1 = the
// entries follow as they are; 2 = the entries follow as one S2 block
// (github.com/klauspost/compress/s2) whose decoded length is at most
// MaxChunkPlaintext-1.
const (
	chunkFramingVersion byte = 1
	chunkFramingS2      byte = 2
)

const (
	// headerFixedSize is the part of the header before the node ID length:
	// magic 8, version 2, kind 1, cipher 1, key ID 8, salt 32, created_at 8.
	headerFixedSize = 8 + 2 + 1 + 1 + 8 + crypt.SaltSize + 8
	// maxHeaderSize bounds the whole header including its CRC.
	maxHeaderSize = headerFixedSize + 2 + MaxIDLen + 2 + MaxIDLen + 4 + 8 + 4 + MaxMetaSize + 4
	// chunkPrefixSize is the [len u32][crc32c u32] in front of a sealed chunk.
	chunkPrefixSize = 8
	// minSealedChunk: version byte + the smallest entry (type, zero length) + tag.
	minSealedChunk = 1 + 2 + crypt.TagSize
	// maxSealedChunk: a full chunk plus the tag.
	maxSealedChunk = MaxChunkPlaintext + crypt.TagSize
	// chunkAADSize is salt ‖ chunk index.
	chunkAADSize = crypt.SaltSize + 8
	// trailerAADLabel domain-separates the trailer tag from chunk tags.
	trailerAADLabel = "TOKMSNAP-TRAILER"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Kind says whether a file is a snapshot or a backup.
type Kind uint8

const (
	// KindSnapshot is a node snapshot (snapshots/*.snap), HKDF purpose "snapshot".
	KindSnapshot Kind = 1
	// KindBackup is a backup (backups/*.tmbak), HKDF purpose "backup".
	KindBackup Kind = 2
)

// String returns "snapshot", "backup" or "kind(N)".
func (k Kind) String() string {
	switch k {
	case KindSnapshot:
		return "snapshot"
	case KindBackup:
		return "backup"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// purpose returns the HKDF purpose of the kind.
func (k Kind) purpose() (string, bool) {
	switch k {
	case KindSnapshot:
		return crypt.PurposeSnapshot, true
	case KindBackup:
		return crypt.PurposeBackup, true
	}
	return "", false
}

// Header is the plaintext file header. Reading it needs no key.
type Header struct {
	Version    uint16         // format version (FormatVersion)
	Kind       Kind           // KindSnapshot or KindBackup
	Cipher     crypt.CipherID // AEAD of every chunk
	KeyID      crypt.KeyID    // ID of the master key the file is sealed under
	Salt       [crypt.SaltSize]byte
	CreatedAt  int64  // Unix milliseconds
	NodeID     string // writing node
	ClusterID  string // "" when standalone
	Partitions uint32 // partition count of the node/cluster
	CoveredSeq uint64 // WAL seq covered by the content
	Meta       []byte // backup object JSON for KindBackup; may be empty
}

// Trailer summarises the file; it is known once the whole file was read.
type Trailer struct {
	Chunks uint64          // number of chunks
	Counts map[byte]uint64 // entries per type; types with no entries are absent
	SHA256 [32]byte        // SHA-256 of every file byte before this field
}

// Entries returns the total number of entries.
func (t Trailer) Entries() uint64 {
	var n uint64
	for _, c := range t.Counts {
		n += c
	}
	return n
}

// Info describes a fully verified file.
type Info struct {
	Header  Header
	Trailer Trailer
	// Bytes is the file size.
	Bytes int64
	// FileSHA256 is the SHA-256 of the whole file, trailer included (the
	// backup object's "sha256").
	FileSHA256 [32]byte
}

// Sentinel errors. Content problems are reported as *CorruptionError
// wrapping one of the first four (whose messages therefore carry no
// package prefix of their own).
var (
	// ErrCorrupt means the file content is damaged or was tampered with.
	ErrCorrupt = errors.New("file is corrupt")
	// ErrTruncated means the file ends early. It wraps ErrCorrupt.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	// ErrKeyMismatch means the file was sealed under another master key
	// (tokmesh-walctl rekey).
	ErrKeyMismatch = errors.New("file was written under a different master key")
	// ErrFormatVersion means the file uses a newer format than this build reads.
	ErrFormatVersion = errors.New("unsupported format version")

	// ErrPayloadTooLarge is returned by Writer.Add for a payload above the
	// writer's limit (MaxPayload by default). The writer stays usable.
	ErrPayloadTooLarge = errors.New("snapshot: entry payload too large")
	// ErrClosed is returned when a Writer is used after Commit or Abort.
	ErrClosed = errors.New("snapshot: writer is closed")
)

// Problem kinds reported in CorruptionError.Kind (and by walctl as "kind").
const (
	ProblemTruncated       = "truncated"
	ProblemBadMagic        = "bad_magic"
	ProblemFormatVersion   = "format_version"
	ProblemHeaderChecksum  = "header_checksum"
	ProblemBadHeader       = "bad_header"
	ProblemKeyMismatch     = "key_mismatch"
	ProblemChunkLength     = "chunk_length"
	ProblemChunkChecksum   = "chunk_checksum"
	ProblemChunkAuth       = "chunk_auth"
	ProblemEntryFraming    = "entry_framing"
	ProblemTrailerChecksum = "trailer_checksum"
	ProblemTrailerFormat   = "trailer_format"
	ProblemFileHash        = "file_hash"
	ProblemTrailerAuth     = "trailer_auth"
	ProblemTrailerCounts   = "trailer_counts"
	ProblemTrailingData    = "trailing_data"
)

// CorruptionError reports a problem with a file's content.
type CorruptionError struct {
	File   string // path, or "" for NewReader streams
	Offset int64  // file offset of the start of the bad structure (header 0, chunk frame, trailer)
	Chunk  int64  // chunk index, or -1 when the problem is not inside a chunk
	Kind   string // one of the Problem* constants
	Err    error  // wraps ErrCorrupt, ErrTruncated, ErrKeyMismatch or ErrFormatVersion
}

// Error renders "snapshot: <file>: <kind> at offset N (chunk C): <cause>".
func (e *CorruptionError) Error() string {
	s := "snapshot: "
	if e.File != "" {
		s += e.File + ": "
	}
	s += e.Kind + " at offset " + strconv.FormatInt(e.Offset, 10)
	if e.Chunk >= 0 {
		s += " (chunk " + strconv.FormatInt(e.Chunk, 10) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying sentinel-wrapping error.
func (e *CorruptionError) Unwrap() error { return e.Err }

// appendHeader encodes h (which must already be validated) followed by its CRC32C.
func appendHeader(b []byte, h *Header) []byte {
	start := len(b)
	b = append(b, Magic...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = append(b, byte(h.Kind), byte(h.Cipher))
	b = append(b, h.KeyID[:]...)
	b = append(b, h.Salt[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.CreatedAt))
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.NodeID)))
	b = append(b, h.NodeID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.ClusterID)))
	b = append(b, h.ClusterID...)
	b = binary.BigEndian.AppendUint32(b, h.Partitions)
	b = binary.BigEndian.AppendUint64(b, h.CoveredSeq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Meta)))
	b = append(b, h.Meta...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// chunkAAD fills aad with salt ‖ index.
func chunkAAD(aad *[chunkAADSize]byte, salt *[crypt.SaltSize]byte, index uint64) {
	copy(aad[:crypt.SaltSize], salt[:])
	binary.BigEndian.PutUint64(aad[crypt.SaltSize:], index)
}

// trailerAAD is the AAD of the trailer tag: label ‖ SHA-256 of the preceding bytes.
func trailerAAD(digest []byte) []byte {
	aad := make([]byte, 0, len(trailerAADLabel)+len(digest))
	aad = append(aad, trailerAADLabel...)
	return append(aad, digest...)
}

// uvarintLen is the encoded size of v as a uvarint.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// errEntryFraming describes why a chunk's plaintext is malformed.
var (
	errEmptyChunk      = errors.New("chunk holds no entries")
	errShortEntry      = errors.New("entry header cut short")
	errBadEntryLength  = errors.New("entry length is not a valid uvarint")
	errEntryOverrun    = errors.New("entry runs past the end of the chunk")
	errChunkFraming    = errors.New("unknown chunk framing version")
	errChunkS2         = errors.New("compressed chunk does not decode")
	errChunkTooLarge   = errors.New("chunk plaintext exceeds 1 MiB")
	errChunkLenInvalid = errors.New("chunk length out of range")
)

// parseEntry decodes the entry at the start of b: [type u8][uvarint len][payload].
// It returns the number of bytes consumed. It never reads beyond b.
func parseEntry(b []byte) (typ byte, payload []byte, n int, err error) {
	if len(b) < 2 {
		return 0, nil, 0, errShortEntry
	}
	l, k := binary.Uvarint(b[1:])
	if k <= 0 {
		return 0, nil, 0, errBadEntryLength
	}
	rest := uint64(len(b) - 1 - k)
	if l > rest {
		return 0, nil, 0, errEntryOverrun
	}
	n = 1 + k + int(l)
	return b[0], b[1+k : n : n], n, nil
}

// scanEntries validates the framing of a chunk's plaintext entries (the
// bytes after the version byte) and adds the entry counts to counts.
func scanEntries(b []byte, counts *[MaxEntryTypes]uint64) error {
	if len(b) == 0 {
		return errEmptyChunk
	}
	var local [MaxEntryTypes]uint32
	for len(b) > 0 {
		typ, _, n, err := parseEntry(b)
		if err != nil {
			return err
		}
		local[typ]++
		b = b[n:]
	}
	for i, c := range local {
		counts[i] += uint64(c)
	}
	return nil
}
