package session

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exampleShaped returns session i shaped like the example of 01-data-model
// §2 with a 6-entry data map (about 480 bytes as public JSON).
func exampleShaped(i, partitions int, uas []string) *Session {
	tok := fmt.Sprintf("tmtk_%043d", i)
	th := HashToken(tok)
	data, _ := EncodeData(map[string]string{
		"tenant": "acme-" + strconv.Itoa(i%1000), "role": []string{"admin", "member", "viewer"}[i%3],
		"region": "eu-west-1", "plan": "pro", "locale": "en-US", "theme": "dark",
	})
	s := &Session{
		TokenHash: th, UserID: "u-" + strconv.Itoa(1000+i/20), DeviceID: "",
		IPAddress:    netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
		UserAgent:    uas[i%len(uas)],
		CreatedBy:    "tmak-01jh8v9k2c3n4p5q6r7s8t9v0" + strconv.Itoa(i%5),
		CreatedAt:    t0,
		ExpiresAt:    t0 + 7200_000,
		LastActive:   t0,
		Data:         data,
		Version:      1,
		LastAccessUA: uas[i%len(uas)],
	}
	s.LastAccessIP = s.IPAddress
	id, _ := NewID(th.Partition(partitions), th[2], t0)
	s.ID = id
	return s
}

func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return -1
}

// TestMemory_1MSessions measures the heap for 1,000,000 example-shaped
// sessions (opt-in: TOKMESH_MEMTEST=1, it needs ~1 GB and a minute).
func TestMemory_1MSessions(t *testing.T) {
	if os.Getenv("TOKMESH_MEMTEST") == "" {
		t.Skip("set TOKMESH_MEMTEST=1 to measure memory for 1M sessions")
	}
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TOKMESH_MEMTEST")); err == nil && v > 1 {
		n = v
	}
	uas := make([]string, 20)
	for i := range uas {
		uas[i] = fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/12%d.0.0.0 Safari/537.36", i)
	}
	clk := newClock()
	st, err := NewStore(Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	sample := exampleShaped(0, 256, uas)
	t.Logf("example session: %d bytes as public JSON, data %d bytes", len(sample.AppendJSON(nil)), len(sample.Data))

	runtime.GC()
	debug.FreeOSMemory()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rss0 := rssKiB()
	start := time.Now()
	var peakRSS int64
	for i := 0; i < n; i++ {
		if err := st.LoadSession(exampleShaped(i, 256, uas)); err != nil {
			t.Fatal(err)
		}
		if i%100_000 == 0 {
			peakRSS = max(peakRSS, rssKiB())
		}
	}
	load := time.Since(start)
	peakRSS = max(peakRSS, rssKiB())
	runtime.GC()
	runtime.ReadMemStats(&after)
	rssGC := rssKiB()
	debug.FreeOSMemory()
	rssFree := rssKiB()
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d sessions loaded in %v; stats %+v", n, load, st.Stats())
	t.Logf("live heap for sessions: %.1f MiB (%.0f B/session); HeapInuse %.1f MiB; Sys %.1f MiB",
		float64(live)/(1<<20), float64(live)/float64(n), float64(after.HeapInuse)/(1<<20), float64(after.Sys)/(1<<20))
	t.Logf("RSS: before %.1f MiB, peak during load %.1f MiB, after GC %.1f MiB, after FreeOSMemory %.1f MiB (GOGC=%s GOMEMLIMIT=%s)",
		float64(rss0)/1024, float64(peakRSS)/1024, float64(rssGC)/1024, float64(rssFree)/1024, os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	runtime.KeepAlive(st)
}
