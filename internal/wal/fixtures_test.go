package wal

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

var update = flag.Bool("update", false, "regenerate the golden WAL fixtures and fuzz seed corpus under testdata/")

// fixtureExpect is testdata/<case>/expect.json: what Replay (with torn-tail
// truncation) and Verify must report for the committed files.
type fixtureExpect struct {
	Records        int    `json:"records"`
	LastSeq        uint64 `json:"last_seq"`
	TornOffset     int64  `json:"torn_offset,omitempty"`
	TornBytes      int64  `json:"torn_bytes,omitempty"`
	ErrorKind      string `json:"error_kind,omitempty"`
	ErrorFile      string `json:"error_file,omitempty"`
	ErrorOffset    int64  `json:"error_offset,omitempty"`
	ErrorSeq       uint64 `json:"error_seq,omitempty"`
	VerifyProblems int    `json:"verify_problems"`
	VerifyWarnings int    `json:"verify_warnings"`
}

var fixtureCases = []string{"good", "torn-last-record", "flipped-byte-mid-segment", "truncated-header", "wrong-key"}

// generateFixture writes testdata/<name>/wal and returns what to expect.
func generateFixture(t *testing.T, name, dir string) fixtureExpect {
	key := testKey(t)
	switch name {
	case "good":
		// Segment 1 under AES-256-GCM, segment 2 under ChaCha20-Poly1305.
		writeWAL(t, dir, key, crypt.AES256GCM, 5)
		w := openTest(t, Options{Dir: dir, Key: key, Cipher: crypt.ChaCha20Poly1305, SyncMode: SyncNone}, 6)
		writeRecords(t, w, 5)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return fixtureExpect{Records: 10, LastSeq: 10}
	case "torn-last-record":
		writeWAL(t, dir, key, crypt.AES256GCM, 3, 5)
		path := segPath(dir, 2)
		offs := frameOffsets(t, path)
		last := offs[len(offs)-1]
		size := len(mustRead(t, path))
		cut := last + (size-last)/2
		mutateFile(t, path, func(d []byte) []byte { return d[:cut] })
		return fixtureExpect{Records: 7, LastSeq: 7, TornOffset: int64(last), TornBytes: int64(cut - last), VerifyWarnings: 1}
	case "flipped-byte-mid-segment":
		writeWAL(t, dir, key, crypt.ChaCha20Poly1305, 6)
		path := segPath(dir, 1)
		offs := frameOffsets(t, path)
		mutateFile(t, path, func(d []byte) []byte { d[offs[2]+25] ^= 0x04; return d })
		return fixtureExpect{ErrorKind: KindCRC, ErrorFile: filepath.Base(path), ErrorOffset: int64(offs[2]), ErrorSeq: 3, VerifyProblems: 1}
	case "truncated-header":
		writeWAL(t, dir, key, crypt.AES256GCM, 3, 3)
		path := segPath(dir, 2)
		mutateFile(t, path, func(d []byte) []byte { return d[:40] })
		return fixtureExpect{ErrorKind: KindShortHeader, ErrorFile: filepath.Base(path), VerifyProblems: 1}
	case "wrong-key":
		writeWAL(t, dir, otherKey(t), crypt.AES256GCM, 3)
		return fixtureExpect{ErrorKind: KindKeyMismatch, ErrorFile: filepath.Base(segPath(dir, 1)), ErrorSeq: 1, VerifyProblems: 1}
	}
	t.Fatalf("unknown fixture %q", name)
	return fixtureExpect{}
}

func TestFixtures_Generate(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/")
	}
	for _, name := range fixtureCases {
		root := filepath.Join("testdata", name)
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "wal")
		exp := generateFixture(t, name, dir)
		b, err := json.MarshalIndent(exp, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "expect.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFuzzSeeds(t)
}

// copyFixture copies testdata/<name>/wal into a temp dir (tests may truncate).
func copyFixture(t *testing.T, name string) (string, fixtureExpect) {
	t.Helper()
	src := filepath.Join("testdata", name)
	var exp fixtureExpect
	if err := json.Unmarshal(mustRead(t, filepath.Join(src, "expect.json")), &exp); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	ents, err := os.ReadDir(filepath.Join(src, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.WriteFile(filepath.Join(dst, e.Name()), mustRead(t, filepath.Join(src, "wal", e.Name())), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst, exp
}

func TestFixtures_ReplayAndVerifyMatchExpectations(t *testing.T) {
	key := testKey(t)
	for _, name := range fixtureCases {
		t.Run(name, func(t *testing.T) {
			dir, exp := copyFixture(t, name)
			probs, warns, err := Verify(dir, key)
			if err != nil || len(probs) != exp.VerifyProblems || len(warns) != exp.VerifyWarnings {
				t.Fatalf("verify: %v problems %+v warnings %+v", err, probs, warns)
			}
			recs, res, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
			if exp.ErrorKind != "" {
				var ce *CorruptionError
				if !errors.As(err, &ce) || ce.Kind != exp.ErrorKind || filepath.Base(ce.File) != exp.ErrorFile || ce.Offset != exp.ErrorOffset || ce.Seq != exp.ErrorSeq {
					t.Fatalf("err %v (%+v), want %s in %s at %d seq %d", err, ce, exp.ErrorKind, exp.ErrorFile, exp.ErrorOffset, exp.ErrorSeq)
				}
				if exp.ErrorKind == KindKeyMismatch && !errors.Is(err, ErrKeyMismatch) {
					t.Fatalf("not ErrKeyMismatch: %v", err)
				}
				// Nothing was modified.
				for _, p := range []string{exp.ErrorFile} {
					if !bytes.Equal(mustRead(t, filepath.Join(dir, p)), mustRead(t, filepath.Join("testdata", name, "wal", p))) {
						t.Fatalf("%s modified by a failed replay", p)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, recs, 1, exp.LastSeq)
			if res.Records != exp.Records || res.LastSeq != exp.LastSeq {
				t.Fatalf("result %+v", res)
			}
			if exp.TornBytes == 0 {
				if res.TornTail != nil {
					t.Fatalf("unexpected torn tail %+v", res.TornTail)
				}
				return
			}
			if res.TornTail == nil || res.TornTail.Offset != exp.TornOffset || res.TornTail.BytesDropped != exp.TornBytes || !res.TornTail.Truncated {
				t.Fatalf("torn tail %+v, want offset %d bytes %d", res.TornTail, exp.TornOffset, exp.TornBytes)
			}
			if st, err := os.Stat(res.TornTail.File); err != nil || st.Size() != exp.TornOffset {
				t.Fatalf("not truncated to %d: %v", exp.TornOffset, err)
			}
		})
	}
}

// TestFixtures_GoodIsByteExactFormat re-seals the good fixture's records
// under each segment's recorded salt: the bytes must match exactly, so any
// drift of the on-disk format (field order, AAD, nonce, CRC scope) fails.
func TestFixtures_GoodIsByteExactFormat(t *testing.T) {
	key := testKey(t)
	dir := filepath.Join("testdata", "good", "wal")
	segs, err := ListSegments(dir)
	if err != nil || len(segs) != 2 {
		t.Fatalf("%v %+v", err, segs)
	}
	if segs[0].Cipher != crypt.AES256GCM || segs[1].Cipher != crypt.ChaCha20Poly1305 {
		t.Fatalf("fixture ciphers %v %v", segs[0].Cipher, segs[1].Cipher)
	}
	for _, si := range segs {
		h, err := ReadHeader(si.Path)
		if err != nil {
			t.Fatal(err)
		}
		aead, err := key.FileAEAD(h.Cipher, h.Salt[:], crypt.PurposeWAL)
		if err != nil {
			t.Fatal(err)
		}
		sl := sealer{aead: aead, segID: h.SegmentID}
		hb := h.Encode()
		want := append([]byte(nil), hb[:]...)
		for seq := h.FirstSeq; seq < h.FirstSeq+5; seq++ {
			want = sl.appendFrame(want, seq, typeFor(seq), payloadFor(seq))
		}
		if got := mustRead(t, si.Path); !bytes.Equal(got, want) {
			t.Fatalf("%s: on-disk bytes differ from this build's encoding", si.Path)
		}
	}
}

// writeFuzzSeeds writes the committed seed corpus (go test fuzz v1 format).
func writeFuzzSeeds(t *testing.T) {
	seeds := map[string][][]byte{
		"FuzzDecodeFrame":   frameSeeds(t),
		"FuzzDecodeHeader":  headerSeeds(t),
		"FuzzReplaySegment": segmentBodySeeds(t),
	}
	for target, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range list {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", string(b))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
