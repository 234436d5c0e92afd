package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

func randomEntries(seed uint64, n, maxLen int) []entry {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]entry, n)
	for i := range out {
		p := make([]byte, rng.IntN(maxLen+1))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		out[i] = entry{typ: byte(rng.IntN(256)), payload: p}
	}
	return out
}

func TestRoundTrip_BothCiphersAndKinds(t *testing.T) {
	key := mustKey(t, testKeyHex)
	entries := randomEntries(42, 700, 400)
	entries = append(entries, entry{0, nil}, entry{255, []byte{}}, entry{7, []byte("x")})
	for _, c := range []crypt.CipherID{crypt.AES256GCM, crypt.ChaCha20Poly1305} {
		for _, kind := range []Kind{KindSnapshot, KindBackup} {
			t.Run(fmt.Sprintf("%s/%s", c, kind), func(t *testing.T) {
				path := tempPath(t, "f.snap")
				o := WriteOptions{Key: key, Cipher: c, Kind: kind, NodeID: "tmnd-dc1-01",
					ClusterID: "tmcl-01J0000000000000000000000", Partitions: 256, CoveredSeq: 12345,
					CreatedAt: 1767225600123, chunkLimit: 4096}
				if kind == KindBackup {
					o.Meta = []byte(`{"backup_id":"bk-1","description":"nightly"}`)
				}
				wi := writeEntries(t, path, o, entries)

				r, err := Open(path, key)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				h := r.Header()
				if h.Version != FormatVersion || h.Kind != kind || h.Cipher != c || h.KeyID != key.ID() ||
					h.NodeID != o.NodeID || h.ClusterID != o.ClusterID || h.Partitions != 256 ||
					h.CoveredSeq != 12345 || h.CreatedAt != o.CreatedAt || !bytes.Equal(h.Meta, o.Meta) {
					t.Fatalf("header mismatch: %+v", h)
				}
				got, err := readEntries(r)
				if err != nil {
					t.Fatal(err)
				}
				if !equalEntries(got, entries) {
					t.Fatalf("entries differ: got %d, want %d", len(got), len(entries))
				}
				tr := r.Trailer()
				want := countsOf(entries)
				if !mapsEqual(tr.Counts, want) || tr.Entries() != uint64(len(entries)) {
					t.Fatalf("trailer counts %v, want %v", tr.Counts, want)
				}
				if tr.Chunks < 10 {
					t.Fatalf("expected many small chunks, got %d", tr.Chunks)
				}
				vi, err := Verify(path, key)
				if err != nil {
					t.Fatal(err)
				}
				st, _ := os.Stat(path)
				if vi.Bytes != st.Size() || wi.Bytes != st.Size() || vi.FileSHA256 != wi.FileSHA256 || vi.Trailer.SHA256 != wi.Trailer.SHA256 {
					t.Fatalf("writer info %+v and verify info %+v disagree (size %d)", wi, vi, st.Size())
				}
				rh, err := ReadHeader(path)
				if err != nil || rh.CoveredSeq != 12345 || !bytes.Equal(rh.Meta, o.Meta) {
					t.Fatalf("ReadHeader = %+v, %v", rh, err)
				}
			})
		}
	}
}

func mapsEqual(a, b map[byte]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRoundTrip_ZeroEntries(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, FileName(0))
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AutoCipher(), Kind: KindSnapshot}, nil)
	info, err := Verify(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Trailer.Chunks != 0 || len(info.Trailer.Counts) != 0 || info.Trailer.Entries() != 0 {
		t.Fatalf("trailer %+v", info.Trailer)
	}
	r, err := Open(path, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for range 3 { // io.EOF is sticky
		if _, _, err := r.Next(); err != io.EOF {
			t.Fatalf("Next = %v, want io.EOF", err)
		}
	}
}

func TestRoundTrip_ManyFullSizeChunks(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, "many.snap")
	// ~5.4 MB of entries in 1 MiB chunks.
	entries := randomEntries(7, 16000, 680)
	info := writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, entries)
	if info.Trailer.Chunks <= 3 {
		t.Fatalf("chunks = %d, want > 3", info.Trailer.Chunks)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l := parseLayout(t, data)
	if len(l.chunks) != int(info.Trailer.Chunks) {
		t.Fatalf("layout has %d chunks, trailer %d", len(l.chunks), info.Trailer.Chunks)
	}
	for i, off := range l.chunks[:len(l.chunks)-1] {
		n := int(uint32(data[off])<<24 | uint32(data[off+1])<<16 | uint32(data[off+2])<<8 | uint32(data[off+3]))
		if n > maxSealedChunk || n < maxSealedChunk-700 {
			t.Errorf("chunk %d sealed size %d: chunks should be filled close to 1 MiB", i, n)
		}
	}
	got, _, err := readBytes(data, key)
	if err != nil || !equalEntries(got, entries) {
		t.Fatalf("read back: %v (%d entries)", err, len(got))
	}
}

func TestAdd_PayloadAtTheLimit(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, "big.snap")
	w, err := Create(path, WriteOptions{Key: key, Cipher: crypt.ChaCha20Poly1305, Kind: KindSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	if w.MaxPayload() != MaxPayload {
		t.Fatalf("MaxPayload() = %d, want %d", w.MaxPayload(), MaxPayload)
	}
	// Random bytes do not compress, so each big payload fills a chunk.
	big := make([]byte, MaxPayload)
	rand.NewChaCha8([32]byte{7}).Read(big)
	entries := []entry{{1, []byte("small")}, {2, big}, {3, []byte("after")}, {4, big}}
	for _, e := range entries {
		if err := w.Add(e.typ, e.payload); err != nil {
			t.Fatal(err)
		}
	}
	tooBig := make([]byte, MaxPayload+1)
	if err := w.Add(5, tooBig); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("Add(MaxPayload+1) = %v, want ErrPayloadTooLarge", err)
	}
	// The writer is still usable after a rejected payload.
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	info, err := Verify(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if info.Trailer.Chunks != 4 {
		t.Fatalf("chunks = %d, want 4 (each big payload fills a chunk exactly)", info.Trailer.Chunks)
	}
	data, _ := os.ReadFile(path)
	l := parseLayout(t, data)
	if n := int(data[l.chunks[1]])<<24 | int(data[l.chunks[1]+1])<<16 | int(data[l.chunks[1]+2])<<8 | int(data[l.chunks[1]+3]); n != maxSealedChunk {
		t.Fatalf("full chunk sealed size %d, want %d", n, maxSealedChunk)
	}
	got, _, err := readBytes(data, key)
	if err != nil || !equalEntries(got, entries) {
		t.Fatalf("read back: %v", err)
	}
}

func TestCommit_LeavesOnlyTheFinalFileWithMode0600(t *testing.T) {
	key := mustKey(t, testKeyHex)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName(99))
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot, CoveredSeq: 99},
		randomEntries(1, 50, 100))
	if names := dirNames(t, dir); !slices.Equal(names, []string{FileName(99)}) {
		t.Fatalf("dir holds %v", names)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %o, want 0600", st.Mode().Perm())
		}
	}
}

func TestCreate_ReplacesStaleTempFile(t *testing.T) {
	key := mustKey(t, testKeyHex)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName(5))
	if err := os.WriteFile(path+".tmp", []byte("junk from a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, randomEntries(2, 3, 10))
	if names := dirNames(t, dir); !slices.Equal(names, []string{FileName(5)}) {
		t.Fatalf("dir holds %v", names)
	}
	if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o, want 0600", st.Mode().Perm())
	}
}

func TestCommit_VerificationFailureRemovesFileAndKeepsOldOne(t *testing.T) {
	key := mustKey(t, testKeyHex)
	dir := t.TempDir()
	path := filepath.Join(dir, FileName(7))
	old := randomEntries(3, 20, 50)
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, old)

	o := WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot, beforeVerify: func(tmp string) {
		// Simulate a bit flip on the way to disk.
		data, err := os.ReadFile(tmp)
		if err != nil {
			t.Error(err)
			return
		}
		l := parseLayout(t, data)
		data[l.chunks[0]+20] ^= 0x10
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Error(err)
		}
	}}
	w, err := Create(path, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(1, []byte("new content")); err != nil {
		t.Fatal(err)
	}
	err = w.Commit()
	checkCorruption(t, err, ErrCorrupt, ProblemChunkChecksum, 0)
	if names := dirNames(t, dir); !slices.Equal(names, []string{FileName(7)}) {
		t.Fatalf("dir holds %v", names)
	}
	r, err := Open(path, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := readEntries(r); err != nil || !equalEntries(got, old) {
		t.Fatalf("old snapshot damaged: %v", err)
	}
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Commit = %v, want ErrClosed", err)
	}
}

func TestAbort_RemovesTempFile(t *testing.T) {
	key := mustKey(t, testKeyHex)
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, FileName(1)), WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindBackup})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	w.Abort()
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("dir holds %v", names)
	}
	if err := w.Add(1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Abort = %v", err)
	}
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Abort = %v", err)
	}
}

func TestCreate_RejectsInvalidOptions(t *testing.T) {
	key := mustKey(t, testKeyHex)
	good := WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}
	cases := map[string]func(o *WriteOptions){
		"no key":         func(o *WriteOptions) { o.Key = nil },
		"unknown cipher": func(o *WriteOptions) { o.Cipher = 3 },
		"zero cipher":    func(o *WriteOptions) { o.Cipher = 0 },
		"unknown kind":   func(o *WriteOptions) { o.Kind = 3 },
		"long node ID":   func(o *WriteOptions) { o.NodeID = strings.Repeat("n", MaxIDLen+1) },
		"long cluster":   func(o *WriteOptions) { o.ClusterID = strings.Repeat("c", MaxIDLen+1) },
		"huge meta":      func(o *WriteOptions) { o.Meta = make([]byte, MaxMetaSize+1) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			o := good
			mutate(&o)
			if w, err := Create(filepath.Join(dir, "x.snap"), o); err == nil {
				w.Abort()
				t.Fatal("Create accepted invalid options")
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Fatalf("dir holds %v", names)
			}
		})
	}
}

func TestCreate_ZeroCreatedAtMeansNow(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, "now.snap")
	before := time.Now().UnixMilli()
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, nil)
	h, err := ReadHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.CreatedAt < before || h.CreatedAt > time.Now().UnixMilli() {
		t.Fatalf("CreatedAt %d not within the test's run", h.CreatedAt)
	}
}

func TestCreate_FreshSaltPerFile(t *testing.T) {
	key := mustKey(t, testKeyHex)
	dir := t.TempDir()
	o := WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}
	writeEntries(t, filepath.Join(dir, "a"), o, nil)
	writeEntries(t, filepath.Join(dir, "b"), o, nil)
	a, _ := ReadHeader(filepath.Join(dir, "a"))
	b, _ := ReadHeader(filepath.Join(dir, "b"))
	if a.Salt == b.Salt || a.Salt == ([32]byte{}) {
		t.Fatal("salts must be random per file")
	}
}

func TestReader_TrailerIsZeroUntilEOFAndCloseStopsReading(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, "r.snap")
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, randomEntries(4, 10, 10))
	r, err := Open(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Trailer().Chunks != 0 || r.Trailer().Counts != nil {
		t.Fatal("trailer visible before it was verified")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); err == nil || err == io.EOF {
		t.Fatalf("Next after Close = %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestOpen_MissingFileIsNotCorruption(t *testing.T) {
	key := mustKey(t, testKeyHex)
	_, err := Open(filepath.Join(t.TempDir(), "nope.snap"), key)
	var ce *CorruptionError
	if !errors.Is(err, os.ErrNotExist) || errors.As(err, &ce) {
		t.Fatalf("Open(missing) = %v", err)
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "nope.snap"), key); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Verify(missing) = %v", err)
	}
	if _, err := ReadHeader(filepath.Join(t.TempDir(), "nope.snap")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadHeader(missing) = %v", err)
	}
}

func TestFileName_RoundTrip(t *testing.T) {
	for _, seq := range []uint64{0, 1, 42, 1 << 40, ^uint64(0)} {
		name := FileName(seq)
		if len(name) != len("snapshot-")+20+len(".snap") {
			t.Fatalf("FileName(%d) = %q", seq, name)
		}
		got, ok := ParseFileName(name)
		if !ok || got != seq {
			t.Fatalf("ParseFileName(%q) = %d, %v", name, got, ok)
		}
	}
	if FileName(42) != "snapshot-00000000000000000042.snap" {
		t.Fatalf("FileName(42) = %q", FileName(42))
	}
	for _, bad := range []string{"snapshot-42.snap", "snapshot-0000000000000000004x.snap",
		"snapshot-00000000000000000042.snap.tmp", "snapshot-99999999999999999999.snap",
		"wal-00000000000000000042.log", "snapshot-+0000000000000000042.snap"} {
		if _, ok := ParseFileName(bad); ok {
			t.Errorf("ParseFileName(%q) accepted", bad)
		}
	}
}

func TestListAndPrune_KeepNewestByCoveredSeq(t *testing.T) {
	dir := t.TempDir()
	for _, seq := range []uint64{5, 100, 20, 3} {
		writeFile(t, filepath.Join(dir, FileName(seq)), []byte("x"))
	}
	writeFile(t, filepath.Join(dir, FileName(500)+".tmp"), []byte("x"))
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("x"))
	if err := os.Mkdir(filepath.Join(dir, FileName(1000)), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, FileName(100)), filepath.Join(dir, FileName(20)),
		filepath.Join(dir, FileName(5)), filepath.Join(dir, FileName(3))}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	removed, err := Prune(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, want[2:]) {
		t.Fatalf("Prune removed %v", removed)
	}
	if got, _ := List(dir); !slices.Equal(got, want[:2]) {
		t.Fatalf("after Prune List = %v", got)
	}
	if removed, err := Prune(dir, 2); err != nil || len(removed) != 0 {
		t.Fatalf("second Prune = %v, %v", removed, err)
	}
	if _, err := Prune(dir, 0); err == nil {
		t.Fatal("Prune(retain 0) must be refused")
	}
	tmps, err := RemoveStaleTemp(dir)
	if err != nil || !slices.Equal(tmps, []string{filepath.Join(dir, FileName(500)+".tmp")}) {
		t.Fatalf("RemoveStaleTemp = %v, %v", tmps, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatal("unrelated file removed")
	}
}

func TestList_MissingDirIsEmpty(t *testing.T) {
	got, err := List(filepath.Join(t.TempDir(), "snapshots"))
	if err != nil || got != nil {
		t.Fatalf("List(missing) = %v, %v", got, err)
	}
}

func TestReader_CloseMidStreamJoinsBackgroundHash(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, "big.snap")
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot}, randomEntries(11, 6000, 700))
	for stop := range 3 {
		r, err := Open(path, key)
		if err != nil {
			t.Fatal(err)
		}
		for range stop * 2500 {
			if _, _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if r.src.hashing != nil {
			t.Fatal("background hash not joined by Close")
		}
	}
}

func TestAbort_AfterLargeChunksJoinsBackgroundHash(t *testing.T) {
	key := mustKey(t, testKeyHex)
	dir := t.TempDir()
	w, err := Create(filepath.Join(dir, FileName(2)), WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100_000)
	for i := range 35 { // > 3 full chunks
		p[0] = byte(i)
		if err := w.Add(1, p); err != nil {
			t.Fatal(err)
		}
	}
	if w.chunks < 3 {
		t.Fatalf("only %d chunks flushed", w.chunks)
	}
	w.Abort()
	if w.hashing != nil {
		t.Fatal("background hash not joined by Abort")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("dir holds %v", names)
	}
}

// TestCompression_ShrinksSessionLikeChunksAndReadsBack writes entries that
// repeat field names and values the way session records do: the default
// (S2-compressed) file must be much smaller than the framing-1 file of the
// same entries, both must read back to the same entries and counts, and a
// mix of compressible and random chunks must round-trip too.
func TestCompression_ShrinksSessionLikeChunksAndReadsBack(t *testing.T) {
	key := mustKey(t, testKeyHex)
	var entries []entry
	rng := rand.New(rand.NewPCG(9, 9))
	for i := range 20000 {
		p := fmt.Appendf(nil, "user-%06d|Mozilla/5.0 (X11; Linux x86_64)|tenant=acme|roles=reader,writer|%08x", i%5000, rng.Uint32())
		entries = append(entries, entry{1, p})
		if i%1000 == 0 {
			big := make([]byte, 64<<10)
			rand.NewChaCha8([32]byte{byte(i)}).Read(big)
			entries = append(entries, entry{2, big})
		}
	}
	o := WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot, Partitions: 256, chunkLimit: 128 << 10}
	plainPath, zPath := tempPath(t, "plain.snap"), tempPath(t, "z.snap")
	op := o
	op.noCompress = true
	writeEntries(t, plainPath, op, entries)
	writeEntries(t, zPath, o, entries)
	plain, _ := os.ReadFile(plainPath)
	z, _ := os.ReadFile(zPath)
	// About 1.3 MiB of the entries are random; the rest compresses well.
	if len(z) > len(plain)*3/4 {
		t.Fatalf("compressed file %d bytes, framing-1 file %d: compression did not engage", len(z), len(plain))
	}
	for _, data := range [][]byte{plain, z} {
		got, info, err := readBytes(data, key)
		if err != nil || !equalEntries(got, entries) {
			t.Fatalf("read back: %v", err)
		}
		if info.Trailer.Entries() != uint64(len(entries)) {
			t.Fatalf("trailer entries %d, want %d", info.Trailer.Entries(), len(entries))
		}
	}
	if _, err := Verify(zPath, key); err != nil {
		t.Fatal(err)
	}
}

// TestNextChunk_SameEntriesAsNextAndOwnedByTheCaller reads files of both
// framings chunk by chunk: the entries equal what was written, chunks read
// into fresh buffers stay intact after later calls, a reused buffer works,
// the trailer is verified (io.EOF), and mixing with Next inside a chunk is
// refused.
func TestNextChunk_SameEntriesAsNextAndOwnedByTheCaller(t *testing.T) {
	key := mustKey(t, testKeyHex)
	var entries []entry
	for i := range 3000 {
		entries = append(entries, entry{byte(i % 3), fmt.Appendf(nil, "session-%05d|tenant=acme|ua=Mozilla/5.0", i)})
	}
	entries = append(entries, randomEntries(5, 200, 900)...)
	for _, noCompress := range []bool{false, true} {
		path := tempPath(t, fmt.Sprintf("c%v.snap", noCompress))
		writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindSnapshot, chunkLimit: 8 << 10, noCompress: noCompress}, entries)
		for _, reuse := range []bool{false, true} {
			r, err := Open(path, key)
			if err != nil {
				t.Fatal(err)
			}
			var chunks [][]byte
			var buf []byte
			for {
				c, err := r.NextChunk(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("noCompress=%v reuse=%v: %v", noCompress, reuse, err)
				}
				if reuse {
					buf = c
					chunks = append(chunks, bytes.Clone(c))
				} else {
					chunks = append(chunks, c)
				}
			}
			r.Close()
			var got []entry
			for _, c := range chunks {
				for rest := c; len(rest) > 0; {
					var e entry
					e.typ, e.payload, rest = ParseEntry(rest)
					got = append(got, e)
				}
			}
			if len(chunks) < 10 || !equalEntries(got, entries) {
				t.Fatalf("noCompress=%v reuse=%v: %d chunks, %d entries, want %d equal entries", noCompress, reuse, len(chunks), len(got), len(entries))
			}
		}
		r, _ := Open(path, key)
		if _, _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.NextChunk(nil); err == nil {
			t.Fatal("NextChunk inside a chunk read with Next accepted")
		}
		r.Close()
	}
}
