package httpapi

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
