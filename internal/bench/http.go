package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// httpDriver is a lean HTTP/1.1 keep-alive client for TokMesh's HTTP(S)
// port: requests are appended byte by byte into one buffer, responses are
// read as status line + headers (Content-Length, chunked, Connection) +
// body, and the envelope is classified by scanning for its code, not by
// decoding JSON. One request in flight per connection.
type httpDriver struct {
	connRef
	dial dialer
	p    *pool
	// head is " HTTP/1.1\r\nHost: …\r\nAuthorization: Bearer …\r\n…" up to
	// the per-request headers.
	head  []byte
	touch bool
	// antiReplay (nil: off) sends X-Timestamp and X-Nonce on write routes
	// (every POST but /tokens/validate, 04-security §5), the timestamp
	// from this shared clock. The nonce is this driver's random prefix and
	// a counter: unique without a random read per request.
	antiReplay  *wallClock
	noncePrefix []byte
	nonceN      uint64
	tsMS        int64  // the timestamp tsText holds
	tsText      []byte // formatted once per clock tick, not per request

	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	closed bool // the server said Connection: close

	buf   []byte // request being encoded
	body  []byte // request body being encoded
	rbody []byte // response body when it is chunked or larger than r's buffer
}

// newHTTPDriver builds a driver; a non-nil antiReplay adds the anti-replay
// headers to write requests.
func newHTTPDriver(d dialer, p *pool, cfg *Config, antiReplay *wallClock) *httpDriver {
	head := []byte(" HTTP/1.1\r\nHost: ")
	head = append(head, cfg.hostPort()...)
	head = append(head, "\r\nAuthorization: Bearer "...)
	head = append(head, cfg.APIKey...)
	head = append(head, "\r\nUser-Agent: tokmesh-bench\r\nContent-Type: application/json\r\n"...)
	hd := &httpDriver{dial: d, p: p, head: head, touch: cfg.Touch, antiReplay: antiReplay}
	if antiReplay != nil {
		var r [8]byte
		_, _ = rand.Read(r[:])
		hd.noncePrefix = append(hex.AppendEncode(nil, r[:]), '.') // 17 chars + the counter: ≥ 18 of 16..128
	}
	return hd
}

// appendAntiReplay appends X-Timestamp (Unix ms) and a fresh X-Nonce.
func (d *httpDriver) appendAntiReplay(b []byte) []byte {
	if ms := d.antiReplay.now(); ms != d.tsMS {
		d.tsMS, d.tsText = ms, strconv.AppendInt(d.tsText[:0], ms, 10)
	}
	b = append(b, "X-Timestamp: "...)
	b = append(b, d.tsText...)
	b = append(b, "\r\nX-Nonce: "...)
	b = append(b, d.noncePrefix...)
	d.nonceN++
	b = strconv.AppendUint(b, d.nonceN, 10)
	return append(b, '\r', '\n')
}

// wallClock is the Unix time in ms, read from the system clock every
// wallClockTick by its own goroutine, so that an anti-replay timestamp
// costs an atomic load per request instead of a clock read. The server
// accepts timestamps within security.anti_replay.timestamp_window (≥ 1 s)
// of its clock; the tick keeps the error far below that.
type wallClock struct {
	ms   atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

const wallClockTick = 100 * time.Millisecond

// startWallClock starts the clock; Close stops its goroutine.
func startWallClock() *wallClock {
	c := &wallClock{stop: make(chan struct{})}
	c.ms.Store(time.Now().UnixMilli())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(wallClockTick)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				c.ms.Store(now.UnixMilli())
			}
		}
	}()
	return c
}

func (c *wallClock) now() int64 { return c.ms.Load() }

// Close stops the clock's goroutine.
func (c *wallClock) Close() {
	close(c.stop)
	c.wg.Wait()
}

func (d *httpDriver) ready() error {
	if d.nc != nil && !d.closed {
		return nil
	}
	d.broken()
	nc, err := d.dial.dial()
	if err != nil {
		return err
	}
	d.nc, d.closed = nc, false
	if d.r == nil {
		d.r = bufio.NewReaderSize(nc, 32<<10)
		d.w = bufio.NewWriterSize(nc, 8<<10)
	} else {
		d.r.Reset(nc)
		d.w.Reset(nc)
	}
	d.set(nc)
	return nil
}

func (d *httpDriver) broken() {
	if d.nc != nil {
		d.nc.Close()
		d.nc = nil
		d.set(nil)
	}
}

func (d *httpDriver) close() { d.broken() }

func (d *httpDriver) flush() error {
	if d.nc == nil {
		return errNotConnected
	}
	return d.w.Flush()
}

func (d *httpDriver) target(r *request) string {
	if r.key != "" {
		return r.key
	}
	return d.p.ids[r.idx]
}

func (d *httpDriver) send(r *request) {
	body := d.body[:0]
	b := append(d.buf[:0], "POST "...)
	switch r.op {
	case opValidate:
		b = append(b, "/tokens/validate"...)
		tok := d.p.tokens
		if r.invalid {
			tok = d.p.unknown
		}
		body = append(body, `{"token":"`...)
		body = append(body, tok[r.idx]...)
		if d.touch {
			body = append(body, `","touch":true}`...)
		} else {
			body = append(body, `"}`...)
		}
	case opCreate:
		b = append(b, "/sessions"...)
		body = appendCreateJSON(body, d.p, r.user)
	case opTouch:
		b = append(b, "/sessions/"...)
		b = append(b, d.target(r)...)
		b = append(b, "/touch"...)
	case opRenew:
		b = append(b, "/sessions/"...)
		b = append(b, d.target(r)...)
		b = append(b, "/renew"...)
		body = append(body, `{"ttl_seconds":`...)
		body = strconv.AppendInt(body, d.p.ttl, 10)
		body = append(body, '}')
	case opRevoke:
		b = append(b, "/sessions/"...)
		b = append(b, d.target(r)...)
		b = append(b, "/revoke"...)
	}
	b = append(b, d.head...)
	if d.antiReplay != nil && r.op != opValidate {
		b = d.appendAntiReplay(b)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	d.buf, d.body = b, body
	if d.nc != nil {
		_, _ = d.w.Write(b)
	}
}

var (
	bEnvHead   = []byte(`{"code":"`)
	bCodeKey   = []byte(`"code":"`)
	bOK        = []byte("OK")
	bDataValid = []byte(`"data":{"valid":`)
	bTrue      = []byte("true")
)

func (d *httpDriver) receive(r *request) (result, error) {
	if d.nc == nil {
		return result{}, errNotConnected
	}
	status, body, err := d.readResponse()
	if err != nil {
		return result{}, err
	}
	return classifyEnvelope(status, body, r.op == opValidate), nil
}

// classifyEnvelope reads the outcome from a TokMesh envelope without
// decoding it: `{"code":"OK",…,"data":{"valid":true,…}}` is a success,
// `"valid":false,"error":{"code":"TM-TOKN-4012"…` an invalid token, any
// other code an error.
func classifyEnvelope(status int, body []byte, validate bool) result {
	var code []byte
	if bytes.HasPrefix(body, bEnvHead) {
		code = body[len(bEnvHead):]
	} else if i := bytes.Index(body, bCodeKey); i >= 0 {
		code = body[i+len(bCodeKey):]
	}
	if j := bytes.IndexByte(code, '"'); j >= 0 {
		code = code[:j]
	} else {
		code = nil
	}
	if code == nil {
		return result{out: outError, code: []byte("HTTP-" + strconv.Itoa(status))}
	}
	if !bytes.Equal(code, bOK) {
		return result{out: outError, code: code}
	}
	if !validate {
		return result{out: outOK, body: body}
	}
	i := bytes.Index(body, bDataValid)
	if i < 0 {
		return result{out: outError, code: bCodeProto}
	}
	rest := body[i+len(bDataValid):]
	if bytes.HasPrefix(rest, bTrue) {
		return result{out: outOK, body: body}
	}
	if c := jsonField(rest, "code"); c != nil {
		return result{out: outInvalid, code: c}
	}
	return result{out: outError, code: bCodeProto}
}

func (d *httpDriver) created(r *request, res result) string {
	return string(jsonField(res.body, "session_id"))
}

func (d *httpDriver) line() ([]byte, error) {
	l, err := d.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("HTTP header line too long")
		}
		return nil, err
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

func hasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }

// readResponse reads one response; body points into the reader's buffer
// or d.rbody and is valid until the next call.
func (d *httpDriver) readResponse() (int, []byte, error) {
	l, err := d.line()
	if err != nil {
		return 0, nil, err
	}
	if len(l) < 12 || !bytes.HasPrefix(l, []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("bad HTTP status line")
	}
	status, err := strconv.Atoi(string(l[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad HTTP status line")
	}
	length, chunked := -1, false
	for {
		l, err := d.line()
		if err != nil {
			return 0, nil, err
		}
		if len(l) == 0 {
			break
		}
		switch {
		case hasPrefixFold(l, "content-length:"):
			n, err := strconv.Atoi(string(trimSpace(l[15:])))
			if err != nil || n < 0 {
				return 0, nil, fmt.Errorf("bad Content-Length")
			}
			length = n
		case hasPrefixFold(l, "transfer-encoding:"):
			chunked = bytes.Contains(bytes.ToLower(l[18:]), []byte("chunked"))
		case hasPrefixFold(l, "connection:"):
			if bytes.EqualFold(trimSpace(l[11:]), []byte("close")) {
				d.closed = true
			}
		}
	}
	switch {
	case chunked:
		body, err := d.readChunked()
		return status, body, err
	case length < 0:
		// No length: the body runs to the end of the connection.
		d.closed = true
		body, err := io.ReadAll(io.LimitReader(d.r, 64<<20))
		return status, body, err
	case length <= d.r.Size():
		p, err := d.r.Peek(length)
		if err != nil {
			return 0, nil, err
		}
		_, _ = d.r.Discard(length)
		return status, p, nil
	}
	if cap(d.rbody) < length {
		d.rbody = make([]byte, length)
	}
	body := d.rbody[:length]
	_, err = io.ReadFull(d.r, body)
	return status, body, err
}

func (d *httpDriver) readChunked() ([]byte, error) {
	body := d.rbody[:0]
	for {
		l, err := d.line()
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		n, err := strconv.ParseInt(string(trimSpace(l)), 16, 32)
		if err != nil || n < 0 || len(body)+int(n) > 64<<20 {
			return nil, fmt.Errorf("bad chunk size")
		}
		if n == 0 {
			for { // trailers
				l, err := d.line()
				if err != nil {
					return nil, err
				}
				if len(l) == 0 {
					d.rbody = body
					return body, nil
				}
			}
		}
		start := len(body)
		body = append(body, make([]byte, n)...)
		if _, err := io.ReadFull(d.r, body[start:]); err != nil {
			return nil, err
		}
		if l, err := d.line(); err != nil || len(l) != 0 {
			return nil, fmt.Errorf("bad chunk terminator")
		}
	}
}
