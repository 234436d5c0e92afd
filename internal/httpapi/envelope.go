package httpapi

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID reuses a well-formed client X-Request-ID or mints a tmrq- ID.
func requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-ID"); v != "" && clientRequestID.MatchString(v) {
		return v
	}
	id, err := ulid.New(ulid.Timestamp(time.Now()), rand.Reader)
	if err != nil {
		return "tmrq-00000000000000000000000000"
	}
	return "tmrq-" + strings.ToLower(id.String())
}

// appendEnvelopeHead writes `{"code":"OK","message":"success","request_id":"…","timestamp":N,"data":`.
func appendEnvelopeHead(b []byte, rid string, now int64) []byte {
	b = append(b, `{"code":"OK","message":"success","request_id":`...)
	b = appendJSONString(b, rid)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, now, 10)
	b = append(b, `,"data":`...)
	return b
}

// writeData sends a success envelope whose data is already JSON.
func writeData(w http.ResponseWriter, status int, rid string, data []byte) {
	b := make([]byte, 0, len(data)+128)
	b = appendEnvelopeHead(b, rid, time.Now().UnixMilli())
	b = append(b, data...)
	b = append(b, '}')
	writeRaw(w, status, b)
}

// writeJSON sends a success envelope with data marshalled by encoding/json
// (admin and cold paths).
func writeJSON(w http.ResponseWriter, status int, rid string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, rid, &apierr.Error{Code: apierr.SysInternal, Err: err})
		return
	}
	writeData(w, status, rid, data)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type errorEnvelope struct {
	Code      apierr.Code    `json:"code"`
	Message   string         `json:"message"`
	RequestID string         `json:"request_id"`
	Timestamp int64          `json:"timestamp"`
	Details   map[string]any `json:"details"`
}

// writeError sends the error envelope with the catalogue status and the
// headers the spec ties to it (Retry-After, WWW-Authenticate).
func writeError(w http.ResponseWriter, rid string, e *apierr.Error) {
	status := e.Code.Status()
	h := w.Header()
	for k, v := range e.Headers {
		h.Set(k, v)
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Bearer")
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		ra := e.RetryAfter
		if ra < 1 {
			ra = 1
		}
		h.Set("Retry-After", strconv.Itoa(ra))
	}
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	b, err := json.Marshal(errorEnvelope{Code: e.Code, Message: e.Msg(), RequestID: rid, Timestamp: time.Now().UnixMilli(), Details: d})
	if err != nil {
		b = []byte(`{"code":"TM-SYS-5000","message":"internal error","request_id":"` + rid + `","timestamp":0,"details":{}}`)
		status = 500
	}
	writeRaw(w, status, b)
}

// appendJSONString appends s as a JSON string (minimal escaping).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
