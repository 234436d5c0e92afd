package tui

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/yndnr/tokmesh-go/pkg/client"
)

const exposition = `# HELP tokmesh_http_request_duration_seconds HTTP request duration by route template and method.
# TYPE tokmesh_http_request_duration_seconds histogram
tokmesh_http_request_duration_seconds_bucket{method="POST",route="/tokens/validate",le="0.001"} 90
tokmesh_http_request_duration_seconds_bucket{method="POST",route="/tokens/validate",le="0.01"} 99
tokmesh_http_request_duration_seconds_bucket{method="POST",route="/tokens/validate",le="+Inf"} 100
tokmesh_http_request_duration_seconds_sum{method="POST",route="/tokens/validate"} 0.2
tokmesh_http_request_duration_seconds_count{method="POST",route="/tokens/validate"} 100
tokmesh_http_request_duration_seconds_bucket{method="POST",route="/sessions",le="0.001"} 1
tokmesh_http_request_duration_seconds_bucket{method="POST",route="/sessions",le="0.01"} 4
tokmesh_http_request_duration_seconds_bucket{method="POST",route="/sessions",le="+Inf"} 4
tokmesh_http_request_duration_seconds_sum{method="POST",route="/sessions"} 0.01
tokmesh_http_request_duration_seconds_count{method="POST",route="/sessions"} 4
tokmesh_http_request_duration_seconds_bucket{method="GET",route="/sessions",le="0.001"} 500
tokmesh_http_request_duration_seconds_bucket{method="GET",route="/sessions",le="0.01"} 500
tokmesh_http_request_duration_seconds_bucket{method="GET",route="/sessions",le="+Inf"} 500
tokmesh_http_request_duration_seconds_sum{method="GET",route="/sessions"} 0.1
tokmesh_http_request_duration_seconds_count{method="GET",route="/sessions"} 500
# HELP tokmesh_resp_command_duration_seconds RESP command duration.
# TYPE tokmesh_resp_command_duration_seconds histogram
tokmesh_resp_command_duration_seconds_bucket{command="tm.validate",le="0.001"} 10
tokmesh_resp_command_duration_seconds_bucket{command="tm.validate",le="0.01"} 10
tokmesh_resp_command_duration_seconds_bucket{command="tm.validate",le="+Inf"} 10
tokmesh_resp_command_duration_seconds_sum{command="tm.validate"} 0.001
tokmesh_resp_command_duration_seconds_count{command="tm.validate"} 10
# TYPE tokmesh_auth_failures_total counter
tokmesh_auth_failures_total{reason="bad_secret"} 3
tokmesh_auth_failures_total{reason="unknown_key"} 4
# TYPE tokmesh_bruteforce_blocks_total counter
tokmesh_bruteforce_blocks_total 2
# TYPE tokmesh_bruteforce_blocked_ips gauge
tokmesh_bruteforce_blocked_ips 1
# TYPE tokmesh_wal_bytes_written_total counter
tokmesh_wal_bytes_written_total 4096
# TYPE tokmesh_wal_fsync_duration_seconds histogram
tokmesh_wal_fsync_duration_seconds_bucket{le="0.001"} 3
tokmesh_wal_fsync_duration_seconds_bucket{le="+Inf"} 4
tokmesh_wal_fsync_duration_seconds_sum 0.005
tokmesh_wal_fsync_duration_seconds_count 4
`

func TestParseMetrics_SumsProtocolsAndIgnoresOtherRoutes(t *testing.T) {
	s, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if s.Validate.Count != 110 || s.Create.Count != 4 {
		t.Fatalf("validate %v create %v, want 110 (HTTP+RESP) and 4 (POST only)", s.Validate.Count, s.Create.Count)
	}
	if want := []Bucket{{0.001, 100}, {0.01, 109}, {math.Inf(1), 110}}; fmt.Sprint(s.Validate.Buckets) != fmt.Sprint(want) {
		t.Fatalf("validate buckets %v, want %v", s.Validate.Buckets, want)
	}
	if s.AuthFailures != 7 || s.BruteForceBlocks != 2 || s.BlockedIPs != 1 || s.WALBytesWritten != 4096 || s.Fsync.Count != 4 {
		t.Fatalf("sample %+v", s)
	}
	if _, err := ParseMetrics(strings.NewReader("not { metrics")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := Histogram{Count: 100, Buckets: []Bucket{{0.001, 50}, {0.01, 90}, {0.1, 100}, {math.Inf(1), 100}}}
	for _, tc := range []struct{ q, want float64 }{
		{0.5, 0.001},                            // exactly the first bucket's bound
		{0.25, 0.0005},                          // interpolated from 0
		{0.7, 0.001 + 0.009*20/40},              // inside the second bucket
		{0.99, 0.01 + 0.09*9/10.0},              // inside the third
		{1, 0.1},                                // the top finite bound
		{0.95, 0.01 + 0.09*5/10.0},              // p95
		{0.9, 0.01},                             // boundary
		{0.0, 0},                                // rank 0
		{0.5 + 1e-9, 0.001 + 1e-9*100*0.009/40}, // just past a boundary
	} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("q%.3f = %v, want %v", tc.q, got, tc.want)
		}
	}
	inf := Histogram{Count: 10, Buckets: []Bucket{{0.5, 0}, {math.Inf(1), 10}}}
	if got := inf.quantile(0.99); got != 0.5 {
		t.Errorf("rank in +Inf bucket = %v, want the highest finite bound 0.5", got)
	}
	if got := (Histogram{}).quantile(0.99); !math.IsNaN(got) {
		t.Errorf("empty = %v, want NaN", got)
	}
}

func TestComputeRates(t *testing.T) {
	a, _ := ParseMetrics(strings.NewReader(exposition))
	b, _ := ParseMetrics(strings.NewReader(strings.NewReplacer(
		`route="/tokens/validate",le="+Inf"} 100`, `route="/tokens/validate",le="+Inf"} 300`,
		`route="/tokens/validate",le="0.01"} 99`, `route="/tokens/validate",le="0.01"} 299`,
		`route="/tokens/validate",le="0.001"} 90`, `route="/tokens/validate",le="0.001"} 190`,
		`tokmesh_http_request_duration_seconds_count{method="POST",route="/tokens/validate"} 100`,
		`tokmesh_http_request_duration_seconds_count{method="POST",route="/tokens/validate"} 300`,
		`reason="bad_secret"} 3`, `reason="bad_secret"} 13`,
		"tokmesh_wal_bytes_written_total 4096", "tokmesh_wal_bytes_written_total 6144",
	).Replace(exposition)))
	r, ok := computeRates(a, b, 2)
	if !ok {
		t.Fatal("rates not computed")
	}
	// 200 more validations in 2 s; 100 of them ≤ 1 ms, 100 in (1, 10] ms.
	if r.ValidateQPS != 100 || r.AuthFailuresPerSec != 5 || r.WALBytesPerSec != 1024 || r.CreateQPS != 0 {
		t.Fatalf("rates %+v", r)
	}
	if want := 0.001 + 0.009*(198-100)/100.0; math.Abs(r.ValidateP99ms-want*1000) > 1e-9 {
		t.Fatalf("validate p99 %v ms, want %v", r.ValidateP99ms, want*1000)
	}
	if !math.IsNaN(r.CreateP99ms) || !math.IsNaN(r.FsyncMeanms) {
		t.Fatalf("idle operations must have no p99/mean: %+v", r)
	}
	// A restarted node (counters went back) yields no rates.
	if _, ok := computeRates(b, a, 2); ok {
		t.Fatal("rates computed across a counter reset")
	}
	if _, ok := computeRates(a, b, 0); ok {
		t.Fatal("rates computed over zero seconds")
	}
}

func TestErrText(t *testing.T) {
	dial := &url.Error{Op: "Get", URL: "http://tokmesh-local/admin/v1/cluster/status", Err: &net.OpError{Op: "dial", Net: "unix",
		Err: os.NewSyscallError("connect", syscall.ENOENT)}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&client.TransportError{Kind: client.KindConnect, Target: "unix:/x/admin.sock", Err: dial},
			"cannot connect to unix:/x/admin.sock: connect: no such file or directory"},
		{&client.TransportError{Kind: client.KindTimeout, Target: "https://h:5443", Err: errors.New("deadline")},
			"timed out talking to https://h:5443"},
		{fmt.Errorf("wrapped: %w", &client.Error{Code: "TM-AUTH-4030", Message: "role not allowed"}),
			"role not allowed (TM-AUTH-4030)"},
		{errors.New("plain"), "plain"},
	} {
		if got := errText(tc.err); got != tc.want {
			t.Errorf("errText(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{thousands(0), "0"}, {thousands(999), "999"}, {thousands(1000), "1,000"}, {thousands(-1234567), "-1,234,567"},
		{fmtRate(12.34), "12.3"}, {fmtRate(12345.6), "12,346"}, {fmtRate(math.NaN()), "—"},
		{fmtMs(0.123), "0.12"}, {fmtMs(12.34), "12.3"}, {fmtMs(123.4), "123"},
		{fmtBytes(100), "100 B"}, {fmtBytes(1536), "1.5 KiB"}, {fmtBytes(48 << 20), "48.0 MiB"},
		{fmtDur(45e9), "45s"}, {fmtDur(12 * 60e9), "12m"}, {fmtDur(119 * 60e9), "1h59m"}, {fmtDur(2 * 3600e9), "2h"},
		{fmtDur(76 * 3600e9), "3d4h"},
		{ago(t0, ms(t0.Add(-90e9))), "1m ago"}, {until(t0, ms(t0.Add(-1))), "expired"}, {agoOrNever(t0, 0), "never"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestFitColumns(t *testing.T) {
	// drop: B goes first, then A, the flexible column last.
	cols := []column{{title: "ID", width: 31}, {title: "A", width: 10, drop: 2}, {title: "B", width: 10, drop: 3},
		{title: "FLEX", width: 8, pref: 20, flex: true, drop: 1}}
	titles := func(cs []column) string {
		var s []string
		for _, c := range cs {
			s = append(s, fmt.Sprintf("%s:%d", c.title, c.width))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		width int
		want  string
	}{
		{200, "ID:31 A:10 B:10 FLEX:144"},
		{80, "ID:31 A:10 B:10 FLEX:24"}, // everything fits with the flexible column at its preferred width
		{70, "ID:31 A:10 FLEX:25"},      // B goes before the flexible column shrinks below 20
		{55, "ID:31 FLEX:21"},           // then A
		{45, "ID:31 FLEX:11"},           // the flexible column shrinks towards its minimum
		{40, "ID:31"},                   // and goes when even that does not fit
		{20, "ID:31"},                   // required columns stay even when too wide
	} {
		if got := titles(fitColumns(cols, tc.width)); got != tc.want {
			t.Errorf("width %d: %s, want %s", tc.width, got, tc.want)
		}
	}
}
