package httpapi

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

// requestID reuses a well-formed client X-Request-ID
// (^[A-Za-z0-9._-]{1,64}$) or mints a tmrq- ID: "tmrq-" and a lower-case
// ULID whose 80 random bits come from crypto/rand (01-data-model).
func requestID(r *http.Request) string { return requestIDAt(r, time.Now()) }

// requestIDAt is requestID with the clock already read.
func requestIDAt(r *http.Request, now time.Time) string {
	if v := r.Header["X-Request-Id"]; len(v) > 0 && validClientRequestID(v[0]) {
		return v[0]
	}
	return newRequestID(now)
}

func validClientRequestID(v string) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// idEntropy hands out crypto/rand bytes read in batches: one getrandom
// call per ~400 request IDs instead of one per request. Bytes are zeroed
// once handed out, so no two IDs share entropy.
var idEntropy struct {
	mu  sync.Mutex
	buf [4000]byte
	off int // next unread byte; len(buf) = empty
}

func init() { idEntropy.off = len(idEntropy.buf) }

func readIDEntropy(dst []byte) error {
	e := &idEntropy
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.buf)-e.off < len(dst) {
		if _, err := rand.Read(e.buf[:]); err != nil {
			return err
		}
		e.off = 0
	}
	n := copy(dst, e.buf[e.off:])
	clear(e.buf[e.off : e.off+n])
	e.off += n
	return nil
}

func newRequestID(now time.Time) string {
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(now)); err != nil {
		return "tmrq-00000000000000000000000000"
	}
	if err := readIDEntropy(id[6:]); err != nil {
		return "tmrq-00000000000000000000000000"
	}
	var b [5 + ulid.EncodedSize]byte
	copy(b[:], "tmrq-")
	_ = id.MarshalTextTo(b[5:])
	for i := 5; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b[:])
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
	bp := getBuf()
	b := appendEnvelopeHead(*bp, rid, time.Now().UnixMilli())
	b = append(b, data...)
	b = append(b, '}')
	writeRaw(w, status, b)
	putBuf(bp, b)
}

// bufPool recycles envelope buffers: writeRaw's Write copies the body into
// the connection's buffer, so a buffer is free again once it returns.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte, b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	*bp = b[:0]
	bufPool.Put(bp)
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
	h["Content-Type"] = hdrJSON
	// net/http sets Content-Length itself for a body that stays in its
	// 2 KiB response buffer until the handler returns, without a header
	// map entry to clone, sort and write; larger bodies get it here so
	// they are not sent chunked.
	if n := len(body); n >= smallBody {
		h["Content-Length"] = []string{strconv.Itoa(n)}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// smallBody is the largest body writeRaw leaves to net/http's own
// Content-Length (below its 2048-byte bufferBeforeChunkingSize).
const smallBody = 2000

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
	if e.Code == apierr.SysBodyTooBig {
		// The rest of the body stays unread: close rather than make
		// net/http read and discard it to keep the connection (what
		// http.MaxBytesReader asks for too).
		h.Set("Connection", "close")
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

// appendJSONString appends s as a JSON string (minimal escaping); invalid
// UTF-8 becomes U+FFFD, so a body is always valid UTF-8 (02 §2).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
