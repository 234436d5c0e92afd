package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

func TestParseSyncMode(t *testing.T) {
	for _, m := range []SyncMode{SyncAlways, SyncInterval, SyncNone} {
		got, err := ParseSyncMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseSyncMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); err == nil {
		t.Fatal("ParseSyncMode accepted an unknown mode")
	}
}

func TestHeader_EncodeDecodeRoundTrip(t *testing.T) {
	h := Header{Version: FormatVersion, Cipher: crypt.ChaCha20Poly1305, KeyID: testKey(t).ID(), SegmentID: 7, FirstSeq: 1234, CreatedAt: 1700000000000}
	h.Salt[0], h.Salt[31] = 1, 2
	b := h.Encode()
	got, err := DecodeHeader(b[:])
	if err != nil || got != h {
		t.Fatalf("DecodeHeader = %+v, %v; want %+v", got, err, h)
	}
	for i := 0; i < HeaderSize; i++ {
		c := b
		c[i] ^= 0x40
		if _, err := DecodeHeader(c[:]); err == nil {
			t.Fatalf("flipped header byte %d not detected", i)
		}
	}
	v := h
	v.Version = 2
	vb := v.Encode()
	if _, err := DecodeHeader(vb[:]); !errors.Is(err, ErrFormatVersion) {
		t.Fatalf("version 2 header: %v, want ErrFormatVersion", err)
	}
}

func TestRoundTrip_BothCiphersInOneWAL(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	// Segment 1 under AES-GCM, segment 2 under ChaCha20: the reader follows each
	// file's header, whatever AutoCipher says on this machine.
	writeWAL(t, dir, key, crypt.AES256GCM, 40)
	writeWAL2 := func(ciph crypt.CipherID, next uint64, n int) {
		w := openTest(t, Options{Dir: dir, Key: key, Cipher: ciph, SyncMode: SyncAlways}, next)
		writeRecords(t, w, n)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	writeWAL2(crypt.ChaCha20Poly1305, 41, 40)
	segs, err := ListSegments(dir)
	if err != nil || len(segs) != 2 {
		t.Fatalf("ListSegments: %v, %v", segs, err)
	}
	if segs[0].Cipher != crypt.AES256GCM || segs[1].Cipher != crypt.ChaCha20Poly1305 {
		t.Fatalf("ciphers %v %v", segs[0].Cipher, segs[1].Cipher)
	}
	if segs[0].FirstSeq != 1 || segs[1].FirstSeq != 41 || segs[0].KeyID != key.ID() {
		t.Fatalf("headers: %+v", segs)
	}
	recs, res, err := replayAll(t, dir, key, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 1, 80)
	if res.LastSeq != 80 || res.Records != 80 || res.TornTail != nil {
		t.Fatalf("result %+v", res)
	}
	for _, si := range segs {
		st, err := os.Stat(si.Path)
		if err != nil {
			t.Fatal(err)
		}
		if p := st.Mode().Perm(); p != 0o600 {
			t.Fatalf("%s mode %o, want 0600", si.Path, p)
		}
	}
}

func TestRoundTrip_PayloadSizes(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	w := openTest(t, Options{Dir: dir, Key: key, SyncMode: SyncAlways}, 1)
	sizes := []int{0, 1, 15, 16, 17, 4096, MaxPayloadSize}
	for _, n := range sizes {
		p := bytes.Repeat([]byte{byte(n)}, n)
		if err := w.Wait(w.Append(TypeSessionPut, p), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _, err := replayAll(t, dir, key, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		if len(recs[i].payload) != n || (n > 0 && recs[i].payload[0] != byte(n)) {
			t.Fatalf("record %d: %d bytes, want %d", i, len(recs[i].payload), n)
		}
	}
}

func TestOpen_StartsNewSegmentAfterHighestID(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	writeWAL(t, dir, key, 0, 3, 3)
	// A stale temp file from an interrupted segment creation is removed.
	stale := segPath(dir, 3) + tempSuffix
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := openTest(t, Options{Dir: dir, Key: key}, 7)
	if got := w.Stats().SegmentID; got != 3 {
		t.Fatalf("new segment id %d, want 3", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale temp file still there: %v", err)
	}
	if _, err := Open(Options{Dir: dir, Key: key}, 5); !errors.Is(err, ErrSeqGap) {
		t.Fatalf("Open going backwards: %v, want ErrSeqGap", err)
	}
	if _, err := Open(Options{Dir: dir, Key: key}, 0); err == nil {
		t.Fatal("Open accepted seq 0")
	}
	sub := filepath.Join(t.TempDir(), "new", "wal")
	w = openTest(t, Options{Dir: sub, Key: key}, 1)
	w.Close()
	if st, err := os.Stat(sub); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("created dir: %v %v", st.Mode(), err)
	}
}

func TestSegmentRoll_SeqContinuity(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	const segSize = 4096
	w := openTest(t, Options{Dir: dir, Key: key, SyncMode: SyncInterval, SegmentSize: segSize}, 100)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				seq := w.Append(TypeSessionTouch, []byte("x"))
				if err := w.Wait(seq, false); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Segments < 3 || st.Records != 400 || st.LastSeq != 499 {
		t.Fatalf("stats %+v", st)
	}
	segs, err := InspectSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != st.Segments {
		t.Fatalf("%d segments on disk, stats say %d", len(segs), st.Segments)
	}
	next := uint64(100)
	for i, si := range segs {
		if si.Err != nil || si.BadOffset != 0 {
			t.Fatalf("segment %d: %+v", i, si)
		}
		if si.ID != uint64(i+1) || si.FirstSeq != next || si.Bytes > segSize {
			t.Fatalf("segment %d: id %d first %d (want %d) bytes %d", i, si.ID, si.FirstSeq, next, si.Bytes)
		}
		if si.Records > 0 && si.LastSeq != si.FirstSeq+uint64(si.Records)-1 {
			t.Fatalf("segment %d: %d records %d..%d", i, si.Records, si.FirstSeq, si.LastSeq)
		}
		next = si.FirstSeq + uint64(si.Records)
	}
	var n int
	res, err := Replay(dir, key, ReplayOptions{}, func(seq uint64, typ byte, p []byte) error {
		if seq != 100+uint64(n) || typ != TypeSessionTouch || string(p) != "x" {
			t.Fatalf("seq %d typ %d %q at %d", seq, typ, p, n)
		}
		n++
		return nil
	})
	if err != nil || n != 400 || res.LastSeq != 499 || res.Segments != len(segs) {
		t.Fatalf("replay %+v %v n=%d", res, err, n)
	}
}

func TestAppendOrder_ConcurrentAppendersKeepSeqPayloadBinding(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	w := openTest(t, Options{Dir: dir, Key: key, SyncMode: SyncNone, SegmentSize: 8192}, 1)
	var mu sync.Mutex
	want := map[uint64][]byte{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				p := []byte{byte(g), byte(i), byte(i >> 8)}
				mu.Lock() // like a shard lock: Append is cheap enough to call under it
				seq := w.Append(TypeSessionPut, p)
				want[seq] = p
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, res, err := replayAll(t, dir, key, ReplayOptions{})
	if err != nil || res.LastSeq != 1600 || len(recs) != 1600 {
		t.Fatalf("%+v %v", res, err)
	}
	for i, r := range recs {
		if r.seq != uint64(i+1) || !bytes.Equal(r.payload, want[r.seq]) {
			t.Fatalf("seq %d payload %x want %x", r.seq, r.payload, want[r.seq])
		}
	}
}

func TestGroupCommit_AlwaysMode64WritersShareFsyncs(t *testing.T) {
	dir := t.TempDir()
	var hookCalls, hookRecords atomic.Uint64
	started := time.Now()
	w := openTest(t, Options{Dir: dir, SyncMode: SyncAlways, OnFsync: func(d time.Duration, n uint64) {
		if d <= 0 {
			t.Errorf("fsync hook: duration %v", d)
		}
		hookCalls.Add(1)
		hookRecords.Add(n)
	}}, 1)
	defer w.Close()
	const writers, each = 64, 30
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seq := w.Append(TypeSessionPut, make([]byte, 200))
				if err := w.Wait(seq, false); err != nil {
					t.Error(err)
					return
				}
				// Acknowledged in mode always means fsynced.
				if st := w.Stats(); st.SyncedSeq < seq {
					t.Errorf("acknowledged seq %d but synced only %d", seq, st.SyncedSeq)
				}
			}
		}()
	}
	wg.Wait()
	st := w.Stats()
	t.Logf("records %d, fsyncs %d, batches %d", st.Records, st.Fsyncs, st.Batches)
	if st.LastFsyncAt.Before(started) || st.LastFsyncAt.After(time.Now()) {
		t.Fatalf("LastFsyncAt %v, want between %v and now", st.LastFsyncAt, started)
	}
	if st.Records != writers*each {
		t.Fatalf("records %d", st.Records)
	}
	if st.Fsyncs*8 > st.Records {
		t.Fatalf("group commit ineffective: %d fsyncs for %d records", st.Fsyncs, st.Records)
	}
	// The metrics hook sees every fsync and every record it made durable.
	if hookCalls.Load() != st.Fsyncs || hookRecords.Load() != st.Records {
		t.Fatalf("fsync hook: %d calls / %d records, writer: %d fsyncs / %d records",
			hookCalls.Load(), hookRecords.Load(), st.Fsyncs, st.Records)
	}
}

func TestDurableWait_FsyncsPromptlyInNoneAndIntervalModes(t *testing.T) {
	for _, mode := range []SyncMode{SyncNone, SyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			w := openTest(t, Options{Dir: t.TempDir(), SyncMode: mode, SyncInterval: time.Hour}, 1)
			defer w.Close()
			for i := 0; i < 10; i++ {
				if err := w.Wait(w.Append(TypeSessionTouch, []byte("t")), false); err != nil {
					t.Fatal(err)
				}
			}
			if mode == SyncInterval {
				if st := w.Stats(); st.WrittenSeq != 10 {
					t.Fatalf("interval ack before write: %+v", st)
				}
			}
			if st := w.Stats(); st.Fsyncs != 0 || st.SyncedSeq != 0 {
				t.Fatalf("fsync without a durable waiter: %+v", st)
			}
			start := time.Now()
			seq := w.Append(TypeSessionRevoke, []byte("revoke"))
			if err := w.Wait(seq, true); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("durable wait took %v", d)
			}
			if st := w.Stats(); st.SyncedSeq < seq || st.Fsyncs == 0 {
				t.Fatalf("durable wait returned before fsync: %+v", st)
			}
			// Waiting for an already-written record durably also forces an fsync.
			seq = w.Append(TypeSessionTouch, []byte("t"))
			if err := w.Wait(seq, false); err != nil {
				t.Fatal(err)
			}
			if err := w.Wait(seq, true); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.SyncedSeq < seq {
				t.Fatalf("synced %d < %d", st.SyncedSeq, seq)
			}
		})
	}
}

func TestIntervalMode_TickerFsyncs(t *testing.T) {
	w := openTest(t, Options{Dir: t.TempDir(), SyncMode: SyncInterval, SyncInterval: 5 * time.Millisecond}, 1)
	defer w.Close()
	seq := w.Append(TypeSessionPut, []byte("p"))
	if err := w.Wait(seq, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().SyncedSeq < seq {
		if time.Now().After(deadline) {
			t.Fatalf("ticker never fsynced: %+v", w.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriter_CloseIsIdempotentAndLaterAppendsFail(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNone} {
		w := openTest(t, Options{Dir: t.TempDir(), SyncMode: mode}, 1)
		s1 := w.Append(TypeSessionPut, []byte("a"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Wait(s1, true); err != nil {
			t.Fatalf("%v: record appended before Close: %v", mode, err)
		}
		s2 := w.Append(TypeSessionPut, []byte("b"))
		if err := w.Wait(s2, false); !errors.Is(err, ErrClosed) {
			t.Fatalf("%v: Wait after Close: %v", mode, err)
		}
		if err := w.Wait(s2+5, false); err == nil {
			t.Fatalf("%v: Wait for a seq never appended succeeded", mode)
		}
	}
}

func TestWriter_InvalidTypeIsFatal(t *testing.T) {
	var calls atomic.Int32
	w := openTest(t, Options{Dir: t.TempDir(), SyncMode: SyncAlways, OnFatal: func(error) { calls.Add(1) }}, 1)
	seq := w.Append(9, []byte("?"))
	if err := w.Wait(seq, false); !errors.Is(err, ErrInvalidType) {
		t.Fatalf("Wait: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrInvalidType) {
		t.Fatalf("Close: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("OnFatal called %d times", calls.Load())
	}
}

// --- torn tails and corruption ---

func tornCases() []struct {
	name    string
	mutate  func(data []byte, lastOff int) []byte
	records int // of 10
} {
	return []struct {
		name    string
		mutate  func(data []byte, lastOff int) []byte
		records int
	}{
		{"truncated-mid-frame", func(d []byte, off int) []byte { return d[:off+(len(d)-off)/2] }, 9},
		{"truncated-in-prefix", func(d []byte, off int) []byte { return d[:off+3] }, 9},
		{"zero-filled-tail", func(d []byte, off int) []byte { return append(d, make([]byte, 4096)...) }, 10},
		{"garbage-tail", func(d []byte, off int) []byte {
			g := make([]byte, 777)
			for i := range g {
				g[i] = byte(i*131 + 7)
			}
			return append(d, g...)
		}, 10},
		{"truncated-then-zeros", func(d []byte, off int) []byte { return append(d[:off+20], make([]byte, 512)...) }, 9},
		{"last-frame-flipped", func(d []byte, off int) []byte { d[len(d)-3] ^= 1; return d }, 9},
	}
}

func TestReplay_TornTailIsTruncated(t *testing.T) {
	key := testKey(t)
	for _, tc := range tornCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeWAL(t, dir, key, 0, 5, 10)
			path := segPath(dir, 2)
			offs := frameOffsets(t, path)
			lastOff := offs[len(offs)-1]
			origLen := int64(len(mustRead(t, path)))
			mutateFile(t, path, func(d []byte) []byte { return tc.mutate(d, lastOff) })
			size := int64(len(mustRead(t, path)))
			wantOff := int64(lastOff)
			if tc.records == 10 {
				wantOff = origLen
			}

			// Without truncation: reported, file untouched.
			recs, res, err := replayAll(t, dir, key, ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.TornTail == nil || res.TornTail.Truncated || res.TornTail.Offset != wantOff || res.TornTail.BytesDropped != size-wantOff {
				t.Fatalf("torn tail %+v, want offset %d dropped %d", res.TornTail, wantOff, size-wantOff)
			}
			if int64(len(mustRead(t, path))) != size {
				t.Fatal("file changed without TruncateTornTail")
			}
			checkRecords(t, recs, 1, uint64(5+tc.records))

			// Verify reports it as a warning only.
			probs, warns, err := Verify(dir, key)
			if err != nil || len(probs) != 0 || len(warns) != 1 || warns[0].Kind != KindTornTail || warns[0].Offset != wantOff {
				t.Fatalf("verify: %v %+v %+v", err, probs, warns)
			}

			recs, res, err = replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
			if err != nil || res.TornTail == nil || !res.TornTail.Truncated || res.TornTail.File != path {
				t.Fatalf("%+v %v", res.TornTail, err)
			}
			checkRecords(t, recs, 1, uint64(5+tc.records))
			if got := int64(len(mustRead(t, path))); got != wantOff {
				t.Fatalf("size after truncation %d, want %d", got, wantOff)
			}
			_, res, err = replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
			if err != nil || res.TornTail != nil || res.LastSeq != uint64(5+tc.records) {
				t.Fatalf("second replay %+v %v", res, err)
			}
			// And the WAL continues.
			w := openTest(t, Options{Dir: dir, Key: key}, res.LastSeq+1)
			writeRecords(t, w, 3)
			w.Close()
			recs, _, err = replayAll(t, dir, key, ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, recs, 1, res.LastSeq+3)
		})
	}
}

func TestReplay_FlippedByteMidSegmentIsCorruption(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 10)
	path := segPath(dir, 1)
	offs := frameOffsets(t, path)
	mutateFile(t, path, func(d []byte) []byte { d[offs[4]+20] ^= 0x01; return d })
	before := mustRead(t, path)
	_, _, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Kind != KindCRC || ce.Offset != int64(offs[4]) || ce.Seq != 5 || ce.File != path {
		t.Fatalf("err %v (%+v), want crc-mismatch at %d seq 5", err, ce, offs[4])
	}
	if !bytes.Equal(before, mustRead(t, path)) {
		t.Fatal("corrupt segment was modified")
	}
	probs, warns, err := Verify(dir, key)
	if err != nil || len(probs) != 1 || len(warns) != 0 || probs[0].Offset != int64(offs[4]) {
		t.Fatalf("verify %v %+v %+v", err, probs, warns)
	}
}

func TestReplay_TagFailureWithValidCRC(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 10)
	path := segPath(dir, 1)
	offs := frameOffsets(t, path)
	mutateFile(t, path, func(d []byte) []byte {
		off := offs[3]
		n := int(binary.BigEndian.Uint32(d[off:]))
		d[off+8+n-1] ^= 0x80 // last tag byte
		binary.BigEndian.PutUint32(d[off+4:], crc32.Checksum(d[off+8:off+8+n], crc32.MakeTable(crc32.Castagnoli)))
		return d
	})
	_, _, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Kind != KindTag || ce.Offset != int64(offs[3]) {
		t.Fatalf("err %v, want tag-mismatch at %d", err, offs[3])
	}
	// Without a key Verify sees only framing: clean.
	probs, _, err := Verify(dir, nil)
	if err != nil || len(probs) != 0 {
		t.Fatalf("keyless verify: %v %+v", err, probs)
	}
}

func TestReplay_DamageInNonLastSegmentIsCorruptionEvenAtItsEnd(t *testing.T) {
	key := testKey(t)
	for _, tc := range tornCases() {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeWAL(t, dir, key, 0, 10, 5)
			path := segPath(dir, 1)
			offs := frameOffsets(t, path)
			mutateFile(t, path, func(d []byte) []byte { return tc.mutate(d, offs[len(offs)-1]) })
			before := mustRead(t, path)
			_, res, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err %v (res %+v), want corruption", err, res)
			}
			if !bytes.Equal(before, mustRead(t, path)) {
				t.Fatal("segment modified")
			}
		})
	}
}

func TestReplay_WrongKeyIsKeyMismatch(t *testing.T) {
	dir := t.TempDir()
	writeWAL(t, dir, otherKey(t), 0, 3)
	_, _, err := replayAll(t, dir, testKey(t), ReplayOptions{TruncateTornTail: true})
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrKeyMismatch) || errors.Is(err, ErrCorrupt) || ce.Kind != KindKeyMismatch {
		t.Fatalf("err %v, want key mismatch", err)
	}
	if !strings.Contains(err.Error(), otherKey(t).ID().String()) {
		t.Fatalf("error does not name the segment's key id: %v", err)
	}
}

func TestReplay_TruncatedHeaderIsCorruptionEvenInLastSegment(t *testing.T) {
	key := testKey(t)
	for _, n := range []int{0, 1, 40, HeaderSize - 1} {
		dir := t.TempDir()
		writeWAL(t, dir, key, 0, 3, 3)
		mutateFile(t, segPath(dir, 2), func(d []byte) []byte { return d[:n] })
		_, _, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.Kind != KindShortHeader || ce.File != segPath(dir, 2) {
			t.Fatalf("%d header bytes: %v", n, err)
		}
		if _, err := ReadHeader(segPath(dir, 2)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ReadHeader: %v", err)
		}
	}
}

func TestReplay_UnknownFormatVersion(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 3)
	mutateFile(t, segPath(dir, 1), func(d []byte) []byte {
		binary.BigEndian.PutUint16(d[8:], 2)
		binary.BigEndian.PutUint32(d[76:], crc32.Checksum(d[:76], crc32.MakeTable(crc32.Castagnoli)))
		return d
	})
	_, _, err := replayAll(t, dir, key, ReplayOptions{})
	if !errors.Is(err, ErrFormatVersion) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
	if _, err := Repair(dir, key); !errors.Is(err, ErrFormatVersion) {
		t.Fatalf("repair must refuse a newer format: %v", err)
	}
}

// writeRaw writes a segment holding exactly recs (for cases the Writer cannot produce).
func writeRaw(t testing.TB, dir string, key *crypt.MasterKey, id, firstSeq uint64, recs []keptRecord) {
	t.Helper()
	data, err := buildSegment(key, crypt.AES256GCM, id, firstSeq, 0, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segPath(dir, id), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func recsFor(seqs ...uint64) []keptRecord {
	var out []keptRecord
	for _, s := range seqs {
		out = append(out, keptRecord{s, typeFor(s), payloadFor(s)})
	}
	return out
}

func TestReplay_SeqGaps(t *testing.T) {
	key := testKey(t)
	t.Run("within-segment", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, key, 1, 1, recsFor(1, 2, 4, 5))
		_, _, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
		var ce *CorruptionError
		if !errors.As(err, &ce) || !errors.Is(err, ErrSeqGap) || ce.Seq != 4 {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("first-frame-differs-from-header", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, key, 1, 1, recsFor(2, 3))
		if _, _, err := replayAll(t, dir, key, ReplayOptions{}); !errors.Is(err, ErrSeqGap) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("between-segments", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, key, 1, 1, recsFor(1, 2, 3))
		writeRaw(t, dir, key, 2, 5, recsFor(5, 6))
		if _, _, err := replayAll(t, dir, key, ReplayOptions{}); !errors.Is(err, ErrSeqGap) {
			t.Fatalf("err %v", err)
		}
		// A snapshot covering 4 bridges it: segment 1 is skipped unread.
		recs, res, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: 4})
		if err != nil || res.LastSeq != 6 || describe(recs) != "5..6" {
			t.Fatalf("%v %+v %s", err, res, describe(recs))
		}
	})
	t.Run("after-snapshot", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, key, 3, 10, recsFor(10, 11))
		if _, _, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: 5}); !errors.Is(err, ErrSeqGap) {
			t.Fatalf("err %v", err)
		}
		recs, res, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: 9})
		if err != nil || describe(recs) != "10..11" || res.LastSeq != 11 {
			t.Fatalf("%v %s", err, describe(recs))
		}
		// The WAL may end before the snapshot (lost unsynced tail): no gap.
		_, res, err = replayAll(t, dir, key, ReplayOptions{AfterSeq: 20})
		if err != nil || res.LastSeq != 20 || res.Records != 0 {
			t.Fatalf("%v %+v", err, res)
		}
	})
	t.Run("empty-dir", func(t *testing.T) {
		_, res, err := replayAll(t, filepath.Join(t.TempDir(), "missing"), key, ReplayOptions{AfterSeq: 7})
		if err != nil || res.LastSeq != 7 {
			t.Fatalf("%v %+v", err, res)
		}
	})
}

func TestReplay_SkipsSegmentsCoveredBySnapshot(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 5, 5, 5)
	// Damage segment 1: a snapshot covering seq 7 never reads it.
	mutateFile(t, segPath(dir, 1), func(d []byte) []byte { d[HeaderSize+12] ^= 0xff; return d })
	recs, res, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: 7})
	if err != nil || res.Segments != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	checkRecords(t, recs, 8, 15)
	if _, _, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: 4}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("AfterSeq 4 needs segment 1: %v", err)
	}
}

func TestReplay_UnknownType(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	recs := recsFor(1, 2, 3)
	recs[1].typ = 7
	writeRaw(t, dir, key, 1, 1, recs)
	_, _, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Kind != KindUnknownType || ce.Seq != 2 {
		t.Fatalf("err %v", err)
	}
	// Even as the last record, a valid frame of unknown type is not a torn tail.
	recs = recsFor(1, 2)
	recs[1].typ = 0
	writeRaw(t, dir, key, 1, 1, recs)
	if _, _, err := replayAll(t, dir, key, ReplayOptions{TruncateTornTail: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
}

func TestReplay_CallbackErrorStops(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 5)
	boom := errors.New("boom")
	_, err := Replay(dir, key, ReplayOptions{}, func(seq uint64, _ byte, _ []byte) error {
		if seq == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
}

// --- tools ---

func TestRepair_KeepsPrefixBacksUpRestAndReplaySucceeds(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, crypt.ChaCha20Poly1305, 5, 10, 5)
	path := segPath(dir, 2)
	offs := frameOffsets(t, path)
	mutateFile(t, path, func(d []byte) []byte { d[offs[6]+30] ^= 0x10; return d })
	orig := mustRead(t, path)

	res, err := Repair(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clean || res.File != path || res.Offset != int64(offs[6]) || res.Seq != 12 || res.RecordsKept != 6 || res.RecordsDropped != 3+5 {
		t.Fatalf("repair %+v", res)
	}
	if len(res.Backups) != 2 || res.NewSegment != path {
		t.Fatalf("backups %v new %q", res.Backups, res.NewSegment)
	}
	if !bytes.Equal(mustRead(t, path+".bak"), orig) {
		t.Fatal("backup of the affected segment differs from the original")
	}
	if _, err := os.Stat(segPath(dir, 3) + ".bak"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segPath(dir, 3)); !os.IsNotExist(err) {
		t.Fatalf("later segment still in place: %v", err)
	}
	h, err := ReadHeader(path)
	if err != nil || h.FirstSeq != 6 || h.Cipher != crypt.ChaCha20Poly1305 {
		t.Fatalf("new header %+v %v", h, err)
	}
	recs, rr, err := replayAll(t, dir, key, ReplayOptions{})
	if err != nil || rr.TornTail != nil {
		t.Fatalf("replay after repair: %v %+v", err, rr)
	}
	checkRecords(t, recs, 1, 11)
	if p, w, err := Verify(dir, key); err != nil || len(p) != 0 || len(w) != 0 {
		t.Fatalf("verify after repair: %v %+v %+v", err, p, w)
	}
	if again, err := Repair(dir, key); err != nil || !again.Clean {
		t.Fatalf("second repair: %+v %v", again, err)
	}
	// Service resumes from there.
	w := openTest(t, Options{Dir: dir, Key: key}, rr.LastSeq+1)
	writeRecords(t, w, 2)
	w.Close()
	recs, _, err = replayAll(t, dir, key, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 1, 13)
}

func TestRepair_BadHeaderAndSeqGapAndWrongKey(t *testing.T) {
	key := testKey(t)
	t.Run("bad-header", func(t *testing.T) {
		dir := t.TempDir()
		writeWAL(t, dir, key, 0, 4, 4)
		mutateFile(t, segPath(dir, 2), func(d []byte) []byte { return d[:50] })
		res, err := Repair(dir, key)
		if err != nil || res.Kind != KindShortHeader || res.RecordsKept != 0 || res.NewSegment == "" {
			t.Fatalf("%+v %v", res, err)
		}
		recs, _, err := replayAll(t, dir, key, ReplayOptions{})
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, recs, 1, 4)
	})
	t.Run("first-segment-header", func(t *testing.T) {
		dir := t.TempDir()
		writeWAL(t, dir, key, 0, 4)
		mutateFile(t, segPath(dir, 1), func(d []byte) []byte { d[3] = 'x'; return d })
		res, err := Repair(dir, key)
		if err != nil || res.NewSegment != "" || len(res.Backups) != 1 || res.RecordsDropped != 4 {
			t.Fatalf("%+v %v", res, err)
		}
		if segs, _ := ListSegments(dir); len(segs) != 0 {
			t.Fatalf("segments left: %+v", segs)
		}
	})
	t.Run("seq-gap", func(t *testing.T) {
		dir := t.TempDir()
		writeRaw(t, dir, key, 1, 1, recsFor(1, 2, 3))
		writeRaw(t, dir, key, 2, 6, recsFor(6, 7))
		res, err := Repair(dir, key)
		if err != nil || res.Kind != KindSeqGap || res.Seq != 4 || res.RecordsDropped != 2 {
			t.Fatalf("%+v %v", res, err)
		}
		_, rr, err := replayAll(t, dir, key, ReplayOptions{})
		if err != nil || rr.LastSeq != 3 {
			t.Fatalf("%+v %v", rr, err)
		}
	})
	t.Run("wrong-key-refused", func(t *testing.T) {
		dir := t.TempDir()
		writeWAL(t, dir, otherKey(t), 0, 3)
		before := mustRead(t, segPath(dir, 1))
		if _, err := Repair(dir, key); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("err %v", err)
		}
		if !bytes.Equal(before, mustRead(t, segPath(dir, 1))) {
			t.Fatal("repair touched a segment under another key")
		}
	})
}

func TestRekey_RoundTripAndResume(t *testing.T) {
	oldK, newK := testKey(t), otherKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, oldK, 0, 4, 4, 0)
	before, _ := ListSegments(dir)
	n, skipped, err := Rekey(dir, oldK, newK)
	if err != nil || n != 3 || skipped != 0 {
		t.Fatalf("rekey %d %d %v", n, skipped, err)
	}
	after, _ := ListSegments(dir)
	for i := range after {
		if after[i].KeyID != newK.ID() || after[i].FirstSeq != before[i].FirstSeq || after[i].CreatedAt != before[i].CreatedAt {
			t.Fatalf("segment %d: %+v", i, after[i])
		}
	}
	recs, _, err := replayAll(t, dir, newK, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 1, 8)
	if _, _, err := replayAll(t, dir, oldK, ReplayOptions{}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("old key: %v", err)
	}

	// Interrupted rekey: segments 1-3 are under the new key, a 4th one still
	// under the old key, plus a leftover temp file. Running again finishes it.
	w := openTest(t, Options{Dir: dir, Key: oldK}, 9)
	writeRecords(t, w, 3)
	w.Close()
	if err := os.WriteFile(segPath(dir, 4)+tempSuffix, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, skipped, err = Rekey(dir, oldK, newK)
	if err != nil || n != 1 || skipped != 3 {
		t.Fatalf("resume %d %d %v", n, skipped, err)
	}
	recs, _, err = replayAll(t, dir, newK, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 1, 11)
	if names, _ := (OSFS{}).ReadDir(dir); len(names) != 4 {
		t.Fatalf("files left: %v", names)
	}
	// Done: everything skipped.
	if n, skipped, err = Rekey(dir, oldK, newK); err != nil || n != 0 || skipped != 4 {
		t.Fatalf("rerun %d %d %v", n, skipped, err)
	}
	// A third key matches neither.
	if _, _, err := Rekey(dir, oldK, mustKey(t, strings.Repeat("ab", 32))); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("err %v", err)
	}
}

func TestRekey_DropsTornTailRefusesCorruption(t *testing.T) {
	oldK, newK := testKey(t), otherKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, oldK, 0, 4, 4)
	mutateFile(t, segPath(dir, 2), func(d []byte) []byte { return d[:len(d)-5] })
	if _, _, err := Rekey(dir, oldK, newK); err != nil {
		t.Fatal(err)
	}
	recs, res, err := replayAll(t, dir, newK, ReplayOptions{})
	if err != nil || res.TornTail != nil {
		t.Fatalf("%v %+v", err, res)
	}
	checkRecords(t, recs, 1, 7)

	dir = t.TempDir()
	writeWAL(t, dir, oldK, 0, 4, 4)
	mutateFile(t, segPath(dir, 1), func(d []byte) []byte { d[HeaderSize+20] ^= 1; return d })
	if _, _, err := Rekey(dir, oldK, newK); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v", err)
	}
}

func TestDeleteCovered_NeverTheNewest(t *testing.T) {
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 5, 5, 5) // seqs 1-5, 6-10, 11-15
	if n, err := DeleteCovered(dir, 4); err != nil || n != 0 {
		t.Fatalf("%d %v", n, err)
	}
	if n, err := DeleteCovered(dir, 7); err != nil || n != 1 {
		t.Fatalf("%d %v", n, err)
	}
	if n, err := DeleteCovered(dir, 1000); err != nil || n != 1 {
		t.Fatalf("%d %v", n, err)
	}
	segs, _ := ListSegments(dir)
	if len(segs) != 1 || segs[0].ID != 3 {
		t.Fatalf("%+v", segs)
	}
	recs, _, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: 10})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 11, 15)
}

func TestInspectSegments_CountsWithoutKey(t *testing.T) {
	dir := t.TempDir()
	writeWAL(t, dir, testKey(t), 0, 12)
	segs, err := InspectSegments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatal(err)
	}
	s := segs[0]
	if s.Records != 12 || s.LastSeq != 12 || s.CountByType[1] != 2 || s.CountByType[6] != 2 {
		t.Fatalf("%+v", s)
	}
}

func TestCRCIndex_MatchesChecksumForAnyRange(t *testing.T) {
	data := make([]byte, 20000)
	for i := range data {
		data[i] = byte(i*7 + i>>5)
	}
	x := newCRCIndex(data)
	tab := crc32.MakeTable(crc32.Castagnoli)
	for _, r := range [][2]int{{0, 0}, {0, 1}, {3, 1500}, {0, 20000}, {511, 513}, {512, 1024}, {100, 19999}, {7000, 7000 + 4096}, {1, 20000}} {
		if got, want := x.sum(r[0], r[1]), crc32.Checksum(data[r[0]:r[1]], tab); got != want {
			t.Fatalf("sum(%d,%d) = %08x, want %08x", r[0], r[1], got, want)
		}
	}
}

func TestTornScan_IsLinearOnStructuredGarbage(t *testing.T) {
	// A tail where every position has an in-range length that fits makes a
	// naive scan quadratic (CRC over up to 1 MiB per byte).
	key := testKey(t)
	dir := t.TempDir()
	writeWAL(t, dir, key, 0, 3)
	garbage := bytes.Repeat([]byte{0x00, 0x02, 0x00, 0x00}, (1<<20)/4) // len 0x20000 everywhere
	mutateFile(t, segPath(dir, 1), func(d []byte) []byte { return append(d, garbage...) })
	start := time.Now()
	_, res, err := replayAll(t, dir, key, ReplayOptions{})
	if err != nil || res.TornTail == nil || res.LastSeq != 3 {
		t.Fatalf("%v %+v", err, res)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("torn-tail scan of 1 MiB took %v", d)
	}
	t.Logf("scan of 1 MiB structured garbage: %v", time.Since(start))
}

func TestReplay_BytesCountsTheWALAfterTheCoveredSeq(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	var written []int64 // BytesWritten of each writer, one segment each
	next := uint64(1)
	for _, n := range []int{5, 7, 4} {
		w := openTest(t, Options{Dir: dir, Key: key, SyncMode: SyncNone}, next)
		_, last := writeRecords(t, w, n)
		written = append(written, w.Stats().BytesWritten)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		next = last + 1
	}
	bytesAfter := func(after uint64) ReplayResult {
		t.Helper()
		_, res, err := replayAll(t, dir, key, ReplayOptions{AfterSeq: after})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// At segment boundaries the count is exactly what the writers wrote.
	for _, c := range []struct {
		after uint64
		want  int64
	}{{0, written[0] + written[1] + written[2]}, {5, written[1] + written[2]}, {12, written[2]}, {16, 0}} {
		if got := bytesAfter(c.after).Bytes; got != c.want {
			t.Errorf("Bytes after seq %d = %d, want %d", c.after, got, c.want)
		}
	}
	// Inside a segment it drops by the frames the snapshot covers.
	if b5, b8, b12 := bytesAfter(5).Bytes, bytesAfter(8).Bytes, bytesAfter(12).Bytes; !(b5 > b8 && b8 > b12) {
		t.Errorf("Bytes after 5, 8, 12 = %d, %d, %d; want strictly decreasing", b5, b8, b12)
	}
	if res := bytesAfter(16); res.FirstCreatedAt != 0 {
		t.Errorf("FirstCreatedAt with nothing replayed = %d, want 0", res.FirstCreatedAt)
	}
	h, err := ReadHeader(segPath(dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got := bytesAfter(8).FirstCreatedAt; got != h.CreatedAt || got == 0 {
		t.Errorf("FirstCreatedAt after seq 8 = %d, want segment 2's %d", got, h.CreatedAt)
	}
}

func TestReplay_WrongKeyNamesBothKeyIDs(t *testing.T) {
	dir := t.TempDir()
	writeWAL(t, dir, otherKey(t), 0, 3)
	_, _, err := replayAll(t, dir, testKey(t), ReplayOptions{})
	var km *KeyMismatchError
	if !errors.As(err, &km) || km.Written != otherKey(t).ID() || km.Loaded != testKey(t).ID() {
		t.Fatalf("err %v, want a KeyMismatchError naming both key IDs", err)
	}
}
