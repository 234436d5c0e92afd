package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// smallFile writes a file with several tiny chunks and returns its bytes.
func smallFile(t *testing.T, c crypt.CipherID, kind Kind) ([]byte, []entry) {
	t.Helper()
	key := mustKey(t, testKeyHex)
	entries := randomEntries(9, 12, 40)
	path := tempPath(t, "small.snap")
	o := WriteOptions{Key: key, Cipher: c, Kind: kind, NodeID: "tmnd-a", Partitions: 4,
		CoveredSeq: 77, Meta: []byte(`{"k":1}`), chunkLimit: 100}
	writeEntries(t, path, o, entries)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if l := parseLayout(t, data); len(l.chunks) < 3 {
		t.Fatalf("want ≥ 3 chunks, got %d", len(l.chunks))
	}
	return data, entries
}

// chunkAt returns the index of the chunk whose CRC or sealed bytes contain
// off, or -1.
func chunkAt(l layout, data []byte, off int) int {
	for i, c := range l.chunks {
		n := int(binary.BigEndian.Uint32(data[c:]))
		if off >= c+4 && off < c+8+n {
			return i
		}
	}
	return -1
}

// Every single-bit change anywhere in the file must be detected, and a change
// inside a chunk's CRC or sealed bytes must be reported against that chunk.
func TestVerify_EveryFlippedBitIsDetected(t *testing.T) {
	key := mustKey(t, testKeyHex)
	for _, kind := range []Kind{KindSnapshot, KindBackup} {
		data, _ := smallFile(t, crypt.ChaCha20Poly1305, kind)
		l := parseLayout(t, data)
		for off := range data {
			for _, bit := range []byte{0x01, 0x80} {
				d := clone(data)
				d[off] ^= bit
				if _, err := inspect(bytes.NewReader(d), int64(len(d)), ""); err != nil {
					var ce *CorruptionError
					if !errors.As(err, &ce) {
						t.Fatalf("Inspect, offset %d: %v is not a CorruptionError", off, err)
					}
				}
				_, _, err := readBytes(d, key)
				if err == nil {
					t.Fatalf("%s: flip %#x at offset %d not detected", kind, bit, off)
				}
				var ce *CorruptionError
				if !errors.As(err, &ce) {
					t.Fatalf("offset %d: %v is not a CorruptionError", off, err)
				}
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormatVersion) && !errors.Is(err, ErrKeyMismatch) {
					t.Fatalf("offset %d: %v wraps no sentinel", off, err)
				}
				if ci := chunkAt(l, data, off); ci >= 0 {
					if ce.Chunk != int64(ci) || ce.Kind != ProblemChunkChecksum || ce.Offset != int64(l.chunks[ci]) {
						t.Fatalf("offset %d (chunk %d at %d): got %v", off, ci, l.chunks[ci], err)
					}
				}
				if off < l.headerLen && (ce.Chunk != -1 || ce.Offset != 0) {
					t.Fatalf("header byte %d: got %v, want a header problem", off, err)
				}
				if off >= l.trailer+4 && (ce.Chunk != -1 || ce.Offset != int64(l.trailer)) {
					t.Fatalf("trailer byte %d: got %v, want a trailer problem", off, err)
				}
			}
		}
	}
}

// Every proper prefix of a valid file is reported as truncated.
func TestVerify_EveryTruncationIsDetected(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	for n := range len(data) {
		_, _, err := readBytes(data[:n], key)
		checkCorruption(t, err, ErrTruncated, ProblemTruncated, -2)
	}
}

func TestVerify_TruncationCases(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)
	cases := []struct {
		name  string
		cut   int
		chunk int64
		off   int
	}{
		{"inside header", 30, -1, 0},
		{"inside chunk 1", l.chunks[1] + 13, 1, l.chunks[1]},
		{"inside chunk 1 length", l.chunks[1] + 2, 1, l.chunks[1]},
		{"at chunk boundary", l.chunks[2], -1, l.chunks[2]},
		{"trailer missing", l.trailer, -1, l.trailer},
		{"inside trailer", l.trailer + 20, -1, l.trailer},
		{"last byte missing", len(data) - 1, -1, l.trailer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t, "cut.snap")
			writeFile(t, path, data[:tc.cut])
			_, err := Verify(path, key)
			ce := checkCorruption(t, err, ErrTruncated, ProblemTruncated, tc.chunk)
			if !errors.Is(err, ErrCorrupt) {
				t.Error("ErrTruncated must also match ErrCorrupt")
			}
			if ce.Offset != int64(tc.off) || ce.File != path {
				t.Errorf("offset %d file %q, want %d %q", ce.Offset, ce.File, tc.off, path)
			}
		})
	}
}

func TestVerify_FlippedChunkByteNamesTheChunk(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)
	d := clone(data)
	d[l.chunks[2]+8+5] ^= 0x40
	path := tempPath(t, "flip.snap")
	writeFile(t, path, d)
	_, err := Verify(path, key)
	ce := checkCorruption(t, err, ErrCorrupt, ProblemChunkChecksum, 2)
	if ce.Offset != int64(l.chunks[2]) || ce.File != path {
		t.Fatalf("offset %d file %q", ce.Offset, ce.File)
	}

	// With the CRC fixed up, the AEAD tag still catches it.
	fixChunkCRC(d, l.chunks[2])
	_, _, err = readBytes(d, key)
	checkCorruption(t, err, ErrCorrupt, ProblemChunkAuth, 2)
}

func TestVerify_ReorderedChunksAreDetected(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)
	// Swap chunks 0 and 1 (each keeps a valid CRC).
	a, b, c := l.chunks[0], l.chunks[1], l.chunks[2]
	d := append(clone(data[:a]), data[b:c]...)
	d = append(d, data[a:b]...)
	d = append(d, data[c:]...)
	_, _, err := readBytes(d, key)
	checkCorruption(t, err, ErrCorrupt, ProblemChunkAuth, 0)
}

func TestVerify_DroppedTrailingChunksNeedTheKey(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, entries := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)
	// A forger drops the last chunk and writes a new trailer with correct
	// counts, SHA-256 and CRC, but cannot compute the tag.
	dropped := append(clone(data[:l.chunks[len(l.chunks)-1]]), data[l.trailer:]...)
	n := len(l.chunks) - 1
	kept := entriesOfFirstChunks(t, data, key, n)
	forged := rebuildTrailer(t, dropped, nil, uint64(n), countsOf(kept))
	_, _, err := readBytes(forged, key)
	checkCorruption(t, err, ErrCorrupt, ProblemTrailerAuth, -1)
	// With the key the same trailer is valid: the check really is the tag.
	legit := rebuildTrailer(t, dropped, key, uint64(n), countsOf(kept))
	got, _, err := readBytes(legit, key)
	if err != nil || len(got) >= len(entries) {
		t.Fatalf("re-sealed file: %v (%d entries)", err, len(got))
	}
}

// entriesOfFirstChunks returns the entries held by the first n chunks
// (n must be less than the file's chunk count).
func entriesOfFirstChunks(t *testing.T, data []byte, key *crypt.MasterKey, n int) []entry {
	t.Helper()
	rd, err := NewReader(bytes.NewReader(data), key)
	if err != nil {
		t.Fatal(err)
	}
	var out []entry
	for {
		typ, p, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rd.chunks > uint64(n) {
			return out
		}
		out = append(out, entry{typ, clone(p)})
	}
}

func TestVerify_EditedHeaderIsDetected(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)
	seqOff := l.headerLen - 4 - len(`{"k":1}`) - 4 - 8

	d := clone(data)
	d[seqOff+7] ^= 0x01
	_, _, err := readBytes(d, key)
	checkCorruption(t, err, ErrCorrupt, ProblemHeaderChecksum, -1)

	fixHeaderCRC(t, d) // CRC recomputed: the trailer hash catches it
	_, _, err = readBytes(d, key)
	checkCorruption(t, err, ErrCorrupt, ProblemFileHash, -1)

	h, _ := readHeaderBytes(d)
	if h.CoveredSeq != 76 {
		t.Fatalf("edited covered seq = %d (test edits the wrong field)", h.CoveredSeq)
	}
	// Hash and CRC recomputed too: only the keyed tag catches it.
	forged := rebuildTrailer(t, d, nil, uint64(len(l.chunks)), nil)
	_, _, err = readBytes(forged, key)
	checkCorruption(t, err, ErrCorrupt, ProblemTrailerAuth, -1)
}

func TestOpen_WrongKeyIsKeyMismatch(t *testing.T) {
	key, other := mustKey(t, testKeyHex), mustKey(t, otherKeyHex)
	path := tempPath(t, "k.snap")
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, randomEntries(1, 5, 5))
	_, err := Open(path, other)
	ce := checkCorruption(t, err, ErrKeyMismatch, ProblemKeyMismatch, -1)
	if errors.Is(err, ErrCorrupt) {
		t.Error("a key mismatch is not corruption")
	}
	if ce.File != path {
		t.Errorf("file %q", ce.File)
	}
	_, err = Verify(path, other)
	checkCorruption(t, err, ErrKeyMismatch, ProblemKeyMismatch, -1)
	if _, err := ReadHeader(path); err != nil {
		t.Fatalf("ReadHeader needs no key: %v", err)
	}
}

func TestOpen_NewerFormatVersion(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	d := clone(data)
	binary.BigEndian.PutUint16(d[8:], FormatVersion+1)
	fixHeaderCRC(t, d)
	path := tempPath(t, "v2.snap")
	writeFile(t, path, d)
	_, err := Open(path, key)
	checkCorruption(t, err, ErrFormatVersion, ProblemFormatVersion, -1)
	_, err = ReadHeader(path)
	checkCorruption(t, err, ErrFormatVersion, ProblemFormatVersion, -1)
	// Even with a garbage CRC a newer version is reported as such.
	binary.BigEndian.PutUint16(d[8:], 0xffff)
	_, _, err = readBytes(d, key)
	checkCorruption(t, err, ErrFormatVersion, ProblemFormatVersion, -1)
}

func TestVerify_TrailerCountMismatch(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, entries := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)
	counts := countsOf(entries)
	var typ byte
	for k := range counts {
		typ = k
		break
	}
	chunks := uint64(len(l.chunks))

	cases := map[string]struct {
		chunks uint64
		counts func() map[byte]uint64
	}{
		"one entry more":    {chunks, func() map[byte]uint64 { c := countsOf(entries); c[typ]++; return c }},
		"one entry less":    {chunks, func() map[byte]uint64 { c := countsOf(entries); c[typ]--; return c }},
		"unknown type":      {chunks, func() map[byte]uint64 { c := countsOf(entries); c[typ^0x80]++; return c }},
		"chunk count wrong": {chunks + 1, countsOf2(entries)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := rebuildTrailer(t, data, key, tc.chunks, tc.counts())
			_, _, err := readBytes(d, key)
			checkCorruption(t, err, ErrCorrupt, ProblemTrailerCounts, -1)
		})
	}
	// Sanity: rebuilding with the true values gives a valid file.
	if _, _, err := readBytes(rebuildTrailer(t, data, key, chunks, counts), key); err != nil {
		t.Fatalf("rebuilt trailer: %v", err)
	}
}

func countsOf2(entries []entry) func() map[byte]uint64 {
	return func() map[byte]uint64 { return countsOf(entries) }
}

func TestVerify_TrailingBytesAreCorruption(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	_, _, err := readBytes(append(clone(data), 0), key)
	checkCorruption(t, err, ErrCorrupt, ProblemTrailingData, -1)
}

func TestVerify_KindSwapIsDetected(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindBackup)
	d := clone(data)
	d[10] = byte(KindSnapshot)
	fixHeaderCRC(t, d)
	_, _, err := readBytes(d, key)
	checkCorruption(t, err, ErrCorrupt, ProblemChunkAuth, 0)
}

func TestReadHeader_NotASnapshot(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"text": []byte("hello world, this is not a snapshot file at all......................................."),
		"wal":  []byte("TOKMWAL\x00\x00\x01"),
		"tiny": []byte("X"),
	} {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		_, err := ReadHeader(p)
		checkCorruption(t, err, ErrCorrupt, ProblemBadMagic, -1)
	}
	p := filepath.Join(dir, "empty")
	writeFile(t, p, nil)
	_, err := ReadHeader(p)
	checkCorruption(t, err, ErrTruncated, ProblemTruncated, -1)
}

// Length fields are bounded and buffers grow only as bytes arrive, so a
// short file claiming huge lengths allocates little.
func TestReader_HugeLengthFieldsInShortFileAllocateLittle(t *testing.T) {
	key := mustKey(t, testKeyHex)
	data, _ := smallFile(t, crypt.AES256GCM, KindSnapshot)
	l := parseLayout(t, data)

	bigChunk := clone(data[:l.chunks[0]+40])
	binary.BigEndian.PutUint32(bigChunk[l.chunks[0]:], maxSealedChunk)

	bigMeta := clone(data[:l.headerLen-4-len(`{"k":1}`)])
	binary.BigEndian.PutUint32(bigMeta[len(bigMeta)-4:], MaxMetaSize)
	bigMeta = append(bigMeta, "short"...)

	for name, img := range map[string][]byte{"chunk": bigChunk, "meta": bigMeta} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := readBytes(img, key)
		runtime.ReadMemStats(&after)
		checkCorruption(t, err, ErrTruncated, ProblemTruncated, -2)
		t.Logf("%s: %d bytes allocated", name, after.TotalAlloc-before.TotalAlloc)
		if got := after.TotalAlloc - before.TotalAlloc; got > 512<<10 {
			t.Errorf("%s: allocated %d bytes for a %d-byte input", name, got, len(img))
		}
	}
}
