package server

import (
	"io"
	"net"
	"sync"
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
type lazyDeadlineConn struct {
	*net.TCPConn
	mu    sync.Mutex
	r, w  direction
	armed int // deadlines set on the socket (tests)
}

// direction is the deadline state of reads or of writes.
type direction struct {
	want, armed time.Time
	busy        int // calls in progress
}

// deadlineSlack is the fraction of the time left by which an armed
// deadline may precede the wanted one.
const deadlineSlack = 32

// settle returns the deadline to arm for want given the armed one, and
// whether it differs from armed (the caller then sets it).
func settle(want, armed time.Time) (time.Time, bool) {
	if want.Equal(armed) {
		return armed, false
	}
	if !want.IsZero() && !armed.IsZero() && armed.Before(want) {
		now := time.Now()
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

// begin applies d's wanted deadline if needed and counts a call in
// progress; end must follow unless it fails.
func (c *lazyDeadlineConn) begin(d *direction) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, change := settle(d.want, d.armed); change {
		if err := c.arm(d, t); err != nil {
			return err
		}
	}
	d.busy++
	return nil
}

func (c *lazyDeadlineConn) end(d *direction) {
	c.mu.Lock()
	d.busy--
	c.mu.Unlock()
}

// set records d's wanted deadline, applying it at once while a call is in
// progress.
func (c *lazyDeadlineConn) set(d *direction, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d.want = t
	if d.busy > 0 {
		return c.arm(d, t)
	}
	return nil
}

func (c *lazyDeadlineConn) Read(p []byte) (int, error) {
	if err := c.begin(&c.r); err != nil {
		return 0, err
	}
	defer c.end(&c.r)
	return c.TCPConn.Read(p)
}

func (c *lazyDeadlineConn) Write(p []byte) (int, error) {
	if err := c.begin(&c.w); err != nil {
		return 0, err
	}
	defer c.end(&c.w)
	return c.TCPConn.Write(p)
}

// ReadFrom keeps net/http's sendfile path (io.Copy to a response) under the
// write deadline.
func (c *lazyDeadlineConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.begin(&c.w); err != nil {
		return 0, err
	}
	defer c.end(&c.w)
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
