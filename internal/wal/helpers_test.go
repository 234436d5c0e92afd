package wal

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Fixed test keys; the fixtures under testdata/ are written with them.
const (
	testKeyHex  = "7f3a9c2e5b1d4f6081a2c3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728"
	otherKeyHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func mustKey(t testing.TB, h string) *crypt.MasterKey {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypt.NewMasterKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testKey(t testing.TB) *crypt.MasterKey  { return mustKey(t, testKeyHex) }
func otherKey(t testing.TB) *crypt.MasterKey { return mustKey(t, otherKeyHex) }

// payloadFor is a deterministic payload for seq, so readers can check it.
func payloadFor(seq uint64) []byte {
	n := int(seq*37%300) + 1
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(seq) ^ byte(i)
	}
	return b
}

func typeFor(seq uint64) byte { return byte(seq%6) + 1 }

func openTest(t testing.TB, opts Options, next uint64) *Writer {
	t.Helper()
	if opts.Key == nil {
		opts.Key = testKey(t)
	}
	w, err := Open(opts, next)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// writeRecords appends seqs first..first+n-1 with payloadFor and waits for all.
func writeRecords(t testing.TB, w *Writer, n int) (first, last uint64) {
	t.Helper()
	for i := 0; i < n; i++ {
		seq := w.LastSeq() + 1
		got := w.Append(typeFor(seq), payloadFor(seq))
		if got != seq {
			t.Fatalf("Append returned seq %d, want %d", got, seq)
		}
		if i == 0 {
			first = got
		}
		last = got
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	return first, last
}

// writeWAL creates a WAL in dir with segments of the given record counts,
// one Open/Close per segment, starting at seq 1.
func writeWAL(t testing.TB, dir string, key *crypt.MasterKey, ciph crypt.CipherID, counts ...int) {
	t.Helper()
	next := uint64(1)
	for _, n := range counts {
		w := openTest(t, Options{Dir: dir, Key: key, Cipher: ciph, SyncMode: SyncNone}, next)
		_, last := writeRecords(t, w, n)
		if n == 0 {
			last = next - 1
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		next = last + 1
	}
}

type replayed struct {
	seq     uint64
	typ     byte
	payload []byte
}

func replayAll(t testing.TB, dir string, key *crypt.MasterKey, opts ReplayOptions) ([]replayed, ReplayResult, error) {
	t.Helper()
	var out []replayed
	res, err := Replay(dir, key, opts, func(seq uint64, typ byte, payload []byte) error {
		out = append(out, replayed{seq, typ, append([]byte(nil), payload...)})
		return nil
	})
	return out, res, err
}

// checkRecords asserts recs are exactly seqs from..to with payloadFor contents.
func checkRecords(t testing.TB, recs []replayed, from, to uint64) {
	t.Helper()
	if want := int(to - from + 1); to >= from && len(recs) != want || to < from && len(recs) != 0 {
		t.Fatalf("replayed %d records, want seqs %d..%d", len(recs), from, to)
	}
	for i, r := range recs {
		seq := from + uint64(i)
		if r.seq != seq || r.typ != typeFor(seq) || string(r.payload) != string(payloadFor(seq)) {
			t.Fatalf("record %d: seq %d type %d payload %x; want seq %d type %d", i, r.seq, r.typ, r.payload[:min(len(r.payload), 8)], seq, typeFor(seq))
		}
	}
}

func segPath(dir string, id uint64) string { return filepath.Join(dir, segmentName(id)) }

// frameOffsets returns the offset of every frame in a segment file.
func frameOffsets(t testing.TB, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	for off := HeaderSize; off < len(data); {
		f, err := DecodeFrame(data[off:])
		if err != nil {
			t.Fatalf("%s: frame at %d: %v", path, off, err)
		}
		offs = append(offs, off)
		off += f.Size
	}
	return offs
}

func mutateFile(t testing.TB, path string, fn func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func describe(recs []replayed) string {
	if len(recs) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", recs[0].seq, recs[len(recs)-1].seq)
}
