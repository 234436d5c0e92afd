package httpapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

func TestDebugLevel_OneLinePerRequestWithRouteTemplateOnly(t *testing.T) {
	var buf bytes.Buffer
	h := New(Config{Guard: &localGuard{}, Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/health?probe=secret-looking-value")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	out := buf.String()
	if strings.Count(out, `"msg":"request"`) != 1 || !strings.Contains(out, `"route":"/health"`) || !strings.Contains(out, `"status":200`) {
		t.Fatalf("debug log: %s", out)
	}
	if strings.Contains(out, "secret-looking-value") {
		t.Fatal("query string reached the log")
	}
	// At info, nothing per request.
	buf.Reset()
	h = New(Config{Guard: &localGuard{}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	srv2 := httptest.NewServer(h)
	defer srv2.Close()
	resp, _ = http.Get(srv2.URL + "/health")
	resp.Body.Close()
	if buf.Len() != 0 {
		t.Fatalf("info level logged a request: %s", buf.String())
	}
}

// Requests that match no route (404, 405) get their debug line too, with
// the request ID they were answered with.
func TestDebugLevel_UnmatchedRequestsAreLoggedToo(t *testing.T) {
	var buf bytes.Buffer
	srv := httptest.NewServer(New(Config{Guard: &localGuard{}, Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	defer srv.Close()
	for _, c := range []struct {
		method, path, route string
		status              int
	}{{"GET", "/no/such/route", "unmatched", 404}, {"DELETE", "/health", "/health", 405}} {
		buf.Reset()
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rid := resp.Header.Get("X-Request-Id")
		out := buf.String()
		if resp.StatusCode != c.status || rid == "" || strings.Count(out, `"msg":"request"`) != 1 ||
			!strings.Contains(out, `"route":"`+c.route+`"`) || !strings.Contains(out, `"request_id":"`+rid+`"`) ||
			!strings.Contains(out, fmt.Sprintf(`"status":%d`, c.status)) || strings.Contains(out, "/no/such/route") {
			t.Fatalf("%s %s: %d, debug log: %s", c.method, c.path, resp.StatusCode, out)
		}
	}
}

// refuseGuard knows the caller but refuses the role.
type refuseGuard struct{}

func (refuseGuard) Check(r *http.Request, rt *Route, rid string, own bool) (Caller, *apierr.Error) {
	return Caller{KeyID: "tmak-refused", Role: "metrics"}, apierr.New(apierr.AuthForbidden)
}
func (refuseGuard) TokenFailure(*http.Request, netip.Addr, string) {}

// A refused request's debug line still names the caller's key (09 §2).
func TestDebugLevel_RefusedRequestNamesTheKey(t *testing.T) {
	var buf bytes.Buffer
	srv := httptest.NewServer(New(Config{Guard: refuseGuard{}, Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/cluster/routing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if out := buf.String(); resp.StatusCode != 403 || !strings.Contains(out, `"status":403`) || !strings.Contains(out, `"key_id":"tmak-refused"`) {
		t.Fatalf("%d: %s", resp.StatusCode, out)
	}
}
