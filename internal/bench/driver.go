package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// request is one operation in flight on a worker's connection.
type request struct {
	op      op
	invalid bool   // validate of an unknown token (--invalid-ratio)
	preload bool   // a create of the preload phase (idx names the slot)
	idx     int32  // pool slot (validate/touch/renew/revoke/preload) or unknown-token slot
	user    int64  // user number (create)
	seq     int64  // per-worker create sequence (Redis keys)
	key     string // revoke of a session created during the run (mixed)
	sched   int64  // intended send time (run clock, ns); latency is measured from it
	// measured: scheduled in the measured phase (decided with the batch).
	measured bool
}

// outcome classifies a reply.
type outcome uint8

const (
	outOK      outcome = iota
	outInvalid         // a validation answered "not valid" (code: TM-TOKN-…, or "nil" for a Redis miss)
	outError           // an error reply (code set)
)

// Bench-side error codes (the server's own codes are counted as sent).
const (
	codeConn      = "BENCH-CONN"        // connection failed or closed mid-request
	codeTimeout   = "BENCH-TIMEOUT"     // no answer before the end of the run (+10 s)
	codeProto     = "BENCH-PROTO"       // a reply that is not what the operation answers
	codeStale     = "BENCH-STALE-VALID" // revoke-storm: valid after the revocation was acknowledged
	codeRedisMiss = "REDIS-NIL"         // Redis: a key that must exist did not (GET nil, EXPIRE 0)

	// codeReplayRequired is the server's answer to a write without the
	// anti-replay headers when they are required (04-security §5).
	codeReplayRequired = "TM-AUTH-4016"
)

var (
	bCodeProto     = []byte(codeProto)
	bCodeRedisMiss = []byte(codeRedisMiss)
	bRedisNil      = []byte("nil")
	bTokenRevoked  = []byte("TM-TOKN-4012")
)

// result is the classified reply; code and body point into the
// connection's buffers and are valid until the next receive.
type result struct {
	out  outcome
	code []byte
	body []byte
}

// driver speaks one protocol on one connection. Not safe for concurrent
// use except abort.
type driver interface {
	// ready (re)connects when needed; called before every batch.
	ready() error
	// send queues one request.
	send(r *request)
	// flush sends the queued requests.
	flush() error
	// receive reads the reply of the oldest unanswered request. An error
	// means the connection is unusable (call broken).
	receive(r *request) (result, error)
	// created returns the session ID (or Redis key) of a successful
	// create, for later revokes; "" if unknown.
	created(r *request, res result) string
	// broken closes a failed connection; the next ready redials.
	broken()
	// abort closes the connection from another goroutine (end of run).
	abort()
	close()
}

// connRef lets abort close the current connection from another goroutine.
type connRef struct{ p atomic.Pointer[net.Conn] }

func (c *connRef) set(nc net.Conn) {
	if nc == nil {
		c.p.Store(nil)
		return
	}
	c.p.Store(&nc)
}

func (c *connRef) abort() {
	if p := c.p.Load(); p != nil {
		(*p).Close()
	}
}

// dialer opens one connection to the target, TLS included.
type dialer struct {
	addr string
	tls  *tls.Config // nil: plaintext
}

func (d dialer) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nd := &net.Dialer{KeepAlive: 30 * time.Second}
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if d.tls == nil {
		return nc, nil
	}
	tc := tls.Client(nc, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

// tlsConfig builds the client TLS configuration of https / resp-tls.
func tlsConfig(c *Config, alpn []string) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(c.hostPort())
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, NextProtos: alpn}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, usageErr("--ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--ca-file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, usageErr("--cert-file/--key-file: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// ---- shared encoding helpers ----

func appendArr(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkB(b, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

func appendBulkInt(b []byte, n int64) []byte {
	var tmp [20]byte
	return appendBulkB(b, strconv.AppendInt(tmp[:0], n, 10))
}

// jsonField returns the string value of "name":"…" in a JSON object
// (no unescaping: IDs and tokens never need it).
func jsonField(body []byte, name string) []byte {
	var pat [48]byte
	p := append(pat[:0], '"')
	p = append(p, name...)
	p = append(p, '"', ':', '"')
	i := bytes.Index(body, p)
	if i < 0 {
		return nil
	}
	v := body[i+len(p):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

var errNotConnected = errors.New("not connected")
