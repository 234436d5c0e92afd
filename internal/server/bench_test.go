package server

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// benchWriter is the least a handler needs from a ResponseWriter, so the
// benchmark measures TokMesh's per-request work, not net/http's.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(s int)   { w.status = s }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// BenchmarkHTTPValidateHandler runs POST /tokens/validate through the
// server's full handler (routing, request ID, readiness, API-key guard,
// business gate, body limit, decode, engine, envelope, metrics) without
// the network: ns/op and allocs/op of everything TokMesh adds to
// net/http. scripts/bench-http.sh measures the whole thing over wrk.
func BenchmarkHTTPValidateHandler(b *testing.B) {
	dir := b.TempDir()
	n := startReloadNode(b, reloadYAML(filepath.Join(dir, "data"), filepath.Join(dir, "admin.sock"), 100, "warn", "", "interval"))
	st, m := n.do("POST", "/admin/v1/keys", "", `{"role":"validator","rate_limit":1000000}`)
	if st != 201 {
		b.Fatalf("key: %d %v", st, m)
	}
	key := m["data"].(map[string]any)["api_key"].(string)
	st, m = n.do("POST", "/sessions", "", `{"user_id":"u-1001","data":{"tenant":"acme","realm":"employees","idp":"saml-corp","mfa":"totp","locale":"en-US","client":"portal-web"}}`)
	if st != 201 {
		b.Fatalf("session: %d %v", st, m)
	}
	body := []byte(`{"token":"` + m["data"].(map[string]any)["token"].(string) + `"}`)
	h := n.srv.handler(n.srv.tcpGuard, false)
	auth := "Bearer " + key
	rd := bytes.NewReader(nil)
	w := &benchWriter{h: http.Header{}}
	connCtx := context.WithValue(context.Background(), connInfoKey{}, &connInfo{peer: netip.MustParseAddrPort("127.0.0.1:40000")})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rd.Reset(body)
		// One keep-alive connection: the context a listener's ConnContext gives.
		r, _ := http.NewRequestWithContext(connCtx, "POST", "http://127.0.0.1:5080/tokens/validate", rd)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header["Authorization"] = []string{auth}
		r.Header["Content-Type"] = []string{"application/json"}
		clear(w.h)
		w.status, w.n = 0, 0
		h.ServeHTTP(w, r)
		if w.status != 200 || w.n < 500 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
	if !strings.Contains(w.h.Get("Content-Type"), "json") {
		b.Fatal("no JSON content type")
	}
}
