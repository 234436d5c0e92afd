package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// fuzzHeader is the fixed header the segment fuzz target puts in front of
// its input, so seeds can hold frames that really authenticate.
func fuzzHeader(t testing.TB) Header {
	h := Header{Version: FormatVersion, Cipher: crypt.ChaCha20Poly1305, KeyID: testKey(t).ID(), SegmentID: 1, FirstSeq: 1, CreatedAt: 1700000000000}
	for i := range h.Salt {
		h.Salt[i] = byte(i)
	}
	return h
}

func fuzzSealer(t testing.TB) *sealer {
	h := fuzzHeader(t)
	aead, err := testKey(t).FileAEAD(h.Cipher, h.Salt[:], crypt.PurposeWAL)
	if err != nil {
		t.Fatal(err)
	}
	return &sealer{aead: aead, segID: h.SegmentID}
}

func validBody(t testing.TB, n int) []byte {
	s := fuzzSealer(t)
	var b []byte
	for seq := uint64(1); seq <= uint64(n); seq++ {
		b = s.appendFrame(b, seq, typeFor(seq), payloadFor(seq)[:min(12, len(payloadFor(seq)))])
	}
	return b
}

func frameSeeds(t testing.TB) [][]byte {
	one := validBody(t, 1)
	bad := append([]byte(nil), one...)
	bad[len(bad)-1] ^= 1
	huge := binary.BigEndian.AppendUint32(nil, MaxFrameLen+1)
	huge = append(huge, make([]byte, 40)...)
	return [][]byte{one, validBody(t, 3), one[:5], one[:len(one)-1], bad, make([]byte, 64), huge, {0, 0, 0, 25}}
}

func headerSeeds(t testing.TB) [][]byte {
	h := fuzzHeader(t)
	b := h.Encode()
	v2 := h
	v2.Version = 2
	b2 := v2.Encode()
	flipped := b
	flipped[30] ^= 1
	return [][]byte{b[:], b2[:], flipped[:], b[:40], make([]byte, HeaderSize)}
}

func segmentBodySeeds(t testing.TB) [][]byte {
	body := validBody(t, 4)
	torn := body[:len(body)-7]
	flipped := append([]byte(nil), body...)
	flipped[20] ^= 0x10
	zeros := append(append([]byte(nil), body...), make([]byte, 100)...)
	gap := fuzzSealer(t).appendFrame(validBody(t, 2), 4, 1, []byte("gap"))
	return [][]byte{nil, body, torn, flipped, zeros, gap, {1, 2, 3}}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s)
	}
	sl := fuzzSealer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeFrame(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		n := binary.BigEndian.Uint32(data)
		if fr.Size != FramePrefixSize+int(n) || fr.Size > len(data) || fr.Size > MaxFrameSize {
			t.Fatalf("size %d, len field %d, input %d", fr.Size, n, len(data))
		}
		if len(fr.Sealed) < crypt.TagSize || fr.Seq != binary.BigEndian.Uint64(data[9:17]) || fr.Type != data[8] {
			t.Fatalf("fields %+v", fr)
		}
		if crc32.Checksum(data[8:fr.Size], castagnoli) != binary.BigEndian.Uint32(data[4:8]) {
			t.Fatal("accepted a bad CRC")
		}
		// Opening must not panic; if it authenticates, re-sealing reproduces the frame.
		if pt, err := sl.open(nil, &fr); err == nil {
			again := sl.appendFrame(nil, fr.Seq, fr.Type, pt)
			if !bytes.Equal(again, data[:fr.Size]) {
				t.Fatal("re-sealed frame differs")
			}
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	for _, s := range headerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHeader(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormatVersion) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			return
		}
		if b := h.Encode(); !bytes.Equal(b[:], data[:HeaderSize]) {
			t.Fatal("decode/encode not an identity")
		}
	})
}

// FuzzReplaySegment puts arbitrary bytes after a valid header and checks that
// Replay, Verify and Repair never panic and agree with one another.
func FuzzReplaySegment(f *testing.F) {
	for _, s := range segmentBodySeeds(f) {
		f.Add(s)
	}
	key := testKey(f)
	h := fuzzHeader(f)
	hb := h.Encode()
	const dir = "/fuzz/wal"
	f.Fuzz(func(t *testing.T, body []byte) {
		fsys := newSimFS()
		wf, _ := fsys.OpenFile(dir+"/"+segmentName(1), os.O_WRONLY|os.O_CREATE, 0o600)
		wf.Write(hb[:])
		wf.Write(body)
		wf.Close()
		probs, warns, err := verify(fsys, dir, key)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		res, err := Replay(dir, key, ReplayOptions{FS: fsys}, func(uint64, byte, []byte) error { n++; return nil })
		var ce *CorruptionError
		switch {
		case err == nil && res.TornTail == nil:
			if len(probs)+len(warns) != 0 {
				t.Fatalf("replay clean, verify %+v %+v", probs, warns)
			}
		case err == nil:
			if len(probs) != 0 || len(warns) != 1 {
				t.Fatalf("torn tail %+v, verify %+v %+v", res.TornTail, probs, warns)
			}
		case errors.As(err, &ce):
			if len(probs) == 0 {
				t.Fatalf("replay %v, verify found nothing", err)
			}
		default:
			t.Fatal(err)
		}
		if err != nil {
			rr, err := repair(fsys, dir, key)
			if err != nil {
				t.Fatalf("repair: %v", err)
			}
			if _, err := Replay(dir, key, ReplayOptions{FS: fsys}, func(uint64, byte, []byte) error { return nil }); err != nil {
				t.Fatalf("replay after repair %+v: %v", rr, err)
			}
			return
		}
		if res.TornTail != nil {
			res2, err := Replay(dir, key, ReplayOptions{TruncateTornTail: true, FS: fsys}, func(uint64, byte, []byte) error { return nil })
			if err != nil || res2.Records != n {
				t.Fatalf("truncating replay %+v %v", res2, err)
			}
			res3, err := Replay(dir, key, ReplayOptions{FS: fsys}, func(uint64, byte, []byte) error { return nil })
			if err != nil || res3.TornTail != nil || res3.Records != n {
				t.Fatalf("replay after truncation %+v %v", res3, err)
			}
		}
	})
}
