package snapshot

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// go test ./internal/snapshot/ -run TestFixtures -update rewrites testdata/
// (fixtures and the FuzzReadSnapshot seed corpus). The generator is
// deterministic (fixed keys, salt, time and chunk size), so an unchanged
// format reproduces the committed bytes exactly.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	fixtureDir       = "testdata"
	fuzzCorpusDir    = "testdata/fuzz/FuzzReadSnapshot"
	fixtureCreatedAt = 1767225600000 // 2026-01-01T00:00:00Z
	fixtureChunk     = 200           // plaintext bytes per chunk, so small files have several chunks
)

var fixtureSalt = func() *[crypt.SaltSize]byte {
	var s [crypt.SaltSize]byte
	for i := range s {
		s[i] = byte(0xa0 + i)
	}
	return &s
}()

// fixtureEntries stands in for engine records: type 1 "session", 2
// "tombstone", 3 "partition state".
func fixtureEntries() []entry {
	var out []entry
	for i := range 18 {
		typ := byte(1 + i%3)
		p := fmt.Sprintf("rec-%02d:%s", i, strings.Repeat(string(rune('a'+i%26)), 5+i*4))
		out = append(out, entry{typ, []byte(p)})
	}
	return out
}

const fixtureBackupMeta = `{"backup_id":"bk-01J000000000000000000000","description":"fixture","created_at":"2026-01-01T00:00:00Z","node_id":"tmnd-fixture"}`

type fixture struct {
	name    string
	data    []byte
	key     string // key hex to open it with
	wantErr error  // nil: valid file
	kind    string // Problem* for invalid files
	chunk   int64
	// For valid files:
	entries []entry
	cipher  crypt.CipherID
	fkind   Kind
	meta    string
}

func writeFixture(t *testing.T, keyHex string, c crypt.CipherID, kind Kind, meta string, entries []entry) []byte {
	t.Helper()
	o := WriteOptions{Key: mustKey(t, keyHex), Cipher: c, Kind: kind, NodeID: "tmnd-fixture",
		Partitions: 16, CoveredSeq: 4242, CreatedAt: fixtureCreatedAt, Meta: []byte(meta),
		salt: fixtureSalt, chunkLimit: fixtureChunk, noCompress: true}
	path := tempPath(t, "fixture")
	writeEntries(t, path, o, entries)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// generateFixtures builds every golden file from scratch.
func generateFixtures(t *testing.T) []fixture {
	t.Helper()
	es := fixtureEntries()
	good := writeFixture(t, testKeyHex, crypt.AES256GCM, KindSnapshot, "", es)
	l := parseLayout(t, good)
	if len(l.chunks) < 4 {
		t.Fatalf("good fixture has %d chunks, want ≥ 4", len(l.chunks))
	}
	ok := func(name string, data []byte, c crypt.CipherID, k Kind, meta string, entries []entry) fixture {
		return fixture{name: name, data: data, key: testKeyHex, entries: entries, cipher: c, fkind: k, meta: meta}
	}
	bad := func(name string, data []byte, keyHex string, err error, kind string, chunk int64) fixture {
		return fixture{name: name, data: data, key: keyHex, wantErr: err, kind: kind, chunk: chunk}
	}

	flipped := clone(good)
	flipped[l.chunks[2]+8+7] ^= 0x20

	badTag := clone(flipped)
	fixChunkCRC(badTag, l.chunks[2])

	flippedHeader := clone(good)
	flippedHeader[l.headerLen-4-4-1] ^= 0x01 // last byte of covered_seq

	editedHeader := clone(flippedHeader)
	fixHeaderCRC(t, editedHeader)
	forgedHeader := rebuildTrailer(t, editedHeader, nil, uint64(len(l.chunks)), countsOf(es))

	newer := clone(good)
	binary.BigEndian.PutUint16(newer[8:], FormatVersion+1)
	fixHeaderCRC(t, newer)

	counts := countsOf(es)
	counts[1]++
	badCounts := rebuildTrailer(t, good, mustKey(t, testKeyHex), uint64(len(l.chunks)), counts)

	a, b, c := l.chunks[1], l.chunks[2], l.chunks[3]
	swapped := append(clone(good[:a]), good[b:c]...)
	swapped = append(swapped, good[a:b]...)
	swapped = append(swapped, good[c:]...)

	return []fixture{
		ok("good.snap", good, crypt.AES256GCM, KindSnapshot, "", es),
		ok("good-chacha.snap", writeFixture(t, testKeyHex, crypt.ChaCha20Poly1305, KindSnapshot, "", es), crypt.ChaCha20Poly1305, KindSnapshot, "", es),
		ok("backup.tmbak", writeFixture(t, testKeyHex, crypt.AES256GCM, KindBackup, fixtureBackupMeta, es), crypt.AES256GCM, KindBackup, fixtureBackupMeta, es),
		ok("empty.snap", writeFixture(t, testKeyHex, crypt.ChaCha20Poly1305, KindSnapshot, "", nil), crypt.ChaCha20Poly1305, KindSnapshot, "", nil),
		bad("other-key.snap", writeFixture(t, otherKeyHex, crypt.AES256GCM, KindSnapshot, "", es), testKeyHex, ErrKeyMismatch, ProblemKeyMismatch, -1),
		bad("flipped-chunk-byte.snap", flipped, testKeyHex, ErrCorrupt, ProblemChunkChecksum, 2),
		bad("bad-chunk-tag.snap", badTag, testKeyHex, ErrCorrupt, ProblemChunkAuth, 2),
		bad("swapped-chunks.snap", swapped, testKeyHex, ErrCorrupt, ProblemChunkAuth, 1),
		bad("flipped-header-byte.snap", flippedHeader, testKeyHex, ErrCorrupt, ProblemHeaderChecksum, -1),
		bad("edited-header.snap", editedHeader, testKeyHex, ErrCorrupt, ProblemFileHash, -1),
		bad("forged-header.snap", forgedHeader, testKeyHex, ErrCorrupt, ProblemTrailerAuth, -1),
		bad("newer-version.snap", newer, testKeyHex, ErrFormatVersion, ProblemFormatVersion, -1),
		bad("truncated.snap", clone(good[:l.chunks[3]+20]), testKeyHex, ErrTruncated, ProblemTruncated, 3),
		bad("truncated-chunk-boundary.snap", clone(good[:l.chunks[3]]), testKeyHex, ErrTruncated, ProblemTruncated, -1),
		bad("truncated-trailer.snap", clone(good[:l.trailer+30]), testKeyHex, ErrTruncated, ProblemTruncated, -1),
		bad("no-trailer.snap", clone(good[:l.trailer]), testKeyHex, ErrTruncated, ProblemTruncated, -1),
		bad("truncated-header.snap", clone(good[:40]), testKeyHex, ErrTruncated, ProblemTruncated, -1),
		bad("bad-counts.snap", badCounts, testKeyHex, ErrCorrupt, ProblemTrailerCounts, -1),
		bad("trailing-data.snap", append(clone(good), "extra"...), testKeyHex, ErrCorrupt, ProblemTrailingData, -1),
		bad("not-a-snapshot.snap", []byte("TOKMWAL\x00 this is a WAL segment, not a snapshot"), testKeyHex, ErrCorrupt, ProblemBadMagic, -1),
	}
}

// fuzzSeedName maps a fixture file name to a corpus entry name.
func fuzzSeedName(name string) string {
	return "fixture-" + strings.NewReplacer(".", "-").Replace(name)
}

func TestFixtures_MatchGenerator(t *testing.T) {
	fixtures := generateFixtures(t)
	if *update {
		if err := os.MkdirAll(fuzzCorpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range fixtures {
			if err := os.WriteFile(filepath.Join(fixtureDir, f.name), f.data, 0o644); err != nil {
				t.Fatal(err)
			}
			seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", f.data)
			if err := os.WriteFile(filepath.Join(fuzzCorpusDir, fuzzSeedName(f.name)), []byte(seed), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("rewrote %d fixtures in %s", len(fixtures), fixtureDir)
	}
	for _, f := range fixtures {
		got, err := os.ReadFile(filepath.Join(fixtureDir, f.name))
		if err != nil {
			t.Fatalf("%v (run: go test ./internal/snapshot/ -run TestFixtures -update)", err)
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("%s: committed bytes differ from the generator: the file format changed. "+
				"If intended, bump FormatVersion or regenerate with -update and review the diff.", f.name)
		}
		if _, err := os.Stat(filepath.Join(fuzzCorpusDir, fuzzSeedName(f.name))); err != nil {
			t.Errorf("fuzz seed missing: %v", err)
		}
	}
}

// TestFixtures_Committed checks the committed files themselves, so a reader
// change that stops accepting (or starts accepting) them is caught even if
// the writer changed in step.
func TestFixtures_Committed(t *testing.T) {
	for _, f := range generateFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			path := filepath.Join(fixtureDir, f.name)
			key := mustKey(t, f.key)
			info, err := Verify(path, key)
			if f.wantErr != nil {
				ce := checkCorruption(t, err, f.wantErr, f.kind, f.chunk)
				if ce.File != path {
					t.Errorf("error names file %q, want %q", ce.File, path)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := info.Header
			if h.Cipher != f.cipher || h.Kind != f.fkind || string(h.Meta) != f.meta || h.CoveredSeq != 4242 ||
				h.NodeID != "tmnd-fixture" || h.Partitions != 16 || h.CreatedAt != fixtureCreatedAt || h.KeyID != key.ID() {
				t.Fatalf("header %+v", h)
			}
			r, err := Open(path, key)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := readEntries(r)
			if err != nil {
				t.Fatal(err)
			}
			if !equalEntries(got, f.entries) {
				t.Fatalf("entries differ")
			}
			if !mapsEqual(r.Trailer().Counts, countsOf(f.entries)) {
				t.Fatalf("counts %v", r.Trailer().Counts)
			}
		})
	}
	// The wrong-key case the other way round: good.snap under the second key.
	_, err := Verify(filepath.Join(fixtureDir, "good.snap"), mustKey(t, otherKeyHex))
	checkCorruption(t, err, ErrKeyMismatch, ProblemKeyMismatch, -1)
	// other-key.snap is valid under its own key.
	if _, err := Verify(filepath.Join(fixtureDir, "other-key.snap"), mustKey(t, otherKeyHex)); err != nil {
		t.Fatal(err)
	}
}

// TestFixtures_NoStrayFiles keeps testdata/ in step with the generator.
func TestFixtures_NoStrayFiles(t *testing.T) {
	var want []string
	for _, f := range generateFixtures(t) {
		want = append(want, f.name)
	}
	ents, err := os.ReadDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() && !slices.Contains(want, e.Name()) {
			t.Errorf("testdata/%s is not produced by generateFixtures", e.Name())
		}
	}
}

// TestFixtures_Inspect checks the key-less header+trailer walk on every
// fixture: it sees structural damage (header, lengths, truncation, trailer)
// but, by design, not damage that only the key or the hash can reveal.
func TestFixtures_Inspect(t *testing.T) {
	want := map[string]error{ // nil: Inspect succeeds
		"flipped-header-byte.snap":      ErrCorrupt,
		"newer-version.snap":            ErrFormatVersion,
		"truncated.snap":                ErrTruncated,
		"truncated-chunk-boundary.snap": ErrTruncated,
		"truncated-trailer.snap":        ErrTruncated,
		"no-trailer.snap":               ErrTruncated,
		"truncated-header.snap":         ErrTruncated,
		"trailing-data.snap":            ErrCorrupt,
		"not-a-snapshot.snap":           ErrCorrupt,
	}
	for _, f := range generateFixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			info, err := Inspect(filepath.Join(fixtureDir, f.name))
			if w := want[f.name]; w != nil {
				checkCorruption(t, err, w, "", -2)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantSeq := uint64(4242)
			if strings.HasSuffix(f.name, "-header.snap") {
				wantSeq = 4243 // the edit Inspect cannot see without the key
			}
			if info.Header.CoveredSeq != wantSeq || info.Header.NodeID != "tmnd-fixture" || info.Bytes != int64(len(f.data)) {
				t.Fatalf("info %+v", info)
			}
			if f.entries != nil && (!mapsEqual(info.Trailer.Counts, countsOf(f.entries)) || info.Trailer.Chunks < 4) {
				t.Fatalf("trailer %+v", info.Trailer)
			}
		})
	}
}

func TestInspect_AgreesWithVerifyOnAValidFile(t *testing.T) {
	key := mustKey(t, testKeyHex)
	path := tempPath(t, "i.snap")
	writeEntries(t, path, WriteOptions{Key: key, Cipher: crypt.AES256GCM, Kind: KindBackup, Meta: []byte(`{}`)}, randomEntries(5, 4000, 900))
	vi, err := Verify(path, key)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if ii.Trailer.Chunks != vi.Trailer.Chunks || !mapsEqual(ii.Trailer.Counts, vi.Trailer.Counts) ||
		ii.Trailer.SHA256 != vi.Trailer.SHA256 || ii.Bytes != vi.Bytes || ii.Header.Salt != vi.Header.Salt {
		t.Fatalf("Inspect %+v, Verify %+v", ii, vi)
	}
	data, _ := os.ReadFile(path)
	for _, n := range []int{0, 10, 100, len(data) / 2, len(data) - 70, len(data) - 1} {
		_, err := inspect(bytes.NewReader(data[:n]), int64(n), "x")
		checkCorruption(t, err, ErrTruncated, ProblemTruncated, -2)
	}
}
