package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and the fuzz seed corpus")

// goldenRecords is a fixed set covering every record type and edge values.
func goldenRecords() []Record {
	id1, _ := ParseID("tmss-01jh8w3m5v00gq1t7c2r9x4bzd", 0)
	id2, _ := ParseID("tmss-7zzzzzzzzzzzzzzzzzzzzzzzzz", 0)
	th := HashToken("client-token-00000001")
	full := &Session{
		ID: id1, TokenHash: th, UserID: "u-1001", DeviceID: "dev-é",
		IPAddress: netip.MustParseAddr("203.0.113.7"), UserAgent: "Mozilla/5.0 \x01\xff",
		LastAccessIP: netip.MustParseAddr("2001:db8::1"), LastAccessUA: "curl/8",
		CreatedBy: "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w", CreatedAt: t0, ExpiresAt: t0 + 7200_000,
		LastActive: t0 + 5, Data: []byte(`{"a":"x\"y\\z","tenant":"acme"}`), IdleTimeout: 1800, Version: 7,
	}
	edge := &Session{
		ID: id2, TokenHash: TokenHash{0xff, 0xfe}, UserID: "用户", CreatedAt: math.MinInt64, ExpiresAt: math.MaxInt64,
		LastActive: 0, Data: []byte("{}"), IdleTimeout: math.MaxUint32, Version: math.MaxUint64,
	}
	return []Record{
		{Type: RecordPut, Partition: 255, Epoch: 3, PSeq: 1 << 40, Session: full},
		{Type: RecordPut, Session: edge},
		{Type: RecordTouch, Partition: 1, Epoch: 1, PSeq: 2, Touch: Touch{ID: id1, LastActive: t0 + 1000, LastAccessIP: netip.MustParseAddr("198.51.100.1"), LastAccessUA: "ua", Version: 8}},
		{Type: RecordTouch, Touch: Touch{ID: id2, LastActive: -1, Version: 1}},
		{Type: RecordRevoke, Partition: 4095, Epoch: 9, PSeq: 9, Tombstone: Tombstone{ID: id1, TokenHash: th, UserID: "u-1001", ExpiresAt: t0 + 7200_000, RevokedAt: t0 + 60_000, Version: 9}},
		{Type: RecordExpire, Partition: 2, Epoch: 1, PSeq: 10, ID: id1, Version: 9},
		{Type: RecordPartitionDrop, Partition: 65535, Epoch: math.MaxUint64},
		{Type: RecordReset},
	}
}

// The golden file is a sequence of [type:1][len:uvarint][payload].
func encodeGolden(recs []Record) []byte {
	var out []byte
	for i := range recs {
		p := recs[i].AppendBinary(nil)
		out = append(out, byte(recs[i].Type))
		out = binary.AppendUvarint(out, uint64(len(p)))
		out = append(out, p...)
	}
	return out
}

func TestRecordCodec_Golden(t *testing.T) {
	path := filepath.Join("testdata", "golden", "records.bin")
	recs := goldenRecords()
	enc := encodeGolden(recs)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(file, enc) {
		t.Fatal("encoding changed: records.bin no longer matches (a format change needs a new payload version)")
	}
	b := file
	for i := 0; len(b) > 0; i++ {
		typ := RecordType(b[0])
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || uint64(len(b)-1-k) < n {
			t.Fatalf("record %d: bad framing", i)
		}
		payload := b[1+k : 1+k+int(n)]
		b = b[1+k+int(n):]
		got, err := DecodeRecord(typ, payload)
		if err != nil {
			t.Fatalf("record %d (%s): %v", i, typ, err)
		}
		if i >= len(recs) || !reflect.DeepEqual(got, recs[i]) {
			t.Fatalf("record %d decoded as %+v", i, got)
		}
	}
}

func TestSessionAndTombstoneBinary_RoundTrip(t *testing.T) {
	for _, r := range goldenRecords() {
		if r.Type == RecordPut {
			b := AppendSessionBinary(nil, r.Session)
			got, err := DecodeSessionBinary(b)
			if err != nil || !reflect.DeepEqual(got, r.Session) {
				t.Fatalf("session round trip: %v", err)
			}
		}
		if r.Type == RecordRevoke {
			b := AppendTombstoneBinary(nil, &r.Tombstone)
			got, err := DecodeTombstoneBinary(b)
			if err != nil || got != r.Tombstone {
				t.Fatalf("tombstone round trip: %v", err)
			}
		}
	}
}

func TestDecodeRecord_RejectsCorruption(t *testing.T) {
	good := goldenRecords()[0]
	p := good.AppendBinary(nil)
	cases := map[string]struct {
		typ     RecordType
		payload []byte
	}{
		"unknown type 0":   {0, p},
		"unknown type 7":   {7, p},
		"empty":            {RecordPut, nil},
		"version 2":        {RecordPut, append([]byte{2}, p[1:]...)},
		"truncated":        {RecordPut, p[:len(p)-1]},
		"trailing byte":    {RecordPut, append(append([]byte(nil), p...), 0)},
		"reset trailing":   {RecordReset, []byte{1, 0, 0, 0, 0}},
		"partition > u16":  {RecordReset, []byte{1, 0x80, 0x80, 0x04, 0, 0}},
		"expire zero id":   {RecordExpire, (&Record{Type: RecordExpire, Version: 1}).AppendBinary(nil)},
		"put nil session":  {RecordPut, (&Record{Type: RecordPut}).AppendBinary(nil)},
		"touch version 0":  {RecordTouch, (&Record{Type: RecordTouch, Touch: Touch{ID: ID{1}}}).AppendBinary(nil)},
		"overlong varint":  {RecordExpire, []byte{1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		"bad address kind": {RecordTouch, append(append([]byte{1, 0, 0, 0}, make([]byte, 17)...), 5)},
	}
	for name, c := range cases {
		if _, err := DecodeRecord(c.typ, c.payload); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	bad := *good.Session
	bad.Data = []byte(`{"k":"v",}`)
	if _, err := DecodeRecord(RecordPut, (&Record{Type: RecordPut, Session: &bad}).AppendBinary(nil)); !errors.Is(err, ErrCorrupt) {
		t.Error("invalid data accepted")
	}
	bad = *good.Session
	bad.UserID = ""
	if _, err := DecodeSessionBinary(AppendSessionBinary(nil, &bad)); !errors.Is(err, ErrCorrupt) {
		t.Error("empty user accepted")
	}
}

func TestRecordType_Names(t *testing.T) {
	want := []string{"", "SESSION_PUT", "SESSION_TOUCH", "SESSION_REVOKE", "SESSION_EXPIRE", "PARTITION_DROP", "RESET"}
	for i := 1; i < len(want); i++ {
		if got := RecordType(i).String(); got != want[i] {
			t.Errorf("%d: %s", i, got)
		}
		if rt, ok := ParseRecordType(want[i]); !ok || rt != RecordType(i) {
			t.Errorf("ParseRecordType(%s)", want[i])
		}
	}
	if RecordType(9).String() != "RecordType(9)" {
		t.Error("unknown type name")
	}
}

// writeSeeds writes Go fuzz corpus files (format "go test fuzz v1").
func writeSeeds(t *testing.T, target string, seeds map[string][]any) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, args := range seeds {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case byte:
				fmt.Fprintf(&b, "byte(%q)\n", v)
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFuzzSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/fuzz")
	}
	recSeeds := map[string][]any{}
	sessSeeds := map[string][]any{}
	tombSeeds := map[string][]any{}
	for i, r := range goldenRecords() {
		p := r.AppendBinary(nil)
		recSeeds[fmt.Sprintf("golden-%d-%s", i, r.Type)] = []any{byte(r.Type), p}
		recSeeds[fmt.Sprintf("truncated-%d-%s", i, r.Type)] = []any{byte(r.Type), p[:len(p)/2]}
		if r.Type == RecordPut {
			sessSeeds[fmt.Sprintf("golden-%d", i)] = []any{AppendSessionBinary(nil, r.Session)}
		}
		if r.Type == RecordRevoke {
			tombSeeds[fmt.Sprintf("golden-%d", i)] = []any{AppendTombstoneBinary(nil, &r.Tombstone)}
		}
	}
	recSeeds["unknown-type"] = []any{byte(42), []byte{1, 0, 0, 0}}
	recSeeds["bad-version"] = []any{byte(RecordReset), []byte{2, 0, 0, 0}}
	sessSeeds["empty"] = []any{[]byte{}}
	tombSeeds["empty"] = []any{[]byte{}}
	writeSeeds(t, "FuzzDecodeRecord", recSeeds)
	writeSeeds(t, "FuzzDecodeSessionBinary", sessSeeds)
	writeSeeds(t, "FuzzDecodeTombstoneBinary", tombSeeds)
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range goldenRecords() {
		f.Add(byte(r.Type), r.AppendBinary(nil))
	}
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		r, err := DecodeRecord(RecordType(typ), payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		again, err := DecodeRecord(r.Type, r.AppendBinary(nil))
		if err != nil || !reflect.DeepEqual(r, again) {
			t.Fatalf("re-encoding is not stable: %v", err)
		}
	})
}

func FuzzDecodeSessionBinary(f *testing.F) {
	f.Add(AppendSessionBinary(nil, goldenRecords()[0].Session))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSessionBinary(b)
		if err != nil {
			return
		}
		again, err := DecodeSessionBinary(AppendSessionBinary(nil, s))
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("re-encoding is not stable: %v", err)
		}
		_ = s.AppendJSON(nil)
	})
}

func FuzzDecodeTombstoneBinary(f *testing.F) {
	f.Add(AppendTombstoneBinary(nil, &goldenRecords()[4].Tombstone))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := DecodeTombstoneBinary(b)
		if err != nil {
			return
		}
		again, err := DecodeTombstoneBinary(AppendTombstoneBinary(nil, &tb))
		if err != nil || again != tb {
			t.Fatalf("re-encoding is not stable: %v", err)
		}
	})
}

// FuzzLoaderApplyRecord feeds arbitrary payloads to the recovery path
// (Loader: trusted decoding with in-place string views): it never panics,
// reports damage as ErrCorrupt, keeps no view of the payload (the buffer is
// scribbled over after each call), and leaves the store consistent.
func FuzzLoaderApplyRecord(f *testing.F) {
	for _, r := range goldenRecords() {
		f.Add(byte(r.Type), r.AppendBinary(nil), false)
	}
	f.Add(byte(RecordPut), AppendSessionBinary(nil, goldenRecords()[0].Session), true)
	f.Fuzz(func(t *testing.T, typ byte, payload []byte, snapshotEntry bool) {
		st, err := NewStore(Config{Now: func() int64 { return 1767225600000 }, Shards: 4, Partitions: 8, MaxPerUser: 100})
		if err != nil {
			t.Fatal(err)
		}
		st.DeferLists()
		ld := st.NewLoader()
		buf := bytes.Clone(payload)
		var decodeErr error
		if snapshotEntry {
			decodeErr = ld.LoadSessionBinary(buf)
			if errors.Is(decodeErr, ErrStoreFull) {
				decodeErr = nil
			}
		} else {
			_, decodeErr = ld.ApplyRecordBinary(RecordType(typ), buf)
		}
		if decodeErr != nil && !errors.Is(decodeErr, ErrCorrupt) {
			t.Fatalf("error not ErrCorrupt: %v", decodeErr)
		}
		before := dumpJSON(st)
		for i := range buf {
			buf[i] ^= 0xA5
		}
		if after := dumpJSON(st); after != before {
			t.Fatal("the store changed when the payload buffer did: it kept a view of it")
		}
		st.BuildLists(nil)
		if err := st.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// dumpJSON renders every session in the store.
func dumpJSON(st *Store) string {
	var b []byte
	for i := 0; i < st.NumShards(); i++ {
		st.RangeShard(i, func(s *Session) { b = s.AppendJSON(b) }, nil)
	}
	return string(b)
}
