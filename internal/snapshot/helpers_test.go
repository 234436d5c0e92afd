package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// Fixed test keys. Never use these outside tests.
const (
	testKeyHex  = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	otherKeyHex = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
)

func mustKey(tb testing.TB, h string) *crypt.MasterKey {
	tb.Helper()
	raw, err := hex.DecodeString(h)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := crypt.NewMasterKey(raw)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

type entry struct {
	typ     byte
	payload []byte
}

// writeEntries writes entries with Create/Add/Commit and returns the commit Info.
func writeEntries(tb testing.TB, path string, o WriteOptions, entries []entry) Info {
	tb.Helper()
	w, err := Create(path, o)
	if err != nil {
		tb.Fatalf("Create: %v", err)
	}
	for i, e := range entries {
		if err := w.Add(e.typ, e.payload); err != nil {
			w.Abort()
			tb.Fatalf("Add #%d: %v", i, err)
		}
	}
	if err := w.Commit(); err != nil {
		tb.Fatalf("Commit: %v", err)
	}
	return w.Info()
}

// readEntries streams all entries from r, copying payloads.
func readEntries(r *Reader) ([]entry, error) {
	var out []entry
	for {
		typ, p, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, entry{typ, bytes.Clone(p)})
	}
}

// readBytes reads a whole file image through NewReader.
func readBytes(data []byte, key *crypt.MasterKey) ([]entry, Info, error) {
	r, err := NewReader(bytes.NewReader(data), key)
	if err != nil {
		return nil, Info{}, err
	}
	defer r.Close()
	es, err := readEntries(r)
	return es, r.Info(), err
}

func equalEntries(a, b []entry) bool {
	return slices.EqualFunc(a, b, func(x, y entry) bool {
		return x.typ == y.typ && bytes.Equal(x.payload, y.payload)
	})
}

func countsOf(entries []entry) map[byte]uint64 {
	m := map[byte]uint64{}
	for _, e := range entries {
		m[e.typ]++
	}
	return m
}

// layout locates the structures of a well-formed file image without
// decrypting it; it re-implements FORMAT.md independently of the reader.
type layout struct {
	headerLen int   // header size including its CRC
	chunks    []int // offset of each chunk's length field
	trailer   int   // offset of the trailer marker
}

func parseLayout(tb testing.TB, data []byte) layout {
	tb.Helper()
	p := headerFixedSize
	u16 := func() int { v := int(binary.BigEndian.Uint16(data[p:])); p += 2; return v }
	p += u16() // node ID
	p += u16() // cluster ID
	p += 4 + 8
	m := int(binary.BigEndian.Uint32(data[p:]))
	p += 4 + m + 4
	l := layout{headerLen: p}
	for {
		n := int(binary.BigEndian.Uint32(data[p:]))
		if n == 0 {
			l.trailer = p
			return l
		}
		l.chunks = append(l.chunks, p)
		p += chunkPrefixSize + n
	}
}

func clone(b []byte) []byte { return bytes.Clone(b) }

// fixHeaderCRC recomputes the header CRC of a (possibly edited) image.
func fixHeaderCRC(tb testing.TB, data []byte) {
	l := parseLayout(tb, data)
	binary.BigEndian.PutUint32(data[l.headerLen-4:], crc32.Checksum(data[:l.headerLen-4], castagnoli))
}

// fixChunkCRC recomputes the CRC of the chunk at offset off.
func fixChunkCRC(data []byte, off int) {
	n := int(binary.BigEndian.Uint32(data[off:]))
	binary.BigEndian.PutUint32(data[off+4:], crc32.Checksum(data[off+8:off+8+n], castagnoli))
}

// rebuildTrailer replaces the trailer of an image with one built from
// chunks and counts. With key != nil the tag is valid (a writer holding the
// key); otherwise the old tag is kept (a forger without the key). SHA-256
// and CRC are always recomputed.
func rebuildTrailer(tb testing.TB, data []byte, key *crypt.MasterKey, chunks uint64, counts map[byte]uint64) []byte {
	tb.Helper()
	l := parseLayout(tb, data)
	oldTag := clone(data[len(data)-4-crypt.TagSize : len(data)-4])
	out := clone(data[:l.trailer])
	out = binary.BigEndian.AppendUint32(out, 0)
	out = binary.BigEndian.AppendUint64(out, chunks)
	var types []int
	for t, c := range counts {
		if c > 0 {
			types = append(types, int(t))
		}
	}
	slices.Sort(types)
	out = binary.BigEndian.AppendUint16(out, uint16(len(types)))
	for _, t := range types {
		out = append(out, byte(t))
		out = binary.BigEndian.AppendUint64(out, counts[byte(t)])
	}
	digest := sha256.Sum256(out)
	out = append(out, digest[:]...)
	if key != nil {
		hdr, err := readHeaderBytes(data)
		if err != nil {
			tb.Fatal(err)
		}
		purpose, _ := hdr.Kind.purpose()
		aead, err := key.FileAEAD(hdr.Cipher, hdr.Salt[:], purpose)
		if err != nil {
			tb.Fatal(err)
		}
		nonce := crypt.Nonce(chunks)
		out = aead.Seal(out, nonce[:], nil, trailerAAD(digest[:]))
	} else {
		out = append(out, oldTag...)
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out[l.trailer:], castagnoli))
}

func readHeaderBytes(data []byte) (Header, error) {
	s := newSource(bytes.NewReader(data))
	return readHeader(&s, "")
}

// checkCorruption asserts err is a *CorruptionError wrapping want with the
// given problem kind and chunk index (chunk < -1 means "don't care").
func checkCorruption(tb testing.TB, err error, want error, kind string, chunk int64) *CorruptionError {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %v (%s)", want, kind)
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) {
		tb.Fatalf("error %v (%T) is not a *CorruptionError", err, err)
	}
	if !errors.Is(err, want) {
		tb.Errorf("error %v does not wrap %v", err, want)
	}
	if kind != "" && ce.Kind != kind {
		tb.Errorf("problem kind %q, want %q (error: %v)", ce.Kind, kind, err)
	}
	if chunk >= -1 && ce.Chunk != chunk {
		tb.Errorf("chunk %d, want %d (error: %v)", ce.Chunk, chunk, err)
	}
	return ce
}

func writeFile(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func tempPath(tb testing.TB, name string) string {
	return filepath.Join(tb.TempDir(), name)
}
