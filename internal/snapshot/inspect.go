package snapshot

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Inspect reads the header and trailer of path without the key (for
// tokmesh-walctl inspect and backup inspect). It walks the chunk frames by
// their length fields without reading their contents, and checks the header
// CRC, chunk lengths, the trailer CRC and structure, and that the trailer's
// chunk count matches the frames. It does NOT check chunk CRCs, AEAD tags,
// the file hash or the entry counts: use Verify for that. The returned
// Trailer's SHA256 is the stored value and Info.FileSHA256 is left zero.
func Inspect(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	return inspect(f, st.Size(), path)
}

func inspect(f io.ReaderAt, size int64, path string) (Info, error) {
	src := newSource(io.NewSectionReader(f, 0, size))
	hdr, err := readHeader(&src, path)
	if err != nil {
		return Info{}, err
	}
	info := Info{Header: hdr, Bytes: size}

	off := src.off
	var chunks uint64
	var p [4]byte
	for {
		if size-off < 4 {
			what := "chunk length"
			if size == off {
				what = "file after the last chunk (trailer missing)"
			}
			return info, &CorruptionError{File: path, Offset: off, Chunk: -1, Kind: ProblemTruncated,
				Err: fmt.Errorf("%w: file ends inside the %s", ErrTruncated, what)}
		}
		if _, err := f.ReadAt(p[:], off); err != nil {
			return info, readErr(path, err, off, int64(chunks), "chunk length")
		}
		n := binary.BigEndian.Uint32(p[:])
		if n == 0 {
			break
		}
		if n < minSealedChunk || n > maxSealedChunk {
			return info, &CorruptionError{File: path, Offset: off, Chunk: int64(chunks), Kind: ProblemChunkLength,
				Err: fmt.Errorf("%w: %w: %d bytes", ErrCorrupt, errChunkLenInvalid, n)}
		}
		if size-off < chunkPrefixSize+int64(n) {
			return info, &CorruptionError{File: path, Offset: off, Chunk: int64(chunks), Kind: ProblemTruncated,
				Err: fmt.Errorf("%w: file ends inside the chunk", ErrTruncated)}
		}
		off += chunkPrefixSize + int64(n)
		chunks++
	}

	bad := func(kind string, err error) (Info, error) {
		return info, &CorruptionError{File: path, Offset: off, Chunk: -1, Kind: kind, Err: err}
	}
	rest := size - off
	if rest < trailerFixedSize {
		return bad(ProblemTruncated, fmt.Errorf("%w: file ends inside the trailer", ErrTruncated))
	}
	if rest > trailerFixedSize+9*MaxEntryTypes {
		return bad(ProblemTrailingData, fmt.Errorf("%w: bytes after the trailer", ErrCorrupt))
	}
	t := make([]byte, rest)
	if _, err := f.ReadAt(t, off); err != nil {
		return info, readErr(path, err, off, -1, "trailer")
	}
	want := trailerFixedSize + 9*int64(binary.BigEndian.Uint16(t[12:14]))
	if rest < want {
		return bad(ProblemTruncated, fmt.Errorf("%w: file ends inside the trailer", ErrTruncated))
	}
	tr, _, kind, err := decodeTrailer(t[:want-4], binary.BigEndian.Uint32(t[want-4:want]))
	if err != nil {
		return bad(kind, err)
	}
	if rest > want {
		return bad(ProblemTrailingData, fmt.Errorf("%w: bytes after the trailer", ErrCorrupt))
	}
	if tr.Chunks != chunks {
		return bad(ProblemTrailerCounts, fmt.Errorf("%w: trailer says %d chunks, file has %d", ErrCorrupt, tr.Chunks, chunks))
	}
	info.Trailer = tr
	return info, nil
}
