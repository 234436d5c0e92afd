package client

// The RESP side of the client (03-resp-api): RESPConn is a hand-written,
// pipelined RESP2 connection (no reflection, no per-reply allocation on
// the Receive path) used by the business methods when Config.Protocol is
// "resp", and directly by tokmesh-bench's load generator.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReplyKind is the type of one RESP2 reply.
type ReplyKind byte

// RESP2 reply kinds. ReplyNil covers both the nil bulk ($-1) and the nil
// array (*-1).
const (
	ReplyStatus ReplyKind = '+'
	ReplyError  ReplyKind = '-'
	ReplyInt    ReplyKind = ':'
	ReplyBulk   ReplyKind = '$'
	ReplyArray  ReplyKind = '*'
	ReplyNil    ReplyKind = '_'
)

// Reply is one RESP2 reply as read by RESPConn.Receive. Data (status or
// error text, bulk payload) points into the connection's read buffer and
// is valid only until the next Receive. For ReplyInt, Int is the value;
// for ReplyArray, Int is the element count and the elements are the next
// Int replies.
type Reply struct {
	Kind ReplyKind
	Int  int64
	Data []byte
}

// RESPValue is a fully read, copied reply (arrays included), for callers
// that keep results (setup code, the business methods).
type RESPValue struct {
	Kind  ReplyKind
	Int   int64
	Str   string
	Array []RESPValue
}

// ErrProtocol reports a reply that is not valid RESP2.
var ErrProtocol = errors.New("resp: protocol error")

// RESPConn is one pipelined RESP2 connection. Commands are queued with
// Send / Write, sent with Flush, and their replies read in order with
// Receive. Not safe for concurrent use.
type RESPConn struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	scratch []byte // command encoding and bulk replies larger than r's buffer
}

// RESPDialOptions configures DialRESP.
type RESPDialOptions struct {
	// TLS, when not nil, wraps the connection in TLS (resp-tls).
	TLS *tls.Config
	// Timeout bounds the dial and TLS handshake (default 10 s).
	Timeout time.Duration
	// ReadBuffer and WriteBuffer size the buffers (default 32 KiB / 16 KiB).
	ReadBuffer, WriteBuffer int
}

// DialRESP connects to addr (host:port). It sends nothing: authenticate
// with Do("AUTH", …).
func DialRESP(ctx context.Context, addr string, o RESPDialOptions) (*RESPConn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := &net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}
	var (
		nc  net.Conn
		err error
	)
	if o.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: o.TLS}
		nc, err = td.DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return NewRESPConn(nc, o.ReadBuffer, o.WriteBuffer), nil
}

// NewRESPConn wraps an established connection; buffer sizes ≤ 0 take the
// defaults (32 KiB read, 16 KiB write).
func NewRESPConn(nc net.Conn, readBuf, writeBuf int) *RESPConn {
	if readBuf <= 0 {
		readBuf = 32 << 10
	}
	if writeBuf <= 0 {
		writeBuf = 16 << 10
	}
	return &RESPConn{conn: nc, r: bufio.NewReaderSize(nc, readBuf), w: bufio.NewWriterSize(nc, writeBuf)}
}

// Conn returns the underlying connection (deadlines, addresses).
func (c *RESPConn) Conn() net.Conn { return c.conn }

// SetDeadline sets the read and write deadline of the connection.
func (c *RESPConn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Close closes the connection.
func (c *RESPConn) Close() error { return c.conn.Close() }

// AppendCommand appends the RESP encoding of one command (an array of
// bulk strings) to dst.
func AppendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// Send queues one command; Flush sends the queue.
func (c *RESPConn) Send(args ...string) error {
	c.scratch = AppendCommand(c.scratch[:0], args...)
	_, err := c.w.Write(c.scratch)
	return err
}

// Write queues already encoded command bytes (see AppendCommand).
func (c *RESPConn) Write(cmd []byte) error {
	_, err := c.w.Write(cmd)
	return err
}

// Flush sends every queued command.
func (c *RESPConn) Flush() error { return c.w.Flush() }

// readLine returns the next line without its CRLF; the slice points into
// the read buffer.
func (c *RESPConn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: reply line longer than %d bytes", ErrProtocol, c.r.Size())
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not terminated by CRLF", ErrProtocol)
	}
	return line[:len(line)-2], nil
}

// parseInt parses a RESP integer without allocating.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' || n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// Receive reads the next reply. Data is valid until the next Receive.
func (c *RESPConn) Receive() (Reply, error) {
	line, err := c.readLine()
	if err != nil {
		return Reply{}, err
	}
	if len(line) == 0 {
		return Reply{}, fmt.Errorf("%w: empty reply line", ErrProtocol)
	}
	kind, rest := ReplyKind(line[0]), line[1:]
	switch kind {
	case ReplyStatus, ReplyError:
		return Reply{Kind: kind, Data: rest}, nil
	case ReplyInt:
		n, ok := parseInt(rest)
		if !ok {
			return Reply{}, fmt.Errorf("%w: bad integer reply", ErrProtocol)
		}
		return Reply{Kind: ReplyInt, Int: n}, nil
	case ReplyArray:
		n, ok := parseInt(rest)
		if !ok || n < -1 {
			return Reply{}, fmt.Errorf("%w: bad array length", ErrProtocol)
		}
		if n == -1 {
			return Reply{Kind: ReplyNil}, nil
		}
		return Reply{Kind: ReplyArray, Int: n}, nil
	case ReplyBulk:
		n, ok := parseInt(rest)
		if !ok || n < -1 || n > 512<<20 {
			return Reply{}, fmt.Errorf("%w: bad bulk length", ErrProtocol)
		}
		if n == -1 {
			return Reply{Kind: ReplyNil}, nil
		}
		total := int(n) + 2
		var p []byte
		if total <= c.r.Size() {
			// Peek keeps the payload in the read buffer: no copy.
			if p, err = c.r.Peek(total); err != nil {
				return Reply{}, err
			}
			_, _ = c.r.Discard(total)
		} else {
			if cap(c.scratch) < total {
				c.scratch = make([]byte, total)
			}
			p = c.scratch[:total]
			if _, err = io.ReadFull(c.r, p); err != nil {
				return Reply{}, err
			}
		}
		if p[n] != '\r' || p[n+1] != '\n' {
			return Reply{}, fmt.Errorf("%w: bulk not terminated by CRLF", ErrProtocol)
		}
		return Reply{Kind: ReplyBulk, Int: n, Data: p[:n]}, nil
	}
	return Reply{}, fmt.Errorf("%w: unknown reply type %q", ErrProtocol, line[0])
}

// ReceiveValue reads the next reply, arrays included, and copies it.
func (c *RESPConn) ReceiveValue() (RESPValue, error) {
	r, err := c.Receive()
	if err != nil {
		return RESPValue{}, err
	}
	v := RESPValue{Kind: r.Kind, Int: r.Int}
	switch r.Kind {
	case ReplyStatus, ReplyError, ReplyBulk:
		v.Str = string(r.Data)
	case ReplyArray:
		if r.Int > 1<<20 {
			return RESPValue{}, fmt.Errorf("%w: array of %d elements", ErrProtocol, r.Int)
		}
		v.Array = make([]RESPValue, r.Int)
		for i := range v.Array {
			if v.Array[i], err = c.ReceiveValue(); err != nil {
				return RESPValue{}, err
			}
		}
	}
	return v, nil
}

// Do sends one command and reads its reply.
func (c *RESPConn) Do(args ...string) (RESPValue, error) {
	if err := c.Send(args...); err != nil {
		return RESPValue{}, err
	}
	if err := c.Flush(); err != nil {
		return RESPValue{}, err
	}
	return c.ReceiveValue()
}

// SplitRESPError splits an error reply "CODE message" into its code (the
// first word: "TM-SESS-4040", "ERR", "NOPROTO") and message.
func SplitRESPError(line []byte) (code, message []byte) {
	for i, ch := range line {
		if ch == ' ' {
			return line[:i], line[i+1:]
		}
	}
	return line, nil
}

// RESPError converts an error reply text into an *Error.
func RESPError(line string) *Error {
	code, msg := SplitRESPError([]byte(line))
	return &Error{Code: string(code), Message: string(msg), Details: map[string]any{}}
}

// ---- the business methods over RESP ----

// respPool keeps authenticated idle connections of a "resp" Client.
type respPool struct {
	addr    string
	tls     *tls.Config
	timeout time.Duration
	auth    []string // AUTH arguments; nil: no AUTH
	name    string   // CLIENT SETNAME value ("" = none)

	mu     sync.Mutex
	idle   []*RESPConn
	closed bool
}

const respMaxIdle = 16

// initRESP configures c for Protocol "resp". Target forms: "host:port",
// "resp://host:port", "resps://host:port" (TLS). A bare host:port uses
// TLS when Config.TLS is set.
func (c *Client) initRESP() (*Client, error) {
	t := strings.TrimSpace(c.cfg.Target)
	useTLS := c.cfg.TLS != nil
	switch {
	case strings.HasPrefix(t, "resp://"):
		t, useTLS = strings.TrimPrefix(t, "resp://"), false
	case strings.HasPrefix(t, "resps://"):
		t, useTLS = strings.TrimPrefix(t, "resps://"), true
	case strings.Contains(t, "://"), strings.HasPrefix(t, "unix:"), t == "", t == "local":
		return nil, fmt.Errorf("client: target %q is not a RESP address (want host:port, resp://host:port or resps://host:port)", t)
	}
	t = strings.TrimSuffix(t, "/")
	host, port, err := net.SplitHostPort(t)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("client: invalid RESP target %q (want host:port)", c.cfg.Target)
	}
	p := &respPool{addr: t, timeout: c.cfg.Timeout}
	if useTLS {
		if c.cfg.TLS != nil {
			p.tls = c.cfg.TLS.Clone()
		} else {
			p.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if p.tls.ServerName == "" {
			p.tls.ServerName = host
		}
	}
	if k := c.cfg.APIKey; k != "" {
		if id, secret, ok := strings.Cut(k, ":"); ok {
			p.auth = []string{"AUTH", id, secret}
		} else {
			p.auth = []string{"AUTH", k}
		}
	}
	if validClientName(c.cfg.UserAgent) {
		p.name = c.cfg.UserAgent
	}
	scheme := "resp://"
	if useTLS {
		scheme = "resps://"
	}
	c.resp = p
	c.target = scheme + t
	return c, nil
}

// validClientName: CLIENT SETNAME refuses spaces and control characters.
func validClientName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// errNotOverRESP is returned by the HTTP-only operations of a resp Client.
var errNotOverRESP = errors.New("client: this operation is not available over RESP (use an http or https target)")

func (p *respPool) get(ctx context.Context, c *Client) (*RESPConn, bool, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errors.New("client: closed")
	}
	if n := len(p.idle); n > 0 {
		rc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return rc, true, nil
	}
	p.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	rc, err := DialRESP(dctx, p.addr, RESPDialOptions{TLS: p.tls, Timeout: p.timeout, ReadBuffer: 16 << 10, WriteBuffer: 4 << 10})
	if err != nil {
		return nil, false, c.transportErr(err)
	}
	if p.auth == nil && p.name == "" {
		return rc, false, nil
	}
	_ = rc.SetDeadline(time.Now().Add(p.timeout))
	n := 0
	if p.auth != nil {
		_ = rc.Send(p.auth...)
		n++
	}
	if p.name != "" {
		_ = rc.Send("CLIENT", "SETNAME", p.name)
		n++
	}
	if err := rc.Flush(); err != nil {
		rc.Close()
		return nil, false, c.transportErr(err)
	}
	for i := 0; i < n; i++ {
		v, err := rc.ReceiveValue()
		if err != nil {
			rc.Close()
			return nil, false, c.transportErr(err)
		}
		if v.Kind == ReplyError {
			rc.Close()
			return nil, false, RESPError(v.Str)
		}
	}
	_ = rc.SetDeadline(time.Time{})
	return rc, false, nil
}

func (p *respPool) put(rc *RESPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= respMaxIdle {
		rc.Close()
		return
	}
	p.idle = append(p.idle, rc)
}

func (p *respPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, rc := range p.idle {
		rc.Close()
	}
	p.idle = nil
}

// retryableRESP: the codes HTTP answers with 503 or 504.
func retryableRESP(code string) bool {
	i := strings.LastIndexByte(code, '-')
	return strings.HasPrefix(code, "TM-") && i >= 0 && (strings.HasPrefix(code[i+1:], "503") || strings.HasPrefix(code[i+1:], "504"))
}

// respDo sends the commands in one pipeline and returns their replies.
// A reply that is an error is returned as *Error only for the first
// command (later commands are best-effort reads, e.g. GET after TM.TOUCH).
// Idempotent calls are retried on 503/504-class codes and, once, on a
// stale pooled connection.
func (c *Client) respDo(ctx context.Context, idempotent bool, cmds ...[]string) ([]RESPValue, error) {
	retries := 0
	if idempotent && c.cfg.MaxRetries > 0 {
		retries = c.cfg.MaxRetries
	}
	staleRetried := false
	for attempt := 0; ; attempt++ {
		vals, pooled, err := c.respOnce(ctx, cmds)
		if err != nil {
			var te *TransportError
			if pooled && idempotent && !staleRetried && errors.As(err, &te) && ctx.Err() == nil {
				// A pooled connection closed by the peer while idle.
				staleRetried = true
				attempt--
				continue
			}
			return nil, err
		}
		if vals[0].Kind != ReplyError {
			return vals, nil
		}
		e := RESPError(vals[0].Str)
		if attempt >= retries || !retryableRESP(e.Code) {
			return nil, e
		}
		t := time.NewTimer(min(time.Duration(200<<attempt)*time.Millisecond, c.cfg.MaxRetryWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, e
		case <-t.C:
		}
	}
}

func (c *Client) respOnce(ctx context.Context, cmds [][]string) ([]RESPValue, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, c.transportErr(err)
	}
	rc, pooled, err := c.resp.get(ctx, c)
	if err != nil {
		return nil, false, err
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = rc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = rc.SetDeadline(time.Unix(1, 0)) })
	vals, err := func() ([]RESPValue, error) {
		for _, cmd := range cmds {
			if err := rc.Send(cmd...); err != nil {
				return nil, err
			}
		}
		if err := rc.Flush(); err != nil {
			return nil, err
		}
		vals := make([]RESPValue, len(cmds))
		for i := range vals {
			v, err := rc.ReceiveValue()
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		return vals, nil
	}()
	stopped := stop()
	if err != nil {
		rc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, pooled, c.transportErr(err)
	}
	if !stopped {
		rc.Close() // the cancellation broke its deadline
		return vals, pooled, nil
	}
	_ = rc.SetDeadline(time.Time{})
	c.resp.put(rc)
	return vals, pooled, nil
}

func (c *Client) respBadData(err error) error {
	return &TransportError{Kind: KindBadData, Target: c.target, Err: err}
}

func (c *Client) respInt(v RESPValue) (int64, error) {
	if v.Kind != ReplyInt {
		return 0, c.respBadData(fmt.Errorf("want an integer reply, got %q", v.Kind))
	}
	return v.Int, nil
}

func (c *Client) respJSON(v RESPValue, out any) error {
	if v.Kind != ReplyBulk {
		return c.respBadData(fmt.Errorf("want a bulk reply, got %q", v.Kind))
	}
	if err := json.Unmarshal([]byte(v.Str), out); err != nil {
		return c.respBadData(fmt.Errorf("decode reply: %w", err))
	}
	return nil
}

func (c *Client) respCreateSession(ctx context.Context, req CreateSessionRequest) (*CreateSessionResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("client: encode request: %w", err)
	}
	vals, err := c.respDo(ctx, false, []string{"TM.CREATE", string(body)})
	if err != nil {
		return nil, err
	}
	var out CreateSessionResult
	if err := c.respJSON(vals[0], &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// respGet reads a live session with GET: RESP cannot tell unknown,
// expired and revoked apart, so every miss is TM-SESS-4040.
func (c *Client) respGetSession(ctx context.Context, id string) (*Session, error) {
	vals, err := c.respDo(ctx, true, []string{"GET", id})
	if err != nil {
		return nil, err
	}
	if vals[0].Kind == ReplyNil {
		return nil, &Error{Code: "TM-SESS-4040", Message: "session not found (over RESP: unknown, expired or revoked)", Details: map[string]any{}}
	}
	var out Session
	if err := c.respJSON(vals[0], &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) respValidate(ctx context.Context, token string, touch bool) (*ValidateResult, error) {
	cmd := []string{"TM.VALIDATE", token}
	if touch {
		cmd = append(cmd, "TOUCH")
	}
	vals, err := c.respDo(ctx, !touch, cmd)
	if err != nil {
		// A token that is not valid is a result, as over HTTP.
		var e *Error
		if errors.As(err, &e) && strings.HasPrefix(e.Code, "TM-TOKN-") {
			return &ValidateResult{Valid: false, Error: &ValidateError{Code: e.Code, Message: e.Message}}, nil
		}
		return nil, err
	}
	var s Session
	if err := c.respJSON(vals[0], &s); err != nil {
		return nil, err
	}
	return &ValidateResult{Valid: true, Session: &s}, nil
}

// respAfterWrite turns "<write command> + GET <sid>" into the session
// object the HTTP route returns. If the session stopped being live
// between the two commands, only the fields the write reported are set.
func (c *Client) respAfterWrite(vals []RESPValue, id string, set func(*Session, int64)) (*Session, error) {
	n, err := c.respInt(vals[0])
	if err != nil {
		return nil, err
	}
	var s Session
	if vals[1].Kind == ReplyBulk {
		if err := c.respJSON(vals[1], &s); err != nil {
			return nil, err
		}
	} else {
		s.ID = id
	}
	set(&s, n)
	return &s, nil
}

func (c *Client) respTouch(ctx context.Context, id string) (*Session, error) {
	vals, err := c.respDo(ctx, false, []string{"TM.TOUCH", id}, []string{"GET", id})
	if err != nil {
		return nil, err
	}
	return c.respAfterWrite(vals, id, func(s *Session, n int64) { s.LastActive = max(s.LastActive, n) })
}

func (c *Client) respRenew(ctx context.Context, id string, ttlSeconds int64) (*Session, error) {
	vals, err := c.respDo(ctx, false, []string{"TM.RENEW", id, strconv.FormatInt(ttlSeconds, 10)}, []string{"GET", id})
	if err != nil {
		return nil, err
	}
	return c.respAfterWrite(vals, id, func(s *Session, n int64) { s.ExpiresAt = n })
}

func (c *Client) respRevoke(ctx context.Context, id string) (*RevokeResult, error) {
	vals, err := c.respDo(ctx, true, []string{"TM.REVOKE", id})
	if err != nil {
		return nil, err
	}
	n, err := c.respInt(vals[0])
	if err != nil {
		return nil, err
	}
	return &RevokeResult{SessionID: strings.ToLower(id), Revoked: n == 1}, nil
}

func (c *Client) respRevokeUser(ctx context.Context, userID, except string) (*RevokeUserResult, error) {
	cmd := []string{"TM.REVOKE_USER", userID}
	if except != "" {
		cmd = append(cmd, "EXCEPT", except)
	}
	vals, err := c.respDo(ctx, true, cmd)
	if err != nil {
		return nil, err
	}
	n, err := c.respInt(vals[0])
	if err != nil {
		return nil, err
	}
	return &RevokeUserResult{UserID: userID, RevokedCount: int(n)}, nil
}

// respListSessions serves ListSessions with TM.LIST: only the user_id
// filter exists over RESP; sorting and paging are applied here with the
// HTTP API's defaults and limits.
func (c *Client) respListSessions(ctx context.Context, o ListSessionsOptions) (*SessionList, error) {
	if o.UserID == "" {
		return nil, fmt.Errorf("client: listing sessions over RESP needs a user ID (TM.LIST <user_id>)")
	}
	if o.DeviceID != "" || o.CreatedBy != "" || o.IPAddress != "" || o.CreatedAfter != 0 || o.CreatedBefore != 0 || o.ActiveAfter != 0 {
		return nil, fmt.Errorf("client: over RESP sessions can only be filtered by user ID; use an http or https target for other filters")
	}
	page, size := max(o.Page, 0), max(o.Size, 0)
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = 20
	}
	if size > 100 || page*size > 10000 {
		return nil, &Error{Code: "TM-ARG-1001", Message: "invalid paging", Details: map[string]any{}}
	}
	if (o.SortBy != "" && o.SortBy != "created_at" && o.SortBy != "last_active") ||
		(o.SortOrder != "" && o.SortOrder != "asc" && o.SortOrder != "desc") {
		return nil, &Error{Code: "TM-ARG-1001", Message: "invalid sort", Details: map[string]any{}}
	}
	vals, err := c.respDo(ctx, true, []string{"TM.LIST", o.UserID})
	if err != nil {
		return nil, err
	}
	if vals[0].Kind != ReplyArray {
		return nil, c.respBadData(fmt.Errorf("want an array reply, got %q", vals[0].Kind))
	}
	items := make([]Session, len(vals[0].Array))
	for i, v := range vals[0].Array {
		if err := c.respJSON(v, &items[i]); err != nil {
			return nil, err
		}
	}
	key := func(s *Session) int64 { return s.CreatedAt }
	if o.SortBy == "last_active" {
		key = func(s *Session) int64 { return s.LastActive }
	}
	asc := o.SortOrder == "asc"
	sort.SliceStable(items, func(i, j int) bool {
		a, b := key(&items[i]), key(&items[j])
		if a != b {
			return (a < b) == asc
		}
		return items[i].ID < items[j].ID
	})
	out := &SessionList{Items: []Session{}, Page: page, Size: size, Total: len(items)}
	if from := (page - 1) * size; from < len(items) {
		out.Items = items[from:min(from+size, len(items))]
	}
	return out, nil
}
