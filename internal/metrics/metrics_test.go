package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// specNames are the metric names of 09-observability §1 for the API,
// sessions, storage, security and process groups, with their types.
var specNames = map[string]dto.MetricType{
	// API
	"tokmesh_http_requests_total":           dto.MetricType_COUNTER,
	"tokmesh_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
	"tokmesh_resp_commands_total":           dto.MetricType_COUNTER,
	"tokmesh_resp_command_duration_seconds": dto.MetricType_HISTOGRAM,
	"tokmesh_resp_connections":              dto.MetricType_GAUGE,
	// Sessions
	"tokmesh_token_validations_total":        dto.MetricType_COUNTER,
	"tokmesh_sessions_active":                dto.MetricType_GAUGE,
	"tokmesh_session_tombstones":             dto.MetricType_GAUGE,
	"tokmesh_session_operations_total":       dto.MetricType_COUNTER,
	"tokmesh_session_quota_rejections_total": dto.MetricType_COUNTER,
	"tokmesh_sweeper_removed_total":          dto.MetricType_COUNTER,
	"tokmesh_sweeper_round_duration_seconds": dto.MetricType_HISTOGRAM,
	// Storage
	"tokmesh_wal_bytes_written_total":                 dto.MetricType_COUNTER,
	"tokmesh_wal_records_total":                       dto.MetricType_COUNTER,
	"tokmesh_wal_fsync_duration_seconds":              dto.MetricType_HISTOGRAM,
	"tokmesh_wal_fsync_failures_total":                dto.MetricType_COUNTER,
	"tokmesh_wal_group_commit_records":                dto.MetricType_HISTOGRAM,
	"tokmesh_wal_segments":                            dto.MetricType_GAUGE,
	"tokmesh_wal_last_seq":                            dto.MetricType_GAUGE,
	"tokmesh_snapshot_duration_seconds":               dto.MetricType_HISTOGRAM,
	"tokmesh_snapshot_last_success_timestamp_seconds": dto.MetricType_GAUGE,
	"tokmesh_snapshot_failures_total":                 dto.MetricType_COUNTER,
	"tokmesh_recovery_duration_seconds":               dto.MetricType_GAUGE,
	// Security
	"tokmesh_auth_cache_hits_total":             dto.MetricType_COUNTER,
	"tokmesh_auth_cache_misses_total":           dto.MetricType_COUNTER,
	"tokmesh_auth_failures_total":               dto.MetricType_COUNTER,
	"tokmesh_auth_argon2_duration_seconds":      dto.MetricType_HISTOGRAM,
	"tokmesh_ratelimit_rejections_total":        dto.MetricType_COUNTER,
	"tokmesh_bruteforce_blocks_total":           dto.MetricType_COUNTER,
	"tokmesh_bruteforce_blocked_ips":            dto.MetricType_GAUGE,
	"tokmesh_antireplay_rejections_total":       dto.MetricType_COUNTER,
	"tokmesh_tls_reload_failures_total":         dto.MetricType_COUNTER,
	"tokmesh_tls_cert_expiry_timestamp_seconds": dto.MetricType_GAUGE,
	"tokmesh_audit_records_total":               dto.MetricType_COUNTER,
	"tokmesh_audit_dropped_total":               dto.MetricType_COUNTER,
	// Process
	"tokmesh_ready":       dto.MetricType_GAUGE,
	"tokmesh_maintenance": dto.MetricType_GAUGE,
	"tokmesh_build_info":  dto.MetricType_GAUGE,
}

// specLabels are the label names of 09-observability §1 per metric.
var specLabels = map[string][]string{
	"tokmesh_http_requests_total":               {"method", "route", "status"},
	"tokmesh_http_request_duration_seconds":     {"method", "route"},
	"tokmesh_resp_commands_total":               {"command", "result"},
	"tokmesh_resp_command_duration_seconds":     {"command"},
	"tokmesh_token_validations_total":           {"result"},
	"tokmesh_session_operations_total":          {"op", "result"},
	"tokmesh_sweeper_removed_total":             {"kind"},
	"tokmesh_wal_records_total":                 {"type"},
	"tokmesh_auth_failures_total":               {"reason"},
	"tokmesh_antireplay_rejections_total":       {"reason"},
	"tokmesh_tls_reload_failures_total":         {"listener"},
	"tokmesh_tls_cert_expiry_timestamp_seconds": {"listener"},
	"tokmesh_build_info":                        {"commit", "go_version", "version"},
}

// exercise touches every push method once.
func exercise(m *Metrics) {
	m.ObserveHTTP("/sessions/{session_id}", "GET", 200, 3*time.Millisecond)
	m.ObserveRESP("TM.VALIDATE", true, time.Millisecond)
	m.ObserveRESP("FLUSHALL", false, time.Millisecond)
	m.RESPConnOpened()
	m.Validation("valid")
	m.CountValidation(ValidationRevoked)
	m.SessionOp("create", "ok")
	m.SessionOps("expire", "ok", 3)
	m.QuotaRejection()
	m.SweeperRemoved("expired", 3)
	m.ObserveSweepRound(200 * time.Microsecond)
	m.ObserveFsync(2*time.Millisecond, 17)
	m.ObserveSnapshot(1500*time.Millisecond, true)
	m.ObserveSnapshot(time.Second, false)
	m.SetRecoveryDuration(4 * time.Second)
	m.AuthCache(true)
	m.AuthCache(false)
	m.AuthFailure("bad_secret")
	m.Argon2(40 * time.Millisecond)
	m.RateLimitRejection()
	m.BruteForceBlock()
	m.AntiReplayRejection("replay")
	m.TLSReloadFailure("server")
	m.SetTLSCertExpiry("server", time.Unix(1900000000, 0))
	m.AuditRecord()
	m.AuditDropped(2)
	m.SetReady(true)
	m.SetMaintenance(false)
	m.SetSessionSource(func() (int, int) { return 7, 2 })
	m.SetWALSource(func() WALStats {
		return WALStats{BytesWritten: 4096, Segments: 3, LastSeq: 99, RecordsByType: map[string]uint64{"SESSION_PUT": 80, "SESSION_TOUCH": 19}}
	})
	m.SetBruteForceSource(func() int { return 1 })
	m.SetAuditSource(func() (uint64, uint64) { return 5, 0 })
}

// scrape fetches the handler's text exposition and parses it.
func scrape(t *testing.T, h http.Handler) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics?ignored=1", nil)
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("scrape status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return fams, body
}

func TestScrape_HasEveryMetricOfTheSpecWithItsTypeAndLabels(t *testing.T) {
	m := New(Options{Version: "1.2.3", Commit: "abc123", GoVersion: "go1.26.8"})
	exercise(m)
	fams, _ := scrape(t, m.Handler())
	for name, typ := range specNames {
		f, ok := fams[name]
		if !ok {
			t.Errorf("%s missing from the scrape", name)
			continue
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
		}
		if len(f.GetMetric()) == 0 {
			t.Errorf("%s: no series", name)
			continue
		}
		want := specLabels[name]
		for _, s := range f.GetMetric() {
			var got []string
			for _, l := range s.GetLabel() {
				got = append(got, l.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: labels %v, want %v", name, got, want)
			}
		}
	}
	for _, std := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := fams[std]; !ok {
			t.Errorf("standard collector metric %s missing", std)
		}
	}
	for name := range fams {
		if (strings.HasPrefix(name, "tokmesh_cluster_") || strings.HasPrefix(name, "tokmesh_replication_") ||
			strings.HasPrefix(name, "tokmesh_revoke_replication_") || strings.HasPrefix(name, "tokmesh_rebalance_")) &&
			!standaloneCluster[name] {
			t.Errorf("%s exported by a standalone node", name)
		}
	}
}

// standaloneCluster are the cluster metrics a standalone node exports
// (SetClusterSource): the ones GET /admin/v1/status gives a value.
var standaloneCluster = map[string]bool{"tokmesh_cluster_partitions": true, "tokmesh_cluster_partitions_unavailable": true,
	"tokmesh_cluster_is_leader": true, "tokmesh_cluster_lease_valid": true}

func TestScrape_StandaloneClusterSeriesOnlyOnceKnown(t *testing.T) {
	m := New(Options{})
	fams, _ := scrape(t, m.Handler())
	if _, ok := fams["tokmesh_cluster_partitions"]; ok {
		t.Fatal("partitions exported without a source")
	}
	known, unavailable := false, 0
	m.SetClusterSource(func() (ClusterView, bool) {
		return ClusterView{Primary: 256, Unavailable: unavailable, Leader: true, LeaseValid: true}, known
	})
	fams, _ = scrape(t, m.Handler())
	if len(fams) == 0 || fams["tokmesh_cluster_partitions"] != nil || fams["tokmesh_cluster_lease_valid"] != nil {
		t.Fatal("cluster series exported before the view is known")
	}
	known = true
	fams, _ = scrape(t, m.Handler())
	if f := fams["tokmesh_cluster_partitions"]; f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 2 {
		t.Fatalf("tokmesh_cluster_partitions: %v", f)
	}
	if p, r := series(fams, "tokmesh_cluster_partitions", "role", "primary"), series(fams, "tokmesh_cluster_partitions", "role", "replica"); p != 256 || r != 0 {
		t.Fatalf("primary %v replica %v", p, r)
	}
	for name, want := range map[string]float64{"tokmesh_cluster_partitions_unavailable": 0, "tokmesh_cluster_is_leader": 1,
		"tokmesh_cluster_lease_valid": 1} {
		if f := fams[name]; f == nil || f.GetType() != dto.MetricType_GAUGE || value(f.GetMetric()[0]) != want {
			t.Fatalf("%s: %v, want %v", name, f, want)
		}
	}
	unavailable = 256
	fams, _ = scrape(t, m.Handler())
	if got := value(fams["tokmesh_cluster_partitions_unavailable"].GetMetric()[0]); got != 256 {
		t.Fatalf("unavailable while not ready: %v", got)
	}
	for name := range fams {
		if strings.HasPrefix(name, "tokmesh_cluster_") && !standaloneCluster[name] {
			t.Errorf("%s exported", name)
		}
	}
}

func TestAudit_SourceAndPushedCountsAdd(t *testing.T) {
	m := New(Options{})
	m.AuditRecord()
	m.AuditDropped(2)
	m.SetAuditSource(func() (uint64, uint64) { return 40, 3 })
	fams, _ := scrape(t, m.Handler())
	if w, d := value(fams["tokmesh_audit_records_total"].GetMetric()[0]), value(fams["tokmesh_audit_dropped_total"].GetMetric()[0]); w != 41 || d != 5 {
		t.Fatalf("records %v dropped %v", w, d)
	}
}

func TestCountValidation_MatchesValidationByName(t *testing.T) {
	m := New(Options{})
	for i, name := range validationResults {
		m.CountValidation(ValidationResult(i))
		m.Validation(name)
	}
	m.CountValidation(ValidationResult(200)) // out of range: dropped
	fams, _ := scrape(t, m.Handler())
	for _, name := range validationResults {
		if got := series(fams, "tokmesh_token_validations_total", "result", name); got != 2 {
			t.Errorf("%s = %v, want 2", name, got)
		}
	}
	m.SessionOps("expire", "ok", 7)
	m.SessionOps("expire", "ok", 0)
	fams, _ = scrape(t, m.Handler())
	if got := series(fams, "tokmesh_session_operations_total", "op", "expire"); got != 7 {
		t.Errorf("expire ops = %v", got)
	}
}

func TestScrape_FreshNodeHasEnumSeriesAtZeroAndNoCertExpiry(t *testing.T) {
	m := New(Options{})
	fams, _ := scrape(t, m.Handler())
	for name, n := range map[string]int{
		"tokmesh_token_validations_total":     5,
		"tokmesh_auth_failures_total":         7,
		"tokmesh_antireplay_rejections_total": 4,
		"tokmesh_tls_reload_failures_total":   2,
		"tokmesh_sweeper_removed_total":       2,
		"tokmesh_wal_records_total":           6,
		"tokmesh_session_operations_total":    6, // op × "ok"
	} {
		if got := len(fams[name].GetMetric()); got != n {
			t.Errorf("%s: %d series on a fresh node, want %d", name, got, n)
		}
	}
	// A 0 expiry would fire the "certificate expires in < 14 days" alert.
	if _, ok := fams["tokmesh_tls_cert_expiry_timestamp_seconds"]; ok {
		t.Error("cert expiry exported before any certificate was loaded")
	}
	for _, name := range []string{"tokmesh_sessions_active", "tokmesh_wal_last_seq", "tokmesh_wal_fsync_failures_total", "tokmesh_ready"} {
		if f, ok := fams[name]; !ok || value(f.GetMetric()[0]) != 0 {
			t.Errorf("%s: want present at 0 without a source", name)
		}
	}
}

func TestScrape_PullValuesComeFromSourcesAtScrapeTime(t *testing.T) {
	m := New(Options{})
	live := 7
	m.SetSessionSource(func() (int, int) { return live, 2 })
	m.SetWALSource(func() WALStats {
		return WALStats{BytesWritten: 4096, Segments: 3, LastSeq: 99, FsyncFailures: 1,
			RecordsByType: map[string]uint64{"SESSION_PUT": 80, "SESSION_TOUCH": 19}}
	})
	m.SetBruteForceSource(func() int { return 4 })
	m.SetAuthCacheSource(func() (uint64, uint64) { return 30, 5 })
	live = 11
	fams, _ := scrape(t, m.Handler())
	for name, want := range map[string]float64{
		"tokmesh_sessions_active":          11,
		"tokmesh_session_tombstones":       2,
		"tokmesh_wal_bytes_written_total":  4096,
		"tokmesh_wal_segments":             3,
		"tokmesh_wal_last_seq":             99,
		"tokmesh_wal_fsync_failures_total": 1,
		"tokmesh_bruteforce_blocked_ips":   4,
		"tokmesh_auth_cache_hits_total":    30,
		"tokmesh_auth_cache_misses_total":  5,
	} {
		if got := value(fams[name].GetMetric()[0]); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := series(fams, "tokmesh_wal_records_total", "type", "SESSION_PUT"); got != 80 {
		t.Errorf("wal records SESSION_PUT = %v", got)
	}
	m.SetWALSource(nil) // cleared source: zeros, no panic
	scrape(t, m.Handler())
}

func TestHistograms_UseTheSpecBuckets(t *testing.T) {
	m := New(Options{})
	exercise(m)
	fams, _ := scrape(t, m.Handler())
	spec := []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	for name, typ := range specNames {
		if typ != dto.MetricType_HISTOGRAM || !strings.HasSuffix(name, "_seconds") {
			continue
		}
		var got []float64
		for _, b := range fams[name].GetMetric()[0].GetHistogram().GetBucket() {
			got = append(got, b.GetUpperBound())
		}
		want := spec
		if name == "tokmesh_snapshot_duration_seconds" {
			want = append(slices.Clone(spec), 5, 10, 30, 60, 120, 300)
		}
		want = append(slices.Clone(want), math.Inf(1)) // the text format always has le="+Inf"
		if !slices.Equal(got, want) {
			t.Errorf("%s buckets %v, want %v", name, got, want)
		}
	}
}

func TestBuildInfo_IsOneWithVersionCommitGoVersion(t *testing.T) {
	m := New(Options{Version: "1.2.3", Commit: "abc123", GoVersion: "go1.26.8"})
	_, body := scrape(t, m.Handler())
	if !strings.Contains(body, `tokmesh_build_info{commit="abc123",go_version="go1.26.8",version="1.2.3"} 1`) {
		t.Fatalf("build_info line missing:\n%s", grepLines(body, "tokmesh_build_info"))
	}
	_, body = scrape(t, New(Options{}).Handler())
	if !regexp.MustCompile(`tokmesh_build_info\{commit="unknown",go_version="go[^"]+",version="unknown"\} 1`).MatchString(body) {
		t.Fatalf("defaults: %s", grepLines(body, "tokmesh_build_info"))
	}
}

func TestLabels_NoForbiddenNamesAndLowerSnake(t *testing.T) {
	m := New(Options{})
	exercise(m)
	fams, _ := scrape(t, m.Handler())
	forbidden := regexp.MustCompile(`(?i)(session|user|token|hash|key|ip|addr|client|peer_ip)`)
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for name, f := range fams {
		if !strings.HasPrefix(name, "tokmesh_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if forbidden.MatchString(l.GetName()) || !snake.MatchString(l.GetName()) {
					t.Errorf("%s: label %q", name, l.GetName())
				}
			}
		}
	}
}

func TestObserveHTTP_AllocationFreeAfterWarmUp(t *testing.T) {
	m := New(Options{})
	m.ObserveHTTP("/tokens/validate", "POST", 200, time.Millisecond)
	if a := testing.AllocsPerRun(1000, func() {
		m.ObserveHTTP("/tokens/validate", "POST", 200, time.Millisecond)
	}); a != 0 {
		t.Fatalf("ObserveHTTP allocates %v per call", a)
	}
	m.ObserveHTTPSeconds("unmatched", "BREW", 404, 0.001) // folded method
	if a := testing.AllocsPerRun(1000, func() {
		m.ObserveHTTPSeconds("unmatched", "BREW", 404, 0.001)
		m.ObserveRESP("tm.validate", true, time.Millisecond)
		m.ObserveRESP("FLUSHALL", false, time.Millisecond)
		m.Validation("valid")
		m.CountValidation(ValidationUnknown)
		m.SessionOp("touch", "ok")
		m.SessionOps("expire", "ok", 4)
		m.AuthCache(true)
		m.AuthFailure("role")
		m.ObserveFsync(time.Millisecond, 3)
	}); a != 0 {
		t.Fatalf("hot-path methods allocate %v per round", a)
	}
}

func TestCardinality_MethodsRoutesResultsAndCommandsAreBounded(t *testing.T) {
	m := New(Options{})
	for i := range 1000 {
		m.ObserveHTTP(fmt.Sprintf("/r%d", i), fmt.Sprintf("M%d", i), 404, time.Millisecond)
		m.SessionOp("create", fmt.Sprintf("r%d", i))
		m.ObserveRESP(fmt.Sprintf("CMD%d", i), false, time.Millisecond)
		m.Validation(fmt.Sprintf("v%d", i))
		m.AuthFailure(fmt.Sprintf("x%d", i))
	}
	m.ObserveRESP("Tm.VaLiDaTe", true, time.Millisecond)
	fams, _ := scrape(t, m.Handler())
	if n := len(fams["tokmesh_http_requests_total"].GetMetric()); n != maxRoutes+1 {
		t.Errorf("http series %d, want %d", n, maxRoutes+1)
	}
	if got := series(fams, "tokmesh_http_requests_total", "route", "other"); got != 1000-maxRoutes {
		t.Errorf("route other = %v", got)
	}
	if got := series(fams, "tokmesh_http_requests_total", "method", "other"); got != 1000 {
		t.Errorf("method other = %v", got)
	}
	// create: 16 results and "other"; every other op: its "ok" series.
	if n, want := len(fams["tokmesh_session_operations_total"].GetMetric()), maxResults+1+len(sessionOps)-1; n != want {
		t.Errorf("session op series %d, want %d", n, want)
	}
	if got := series(fams, "tokmesh_resp_commands_total", "command", "unknown"); got != 1000 {
		t.Errorf("unknown RESP commands = %v", got)
	}
	if got := series(fams, "tokmesh_resp_commands_total", "command", "tm.validate"); got != 1 {
		t.Errorf("mixed-case command = %v", got)
	}
	if n := len(fams["tokmesh_token_validations_total"].GetMetric()); n != 5 {
		t.Errorf("validation series %d", n)
	}
}

func TestNilMetrics_IsANoOp(t *testing.T) {
	var m *Metrics
	exercise(m)
}

func TestHandler_ServesTextFormat(t *testing.T) {
	m := New(Options{})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics?x=y")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(string(b), "tokmesh_ready 0") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func BenchmarkObserveHTTP(b *testing.B) {
	m := New(Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveHTTP("/tokens/validate", "POST", 200, time.Millisecond)
		}
	})
}

func value(s *dto.Metric) float64 {
	switch {
	case s.GetCounter() != nil:
		return s.GetCounter().GetValue()
	case s.GetGauge() != nil:
		return s.GetGauge().GetValue()
	}
	return -1
}

// series sums the values of name's series whose label has value v.
func series(fams map[string]*dto.MetricFamily, name, label, v string) float64 {
	sum := 0.0
	for _, s := range fams[name].GetMetric() {
		for _, l := range s.GetLabel() {
			if l.GetName() == label && l.GetValue() == v {
				sum += value(s)
			}
		}
	}
	return sum
}

func grepLines(body, sub string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// tokmesh_build_info's commit agrees with GET /admin/v1/status (09 §1):
// without a linker-set commit both report the VCS revision the go tool
// stamped, and "unknown" only when there is none.
func TestBuildInfo_CommitFallsBackToTheStampedVCSRevision(t *testing.T) {
	orig := readBuildInfo
	t.Cleanup(func() { readBuildInfo = orig })
	commitOf := func(o Options) string {
		t.Helper()
		fams, _ := scrape(t, New(o).Handler())
		for _, l := range fams["tokmesh_build_info"].GetMetric()[0].GetLabel() {
			if l.GetName() == "commit" {
				return l.GetValue()
			}
		}
		t.Fatal("tokmesh_build_info has no commit label")
		return ""
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	readBuildInfo = func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}}}, true
	}
	if got := commitOf(Options{Version: "1.0.0"}); got != rev {
		t.Errorf("stamped build: commit %q, want %q", got, rev)
	}
	if got := commitOf(Options{Version: "1.0.0", Commit: "abc123"}); got != "abc123" {
		t.Errorf("linker-set commit: %q, want abc123", got)
	}
	readBuildInfo = func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{}, true }
	if got := commitOf(Options{Version: "1.0.0"}); got != "unknown" {
		t.Errorf("unstamped build: commit %q, want unknown", got)
	}
}
