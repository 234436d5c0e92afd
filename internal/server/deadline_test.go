package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSettle(t *testing.T) {
	now := time.Now()
	zero := time.Time{}
	cases := []struct {
		name        string
		want, armed time.Time
		arm         time.Time
		wantsChange bool
	}{
		{"same", now.Add(time.Second), now.Add(time.Second), now.Add(time.Second), false},
		{"clear", zero, now.Add(time.Second), zero, true},
		{"first", now.Add(30 * time.Second), zero, now.Add(30 * time.Second), true},
		{"armed slightly earlier is kept", now.Add(30 * time.Second), now.Add(29900 * time.Millisecond), now.Add(29900 * time.Millisecond), false},
		{"armed much earlier is replaced", now.Add(30 * time.Second), now.Add(20 * time.Second), now.Add(30 * time.Second), true},
		{"armed later is replaced", now.Add(5 * time.Second), now.Add(120 * time.Second), now.Add(5 * time.Second), true},
		{"armed already expired is replaced", now.Add(10 * time.Millisecond), now.Add(-time.Millisecond), now.Add(10 * time.Millisecond), true},
		{"past wanted is applied", now.Add(-time.Hour), now.Add(time.Second), now.Add(-time.Hour), true},
	}
	for _, c := range cases {
		got, change := settle(c.want, c.armed, now)
		if !got.Equal(c.arm) || change != c.wantsChange {
			t.Errorf("%s: settle = %v, %v; want %v, %v", c.name, got.Sub(now), change, c.arm.Sub(now), c.wantsChange)
		}
	}
}

// deadlineServer serves h on a lazy-deadline listener with the given
// timeouts and returns its address and the accepted connections.
func deadlineServer(t *testing.T, hs *http.Server) (string, func() []*lazyDeadlineConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []*lazyDeadlineConn
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns = append(conns, c.(*lazyDeadlineConn))
			mu.Unlock()
		}
	}
	go hs.Serve(lazyDeadlineListener{l})
	t.Cleanup(func() { hs.Close() })
	return l.Addr().String(), func() []*lazyDeadlineConn {
		mu.Lock()
		defer mu.Unlock()
		return append([]*lazyDeadlineConn(nil), conns...)
	}
}

// dial connects to addr; the connection is closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLazyDeadlines_KeepAliveRequestsArmFewerTimers(t *testing.T) {
	t.Run("default", func(t *testing.T) { keepAliveArms(t, 4) })
	// With one P (a node pinned to a core) net/http's background read
	// is aborted before it reaches the socket, so a steady stream of
	// requests arms almost nothing: an expired deadline fails the read at
	// once and the socket keeps the deadline the next request keeps too.
	t.Run("one P", func(t *testing.T) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		keepAliveArms(t, 0.25)
	})
}

func keepAliveArms(t *testing.T, perRequest float64) {
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d", len(body))
		})}
	addr, conns := deadlineServer(t, hs)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	const n = 500
	for i := range n {
		body := strings.Repeat("x", i%50)
		fmt.Fprintf(c, "POST /v HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != fmt.Sprint(len(body)) {
			t.Fatalf("request %d: %q", i, got)
		}
	}
	cs := conns()
	if len(cs) != 1 {
		t.Fatalf("%d connections", len(cs))
	}
	cs[0].mu.Lock()
	armed := cs[0].armed
	cs[0].mu.Unlock()
	// net/http asks for about seven per request; lazily about three
	// (clear for its background read, the abort that interrupts it, the
	// idle timeout) are armed.
	if float64(armed) > perRequest*n {
		t.Fatalf("%d deadlines armed for %d requests", armed, n)
	}
	t.Logf("%d deadlines armed for %d requests", armed, n)
}

func TestLazyDeadlines_TimeoutsStillFire(t *testing.T) {
	t.Run("header", func(t *testing.T) {
		hs := &http.Server{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: time.Minute, Handler: http.NotFoundHandler()}
		addr, _ := deadlineServer(t, hs)
		c := dial(t, addr)
		start := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n") // never finished
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(c)
		if d := time.Since(start); err != nil || d < 150*time.Millisecond || d > 2*time.Second {
			t.Fatalf("closed after %v (%v), want ~200 ms", d, err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		// The handler takes long enough for net/http's background read to
		// be blocked when the response is done: the abort must reach it,
		// or the idle timeout is never armed.
		hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 300 * time.Millisecond,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(50 * time.Millisecond) })}
		addr, _ := deadlineServer(t, hs)
		c := dial(t, addr)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = br.ReadByte()
		if d := time.Since(start); !errors.Is(err, io.EOF) || d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("idle connection closed after %v (%v), want ~300 ms", d, err)
		}
	})
	t.Run("write", func(t *testing.T) {
		werr := make(chan error, 1)
		hs := &http.Server{WriteTimeout: 300 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 1<<20)
			for range 512 { // 512 MiB to a client that does not read
				if _, err := w.Write(chunk); err != nil {
					werr <- err
					return
				}
			}
			werr <- nil
		})}
		addr, _ := deadlineServer(t, hs)
		c := dial(t, addr)
		start := time.Now()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case err := <-werr:
			if d := time.Since(start); err == nil || d > 3*time.Second {
				t.Fatalf("write ended after %v with %v, want a timeout after ~300 ms", d, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the write timeout never fired")
		}
	})
}

// A handler's request context is cancelled when the client goes away: that
// needs net/http's background read, which runs under these deadlines.
func TestLazyDeadlines_ClientGoneCancelsTheRequest(t *testing.T) {
	cancelled := make(chan struct{})
	started := make(chan struct{})
	hs := &http.Server{ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				close(cancelled)
			case <-time.After(10 * time.Second):
			}
		})}
	addr, _ := deadlineServer(t, hs)
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("request context not cancelled after the client closed")
	}
}

// Deadlines set through http.ResponseController while the handler runs
// (what the backup download does to lift the write timeout) apply.
func TestLazyDeadlines_ResponseControllerLiftsWriteTimeout(t *testing.T) {
	done := make(chan error, 1)
	hs := &http.Server{WriteTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			done <- err
			return
		}
		time.Sleep(400 * time.Millisecond) // past the write timeout
		_, err := io.WriteString(w, "late but allowed")
		done <- err
	})}
	addr, _ := deadlineServer(t, hs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-done; err != nil || string(body) != "late but allowed" {
		t.Fatalf("handler write: %v, body %q", err, body)
	}
}

func TestDeadlineNS(t *testing.T) {
	now := time.Now()
	if deadlineNS(time.Time{}) != 0 || !deadlineTime(0).IsZero() {
		t.Fatal("the zero deadline must stay 'none'")
	}
	for _, tm := range []time.Time{time.Unix(1, 0), time.Unix(0, 0), time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got := deadlineTime(deadlineNS(tm)); got.IsZero() || got.After(now) {
			t.Errorf("%v came back as %v, want a past deadline", tm, got)
		}
	}
	if got := deadlineTime(deadlineNS(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))); got.Before(now.AddDate(200, 0, 0)) {
		t.Errorf("a far deadline came back as %v", got)
	}
	if got := deadlineTime(deadlineNS(now)); !got.Equal(now) {
		t.Errorf("%v came back as %v", now, got)
	}
}

// A past deadline set as a Read starts must end that Read, whichever of
// the two gets to the connection first (what net/http's abortPendingRead
// relies on); run many times so both orders happen.
func TestLazyDeadlines_AbortRacesRead(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent peer: reads on the other side block
		}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := &lazyDeadlineConn{TCPConn: raw.(*net.TCPConn)}
	for i := range 300 {
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			done <- err
		}()
		if i%2 == 0 {
			runtime.Gosched()
		}
		if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("round %d: read ended with %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the abort never reached the read", i)
		}
	}
}

// A call under an expired deadline fails at once with the timeout error a
// socket gives, even with data waiting, and leaves the data for later.
func TestLazyDeadlines_ExpiredDeadlineFailsAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "x")
		time.Sleep(5 * time.Second)
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := &lazyDeadlineConn{TCPConn: raw.(*net.TCPConn)}
	time.Sleep(50 * time.Millisecond) // the byte is there
	for _, past := range []time.Time{time.Unix(1, 0), time.Now().Add(-time.Millisecond)} {
		c.SetReadDeadline(past)
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		if n != 0 || !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read under %v: %d, %v", past, n, err)
		}
		if _, err := c.Write([]byte("y")); err != nil {
			t.Fatalf("the write side must not be affected: %v", err)
		}
	}
	c.SetReadDeadline(time.Time{})
	b := make([]byte, 1)
	if n, err := c.Read(b); n != 1 || b[0] != 'x' || err != nil {
		t.Fatalf("after clearing: %d %q %v", n, b[:n], err)
	}
	c.SetWriteDeadline(time.Unix(1, 0))
	if _, err := c.Write([]byte("z")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write under an expired deadline: %v", err)
	}
}
