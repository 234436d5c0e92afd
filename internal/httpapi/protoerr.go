package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
)

// ProtocolErrorResponse is the whole HTTP/1.1 response for a request that
// net/http refused before any handler saw it (a malformed request line or
// header, headers over the size limit, an unsupported protocol version or
// transfer coding): the status net/http chose, and the flat envelope,
// X-Request-ID and Cache-Control that 02-http-api §2 puts on every
// response. The code is TM-SYS-4000 (malformed request) whatever the
// status; reason is net/http's fixed description, if any, and goes to
// details.reason. The connection closes after it, as net/http's own
// answer does.
func ProtocolErrorResponse(status int, reason string, now time.Time) []byte {
	rid := newRequestID(now)
	details := map[string]any{}
	if reason != "" {
		details["reason"] = reason
	}
	body, err := json.Marshal(errorEnvelope{Code: apierr.SysMalformed, Message: apierr.New(apierr.SysMalformed).Msg(),
		RequestID: rid, Timestamp: now.UnixMilli(), Details: details})
	if err != nil { // a map of one string: cannot fail
		body = []byte(`{}`)
	}
	text := http.StatusText(status)
	if text == "" {
		status, text = http.StatusBadRequest, http.StatusText(http.StatusBadRequest)
	}
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nContent-Type: application/json\r\nDate: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nX-Request-Id: "...)
	b = append(b, rid...)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}
