package snapshot

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/crypt"
)

// benchPayloadSize approximates one encoded session (01-data-model example,
// compact binary form of a ~480-byte JSON session).
const (
	benchPayloadSize = 350
	benchEntries     = 1_000_000
)

// writeBench writes benchEntries entries to path and returns the payload bytes written.
func writeBench(b *testing.B, path string, c crypt.CipherID) int64 {
	b.Helper()
	key := mustKey(b, testKeyHex)
	w, err := Create(path, WriteOptions{Key: key, Cipher: c, Kind: KindSnapshot,
		NodeID: "tmnd-bench", Partitions: 256, CoveredSeq: benchEntries})
	if err != nil {
		b.Fatal(err)
	}
	// Entries are windows of a random pool, so they do not compress: this
	// is the writer's worst case (session snapshots compress ~4×, see the
	// engine's cold-start benchmark).
	pool := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{1}).Read(pool)
	for i := range benchEntries {
		off := (i * benchPayloadSize) % (len(pool) - benchPayloadSize)
		p := pool[off : off+benchPayloadSize]
		typ := byte(1)
		if i%10 == 0 {
			typ = 2 // some tombstones
		}
		if err := w.Add(typ, p); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	return int64(benchEntries * benchPayloadSize)
}

// BenchmarkWrite1M writes 1,000,000 entries of 350 bytes: create, add,
// commit (fsync, full re-read verification, rename, directory fsync).
// Target (05-storage §5): < 10 s per op.
//
//	go test -run '^$' -bench Write1M -benchtime 3x ./internal/snapshot/
func BenchmarkWrite1M(b *testing.B) {
	for _, c := range []crypt.CipherID{crypt.AES256GCM, crypt.ChaCha20Poly1305} {
		b.Run(c.String(), func(b *testing.B) {
			dir := b.TempDir()
			b.SetBytes(benchEntries * benchPayloadSize)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				path := filepath.Join(dir, FileName(uint64(i)))
				writeBench(b, path, c)
				b.StopTimer()
				os.Remove(path)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/snapshot")
		})
	}
}

// BenchmarkRead streams (and thereby fully verifies) a 1,000,000-entry file.
//
//	go test -run '^$' -bench Read -benchtime 3x ./internal/snapshot/
func BenchmarkRead(b *testing.B) {
	for _, c := range []crypt.CipherID{crypt.AES256GCM, crypt.ChaCha20Poly1305} {
		b.Run(c.String(), func(b *testing.B) {
			key := mustKey(b, testKeyHex)
			path := filepath.Join(b.TempDir(), FileName(1))
			writeBench(b, path, c)
			b.SetBytes(benchEntries * benchPayloadSize)
			b.ReportAllocs()
			for b.Loop() {
				r, err := Open(path, key)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, _, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				r.Close()
				if n != benchEntries {
					b.Fatalf("read %d entries", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/read")
		})
	}
}
