package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	srvToken = "tmtk_AbC-123_xyz"
	apiSec   = "tmas_3Kf9ZqLmN0pQrStUvWxYz0123456789AbCdEfGhIj"
)

// leakRE finds anything the redactor should have removed.
var leakRE = regexp.MustCompile(`tmtk_[A-Za-z0-9_-]|tmas_[0-9A-Za-z]`)

// refRE is the specification's pattern, used as the reference implementation.
var refRE = regexp.MustCompile(`tmtk_[A-Za-z0-9_-]+|tmas_[0-9A-Za-z]+`)

func refRedact(s string) string {
	return refRE.ReplaceAllStringFunc(s, func(m string) string { return m[:5] + Redacted })
}

func newTestLogger(buf *bytes.Buffer) *slog.Logger {
	return New(buf, slog.LevelDebug)
}

func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	return m
}

func TestRedactString_Table(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"nothing here", "nothing here"},
		{"tmtk_", "tmtk_"},
		{"tmtk_ alone", "tmtk_ alone"},
		{"tmas_-x", "tmas_-x"},
		{"token tmtk_abc-DEF_9 end", "token tmtk_***REDACTED*** end"},
		{"Bearer tmak-01HX:tmas_abcXYZ019", "Bearer tmak-01HX:tmas_***REDACTED***"},
		{"tmas_abc_def", "tmas_***REDACTED***_def"},
		{"tmas_abc-tmtk_q", "tmas_***REDACTED***-tmtk_***REDACTED***"},
		{"tmtk_tmas_abc", "tmtk_***REDACTED***"},
		{"xtmtk_a", "xtmtk_***REDACTED***"},
		{"tmtmtk_a", "tmtmtk_***REDACTED***"},
		{"TMTK_abc", "TMTK_abc"},
		{"a tmtk_1 b tmas_2 c tmtk_3", "a tmtk_***REDACTED*** b tmas_***REDACTED*** c tmtk_***REDACTED***"},
	}
	for _, c := range cases {
		if got := RedactString(c.in); got != c.want {
			t.Errorf("RedactString(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := refRedact(c.in); got != c.want {
			t.Errorf("reference(%q) = %q, want %q (test table wrong)", c.in, got, c.want)
		}
	}
}

func TestIsSensitiveKey(t *testing.T) {
	for _, k := range []string{"token", "TOKEN", "secret", "api_key", "Authorization", "x-api-key", "X-API-Key", "password"} {
		if !isSensitiveKey(k) {
			t.Errorf("%q should be sensitive", k)
		}
	}
	for _, k := range []string{"", "tok", "token_id", "key_id", "user", "authorizations", "request_id"} {
		if isSensitiveKey(k) {
			t.Errorf("%q should not be sensitive", k)
		}
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return "S(" + s.s + ")" }

type payload struct {
	Name  string   `json:"name"`
	Items []string `json:"items"`
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("lv " + srvToken) }

type myString string

func TestHandler_RedactsEverywhere(t *testing.T) {
	var buf bytes.Buffer
	log := newTestLogger(&buf)
	wrapped := fmt.Errorf("validate: %w", errors.New("bad token "+srvToken))
	log.Error("got "+srvToken+" and "+apiSec,
		"plain", srvToken,
		slog.Any("any_string", apiSec),
		slog.Any("named_string", myString(srvToken)),
		slog.Any("bytes", []byte(apiSec)),
		slog.Any("err", wrapped),
		slog.Any("stringer", stringer{srvToken}),
		slog.Any("struct", payload{Name: "n", Items: []string{"x", apiSec}}),
		slog.Any("slice", []string{srvToken}),
		slog.Any("valuer", valuer{}),
		slog.Group("outer", slog.String("a", srvToken), slog.Group("inner", slog.String("b", apiSec), slog.Int("n", 3))),
		slog.String("key_"+srvToken, "v"),
		slog.String("token", "client-chosen-opaque-token"),
		slog.String("Authorization", "Bearer whatever"),
		slog.Int("password", 1234),
		slog.Group("x-api-key", slog.String("inner", "v")),
		slog.Int("count", 7),
	)
	out := buf.String()
	if leakRE.MatchString(out) || strings.Contains(out, "client-chosen-opaque-token") || strings.Contains(out, "Bearer whatever") || strings.Contains(out, "1234") {
		t.Fatalf("leak: %s", out)
	}
	m := decode(t, buf.Bytes())
	want := map[string]any{
		"msg":           "got tmtk_***REDACTED*** and tmas_***REDACTED***",
		"plain":         redactedToken,
		"any_string":    redactedSecret,
		"named_string":  `"` + redactedToken + `"`,
		"bytes":         redactedSecret,
		"err":           "validate: bad token " + redactedToken,
		"stringer":      "S(" + redactedToken + ")",
		"struct":        `{"name":"n","items":["x","` + redactedSecret + `"]}`,
		"slice":         `["` + redactedToken + `"]`,
		"valuer":        "lv " + redactedToken,
		"token":         Redacted,
		"Authorization": Redacted,
		"password":      Redacted,
		"x-api-key":     Redacted,
		"count":         float64(7),
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	outer := m["outer"].(map[string]any)
	if outer["a"] != redactedToken || outer["inner"].(map[string]any)["b"] != redactedSecret || outer["inner"].(map[string]any)["n"] != float64(3) {
		t.Errorf("groups: %#v", outer)
	}
	if _, ok := m["key_"+redactedToken]; !ok {
		t.Errorf("attribute key not redacted: %v", m)
	}
}

func TestHandler_WithAttrsAndWithGroup(t *testing.T) {
	var buf bytes.Buffer
	log := newTestLogger(&buf).With("component", "httpapi", "leaky", srvToken, slog.Group("g", slog.String("s", apiSec)))
	log = log.WithGroup("req").With("id", "r-1", "api_key", "k").WithGroup("sub")
	log.Info("hello", "v", srvToken, "ok", "fine")
	out := buf.String()
	if leakRE.MatchString(out) {
		t.Fatalf("leak: %s", out)
	}
	m := decode(t, buf.Bytes())
	if m["component"] != "httpapi" || m["leaky"] != redactedToken || m["g"].(map[string]any)["s"] != redactedSecret {
		t.Errorf("WithAttrs: %v", m)
	}
	req := m["req"].(map[string]any)
	if req["id"] != "r-1" || req["api_key"] != Redacted {
		t.Errorf("WithGroup attrs: %v", req)
	}
	sub := req["sub"].(map[string]any)
	if sub["v"] != redactedToken || sub["ok"] != "fine" {
		t.Errorf("nested group: %v", sub)
	}
}

func TestHandler_SensitiveGroupNameRedactsItsValues(t *testing.T) {
	var buf bytes.Buffer
	log := newTestLogger(&buf).WithGroup("authorization")
	log.Info("m", "scheme", "Bearer", "value", "opaque-client-token", slog.Group("g", slog.Int("n", 42)))
	m := decode(t, buf.Bytes())
	a := m["authorization"].(map[string]any)
	if a["scheme"] != Redacted || a["value"] != Redacted || a["g"].(map[string]any)["n"] != Redacted {
		t.Errorf("got %v", a)
	}
	if strings.Contains(buf.String(), "opaque-client-token") {
		t.Fatal("leak")
	}
}

func TestHandler_CleanRecordPassesThroughUnchanged(t *testing.T) {
	var a, b bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	plain := slog.New(slog.NewJSONHandler(&a, opts))
	red := slog.New(NewRedactingHandler(slog.NewJSONHandler(&b, opts)))
	args := []any{"request_id", "r-1", "n", 3, "d", time.Second, slog.Group("g", "x", "y"), "err", errors.New("plain error")}
	plain.Info("same", args...)
	red.Info("same", args...)
	strip := func(s string) string { return regexp.MustCompile(`"time":"[^"]*",`).ReplaceAllString(s, "") }
	if strip(a.String()) != strip(b.String()) {
		t.Fatalf("differs:\n%s\n%s", a.String(), b.String())
	}
}

func TestNew_JSONLinesWithUTCMillis(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	log := New(&buf, lv)
	log.Debug("hidden")
	if buf.Len() != 0 {
		t.Fatal("debug written at info level")
	}
	lv.Set(slog.LevelDebug)
	log.Debug("shown", "component", "wal")
	m := decode(t, buf.Bytes())
	ts, _ := m["time"].(string)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("time %q is not RFC 3339 ms UTC", ts)
	}
	if m["level"] != "DEBUG" || m["msg"] != "shown" || m["component"] != "wal" {
		t.Errorf("got %v", m)
	}
}

func TestNewRedactingHandler_DoesNotDoubleWrap(t *testing.T) {
	h := NewRedactingHandler(slog.DiscardHandler)
	if NewRedactingHandler(h) != h {
		t.Fatal("wrapped twice")
	}
}

func TestHandler_NoAllocationsWhenNothingMatches(t *testing.T) {
	h := NewRedactingHandler(countingHandler{})
	log := slog.New(h)
	ctx := context.Background()
	allocsRed := testing.AllocsPerRun(200, func() {
		log.LogAttrs(ctx, slog.LevelInfo, "session created", slog.String("request_id", "r-01HXYZ"), slog.String("route", "/sessions/{session_id}"), slog.Int("status", 201), slog.Group("g", slog.String("node_id", "tmnd-a")))
	})
	plain := slog.New(countingHandler{})
	allocsPlain := testing.AllocsPerRun(200, func() {
		plain.LogAttrs(ctx, slog.LevelInfo, "session created", slog.String("request_id", "r-01HXYZ"), slog.String("route", "/sessions/{session_id}"), slog.Int("status", 201), slog.Group("g", slog.String("node_id", "tmnd-a")))
	})
	if allocsRed != allocsPlain {
		t.Fatalf("redactor adds allocations: %v vs %v", allocsRed, allocsPlain)
	}
}

// countingHandler is an enabled handler that does nothing, so benchmarks and
// allocation tests measure the redactor alone.
type countingHandler struct{}

func (countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (countingHandler) Handle(context.Context, slog.Record) error { return nil }
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h countingHandler) WithGroup(string) slog.Handler           { return h }

func benchAttrs() []slog.Attr {
	return []slog.Attr{slog.String("request_id", "r-01HXYZABCDEF"), slog.String("route", "/sessions/{session_id}"), slog.Int("status", 201), slog.String("key_id", "tmak-01HXYZ"), slog.Group("g", slog.String("node_id", "tmnd-a"))}
}

func BenchmarkRedactor_NoMatch(b *testing.B) {
	log := slog.New(NewRedactingHandler(countingHandler{}))
	attrs := benchAttrs()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "session created for the caller", attrs...)
	}
}

func BenchmarkRedactor_Baseline(b *testing.B) {
	log := slog.New(countingHandler{})
	attrs := benchAttrs()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "session created for the caller", attrs...)
	}
}

func BenchmarkRedactor_Match(b *testing.B) {
	log := slog.New(NewRedactingHandler(countingHandler{}))
	attrs := append(benchAttrs(), slog.String("leak", "x "+srvToken))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "session created for the caller", attrs...)
	}
}

func BenchmarkNew_JSON(b *testing.B) {
	log := New(io.Discard, slog.LevelInfo)
	attrs := benchAttrs()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "session created for the caller", attrs...)
	}
}

func BenchmarkRedactString_NoMatch(b *testing.B) {
	s := strings.Repeat("the quick brown fox tm jumps over tmtk the lazy dog ", 4)
	b.ReportAllocs()
	for b.Loop() {
		_ = RedactString(s)
	}
}

type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

func TestHandler_NilPointerValuesDoNotPanic(t *testing.T) {
	var buf bytes.Buffer
	var e *nilErr
	var s *stringerPtr
	newTestLogger(&buf).Info("m", slog.Any("err", e), slog.Any("s", s), slog.Any("nil", nil), "x", srvToken)
	if leakRE.MatchString(buf.String()) || !strings.Contains(buf.String(), redactedToken) {
		t.Fatalf("%s", buf.String())
	}
}

type stringerPtr struct{ v string }

func (s *stringerPtr) String() string { return s.v }
