package server

import (
	"math"
	"strings"
	"sync"
	"time"
)

// traffic keeps the business request rate and latency of the last 10 s for
// GET /admin/v1/status (qps, p99_ms): ten one-second slots, each with a
// count and a log-scale latency histogram (8 buckets per power of two from
// 10 µs), so p99 is exact to about 9 %.
type traffic struct {
	mu    sync.Mutex
	slots [10]trafficSlot
	now   func() time.Time
}

const (
	trafficBuckets = 160 // 8 per octave over 20 octaves: 10 µs … ~10 s
	trafficBase    = 10e-6
)

type trafficSlot struct {
	sec   int64
	count uint64
	hist  [trafficBuckets]uint32
}

func newTraffic() *traffic { return &traffic{now: time.Now} }

func bucketOf(seconds float64) int {
	if seconds <= trafficBase {
		return 0
	}
	b := int(math.Log2(seconds/trafficBase) * 8)
	return min(b, trafficBuckets-1)
}

// observe records one business request that ends now.
func (t *traffic) observe(seconds float64) { t.observeAt(t.now().Unix(), seconds) }

// observeAt records one business request that ended in Unix second sec
// (RESP passes the clock reading it already made).
func (t *traffic) observeAt(sec int64, seconds float64) {
	t.mu.Lock()
	s := &t.slots[sec%int64(len(t.slots))]
	if s.sec != sec {
		*s = trafficSlot{sec: sec}
	}
	s.count++
	s.hist[bucketOf(seconds)]++
	t.mu.Unlock()
}

// snapshot returns requests/s and the p99 in ms over the last 10 full seconds.
func (t *traffic) snapshot() (qps, p99ms float64) {
	now := t.now().Unix()
	var total uint64
	var hist [trafficBuckets]uint64
	t.mu.Lock()
	for i := range t.slots {
		s := &t.slots[i]
		if s.sec <= now-int64(len(t.slots)) || s.sec > now {
			continue
		}
		total += s.count
		for b, n := range s.hist {
			hist[b] += uint64(n)
		}
	}
	t.mu.Unlock()
	if total == 0 {
		return 0, 0
	}
	want := uint64(math.Ceil(float64(total) * 0.99))
	var seen uint64
	for b, n := range hist {
		seen += n
		if seen >= want {
			upper := trafficBase * math.Exp2(float64(b+1)/8)
			return float64(total) / float64(len(t.slots)), math.Round(upper*1e6) / 1e3
		}
	}
	return float64(total) / float64(len(t.slots)), 0
}

// isBusinessRoute reports whether a route template counts as business
// traffic (not probes, metrics, OpenAPI or admin).
func isBusinessRoute(template string) bool {
	switch template {
	case "/health", "/ready", "/metrics", "/openapi.json", "unmatched":
		return false
	}
	return !strings.HasPrefix(template, "/admin/")
}
