package wal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks run on the real disk under b.TempDir with real fsyncs. Each op
// is one record of 256 bytes (about a session record).

func benchWriter(b *testing.B, mode SyncMode) *Writer {
	b.Helper()
	w := openTest(b, Options{Dir: b.TempDir(), SyncMode: mode}, 1)
	b.Cleanup(func() { w.Close() })
	return w
}

func reportRate(b *testing.B, w *Writer, start time.Time) {
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	if st := w.Stats(); st.Fsyncs > 0 {
		b.ReportMetric(float64(st.Records)/float64(st.Fsyncs), "records/fsync")
	}
}

// BenchmarkAppendInterval: Append+Wait in mode interval from 32×GOMAXPROCS goroutines.
func BenchmarkAppendInterval(b *testing.B) {
	w := benchWriter(b, SyncInterval)
	p := make([]byte, 256)
	b.SetBytes(int64(len(p)))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Wait(w.Append(TypeSessionTouch, p), false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, w, start)
}

// BenchmarkAppendAlways: Append+Wait in mode always (group commit) from N writers.
func BenchmarkAppendAlways(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			w := benchWriter(b, SyncAlways)
			p := make([]byte, 256)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for g := 0; g < writers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := w.Wait(w.Append(TypeSessionPut, p), false); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportRate(b, w, start)
		})
	}
}

// BenchmarkAppendNone: Append+Wait in mode none (asynchronous write-behind).
func BenchmarkAppendNone(b *testing.B) {
	w := benchWriter(b, SyncNone)
	p := make([]byte, 256)
	b.SetBytes(int64(len(p)))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Wait(w.Append(TypeSessionTouch, p), false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportRate(b, w, start)
	if err := w.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppendOnly measures Append alone, what a caller pays under its
// shard lock, while the writer drains in the background. The queue is
// drained (untimed) every 1024 appends.
func BenchmarkAppendOnly(b *testing.B) {
	w := benchWriter(b, SyncNone)
	p := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.Append(TypeSessionTouch, p)
		if i%1024 == 1023 {
			b.StopTimer()
			if err := w.Sync(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
}

// BenchmarkReplay: recovery speed, records of 256 bytes across 4 MiB segments.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	key := testKey(b)
	const n = 100_000
	w := openTest(b, Options{Dir: dir, Key: key, SyncMode: SyncNone, SegmentSize: 4 << 20}, 1)
	p := make([]byte, 256)
	for i := 0; i < n; i++ {
		w.Append(TypeSessionPut, p)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Replay(dir, key, ReplayOptions{}, func(uint64, byte, []byte) error { return nil })
		if err != nil || res.Records != n {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
