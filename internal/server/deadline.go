package server

import (
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// lazyDeadlineListener hands out TCP connections whose read and write
// deadlines are applied lazily (lazyDeadlineConn). Other connection types
// pass through unchanged.
type lazyDeadlineListener struct{ net.Listener }

func (l lazyDeadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return &lazyDeadlineConn{TCPConn: tc}, nil
	}
	return c, err
}

// lazyDeadlineConn applies deadlines when a Read or Write could block on
// them, not when they are set. net/http sets up to seven deadlines per
// request on a keep-alive connection (header and body read timeouts, the
// write timeout, the background read it starts and aborts around the
// handler, the idle timeout), and each one is a timer operation in the
// runtime; for a small request whose bytes are already buffered, most of
// them never bound a single system call. The rules keep every deadline's
// meaning:
//   - a deadline set while a Read (Write) is in progress is applied at
//     once: it must reach the blocked call (net/http's abortPendingRead);
//   - any other deadline is recorded, and the next Read or Write applies it
//     if it differs from the one armed on the socket — except that an armed
//     deadline earlier than the wanted one by at most 1/32 of the wanted
//     time left is kept, so a connection answering a stream of requests
//     does not re-arm its write deadline for every response. A timeout can
//     therefore fire up to 1/32 early (under a second for the 30 s
//     defaults), never late.
//
// The common operations take no lock: a Read or Write whose wanted
// deadline was already settled only counts itself in and out, and a
// deadline set while no call is in progress is only stored. Both sides
// announce themselves before they look at the other (busy, then want;
// want, then busy), and Go's atomics are sequentially consistent, so a
// deadline set while a call starts is either seen by the call or applied
// by the setter. Arming happens under mu and always from the latest want,
// so the last to arm never leaves an older deadline on the socket.
type lazyDeadlineConn struct {
	*net.TCPConn
	r, w  direction
	mu    sync.Mutex
	armed int // deadlines set on the socket (tests; under mu)
}

// direction is the deadline state of reads or of writes. Deadlines are
// kept as Unix nanoseconds (deadlineNS).
type direction struct {
	want    atomic.Int64 // the deadline last set
	settled atomic.Int64 // the want the socket was last settled for
	busy    atomic.Int32 // calls in progress
	armed   time.Time    // the deadline on the socket (under mu)
}

// deadlineSlack is the fraction of the time left by which an armed
// deadline may precede the wanted one.
const deadlineSlack = 32

// deadlineNS encodes a deadline: 0 is none, instants before 1970 (net/http's
// "long ago" abort) and those UnixNano cannot hold are clamped to the
// nearest it can, which mean the same to a socket (past, or never in
// practice).
func deadlineNS(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Unix() <= 0:
		return 1
	case t.Unix() >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func deadlineTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// settle returns the deadline to arm for want given the armed one, and
// whether it differs from armed (the caller then sets it).
func settle(want, armed, now time.Time) (time.Time, bool) {
	if want.Equal(armed) {
		return armed, false
	}
	if !want.IsZero() && !armed.IsZero() && armed.Before(want) {
		if armed.After(now) && want.Sub(armed) <= want.Sub(now)/deadlineSlack {
			return armed, false
		}
	}
	return want, true
}

// arm sets t on the socket for d (c.mu held).
func (c *lazyDeadlineConn) arm(d *direction, t time.Time) error {
	d.armed = t
	c.armed++
	if d == &c.w {
		return c.TCPConn.SetWriteDeadline(t)
	}
	return c.TCPConn.SetReadDeadline(t)
}

// begin counts a call in progress and makes sure the socket is settled
// for d's latest wanted deadline; end must follow unless it fails.
func (c *lazyDeadlineConn) begin(d *direction) error {
	d.busy.Add(1)
	if d.want.Load() == d.settled.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := d.want.Load()
	now := time.Now()
	if w != 0 && w <= now.UnixNano() {
		// An expired deadline fails the call at once, as the runtime
		// does before any system call (poll.FD's prepareRead/Write):
		// nothing to arm. This is net/http's abort of the background
		// read that has not reached the socket yet; the socket keeps
		// its deadline, which the next request's read usually keeps too.
		d.busy.Add(-1)
		return os.ErrDeadlineExceeded
	}
	if t, change := settle(deadlineTime(w), d.armed, now); change {
		if err := c.arm(d, t); err != nil {
			d.busy.Add(-1)
			return err
		}
	}
	d.settled.Store(w)
	return nil
}

func (d *direction) end() { d.busy.Add(-1) }

// set records d's wanted deadline, applying it at once while a call is in
// progress.
func (c *lazyDeadlineConn) set(d *direction, t time.Time) error {
	d.want.Store(deadlineNS(t))
	if d.busy.Load() == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := d.want.Load()
	if t := deadlineTime(w); !t.Equal(d.armed) {
		if err := c.arm(d, t); err != nil {
			return err
		}
	}
	d.settled.Store(w)
	return nil
}

func (c *lazyDeadlineConn) Read(p []byte) (int, error) {
	if err := c.begin(&c.r); err != nil {
		return 0, c.opError("read", err)
	}
	n, err := c.TCPConn.Read(p)
	c.r.end()
	return n, err
}

func (c *lazyDeadlineConn) Write(p []byte) (int, error) {
	if err := c.begin(&c.w); err != nil {
		return 0, c.opError("write", err)
	}
	// net/http's own answer to a request it could not parse becomes the
	// API's envelope (protoerr.go); the check is a byte compare for
	// every other write.
	if len(p) > 9 && (p[9] == '4' || p[9] == '5') {
		if resp, ok := rewriteProtocolError(p); ok {
			_, err := c.TCPConn.Write(resp)
			c.w.end()
			if err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	n, err := c.TCPConn.Write(p)
	c.w.end()
	return n, err
}

// opError wraps an error of begin as the connection's own calls would.
func (c *lazyDeadlineConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// ReadFrom keeps net/http's sendfile path (io.Copy to a response) under the
// write deadline.
func (c *lazyDeadlineConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.begin(&c.w); err != nil {
		return 0, c.opError("readfrom", err)
	}
	defer c.w.end() // r is arbitrary code
	return c.TCPConn.ReadFrom(r)
}

// WriteTo hides TCPConn.WriteTo, which would read without the read
// deadline.
func (c *lazyDeadlineConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error  { return c.set(&c.r, t) }
func (c *lazyDeadlineConn) SetWriteDeadline(t time.Time) error { return c.set(&c.w, t) }

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}
