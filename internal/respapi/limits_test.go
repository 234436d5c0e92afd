package respapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"

	"github.com/yndnr/tokmesh-go/internal/auth"
)

func TestFramer_Table(t *testing.T) {
	big := strings.Repeat("x", MaxBulkLen)
	cases := []struct {
		name, in string
		msg      string // "" = accepted
		at       int    // where a rejection stops (bytes handed on); -1: at the last byte
	}{
		{"multibulk", "*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", "", 0},
		{"pipeline", "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", "", 0},
		{"empty bulk", "*2\r\n$4\r\nPING\r\n$0\r\n\r\n", "", 0},
		{"bulk at the limit", fmt.Sprintf("*2\r\n$4\r\nPING\r\n$%d\r\n%s\r\n", len(big), big), "", 0},
		{"signed lengths, as strconv.Atoi", "*+1\r\n$+4\r\nPING\r\n", "", 0},
		{"inline", "PING\r\nPING hi\n\r\n\n", "", 0},
		{"partial command", "*3\r\n$3\r\nSET\r\n$2\r\nab", "", 0},
		{"1025 elements", "*1025\r\n", msgTooManyArgs, 6},
		{"1024 elements", "*1024\r\n", "", 0},
		{"bulk over the limit", fmt.Sprintf("*2\r\n$4\r\nPING\r\n$%d\r\n", MaxBulkLen+1), msgBulkLen, -1},
		{"1 GB bulk", "*1\r\n$1000000000\r\n", msgBulkLen, -1},
		{"zero elements", "*0\r\n", msgMultiBulkLen, 3},
		{"negative elements", "*-1\r\n", msgMultiBulkLen, 4},
		{"not a number", "*x\r\n", msgMultiBulkLen, 3},
		{"LF without CR", "*1\n", msgMultiBulkLen, 2},
		{"endless header", "*" + strings.Repeat("1", 40), msgMultiBulkLen, 33},
		{"endless bulk header", "*1\r\n$" + strings.Repeat("1", 40), msgBulkLen, 37},
		{"negative bulk", "*1\r\n$-1\r\n", msgBulkLen, 8},
		{"no $", "*1\r\n:1\r\n", msgExpectBulk, 4},
		{"payload without CRLF", "*1\r\n$1\r\nabX", msgBulkLen, 9},
		{"payload CR without LF", "*1\r\n$1\r\na\rX", msgBulkLen, 10},
		{"inline over the limit", strings.Repeat("a", maxInline+1), msgInline, maxInline},
		{"commands before the bad one", "*1\r\n$4\r\nPING\r\n*1\r\n$99999999\r\n", msgBulkLen, -1},
		{"command of exactly 1 MiB", "*16\r\n" + strings.Repeat(fmt.Sprintf("$%d\r\n%s\r\n", len(big), big), 16), "", 0},
		{"command over 1 MiB", "*17\r\n" + strings.Repeat(fmt.Sprintf("$%d\r\n%s\r\n", len(big), big), 16) + "$1\r\n", msgTooBig, -1},
		{"1 MiB in two commands", strings.Repeat("*8\r\n"+strings.Repeat(fmt.Sprintf("$%d\r\n%s\r\n", len(big), big), 8), 2), "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// In one piece and byte by byte: the same verdict.
			var f framer
			n, msg := f.feed([]byte(tc.in))
			var g framer
			gn, gmsg := len(tc.in), ""
			for i := 0; i < len(tc.in); i++ {
				if k, m := g.feed([]byte{tc.in[i]}); m != "" {
					gn, gmsg = i+k, m
					break
				}
			}
			if msg != tc.msg || gmsg != tc.msg {
				t.Fatalf("message %q / byte-wise %q, want %q", msg, gmsg, tc.msg)
			}
			want := len(tc.in)
			switch {
			case tc.msg != "" && tc.at < 0:
				want = len(tc.in) - 1
			case tc.msg != "":
				want = tc.at
			}
			if n != want || gn != want {
				t.Fatalf("handed on %d / byte-wise %d bytes, want %d", n, gn, want)
			}
		})
	}
}

// FuzzFramer feeds arbitrary bytes (verdict independent of how reads split
// the stream, never a panic) and well-formed commands built from the same
// bytes (always let through, as redcon parses them).
func FuzzFramer(f *testing.F) {
	for _, s := range []string{
		"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", "PING\r\n", "*0\r\n", "*1\r\n$-1\r\n", "*1\r\n:1\r\n",
		"*1\r\n$1\r\nabX", "*+1\r\n$+4\r\nPING\r\n", "\x00\x01garbage\xff\r\n", "*1025\r\n", "\"unbalanced\r\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		var whole framer
		n, msg := whole.feed(in)
		if n < 0 || n > len(in) || (msg == "") != (n == len(in)) {
			t.Fatalf("handed on %d of %d bytes with %q", n, len(in), msg)
		}
		cut := int(split) % (len(in) + 1)
		var parts framer
		pn, pmsg := parts.feed(in[:cut])
		if pmsg == "" {
			var k int
			k, pmsg = parts.feed(in[cut:])
			pn = cut + k
		}
		if pn != n || pmsg != msg {
			t.Fatalf("split at %d: %d %q, whole: %d %q", cut, pn, pmsg, n, msg)
		}

		// Well-formed: the bytes as the arguments of one command (NUL
		// separates arguments), twice, as a pipeline.
		args := bytes.Split(in, []byte{0})
		if len(args) > MaxArgs {
			return
		}
		total := 0
		for _, a := range args {
			if total += len(a); len(a) > MaxBulkLen || total > MaxCommandBytes { // refused by design
				return
			}
		}
		var cmd []byte
		for range 2 {
			cmd = redcon.AppendArray(cmd, len(args))
			for _, a := range args {
				cmd = redcon.AppendBulk(cmd, a)
			}
		}
		var ok framer
		if n, msg := ok.feed(cmd); msg != "" {
			t.Fatalf("well-formed command refused at %d: %s", n, msg)
		}
		rd, parsed := redcon.NewReader(bytes.NewReader(cmd)), 0
		for parsed < 2 {
			cmds, err := rd.ReadCommands()
			if err != nil {
				t.Fatalf("redcon parsed %d commands: %v", parsed, err)
			}
			parsed += len(cmds)
		}
	})
}

// rawAddr dials addr and returns the connection with a deadline.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// expectProtocolError reads the error line and then EOF (the server closed).
func expectProtocolError(t *testing.T, c net.Conn, want string) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	if string(got) != "-ERR Protocol error: "+want+"\r\n" {
		t.Fatalf("got %q, want the protocol error %q and a close", got, want)
	}
}

// A client announcing a 1 GB bulk gets the protocol error as soon as the
// header arrives: the server neither waits for nor buffers the payload.
func TestLimits_HugeBulkIsRefusedBeforeBuffering(t *testing.T) {
	e := newEnv(t)
	payload := bytes.Repeat([]byte("x"), 1<<20)
	c := rawConn(t, e.addr)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() {
		// Errors are expected: the server closes without reading it all.
		c.Write([]byte("*2\r\n$4\r\nPING\r\n$1000000000\r\n"))
		c.Write(payload)
	}()
	start := time.Now()
	expectProtocolError(t, c, msgBulkLen)
	runtime.ReadMemStats(&after)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("protocol error after %v", d)
	}
	// Buffering the megabyte (let alone the announced gigabyte) would
	// allocate at least as much: redcon grows its buffer by doubling.
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 512<<10 {
		t.Fatalf("%d bytes allocated while refusing the bulk", grown)
	}
	// Everyone else is served.
	r := dialRaw(t, e.addr)
	r.send("PING")
	r.expect("+PONG")
}

func TestLimits_TooManyElementsAndLongInlineLinesCloseTheConnection(t *testing.T) {
	e := newEnv(t)
	c := rawConn(t, e.addr)
	c.Write([]byte("*1025\r\n")) // no elements follow: refused on the header
	expectProtocolError(t, c, msgTooManyArgs)

	c = rawConn(t, e.addr)
	go c.Write(bytes.Repeat([]byte("a"), maxInline+10)) // no newline ever
	expectProtocolError(t, c, msgInline)

	// Commands in front of the bad header run and are answered first.
	c = rawConn(t, e.addr)
	c.Write([]byte("*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nPING\r\n$70000\r\n"))
	got, _ := io.ReadAll(c)
	if string(got) != "+PONG\r\n+PONG\r\n-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestLimits_CommandsAtTheLimitsAreServed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(auth.RoleIssuer, 2)
	big := strings.Repeat("y", MaxBulkLen)
	if got, err := c.Do(ctx, "PING", big).Text(); err != nil || got != big {
		t.Fatalf("PING with a 64 KiB argument: %d bytes, %v", len(got), err)
	}
	keys := make([]string, MaxArgs-1) // EXISTS + 1023 keys = 1024 elements
	for i := range keys {
		keys[i] = "k"
	}
	if n, err := c.Exists(ctx, keys...).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS with 1023 keys: %d %v", n, err)
	}
	err := c.Exists(ctx, append(keys, "k")...).Err()
	if err == nil || !strings.Contains(err.Error(), "Protocol error: too many arguments") {
		if !errors.Is(err, io.EOF) { // the close may win over the error line
			t.Fatalf("EXISTS with 1024 keys: %v", err)
		}
	}
	if err := c.Ping(ctx).Err(); err != nil { // a new pooled connection
		t.Fatal(err)
	}
}

// BenchmarkFramer is the framer's cost on a pipeline of TM.VALIDATE
// commands as redis-benchmark sends them (per command).
func BenchmarkFramer(b *testing.B) {
	var cmd []byte
	for range 16 {
		cmd = redcon.AppendArray(cmd, 2)
		cmd = redcon.AppendBulkString(cmd, "TM.VALIDATE")
		cmd = redcon.AppendBulkString(cmd, "tmtk_"+strings.Repeat("a", 43))
	}
	var f framer
	b.SetBytes(int64(len(cmd) / 16))
	b.ReportAllocs()
	for i := 0; i < b.N; i += 16 {
		if _, msg := f.feed(cmd); msg != "" {
			b.Fatal(msg)
		}
	}
}

// Any split of a stream gives the framer's verdict on the whole stream:
// random pipelines, cut at random points, intact and with one byte changed.
func TestFramer_VerdictDoesNotDependOnReadBoundaries(t *testing.T) {
	rnd := mathrand.New(mathrand.NewPCG(1, 2))
	var stream []byte
	for range 300 {
		if rnd.IntN(10) == 0 {
			stream = append(stream, "PING inline\r\n"...)
			continue
		}
		n := 1 + rnd.IntN(5)
		stream = redcon.AppendArray(stream, n)
		for range n {
			size := rnd.IntN(40)
			if rnd.IntN(20) == 0 {
				size = rnd.IntN(MaxBulkLen + 1)
			}
			stream = redcon.AppendBulk(stream, bytes.Repeat([]byte{'v'}, size))
		}
	}
	feedChunks := func(in []byte) (int, string) {
		var f framer
		for off := 0; off < len(in); {
			end := min(len(in), off+1+rnd.IntN(300))
			if rnd.IntN(50) == 0 {
				end = len(in)
			}
			if k, msg := f.feed(in[off:end]); msg != "" {
				return off + k, msg
			}
			off = end
		}
		return len(in), ""
	}
	if n, msg := feedChunks(stream); msg != "" {
		t.Fatalf("valid stream refused at %d: %s", n, msg)
	}
	for range 300 {
		bad := bytes.Clone(stream)
		pos := rnd.IntN(len(bad))
		bad[pos] = "*$\r\n9x-"[rnd.IntN(7)]
		var whole framer
		wn, wmsg := whole.feed(bad)
		for range 5 {
			if n, msg := feedChunks(bad); n != wn || msg != wmsg {
				t.Fatalf("byte %d changed: chunked %d %q, whole %d %q", pos, n, msg, wn, wmsg)
			}
		}
	}
}

// redis-benchmark's pipelined traffic (-P 16, several commands per read,
// split at arbitrary points) passes the framer without errors.
func TestLimits_RedisBenchmarkPipelinesPassTheFramer(t *testing.T) {
	bench, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Skip("redis-benchmark not installed")
	}
	e := newEnv(t)
	k, secret, _, err := e.keys.Create(context.Background(), auth.CreateRequest{Role: auth.RoleIssuer, RateLimit: 1_000_000}, "LOCAL_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	cr := create(t, e.client(auth.RoleIssuer, 2), `{"user_id":"bench"}`)
	host, port, _ := net.SplitHostPort(e.addr)
	// Bounded: if the server stopped answering, redis-benchmark would wait
	// (and outlive a test binary killed by -timeout, spinning on a CPU).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bench, "-h", host, "-p", port, "-a", k.ID+":"+secret, "-c", "4", "-n", "20000", "-P", "16",
		"-q", "TM.VALIDATE", cr.Token)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "requests per second") || strings.Contains(string(out), "rror") {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	st := e.srv.valid.Load()
	if st < 20000 {
		t.Fatalf("%d valid validations, want 20000\n%s", st, out)
	}
}
