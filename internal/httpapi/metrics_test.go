package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/metrics"
)

// capGuard admits or denies by capability and remembers what it was asked.
type capGuard struct {
	mu    sync.Mutex
	deny  map[Capability]apierr.Code
	asked []Capability
}

func (g *capGuard) Check(r *http.Request, rt *Route, rid string, own bool) (Caller, *apierr.Error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, rt.Cap)
	if code, ok := g.deny[rt.Cap]; ok {
		return Caller{}, apierr.New(code)
	}
	return Caller{KeyID: "tmak-test", Role: "admin"}, nil
}
func (g *capGuard) TokenFailure(*http.Request, netip.Addr, string) {}

func newMetricsServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Engine == nil {
		ecfg := engine.DefaultConfig(t.TempDir())
		ecfg.Getenv = func(k string) string {
			if k == "TOKMESH_ENCRYPTION_KEY" {
				return strings.Repeat("42", 32)
			}
			return ""
		}
		ecfg.SweepInterval, ecfg.SnapshotInterval, ecfg.SnapshotWALThreshold, ecfg.SnapshotOnClose = -1, 0, 0, false
		e, err := engine.Open(ecfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		cfg.Engine = e
	}
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMetrics_AuthFailureIs401Envelope(t *testing.T) {
	m := metrics.New(metrics.Options{})
	g := &capGuard{deny: map[Capability]apierr.Code{CapMetrics: apierr.AuthNoCredential}}
	srv := newMetricsServer(t, Config{Guard: g, Metrics: m.Handler(), MetricsAuth: true})
	st, env, hdr := call(t, srv, "GET", "/metrics", "")
	if st != 401 || env.Code != "TM-AUTH-4010" || env.Details == nil || hdr.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("%d %+v %v", st, env, hdr)
	}
	if len(g.asked) != 1 || g.asked[0] != CapMetrics {
		t.Fatalf("guard asked for %v, want CapMetrics", g.asked)
	}
}

func TestMetrics_WithAuthAndAllowedRoleServesText(t *testing.T) {
	m := metrics.New(metrics.Options{})
	g := &capGuard{}
	srv := newMetricsServer(t, Config{Guard: g, Metrics: m.Handler(), MetricsAuth: true})
	resp, body := get(t, srv.URL+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "tokmesh_build_info{") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("pipeline headers missing: %v", resp.Header)
	}
}

func TestMetrics_PublicScrapeShowsRequestsMadeThroughTheSameHandler(t *testing.T) {
	m := metrics.New(metrics.Options{})
	g := &capGuard{deny: map[Capability]apierr.Code{CapMetrics: apierr.AuthForbidden}}
	srv := newMetricsServer(t, Config{Guard: g, Metrics: m.Handler(), MetricsAuth: false, OnRequest: m.ObserveHTTPSeconds})

	if st, env, _ := call(t, srv, "POST", "/tokens/validate", `{"token":"an-unknown-token-0001"}`); st != 200 {
		t.Fatalf("validate: %d %+v", st, env)
	}
	if st, _, _ := call(t, srv, "GET", "/no/such/path", ""); st != 404 {
		t.Fatalf("unknown path: %d", st)
	}
	if st, _, _ := call(t, srv, "DELETE", "/sessions", ""); st != 405 {
		t.Fatalf("bad method: %d", st)
	}
	if st, _, _ := call(t, srv, "PUT", "/sessions/tmss-01kmzq3v8y0000000000000000", ""); st != 405 {
		t.Fatalf("bad method: %d", st)
	}
	resp, body := get(t, srv.URL+"/metrics?foo=bar") // query strings are ignored
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("%d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, want := range []string{
		`tokmesh_http_requests_total{method="POST",route="/tokens/validate",status="200"} 1`,
		`tokmesh_http_request_duration_seconds_count{method="POST",route="/tokens/validate"} 1`,
		`tokmesh_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		// 405: the path is known, so the label is its route template (09 §1).
		`tokmesh_http_requests_total{method="DELETE",route="/sessions",status="405"} 1`,
		`tokmesh_http_requests_total{method="PUT",route="/sessions/{session_id}",status="405"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(body, "/no/such/path") || strings.Contains(body, "tmss-01kmzq3v8y") {
		t.Error("an unmatched path became a label value")
	}
	for _, c := range g.asked {
		if c == CapMetrics {
			t.Fatal("the guard was asked for the metrics role although auth is disabled")
		}
	}
	// The scrape itself is reported once the response is done.
	_, body = get(t, srv.URL+"/metrics")
	if !strings.Contains(body, `tokmesh_http_requests_total{method="GET",route="/metrics",status="200"} 1`) {
		t.Errorf("the first scrape was not counted:\n%s", body)
	}
}

func TestMetrics_AbsentWithoutHandlerIs404Envelope(t *testing.T) {
	srv := newMetricsServer(t, Config{Guard: &capGuard{}, MetricsAuth: true})
	st, env, _ := call(t, srv, "GET", "/metrics", "")
	if st != 404 || env.Code != "TM-SYS-4040" {
		t.Fatalf("%d %+v", st, env)
	}
}

func TestMetrics_HeadIs405(t *testing.T) {
	m := metrics.New(metrics.Options{})
	srv := newMetricsServer(t, Config{Guard: &capGuard{}, Metrics: m.Handler()})
	req, _ := http.NewRequest("HEAD", srv.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Fatalf("%d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestOnRequest_ReportsPanicsAs500AndKeepsFlush(t *testing.T) {
	type obs struct {
		route, method string
		status        int
	}
	var mu sync.Mutex
	var got []obs
	h := New(Config{Guard: &capGuard{}, OnRequest: func(route, method string, status int, sec float64) {
		mu.Lock()
		got = append(got, obs{route, method, status})
		mu.Unlock()
	}})
	h.Handle(Route{Name: "boom", Method: "GET", Template: "/boom", Cap: CapPublic}, func(http.ResponseWriter, *request) { panic("boom") })
	h.Handle(Route{Name: "stream", Method: "GET", Template: "/stream", Cap: CapPublic}, func(w http.ResponseWriter, rq *request) {
		w.WriteHeader(http.StatusAccepted)
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush through the status writer: %v", err)
		}
		if _, ok := w.(http.Flusher); !ok {
			t.Error("status writer hides http.Flusher")
		}
		io.WriteString(w, "chunk")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	if st, env, _ := call(t, srv, "GET", "/boom", ""); st != 500 || env.Code != "TM-SYS-5000" {
		t.Fatalf("%d %+v", st, env)
	}
	resp, body := get(t, srv.URL+"/stream")
	if resp.StatusCode != 202 || body != "chunk" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []obs{{"/boom", "GET", 500}, {"/stream", "GET", 202}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("OnRequest saw %v, want %v", got, want)
	}
}
