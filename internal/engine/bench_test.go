package engine

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// exampleRequest is shaped like the example session of 01-data-model §2 with
// a 6-entry data map: about 480 bytes as public JSON.
func exampleRequest(i int) session.CreateRequest {
	return session.CreateRequest{
		Token:     fmt.Sprintf("tmtk_bench%038d", i),
		UserID:    fmt.Sprintf("u-%d", 1000+i%200000),
		IP:        netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
		CreatedBy: "tmak-01jh8v9k2c3n4p5q6r7s8t9v0w",
		Data: map[string]string{"tenant": "acme", "realm": "employees", "idp": "saml-corp",
			"mfa": "totp", "locale": "en-US", "client": "portal-web"},
		TTLSeconds: 7200, TTLSet: true,
	}
}

func benchEngine(b *testing.B, mode wal.SyncMode) *Engine {
	b.Helper()
	cfg := testConfig(b.TempDir())
	cfg.SyncMode = mode
	cfg.Session.MaxPerUser = 10000
	return mustOpen(b, cfg)
}

// BenchmarkCreate measures acknowledged creates/s per sync mode and number
// of concurrent writers. With mode always, writers=64 against writers=1
// shows whether group commit works (one fsync covers many callers).
func BenchmarkCreate(b *testing.B) {
	for _, tc := range []struct {
		mode    wal.SyncMode
		writers int
	}{{wal.SyncInterval, 1}, {wal.SyncInterval, 64}, {wal.SyncAlways, 1}, {wal.SyncAlways, 64}} {
		b.Run(fmt.Sprintf("mode=%s/writers=%d", tc.mode, tc.writers), func(b *testing.B) {
			e := benchEngine(b, tc.mode)
			defer e.Close()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < tc.writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1))
						if i > b.N {
							return
						}
						if _, err := e.Create(exampleRequest(i)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
		})
	}
}

// BenchmarkValidateParallel validates random tokens among 1M sessions
// (100k with -short).
func BenchmarkValidateParallel(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	e := benchEngine(b, wal.SyncNone)
	defer e.Close()
	fill(b, e, n)
	toks := make([]string, 4096)
	for i := range toks {
		toks[i] = exampleRequest(i * (n / len(toks))).Token
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.Validate(toks[i&4095], false, loopback, ""); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func fill(b testing.TB, e *Engine, n int) {
	var wg sync.WaitGroup
	per := n / runtime.GOMAXPROCS(0)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w * per; i < (w+1)*per; i++ {
				if _, err := e.Create(exampleRequest(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
}

// BenchmarkSnapshotAndColdStart1M builds 1M sessions, times a snapshot,
// adds a 100k-record WAL tail and times recovery to ready.
func BenchmarkSnapshotAndColdStart1M(b *testing.B) {
	n, tail := 1_000_000, 100_000
	if testing.Short() {
		n, tail = 100_000, 10_000
	}
	dir := b.TempDir()
	cfg := testConfig(dir)
	cfg.SyncMode = wal.SyncNone
	cfg.Session.MaxPerUser = 10000
	e := mustOpen(b, cfg)
	fill(b, e, n)
	t0 := time.Now()
	res, err := e.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	snapDur := time.Since(t0)
	for i := n; i < n+tail; i++ {
		if _, err := e.Create(exampleRequest(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(res.Path)
	b.ResetTimer()
	// Each cold start is a fresh process (this test binary re-executed),
	// timed from exec to its report that recovery completed: a process
	// that already holds a warm heap would skip the page faults of a real
	// start.
	var opens []time.Duration
	for range b.N {
		t1 := time.Now()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), coldChildEnv+"="+dir)
		out, err := cmd.Output()
		d := time.Since(t1)
		if err != nil {
			b.Fatalf("cold start child: %v\n%s", err, out)
		}
		var live int
		if _, err := fmt.Sscanf(string(out), "recovered %d", &live); err != nil || live != n+tail {
			b.Fatalf("child reported %q, want %d sessions", out, n+tail)
		}
		opens = append(opens, d)
	}
	b.ReportMetric(snapDur.Seconds(), "snapshot-s")
	b.ReportMetric(float64(st.Size())/(1<<20), "snapshot-MiB")
	// The median of the opens (-benchtime Nx): this machine is noisy.
	slices.Sort(opens)
	b.ReportMetric(opens[len(opens)/2].Seconds(), "coldstart-s")
	b.ReportMetric(opens[0].Seconds(), "coldstart-min-s")
}

// TestMemory1M reports heap and RSS with 1M example-shaped sessions. It runs
// only with TOKMESH_MEMORY_TEST=1 and should run alone in its process
// (make bench-memory) so RSS is not inflated by other tests.
func TestMemory1M(t *testing.T) {
	if os.Getenv("TOKMESH_MEMORY_TEST") == "" {
		t.Skip("set TOKMESH_MEMORY_TEST=1 (make bench-memory)")
	}
	n := 1_000_000
	e := mustOpen(t, func() Config {
		c := testConfig(t.TempDir())
		c.SyncMode = wal.SyncNone
		c.Session.MaxPerUser = 10000
		return c
	}())
	defer e.Close()
	fill(t, e, n)
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := procStatus("VmRSS:")
	peak := procStatus("VmHWM:")
	sample, _ := e.Validate(exampleRequest(7).Token, false, loopback, "")
	t.Logf("sessions=%d heap_inuse=%.1fMiB heap_alloc=%.1fMiB sys=%.1fMiB rss=%.1fMiB peak_rss=%.1fMiB bytes/session(heap)=%.0f example_json=%dB",
		e.store.Stats().Live, mib(ms.HeapInuse), mib(ms.HeapAlloc), mib(ms.Sys), mib(rss), mib(peak),
		float64(ms.HeapAlloc)/float64(n), len(sample.AppendJSON(nil)))
}

func mib(v uint64) float64 { return float64(v) / (1 << 20) }

// procStatus reads a kB field of /proc/self/status (VmRSS, VmHWM) in bytes.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

const coldChildEnv = "TOKMESH_COLDSTART_CHILD"

// runColdChild opens the engine on dir, prints the live session count as
// soon as recovery completes, and exits without closing (as after kill -9,
// nothing is written).
func runColdChild(dir string) {
	cfg := testConfig(dir)
	cfg.SyncMode = wal.SyncNone
	cfg.Session.MaxPerUser = 10000
	e, err := Open(cfg)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	fmt.Printf("recovered %d\n", e.store.Stats().Live)
	os.Exit(0)
}
