package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedNode != nil {
		sharedNode.srv.Close()
	}
	if nodeDir != "" {
		os.RemoveAll(nodeDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sink is a fake server: every request is answered at once (or after
// delay), and it counts what it received.
type sink struct {
	got   *atomic.Int64
	delay time.Duration
	// stallAt, when > 0, makes the n-th request overall stall for stall.
	stallAt *atomic.Int64
	stall   time.Duration
	// stallOnce, when set, stalls the first request received after
	// stallFrom (independent of scheduling skew at the start of a run).
	stallOnce *atomic.Bool
	stallFrom time.Time
	queued    int
}

func (s *sink) ready() error                    { return nil }
func (s *sink) send(*request)                   { s.queued++ }
func (s *sink) flush() error                    { return nil }
func (s *sink) broken()                         {}
func (s *sink) abort()                          {}
func (s *sink) close()                          {}
func (s *sink) created(*request, result) string { return "" }
func (s *sink) receive(*request) (result, error) {
	s.queued--
	n := s.got.Add(1)
	if s.stallAt != nil && n == s.stallAt.Load() {
		time.Sleep(s.stall)
	}
	if s.stallOnce != nil && time.Now().After(s.stallFrom) && s.stallOnce.CompareAndSwap(false, true) {
		time.Sleep(s.stall)
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	return result{out: outOK}, nil
}

func sinkSide(got *atomic.Int64, mk func() *sink) *side {
	cfg := DefaultConfig()
	cfg.Preload = 0
	return &side{name: "sink", addr: "sink", pool: newPool("test", &cfg, false), newDriver: func(int) driver {
		s := mk()
		s.got = got
		return s
	}}
}

func sinkConfig(rate float64, c int, d time.Duration) *Config {
	cfg := DefaultConfig()
	cfg.Scenario, cfg.Protocol, cfg.Target, cfg.APIKey = ScenarioCreate, ProtoRESP, "127.0.0.1:1", "k:s"
	cfg.Preload, cfg.Concurrency, cfg.Rate, cfg.Duration, cfg.Warmup = 0, c, rate, d, 0
	return &cfg
}

func TestOpenLoop_AchievedRateWithin2PercentOfTarget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		c     int
		delay time.Duration
	}{
		{"instant sink", 4000, 8, 0},
		{"slow sink, enough concurrency", 2000, 16, 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got atomic.Int64
			cfg := sinkConfig(tc.rate, tc.c, 1500*time.Millisecond)
			m, err := measure(context.Background(), cfg, mix{}, sinkSide(&got, func() *sink { return &sink{delay: tc.delay} }), Output{})
			if err != nil {
				t.Fatal(err)
			}
			res := m.result()
			if dev := math.Abs(res.ThroughputRPS-tc.rate) / tc.rate; dev > 0.02 {
				t.Fatalf("achieved %.1f req/s for a target of %.0f (%.2f%% off)", res.ThroughputRPS, tc.rate, dev*100)
			}
			if res.ErrorCount() != 0 {
				t.Fatalf("errors: %v", res.Errors)
			}
		})
	}
}

// A stall of the server delays every request scheduled during it, and
// open-loop latencies count from the schedule: the stall shows in the
// high percentiles instead of being hidden (coordinated omission).
func TestOpenLoop_StallShowsInPercentiles(t *testing.T) {
	var got, stallAt atomic.Int64
	stallAt.Store(200)
	cfg := sinkConfig(1000, 1, time.Second)
	m, err := measure(context.Background(), cfg, mix{}, sinkSide(&got, func() *sink {
		return &sink{stallAt: &stallAt, stall: 200 * time.Millisecond}
	}), Output{})
	if err != nil {
		t.Fatal(err)
	}
	l := m.result().LatencyMS
	// ~200 of ~1000 requests were due during the stall: p90 ≈ 100 ms.
	if l.P90 < 50 || l.Max < 150 {
		t.Fatalf("stall hidden: %+v", l)
	}
	// A closed loop records the stall once. (The stall is timed from the
	// run's start, not the n-th request: on a loaded machine early requests
	// may fall before the measured phase begins.)
	got.Store(0)
	var stalled atomic.Bool
	from := time.Now().Add(150 * time.Millisecond)
	cfg = sinkConfig(0, 1, 800*time.Millisecond)
	m, err = measure(context.Background(), cfg, mix{}, sinkSide(&got, func() *sink {
		return &sink{stallOnce: &stalled, stallFrom: from, stall: 200 * time.Millisecond}
	}), Output{})
	if err != nil {
		t.Fatal(err)
	}
	if l := m.result().LatencyMS; l.Max < 150 || l.P90 > 50 {
		t.Fatalf("closed loop: %+v", l)
	}
}

func TestRequestsFlag_StopsAtExactCount(t *testing.T) {
	var got atomic.Int64
	cfg := sinkConfig(0, 4, 0)
	cfg.Requests = 12345
	m, err := measure(context.Background(), cfg, mix{}, sinkSide(&got, func() *sink { return &sink{} }), Output{})
	if err != nil {
		t.Fatal(err)
	}
	if r := m.result(); r.Requests != 12345 {
		t.Fatalf("measured %d requests, want 12345", r.Requests)
	}
}

func TestHistogramMerge_AcrossWorkers(t *testing.T) {
	m := &measurement{cfg: sinkConfig(0, 3, time.Second)}
	m.startWall = time.Unix(0, 0)
	m.endWall = m.startWall.Add(2 * time.Second)
	// Worker i records 1000 validations of (i·1000 + 1 … i·1000 + 1000) µs
	// and worker 2 also 10 creates of 50 ms.
	for i := 0; i < 3; i++ {
		w := &worker{id: i, m: m}
		for v := 1; v <= 1000; v++ {
			recordNS(w.hist(opValidate), int64(i*1000+v)*1000)
			w.reqs[opValidate]++
		}
		if i == 2 {
			for k := 0; k < 10; k++ {
				recordNS(w.hist(opCreate), 50*int64(time.Millisecond))
				w.reqs[opCreate]++
			}
			w.countErr(opCreate, []byte("TM-SESS-4002"))
		}
		m.workers = append(m.workers, w)
	}
	r := m.result()
	v := r.Operations["validate"]
	if v.Requests != 3000 || r.Requests != 3010 || r.Operations["create"].Requests != 10 {
		t.Fatalf("counts: %+v", r)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= want*0.001+0.001 }
	if !near(v.LatencyMS.P50, 1.5) || !near(v.LatencyMS.P90, 2.7) || !near(v.LatencyMS.Max, 3.0) || !near(v.LatencyMS.Mean, 1.5) {
		t.Fatalf("merged validate percentiles: %+v", v.LatencyMS)
	}
	if !near(r.LatencyMS.Max, 50) || !near(r.LatencyMS.P50, 1.505) {
		t.Fatalf("total: %+v", r.LatencyMS)
	}
	if v.ThroughputRPS != 1500 || r.ThroughputRPS != 1505 {
		t.Fatalf("throughput: %v %v", v.ThroughputRPS, r.ThroughputRPS)
	}
	if r.Errors["TM-SESS-4002"] != 1 || r.Operations["create"].Errors["TM-SESS-4002"] != 1 || len(v.Errors) != 0 {
		t.Fatalf("errors: %v / %v", r.Errors, r.Operations["create"].Errors)
	}
	// Out-of-range samples are clamped, never dropped.
	h := newHist()
	recordNS(h, 10)                   // 10 ns → 1 µs
	recordNS(h, int64(2*time.Minute)) // → 60 s
	if h.TotalCount() != 2 || h.Max() < histMaxUS {
		t.Fatalf("clamping: count %d max %d", h.TotalCount(), h.Max())
	}
}

var rfc3339ms = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func sampleReport() *Report {
	lat := Latency{P50: 0.3, P90: 0.5, P99: 1.2, P999: 3.4, Max: 9.9, Mean: 0.35}
	stale := int64(0)
	m := Measurement{Requests: 1000, Errors: map[string]int64{"TM-TOKN-4010": 2}, ThroughputRPS: 500, LatencyMS: lat,
		Operations:         map[string]OpReport{"validate": {Requests: 1000, Errors: map[string]int64{}, ThroughputRPS: 500, LatencyMS: lat}},
		StaleValidAfterAck: &stale, RevocationVisibility: &Visibility{Count: 10, Latency: lat}}
	start := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.FixedZone("X", 3600))
	r := &Report{Version: "1.2.3", Scenario: ScenarioRevokeStorm, Protocol: ProtoRESP, Target: "127.0.0.1:6379",
		Concurrency: 50, Rate: 0, DurationS: 2, StartedAt: fmtTime(start), FinishedAt: fmtTime(start.Add(2 * time.Second)), Measurement: m}
	rm := m
	rm.ThroughputRPS = 1000
	rm.LatencyMS.P99 = 0.8
	r.Redis = &RedisReport{Target: "127.0.0.1:6390", DurationS: 2, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Measurement: rm}
	r.Ratio = ratioOf(&r.Measurement, &r.Redis.Measurement)
	return r
}

func TestReport_JSONHasEverySpecField(t *testing.T) {
	r := sampleReport()
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	checkMeasurementFields(t, "report", doc)
	for _, k := range []string{"version", "scenario", "protocol", "target", "concurrency", "rate", "duration_s", "started_at", "finished_at",
		"stale_valid_after_ack", "redis", "ratio"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	for _, k := range []string{"started_at", "finished_at"} {
		if s, _ := doc[k].(string); !rfc3339ms.MatchString(s) {
			t.Errorf("%s = %q, want RFC 3339 UTC with milliseconds", k, s)
		}
	}
	if doc["started_at"] != "2026-11-26T09:00:00.123Z" {
		t.Errorf("started_at not converted to UTC: %v", doc["started_at"])
	}
	redis, _ := doc["redis"].(map[string]any)
	checkMeasurementFields(t, "redis", redis)
	ratio, _ := doc["ratio"].(map[string]any)
	if ratio["throughput"] != 0.5 || ratio["p99"] != 1.5 {
		t.Errorf("ratio: %v", ratio)
	}
	vis, _ := doc["revocation_visibility_ms"].(map[string]any)
	for _, k := range []string{"count", "p50", "p90", "p99", "p999", "max", "mean"} {
		if _, ok := vis[k]; !ok {
			t.Errorf("revocation_visibility_ms has no %q", k)
		}
	}
	back, err := ReadReport(path)
	if err != nil || back.Ratio.P99 != 1.5 || back.Operations["validate"].LatencyMS.P999 != 3.4 {
		t.Fatalf("round trip: %+v %v", back, err)
	}

	// Scenarios other than revoke-storm leave the storm fields out; a run
	// without Redis leaves redis and ratio out.
	r.StaleValidAfterAck, r.RevocationVisibility, r.Redis, r.Ratio = nil, nil, nil, nil
	b, _ := json.Marshal(r)
	for _, k := range []string{"stale_valid_after_ack", "revocation_visibility_ms", `"redis"`, `"ratio"`} {
		if strings.Contains(string(b), k) {
			t.Errorf("%s present in %s", k, b)
		}
	}
}

func checkMeasurementFields(t *testing.T, where string, doc map[string]any) {
	t.Helper()
	for _, k := range []string{"requests", "errors", "throughput_rps", "latency_ms", "operations"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("%s has no %q", where, k)
		}
	}
	checkLatency := func(w string, v any) {
		l, _ := v.(map[string]any)
		for _, k := range []string{"p50", "p90", "p99", "p999", "max", "mean"} {
			if _, ok := l[k].(float64); !ok {
				t.Errorf("%s latency_ms has no %q", w, k)
			}
		}
	}
	checkLatency(where, doc["latency_ms"])
	ops, _ := doc["operations"].(map[string]any)
	if len(ops) == 0 {
		t.Errorf("%s: no operations", where)
	}
	for name, o := range ops {
		om, _ := o.(map[string]any)
		for _, k := range []string{"requests", "errors", "throughput_rps", "latency_ms"} {
			if _, ok := om[k]; !ok {
				t.Errorf("%s operation %s has no %q", where, name, k)
			}
		}
		checkLatency(where+"."+name, om["latency_ms"])
	}
}

func TestCompare_RatiosAgainstAnEarlierReport(t *testing.T) {
	prev := sampleReport()
	cur := sampleReport()
	cur.ThroughputRPS = 750
	cur.LatencyMS.P99 = 0.6
	cur.Operations = map[string]OpReport{
		"validate": {Requests: 1, ThroughputRPS: 1000, LatencyMS: Latency{P99: 2.4}},
		"create":   {Requests: 1, ThroughputRPS: 5},
	}
	cur.Redis.ThroughputRPS = 2000
	rows := Compare(prev, cur)
	got := map[string]CompareRow{}
	for _, r := range rows {
		got[r.Metric] = r
	}
	for metric, want := range map[string]float64{
		"throughput_rps": 1.5, "p99_ms": 0.5, "validate.throughput_rps": 2, "validate.p99_ms": 2,
		"redis.throughput_rps": 2, "p50_ms": 1,
	} {
		if got[metric].Ratio != want {
			t.Errorf("%s: ratio %v, want %v (%+v)", metric, got[metric].Ratio, want, got[metric])
		}
	}
	if _, ok := got["create.throughput_rps"]; ok {
		t.Error("an operation missing from the earlier report was compared")
	}
	if got["errors"].Ratio != 1 {
		t.Errorf("errors ratio: %+v", got["errors"])
	}
	var sb strings.Builder
	WriteCompare(&sb, "old.json", prev, rows)
	if !strings.Contains(sb.String(), "throughput_rps") || !strings.Contains(sb.String(), "1.500x") {
		t.Fatalf("table:\n%s", sb.String())
	}
	// TokMesh/Redis ratio of one run.
	if r := ratioOf(&Measurement{ThroughputRPS: 90, LatencyMS: Latency{P99: 3}}, &Measurement{ThroughputRPS: 100, LatencyMS: Latency{P99: 2}}); r.Throughput != 0.9 || r.P99 != 1.5 {
		t.Fatalf("ratioOf: %+v", r)
	}
	if r := ratioOf(&Measurement{ThroughputRPS: 90}, &Measurement{}); r.Throughput != 0 || r.P99 != 0 {
		t.Fatalf("ratioOf with an empty Redis side: %+v", r)
	}
}

func TestConfig_UsageErrors(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.APIKey = "k:s"
		return c
	}
	for name, mod := range map[string]func(*Config){
		"scenario":             func(c *Config) { c.Scenario = "soak" },
		"protocol":             func(c *Config) { c.Protocol = "grpc" },
		"no api key":           func(c *Config) { c.APIKey = "" },
		"http target for resp": func(c *Config) { c.Protocol, c.Target = ProtoRESP, "http://127.0.0.1:6379" },
		"resp target for http": func(c *Config) { c.Target = "127.0.0.1:5080" },
		"https scheme mismatch": func(c *Config) {
			c.Protocol, c.Target = ProtoHTTPS, "http://127.0.0.1:5443"
		},
		"concurrency":          func(c *Config) { c.Concurrency = 0 },
		"rate":                 func(c *Config) { c.Rate = -1 },
		"no stop":              func(c *Config) { c.Duration, c.Requests = 0, 0 },
		"ttl fraction":         func(c *Config) { c.TTL = 1500 * time.Millisecond },
		"invalid ratio":        func(c *Config) { c.InvalidRatio = 1.5 },
		"pipeline over http":   func(c *Config) { c.Pipeline = 16 },
		"pipeline zero":        func(c *Config) { c.Protocol, c.Target, c.Pipeline = ProtoRESP, "", 0 },
		"max error rate":       func(c *Config) { c.MaxErrorRate = 2 },
		"redis password alone": func(c *Config) { c.RedisPassword = "x" },
		"redis addr":           func(c *Config) { c.TargetRedis = "localhost" },
		"cert without key":     func(c *Config) { c.Protocol, c.Target, c.CertFile = ProtoHTTPS, "", "c.pem" },
		"ca over plain http":   func(c *Config) { c.CAFile = "ca.pem" },
		"validate no preload":  func(c *Config) { c.Preload = 0 },
		"storm c1":             func(c *Config) { c.Scenario, c.Concurrency = ScenarioRevokeStorm, 1 },
		"mix unknown op":       func(c *Config) { c.Scenario, c.Mix = ScenarioMixed, "validate=1,list=1" },
		"mix zero":             func(c *Config) { c.Scenario, c.Mix = ScenarioMixed, "validate=0" },
		"mix bad weight":       func(c *Config) { c.Scenario, c.Mix = ScenarioMixed, "validate=x" },
	} {
		c := base()
		mod(&c)
		_, err := Run(context.Background(), c, Output{})
		if ExitCode(err) != ExitUsage {
			t.Errorf("%s: exit %d (%v), want 64", name, ExitCode(err), err)
		}
	}
	c := base()
	if _, err := c.normalize(); err != nil || c.Target != "http://127.0.0.1:5080" {
		t.Fatalf("defaults: %v %q", err, c.Target)
	}
	c = base()
	c.Protocol, c.Target = ProtoRESP, "resp://10.0.0.1:7000"
	if _, err := c.normalize(); err != nil || c.Target != "10.0.0.1:7000" {
		t.Fatalf("resp:// target: %v %q", err, c.Target)
	}
	m, err := parseMix(" validate=90, create=5,touch=3,renew=1,revoke=1")
	if err != nil || m[opValidate] != 90 || m[opRevoke] != 1 || m.total() != 100 {
		t.Fatalf("mix: %v %v", m, err)
	}
}

func TestExitCode(t *testing.T) {
	if ExitCode(nil) != 0 || ExitCode(errors.New("x")) != 1 || ExitCode(usageErr("x")) != 64 ||
		ExitCode(unavailableErr(errors.New("x"))) != 69 || ExitCode(failedErr("x")) != 1 {
		t.Fatal("exit codes")
	}
}

// The RESP request encoding is what a Redis server parses.
func TestRESPEncoding_TokMeshAndRedisCommands(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Preload, cfg.Users = 4, 2
	tm := newPool("r1", &cfg, false)
	rd := newPool("r1", &cfg, true)
	tm.tokens[1], tm.ids[1] = "tmtk_abc", "tmss-1"
	d := newRESPDriver(dialer{}, tm, false, &cfg, 7, nil)
	r := newRESPDriver(dialer{}, rd, true, &cfg, 7, nil)
	enc := func(d *respDriver, rq request) string {
		d.send(&rq)
		return string(d.buf)
	}
	for _, tc := range []struct {
		d    *respDriver
		rq   request
		want string
	}{
		{d, request{op: opValidate, idx: 1}, "*2\r\n$11\r\nTM.VALIDATE\r\n$8\r\ntmtk_abc\r\n"},
		{d, request{op: opRevoke, idx: 1}, "*2\r\n$9\r\nTM.REVOKE\r\n$6\r\ntmss-1\r\n"},
		{d, request{op: opRenew, idx: 1}, "*3\r\n$8\r\nTM.RENEW\r\n$6\r\ntmss-1\r\n$3\r\n600\r\n"},
		{r, request{op: opValidate, idx: 1}, "*2\r\n$3\r\nGET\r\n$14\r\ntmbench:r1:s:1\r\n"},
		{r, request{op: opRevoke, idx: 1}, "*2\r\n$3\r\nDEL\r\n$14\r\ntmbench:r1:s:1\r\n"},
		{r, request{op: opTouch, idx: 0}, "*3\r\n$6\r\nEXPIRE\r\n$14\r\ntmbench:r1:s:0\r\n$3\r\n600\r\n"},
		{r, request{op: opCreate, seq: 9}, "*5\r\n$3\r\nSET\r\n$16\r\ntmbench:r1:n:7:9\r\n$256\r\n" + strings.Repeat("v", 256) + "\r\n$2\r\nEX\r\n$3\r\n600\r\n"},
	} {
		if got := enc(tc.d, tc.rq); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.rq.op, got, tc.want)
		}
	}
	if got := string(appendCreateJSON(nil, tm, 3)); got != `{"user_id":"bench-r1-u3","ttl_seconds":600,"data":{"tenant":"acme","idp":"tokmesh-bench"}}` {
		t.Errorf("create JSON: %s", got)
	}
}

func TestClassifyEnvelope(t *testing.T) {
	for _, tc := range []struct {
		body     string
		validate bool
		out      outcome
		code     string
	}{
		{`{"code":"OK","message":"success","request_id":"r","timestamp":1,"data":{"valid":true,"session":{}}}`, true, outOK, ""},
		{`{"code":"OK","message":"success","request_id":"r","timestamp":1,"data":{"valid":false,"error":{"code":"TM-TOKN-4012","message":"x"}}}`, true, outInvalid, "TM-TOKN-4012"},
		{`{"code":"TM-SYS-4290","message":"rate limit","request_id":"r","timestamp":1,"details":{}}`, true, outError, "TM-SYS-4290"},
		{`{"code":"OK","message":"success","data":{"session_id":"tmss-1"}}`, false, outOK, ""},
		{`<html>bad gateway</html>`, false, outError, "HTTP-502"},
	} {
		res := classifyEnvelope(502, []byte(tc.body), tc.validate)
		if res.out != tc.out || string(res.code) != tc.code {
			t.Errorf("%s: %v %q", tc.body, res.out, res.code)
		}
	}
}
