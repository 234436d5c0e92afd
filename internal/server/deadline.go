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
	mu               sync.Mutex
	rd, wd           time.Time // wanted
	ard, awd         time.Time // armed on the socket
	reading, writing int       // calls in progress
	armed            int       // deadlines set on the socket (tests)
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

func (c *lazyDeadlineConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if d, change := settle(c.rd, c.ard); change {
		c.ard = d
		c.armed++
		if err := c.TCPConn.SetReadDeadline(d); err != nil {
			c.mu.Unlock()
			return 0, err
		}
	}
	c.reading++
	c.mu.Unlock()
	n, err := c.TCPConn.Read(p)
	c.mu.Lock()
	c.reading--
	c.mu.Unlock()
	return n, err
}

// beginWrite applies the write deadline and counts the call in progress;
// endWrite must follow unless it fails.
func (c *lazyDeadlineConn) beginWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, change := settle(c.wd, c.awd); change {
		c.awd = d
		c.armed++
		if err := c.TCPConn.SetWriteDeadline(d); err != nil {
			return err
		}
	}
	c.writing++
	return nil
}

func (c *lazyDeadlineConn) endWrite() {
	c.mu.Lock()
	c.writing--
	c.mu.Unlock()
}

func (c *lazyDeadlineConn) Write(p []byte) (int, error) {
	if err := c.beginWrite(); err != nil {
		return 0, err
	}
	defer c.endWrite()
	return c.TCPConn.Write(p)
}

// ReadFrom keeps net/http's sendfile path (io.Copy to a response) under the
// write deadline.
func (c *lazyDeadlineConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.beginWrite(); err != nil {
		return 0, err
	}
	defer c.endWrite()
	return c.TCPConn.ReadFrom(r)
}

// WriteTo hides TCPConn.WriteTo, which would read without the read
// deadline.
func (c *lazyDeadlineConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

func (c *lazyDeadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rd = t
	if c.reading > 0 {
		c.ard = t
		c.armed++
		return c.TCPConn.SetReadDeadline(t)
	}
	return nil
}

func (c *lazyDeadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wd = t
	if c.writing > 0 {
		c.awd = t
		c.armed++
		return c.TCPConn.SetWriteDeadline(t)
	}
	return nil
}

func (c *lazyDeadlineConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}
