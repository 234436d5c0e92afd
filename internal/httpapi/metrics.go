package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"time"
)

// unmatchedRoute is the route label of requests no route matched (404/405),
// so arbitrary paths never become series.
const unmatchedRoute = "unmatched"

// registerMetrics registers GET /metrics when a metrics handler is
// configured; without one the path is unknown (404 TM-SYS-4040, as for
// telemetry.metrics.enabled: false). With MetricsAuth the Guard requires
// the metrics or admin role and its failures are JSON envelopes; without
// it the route is public. Query strings are ignored.
func (h *Handler) registerMetrics() {
	if h.cfg.Metrics == nil {
		return
	}
	cp := CapOpen
	if h.cfg.MetricsAuth {
		cp = CapMetrics
	}
	h.Handle(Route{Name: "metrics", Method: "GET", Template: "/metrics", Cap: cp}, h.serveMetrics)
}

func (h *Handler) serveMetrics(w http.ResponseWriter, rq *request) {
	h.cfg.Metrics.ServeHTTP(w, rq.Request)
}

// observeUnmatched reports the 404/405 handlers to OnRequest and the
// debug line under the route label fn returns: "unmatched" for unknown
// paths (arbitrary paths never become series), the route template for a
// known path asked with another method.
func (h *Handler) observeUnmatched(fn func(http.ResponseWriter, *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The level is hot-reloadable: asked per request, as for routes.
		debug := h.log.Enabled(r.Context(), slog.LevelDebug)
		if h.cfg.OnRequest == nil && !debug {
			fn(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		route := fn(sw, r)
		d := time.Since(start)
		if h.cfg.OnRequest != nil {
			h.cfg.OnRequest(route, r.Method, sw.statusCode(), d.Seconds())
		}
		if debug {
			// The debug line every request gets (09 §2), with the ID the
			// client was answered with; no caller was identified.
			h.log.Debug("request", "request_id", sw.Header().Get("X-Request-Id"), "method", r.Method, "route", route,
				"status", sw.statusCode(), "duration_ms", float64(d.Microseconds())/1000, "key_id", "")
		}
	})
}

// statusWriter records the response status for OnRequest. Unwrap keeps
// http.ResponseController (Flush, Hijack, deadlines) working through it;
// Flush and ReadFrom are forwarded so plain type assertions and sendfile
// keep working too.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 { // 1xx are interim responses
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ReadFrom lets io.Copy use the underlying writer's ReaderFrom (sendfile).
func (s *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return io.Copy(s.ResponseWriter, r)
}

// Flush implements http.Flusher for callers that type-assert instead of
// using http.ResponseController.
func (s *statusWriter) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer (http.ResponseController).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// statusCode is the status sent, 200 when the handler wrote nothing (what
// net/http sends then).
func (s *statusWriter) statusCode() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
