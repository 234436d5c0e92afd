package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Requests net/http refuses before any handler runs still get the API's
// answer: the envelope with TM-SYS-4000, X-Request-ID and Cache-Control
// (02-http-api §2, §2.2), with net/http's status, then the connection
// closes.
func TestServer_ProtocolErrorsGetTheEnvelope(t *testing.T) {
	srv := startServer(t, baseConfig(t))
	cases := []struct {
		name, raw string
		status    int
		reason    string
	}{
		{"missing Host", "GET /health HTTP/1.1\r\n\r\n", 400, "missing required Host header"},
		{"garbage request line", "HELLO\r\n\r\n", 400, ""},
		{"bad header line", "GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, ""},
		{"protocol version", "GET /health HTTP/7.1\r\nHost: x\r\n\r\n", 505, "unsupported protocol version"},
		{"transfer coding", "POST /tokens/validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Unsupported transfer encoding"},
		{"headers too large", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20+8192) + "\r\n\r\n", 431, ""},
	}
	for _, c := range cases {
		for _, l := range []struct{ network, addr string }{{"tcp", srv.Addr("http").String()}, {"unix", srv.Addr("local").String()}} {
			t.Run(c.name+"/"+l.network, func(t *testing.T) {
				conn, err := net.DialTimeout(l.network, l.addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				go io.WriteString(conn, c.raw) // the server may answer (and close) before reading it all
				br := bufio.NewReader(conn)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				var env struct {
					Code      string            `json:"code"`
					Message   string            `json:"message"`
					RequestID string            `json:"request_id"`
					Timestamp int64             `json:"timestamp"`
					Details   map[string]string `json:"details"`
				}
				if err := json.Unmarshal(body, &env); err != nil {
					t.Fatalf("%d %q: not an envelope: %v", resp.StatusCode, body, err)
				}
				if resp.StatusCode != c.status || env.Code != "TM-SYS-4000" || env.Message == "" || env.Details == nil ||
					!strings.HasPrefix(env.RequestID, "tmrq-") || resp.Header.Get("X-Request-ID") != env.RequestID ||
					resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" ||
					env.Details["reason"] != c.reason || !resp.Close || time.Since(time.UnixMilli(env.Timestamp)).Abs() > time.Minute {
					t.Fatalf("%d %v %q", resp.StatusCode, resp.Header, body)
				}
				if _, err := br.ReadByte(); err == nil {
					t.Fatal("the connection stayed open after a protocol error")
				}
			})
		}
	}
}

func TestRewriteProtocolError_LeavesOtherWritesAlone(t *testing.T) {
	for _, p := range []string{
		"",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok",
		// A handler's own 400: Cache-Control comes first.
		"HTTP/1.1 400 Bad Request\r\nCache-Control: no-store\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{}",
		// The pattern in a body, not after the status line.
		"HTTP/1.1 404 Not Found\r\nX-Request-Id: a\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 4",
		"HTTP/1.1 4xx Bad\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // TLS bytes
	} {
		if _, ok := rewriteProtocolError([]byte(p)); ok {
			t.Errorf("rewrote %q", p)
		}
	}
}
