package respapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// Limits before buffering (03-resp-api §1).
//
// redcon parses a command only once all of it is in its buffer, and grows
// the buffer to whatever a header announces; checking the limits on the
// parsed command would let a client that announces a 1 GB bulk (or a
// billion-element array, or an endless inline line) make the server read
// and keep it all. So every connection's bytes pass through a framer that
// follows the RESP framing as they stream in, before redcon sees them, and
// stops the connection at the first header over a limit: the bytes before
// it are handed on (complete commands in front of it still run), then the
// connection answers "-ERR Protocol error: …" and closes. The framer keeps
// a few counters per connection and allocates nothing.

// maxInline bounds an inline (telnet-style) command line, as Redis does
// (PROTO_INLINE_MAX_SIZE).
const maxInline = 64 << 10

// MaxCommandBytes bounds the payload bytes of one command (all its bulk
// arguments together). The spec's per-argument (64 KiB) and per-command
// (1,024 elements) limits alone allow a 64 MiB command, which redcon would
// buffer whole — before AUTH, on each of 10,000 connections. No command of
// 03-resp-api needs more than a 64 KiB JSON body plus a few short
// arguments, or 1,000 session IDs (DEL, EXISTS). docs/decisions.md D14.
const MaxCommandBytes = 1 << 20

// maxHeaderLine bounds a "*<n>" or "$<n>" header line (digits and CRLF).
const maxHeaderLine = 32

// tlsHandshakeTimeout bounds a RESP-TLS handshake (the port has no idle
// timeout, but a half-open handshake must not hold a goroutine). A
// variable for tests.
var tlsHandshakeTimeout = 10 * time.Second

// farewellTimeout bounds the write of a last error line before closing.
const farewellTimeout = time.Second

// Protocol error messages (after "ERR Protocol error: "), as Redis words them.
const (
	msgBulkLen      = "invalid bulk length"
	msgMultiBulkLen = "invalid multibulk length"
	msgTooManyArgs  = "too many arguments"
	msgInline       = "too big inline request"
	msgExpectBulk   = "expected '$'"
	msgTooBig       = "command too big"
)

// errLimit is what the wrapped connection returns to redcon once it has
// answered a protocol error; redcon then closes the connection.
var errLimit = errors.New("respapi: protocol limit exceeded")

// framer states.
const (
	fStart     = iota // before a command
	fInline           // inside an inline line
	fArrayLen         // inside "*<n>\r\n"
	fBulkStart        // expecting '$'
	fBulkLen          // inside "$<n>\r\n"
	fBulkData         // inside a bulk payload
	fBulkCR           // expecting the '\r' after a payload
	fBulkLF           // expecting the '\n' after a payload
)

// framer follows RESP2 request framing exactly as redcon parses it.
type framer struct {
	state  uint8
	hdrLen int      // bytes of the header line so far
	hdr    [32]byte // header line (digits), maxHeaderLine bounds it
	inline int      // bytes of the inline line so far
	args   int      // elements of the current array still to come
	bulk   int      // payload bytes still to come
	total  int      // payload bytes of the current command so far
}

// feed inspects p. It returns len(p) and "" when p is within the limits,
// else the number of bytes before the offending one and the protocol error
// message. Complete elements ("$<n>\r\n<payload>\r\n" all in p) take one
// step, payloads are skipped, and lines are searched with IndexByte: a few
// dozen ns per command (BenchmarkFramer).
func (f *framer) feed(p []byte) (int, string) {
	i := 0
	for i < len(p) {
		switch f.state {
		case fStart:
			switch p[i] {
			case '*':
				f.state, f.hdrLen, f.total = fArrayLen, 0, 0
			case '\n':
				// an empty inline line
			default:
				f.state, f.inline = fInline, 1
			}
			i++
		case fInline:
			j := bytes.IndexByte(p[i:], '\n')
			n := j
			if j < 0 {
				n = len(p) - i
			}
			if f.inline+n > maxInline {
				return i + maxInline - f.inline, msgInline
			}
			f.inline += n
			if j < 0 {
				return len(p), ""
			}
			f.state = fStart
			i += j + 1
		case fArrayLen, fBulkLen:
			if f.hdrLen == 0 {
				// Fast path: the whole "<digits>\r\n" line is here.
				if n, k := quickHeader(p[i:]); k > 0 {
					i += k - 1 // at '\n'
					if msg := f.header(n, true); msg != "" {
						return i, msg
					}
					i++
					continue
				}
			}
			j := bytes.IndexByte(p[i:], '\n')
			n := j
			if j < 0 {
				n = len(p) - i
			}
			if f.hdrLen+n > maxHeaderLine {
				if f.state == fArrayLen {
					return i + maxHeaderLine - f.hdrLen, msgMultiBulkLen
				}
				return i + maxHeaderLine - f.hdrLen, msgBulkLen
			}
			f.hdrLen += copy(f.hdr[f.hdrLen:], p[i:i+n])
			if j < 0 {
				return len(p), ""
			}
			i += j
			if msg := f.endHeader(); msg != "" {
				return i, msg
			}
			i++
		case fBulkStart:
			if p[i] != '$' {
				return i, msgExpectBulk
			}
			// Fast path: header, payload and CRLF are all here.
			if n, k := quickHeader(p[i+1:]); k > 0 && n <= MaxBulkLen && f.total+n <= MaxCommandBytes {
				if end := i + 1 + k + n + 2; end <= len(p) && p[end-2] == '\r' && p[end-1] == '\n' {
					i = end
					f.total += n
					f.endElement()
					continue
				}
			}
			f.state, f.hdrLen = fBulkLen, 0
			i++
		case fBulkData:
			n := min(f.bulk, len(p)-i)
			f.bulk -= n
			i += n
			if f.bulk == 0 {
				f.state = fBulkCR
			}
		case fBulkCR:
			if p[i] != '\r' {
				return i, msgBulkLen
			}
			f.state = fBulkLF
			i++
		case fBulkLF:
			if p[i] != '\n' {
				return i, msgBulkLen
			}
			f.endElement()
			i++
		}
	}
	return len(p), ""
}

// endHeader handles a complete "*<n>\r" or "$<n>\r" line (without '\n')
// collected in f.hdr.
func (f *framer) endHeader() string {
	if f.hdrLen == 0 || f.hdr[f.hdrLen-1] != '\r' {
		return f.header(0, false)
	}
	n, ok := atoi(f.hdr[:f.hdrLen-1])
	return f.header(n, ok)
}

// header applies a header's value n (ok false: not a number, or no CR).
func (f *framer) header(n int, ok bool) string {
	if f.state == fArrayLen {
		switch {
		case !ok || n <= 0:
			return msgMultiBulkLen
		case n > MaxArgs:
			return msgTooManyArgs
		}
		f.args, f.state = n, fBulkStart
		return ""
	}
	switch {
	case !ok || n < 0 || n > MaxBulkLen:
		return msgBulkLen
	case f.total+n > MaxCommandBytes:
		return msgTooBig
	}
	f.total += n
	switch {
	case n == 0:
		f.state = fBulkCR
	default:
		f.bulk, f.state = n, fBulkData
	}
	return ""
}

// quickHeader parses b as "<1 to 9 digits>\r\n…": it returns the value and
// the line's length with CRLF, or k = 0 when b does not start that way
// (the general path decides then).
func quickHeader(b []byte) (n, k int) {
	for k < len(b) && k < 9 && '0' <= b[k] && b[k] <= '9' {
		n = n*10 + int(b[k]-'0')
		k++
	}
	if k == 0 || k+1 >= len(b) || b[k] != '\r' || b[k+1] != '\n' {
		return 0, 0
	}
	return n, k + 2
}

// atoi accepts what strconv.Atoi (redcon's parser) accepts in a header
// line of at most maxHeaderLine bytes: an optional sign and decimal digits.
// Values saturate far above every limit instead of overflowing.
func atoi(b []byte) (int, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int(c-'0'), 1<<40)
	}
	if neg {
		n = -n
	}
	return n, true
}

func (f *framer) endElement() {
	if f.args--; f.args > 0 {
		f.state = fBulkStart
		return
	}
	f.state = fStart
}

// limitListener wraps every accepted connection in a limitConn.
type limitListener struct{ net.Listener }

func (l limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c}, nil
}

// limitConn is one client connection as redcon sees it: reads pass the
// framer; a TLS handshake is bounded in time; a connection refused by the
// connection limit answers and closes on its first read, in its own
// goroutine (never in the accept loop, where a slow TLS client could
// stall every other client).
type limitConn struct {
	net.Conn
	f        framer
	started  bool
	farewell string // set: the next Read writes it and fails
	said     bool   // farewell written: every later Read fails
}

func (c *limitConn) Read(p []byte) (int, error) {
	if !c.started {
		c.started = true
		if err := c.handshake(); err != nil {
			return 0, err
		}
	}
	if c.farewell != "" || c.said {
		return 0, c.sayFarewell()
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if k, msg := c.f.feed(p[:n]); msg != "" {
			c.farewell = "-ERR Protocol error: " + msg + "\r\n"
			if k == 0 {
				return 0, c.sayFarewell()
			}
			// Hand on what came before; redcon runs the complete commands
			// in it, flushes their replies and reads again.
			return k, nil
		}
	}
	return n, err
}

// refuse makes the connection answer line and close on its first read,
// all within a short deadline (TLS handshake included).
func (c *limitConn) refuse(line string) {
	c.farewell = line
	c.Conn.SetDeadline(time.Now().Add(2 * farewellTimeout))
}

// sayFarewell writes the pending error line once and returns errLimit.
func (c *limitConn) sayFarewell() error {
	if !c.said {
		c.said = true
		c.Conn.SetDeadline(time.Now().Add(farewellTimeout))
		c.Conn.Write([]byte(c.farewell))
	}
	return errLimit
}

// handshake completes a TLS handshake within tlsHandshakeTimeout; plain
// connections have nothing to do.
func (c *limitConn) handshake() error {
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}
