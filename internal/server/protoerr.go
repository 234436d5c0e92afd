package server

import (
	"bytes"
	"net"
	"strconv"
	"time"

	"github.com/yndnr/tokmesh-go/internal/httpapi"
)

// net/http answers a request it cannot parse itself, before any handler:
// one raw write of "HTTP/1.1 <code> <text>[: <reason>]" followed by exactly
// these headers and a text/plain body (net/http server.go, conn.serve).
// Every response of a handler carries Cache-Control first, so no handler
// response starts this way.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// rewriteProtocolError returns the API's answer for p when p is such a
// net/http error response (ok false otherwise).
func rewriteProtocolError(p []byte) (resp []byte, ok bool) {
	if len(p) < 13 || string(p[:9]) != "HTTP/1.1 " || (p[9] != '4' && p[9] != '5') {
		return nil, false
	}
	end := bytes.Index(p, []byte(netHTTPErrorHeaders))
	if end < 0 || bytes.IndexByte(p[:end], '\n') >= 0 {
		return nil, false // the headers do not follow the status line
	}
	line := p[9:end] // "431 Request Header Fields Too Large" / "400 Bad Request: missing required Host header"
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil || len(line) < 4 || line[3] != ' ' {
		return nil, false
	}
	reason := ""
	if i := bytes.Index(line, []byte(": ")); i >= 0 {
		reason = printable(line[i+2:])
	} else if status != 400 && status != 431 {
		reason = printable(p[end+len(netHTTPErrorHeaders):]) // "Unsupported transfer encoding"
	}
	return httpapi.ProtocolErrorResponse(status, reason, time.Now()), true
}

// printable keeps net/http's description short and free of control bytes.
func printable(b []byte) string {
	if len(b) > 100 {
		b = b[:100]
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

// protocolErrorListener hands out connections whose net/http protocol
// error answers are rewritten (protoErrConn): the local admin socket's. TCP
// connections get the same rewrite in lazyDeadlineConn.Write.
type protocolErrorListener struct{ net.Listener }

func (l protocolErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return protoErrConn{c}, nil
}

type protoErrConn struct{ net.Conn }

func (c protoErrConn) Write(p []byte) (int, error) {
	if resp, ok := rewriteProtocolError(p); ok {
		if _, err := c.Conn.Write(resp); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}
