package tui

import (
	"fmt"
	"io"
	"math"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one scrape of the node's /metrics, reduced to the counters the
// dashboard turns into rates. Counters are totals since the node started;
// Rates compares two samples.
type Sample struct {
	// Validate is token validation latency over HTTP (POST
	// /tokens/validate) and RESP (TM.VALIDATE); Create the same for
	// session creation (POST /sessions, TM.CREATE).
	Validate, Create Histogram
	// Fsync is tokmesh_wal_fsync_duration_seconds.
	Fsync Histogram

	AuthFailures     float64 // tokmesh_auth_failures_total, all reasons
	BruteForceBlocks float64 // tokmesh_bruteforce_blocks_total
	BlockedIPs       float64 // tokmesh_bruteforce_blocked_ips (gauge: bans in force)
	RateLimited      float64 // tokmesh_ratelimit_rejections_total
	FsyncFailures    float64 // tokmesh_wal_fsync_failures_total
	WALBytesWritten  float64 // tokmesh_wal_bytes_written_total
}

// Histogram is a cumulative Prometheus histogram.
type Histogram struct {
	Count, Sum float64
	Buckets    []Bucket // ascending upper bounds, cumulative counts
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// add merges h2 into h (buckets matched by upper bound).
func (h Histogram) add(h2 Histogram) Histogram {
	out := Histogram{Count: h.Count + h2.Count, Sum: h.Sum + h2.Sum}
	m := map[float64]float64{}
	for _, b := range h.Buckets {
		m[b.UpperBound] += b.Count
	}
	for _, b := range h2.Buckets {
		m[b.UpperBound] += b.Count
	}
	for ub, c := range m {
		out.Buckets = append(out.Buckets, Bucket{ub, c})
	}
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].UpperBound < out.Buckets[j].UpperBound })
	return out
}

// sub returns the observations of h made after prev (nil when a counter
// went backwards: the node restarted).
func (h Histogram) sub(prev Histogram) *Histogram {
	if h.Count < prev.Count {
		return nil
	}
	out := Histogram{Count: h.Count - prev.Count, Sum: h.Sum - prev.Sum}
	old := map[float64]float64{}
	for _, b := range prev.Buckets {
		old[b.UpperBound] = b.Count
	}
	for _, b := range h.Buckets {
		d := b.Count - old[b.UpperBound]
		if d < 0 {
			return nil
		}
		out.Buckets = append(out.Buckets, Bucket{b.UpperBound, d})
	}
	return &out
}

// quantile estimates the q-quantile like PromQL's histogram_quantile:
// linear interpolation inside the bucket holding the rank; a rank in the
// +Inf bucket yields the highest finite bound. NaN when empty.
func (h Histogram) quantile(q float64) float64 {
	if h.Count <= 0 || len(h.Buckets) == 0 {
		return math.NaN()
	}
	rank := q * h.Count
	lower, prevCount := 0.0, 0.0
	for _, b := range h.Buckets {
		if b.Count >= rank {
			if math.IsInf(b.UpperBound, 1) {
				return lower
			}
			in := b.Count - prevCount
			if in <= 0 {
				return b.UpperBound
			}
			return lower + (b.UpperBound-lower)*(rank-prevCount)/in
		}
		lower, prevCount = b.UpperBound, b.Count
	}
	return lower
}

// ParseMetrics reads Prometheus text exposition format into a Sample.
func ParseMetrics(r io.Reader) (*Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	s := &Sample{
		AuthFailures:     sumValues(fams["tokmesh_auth_failures_total"], nil),
		BruteForceBlocks: sumValues(fams["tokmesh_bruteforce_blocks_total"], nil),
		BlockedIPs:       sumValues(fams["tokmesh_bruteforce_blocked_ips"], nil),
		RateLimited:      sumValues(fams["tokmesh_ratelimit_rejections_total"], nil),
		FsyncFailures:    sumValues(fams["tokmesh_wal_fsync_failures_total"], nil),
		WALBytesWritten:  sumValues(fams["tokmesh_wal_bytes_written_total"], nil),
		Fsync:            histogram(fams["tokmesh_wal_fsync_duration_seconds"], nil),
	}
	httpDur := fams["tokmesh_http_request_duration_seconds"]
	respDur := fams["tokmesh_resp_command_duration_seconds"]
	s.Validate = histogram(httpDur, map[string]string{"route": "/tokens/validate", "method": "POST"}).
		add(histogram(respDur, map[string]string{"command": "tm.validate"}))
	s.Create = histogram(httpDur, map[string]string{"route": "/sessions", "method": "POST"}).
		add(histogram(respDur, map[string]string{"command": "tm.create"}))
	return s, nil
}

func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// sumValues adds the counter, gauge or untyped values of the series of f
// whose labels include want.
func sumValues(f *dto.MetricFamily, want map[string]string) float64 {
	var total float64
	for _, m := range f.GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// histogram merges the histogram series of f whose labels include want.
func histogram(f *dto.MetricFamily, want map[string]string) Histogram {
	var out Histogram
	for _, m := range f.GetMetric() {
		if m.Histogram == nil || !matches(m, want) {
			continue
		}
		h := Histogram{Count: float64(m.GetHistogram().GetSampleCount()), Sum: m.GetHistogram().GetSampleSum()}
		for _, b := range m.GetHistogram().GetBucket() {
			h.Buckets = append(h.Buckets, Bucket{b.GetUpperBound(), float64(b.GetCumulativeCount())})
		}
		if len(h.Buckets) == 0 || !math.IsInf(h.Buckets[len(h.Buckets)-1].UpperBound, 1) {
			h.Buckets = append(h.Buckets, Bucket{math.Inf(1), h.Count})
		}
		out = out.add(h)
	}
	return out
}

// Rates are what changed between two samples, per second.
type Rates struct {
	Seconds float64 // the interval the rates cover

	ValidateQPS, CreateQPS     float64
	ValidateP99ms, CreateP99ms float64 // NaN: no request in the interval
	AuthFailuresPerSec         float64
	RateLimitedPerSec          float64
	FsyncPerSec                float64
	FsyncP99ms, FsyncMeanms    float64 // NaN: no fsync in the interval
	WALBytesPerSec             float64
}

// computeRates compares two samples taken seconds apart; ok is false when
// they cannot be compared (too close, or a counter went backwards because
// the node restarted).
func computeRates(prev, cur *Sample, seconds float64) (Rates, bool) {
	if prev == nil || cur == nil || seconds <= 0 {
		return Rates{}, false
	}
	v, c, f := cur.Validate.sub(prev.Validate), cur.Create.sub(prev.Create), cur.Fsync.sub(prev.Fsync)
	if v == nil || c == nil || f == nil || cur.AuthFailures < prev.AuthFailures ||
		cur.WALBytesWritten < prev.WALBytesWritten || cur.RateLimited < prev.RateLimited {
		return Rates{}, false
	}
	r := Rates{Seconds: seconds,
		ValidateQPS: v.Count / seconds, CreateQPS: c.Count / seconds,
		ValidateP99ms: v.quantile(0.99) * 1000, CreateP99ms: c.quantile(0.99) * 1000,
		AuthFailuresPerSec: (cur.AuthFailures - prev.AuthFailures) / seconds,
		RateLimitedPerSec:  (cur.RateLimited - prev.RateLimited) / seconds,
		FsyncPerSec:        f.Count / seconds,
		FsyncP99ms:         f.quantile(0.99) * 1000,
		FsyncMeanms:        math.NaN(),
		WALBytesPerSec:     (cur.WALBytesWritten - prev.WALBytesWritten) / seconds,
	}
	if f.Count > 0 {
		r.FsyncMeanms = f.Sum / f.Count * 1000
	}
	return r, true
}
