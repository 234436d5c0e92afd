// Package respapi is TokMesh's Redis-compatible (RESP2) port on
// tidwall/redcon (03-resp-api). It shares the engine, the authenticator,
// the brute-force guard, the session audit records and the error catalogue
// (apierr) with the HTTP API.
//
// Invariants:
//   - The argument limits are enforced on the byte stream, before redcon
//     buffers a command (limits.go): no header can make the server read or
//     allocate more than the limits allow.
//   - Every connection goroutine belongs to Close: it closes the listeners
//     and waits for each connection to return.
//   - TM.VALIDATE allocates nothing per request (metrics included).
package respapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/metrics"
)

// Limits of 03-resp-api §1.
const (
	DefaultMaxConns = 10000
	MaxBulkLen      = 64 << 10 // bytes per argument
	MaxArgs         = 1024     // elements per command, name included
	maxDelKeys      = 1000
	authTimeout     = 5 * time.Second // wait for an Argon2 slot on AUTH
)

// Config configures a Server.
type Config struct {
	// Engine serves the session commands (required).
	Engine *engine.Engine
	// Authenticator checks AUTH and re-checks every later command (required).
	Authenticator *auth.Authenticator
	// Brute is the per-IP brute-force guard shared with HTTP; nil disables it.
	Brute *auth.BruteForceGuard
	// Audit receives auth.failure, auth.ip_blocked and the session write
	// records (session.create, session.revoke, session.revoke_all); nil = none.
	Audit *audit.Log
	// Logger; nil discards.
	Logger *slog.Logger
	// MaxConns is server.limits.max_resp_connections; 0 = DefaultMaxConns.
	MaxConns int
	// Gate is the readiness / lease / maintenance gate applied to every
	// session command (04-security §3 step 5): nil or a nil result admits.
	Gate func() *apierr.Error
	// Mode is "standalone" (default) or "cluster" (HELLO, INFO).
	Mode string
	// NodeID and Version appear in INFO; Version defaults to buildinfo's.
	NodeID, Version string
	// Metrics receives the RESP series of 09-observability §1; nil = none.
	Metrics *metrics.Metrics
	// OnBusiness, when set, is called after every session command (those
	// behind the readiness gate, refused or not) with the Unix second it
	// ended in and its duration: the node's business qps and p99 of
	// GET /admin/v1/status count RESP traffic as well as HTTP.
	OnBusiness func(sec int64, seconds float64)
	// OnAuthFailure, when set, is told of every failed verification (at
	// AUTH or HELLO, and once per connection and reason when a later
	// command finds the key gone) with the client IP, the key ID when the
	// credential named one, and the reason: the node logs it at WARN,
	// throttled per IP together with HTTP's (09-observability §2).
	OnAuthFailure func(ip netip.Addr, keyID, reason string)
}

// Server is the RESP server of a node. Create with New, run with Serve
// (once per listener: plaintext and TLS share one Server, so connection
// limit, INFO and metrics cover both), stop with Close.
type Server struct {
	cfg   Config
	log   *slog.Logger
	start time.Time
	cmds  map[string]*command
	m     *metrics.Metrics
	// timed: every command's duration is measured (for the metrics or
	// OnBusiness), so each one sets lastEnd for the next in a pipeline.
	timed bool
	// unknownSeries counts commands that are not in the table.
	unknownSeries *metrics.RESPSeries

	mu      sync.Mutex
	lns     []net.Listener
	closed  bool
	conns   sync.WaitGroup
	stopOps chan struct{} // stops the ops/sec sampler; nil before the first Serve
	opsDone chan struct{}

	nextID atomic.Int64
	open   atomic.Int64

	// INFO stats.
	connsTotal, rejected, commands atomic.Uint64
	hits, misses                   atomic.Uint64
	valid, invalid                 atomic.Uint64
	opsPerSec                      atomic.Int64
}

// New returns a Server; it does not listen.
func New(cfg Config) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.Mode == "" {
		cfg.Mode = "standalone"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, start: time.Now(), m: cfg.Metrics, timed: cfg.Metrics != nil || cfg.OnBusiness != nil}
	s.cmds = commandTable(s)
	s.unknownSeries = s.m.RESPCommand("unknown")
	for _, d := range s.cmds {
		d.series = s.m.RESPCommand(d.lower)
	}
	return s
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("respapi: server closed")

// Serve accepts connections on l until Close and closes l; it returns nil
// after Close (ErrServerClosed if Close came first). It may be called once
// per listener, concurrently. A TLS listener (tls.NewListener) serves
// RESP-TLS: handshakes must finish within 10 s.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	rs := redcon.NewServerNetwork(l.Addr().Network(), l.Addr().String(), s.handle, s.accept, s.closedConn)
	rs.AcceptError = func(err error) {
		s.log.Warn("resp accept failed", "error", err)
		time.Sleep(10 * time.Millisecond) // no busy loop on EMFILE
	}
	s.lns = append(s.lns, l)
	if s.stopOps == nil {
		s.stopOps, s.opsDone = make(chan struct{}), make(chan struct{})
		go s.sampleOps(s.stopOps, s.opsDone)
	}
	s.conns.Add(1) // held by the accept loop so Close waits for it
	s.mu.Unlock()
	defer s.conns.Done()
	return rs.Serve(limitListener{l})
}

// Addr is the address of the first listener, nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lns) == 0 {
		return nil
	}
	return s.lns[0].Addr()
}

// Close stops accepting, closes every connection and waits until every
// connection goroutine has returned.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	lns := s.lns
	stop, done := s.stopOps, s.opsDone
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close() // the redcon loop sees net.ErrClosed and closes every conn
	}
	s.conns.Wait()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// sampleOps computes instantaneous_ops_per_sec as Redis does: commands per
// second over the last 16 samples taken every 100 ms.
func (s *Server) sampleOps(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	const n = 16
	var samples [n]float64
	var idx, filled int
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	lastAt, lastCount := time.Now(), s.commands.Load()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			count := s.commands.Load()
			if dt := now.Sub(lastAt).Seconds(); dt > 0 {
				samples[idx] = float64(count-lastCount) / dt
				idx, filled = (idx+1)%n, min(filled+1, n)
			}
			lastAt, lastCount = now, count
			if filled == 0 {
				continue
			}
			var sum float64
			for _, v := range samples[:filled] {
				sum += v
			}
			s.opsPerSec.Store(int64(sum/float64(filled) + 0.5))
		}
	}
}

// connState is the per-connection state (redcon's conn context).
type connState struct {
	id       int64
	ip       netip.Addr
	p        *auth.Principal
	name     string
	quitting bool
	refused  bool   // over the connection limit: not counted as open
	buf      []byte // reused reply buffer (validate hot path)
	w        replyConn
	// failAudited is the reason of the last auth.failure audited for a
	// re-check on this connection ("" after a passing one).
	failAudited string
	// lastEnd is when the previous command's reply was written; chained
	// says the next command was already in the pipeline then.
	lastEnd time.Time
	chained bool
}

// replyConn is the redcon.Conn the handlers write to: it notes whether the
// reply was an error (the result label of tokmesh_resp_commands_total).
type replyConn struct {
	redcon.Conn
	failed bool
}

func (w *replyConn) WriteError(msg string) {
	w.failed = true
	w.Conn.WriteError(msg)
}

func (s *Server) accept(c redcon.Conn) bool {
	st := &connState{id: s.nextID.Add(1), buf: make([]byte, 0, 512)}
	st.w.Conn = c
	c.SetContext(st)
	s.conns.Add(1)
	if n := s.open.Add(1); n > int64(s.cfg.MaxConns) {
		s.open.Add(-1)
		s.rejected.Add(1)
		st.refused = true
		// Answered and closed by the connection's own goroutine.
		if lc, ok := c.NetConn().(*limitConn); ok {
			lc.refuse("-ERR max number of clients reached\r\n")
		}
		return true
	}
	s.connsTotal.Add(1)
	s.m.RESPConnOpened()
	if ap, err := netip.ParseAddrPort(c.RemoteAddr()); err == nil {
		st.ip = ap.Addr().Unmap()
	}
	return true
}

func (s *Server) closedConn(c redcon.Conn, err error) {
	if st, _ := c.Context().(*connState); st != nil && !st.refused {
		s.open.Add(-1)
		s.m.RESPConnClosed()
	}
	s.conns.Done()
}

// handle runs one command.
func (s *Server) handle(c redcon.Conn, cmd redcon.Command) {
	st, _ := c.Context().(*connState)
	if st == nil || st.quitting || st.refused {
		return // after QUIT or a protocol error: the rest of the pipeline is dropped
	}
	s.commands.Add(1)
	st.w.failed = false
	def := s.lookupCommand(cmd.Args[0])
	series := s.unknownSeries
	if def != nil {
		series = def.series
	}
	business := s.cfg.OnBusiness != nil && def != nil && def.flags&flagGated != 0
	var start time.Time
	if s.timed {
		// Within a pipeline a command starts when the previous one ended:
		// one clock read per command instead of two.
		if start = st.lastEnd; !st.chained {
			start = time.Now()
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("resp command panicked", "panic", r, "stack", string(debug.Stack()))
			writeCode(&st.w, apierr.SysInternal)
		}
		if s.timed {
			end := time.Now()
			d := end.Sub(start).Seconds()
			if series != nil {
				series.Observe(!st.w.failed, d)
			}
			if business {
				s.cfg.OnBusiness(end.Unix(), d)
			}
			st.lastEnd, st.chained = end, len(c.PeekPipeline()) > 0
		}
	}()
	s.run(&st.w, st, def, cmd.Args)
}

// lookupCommand finds a command by name, case-insensitively, without
// allocating; nil when unknown.
func (s *Server) lookupCommand(name []byte) *command {
	var up [32]byte
	if len(name) > len(up) {
		return nil
	}
	for i, b := range name {
		if 'a' <= b && b <= 'z' {
			b -= 'a' - 'A'
		}
		up[i] = b
	}
	return s.cmds[string(up[:len(name)])]
}

// run checks and runs one command (def nil: unknown), writing its reply to w.
func (s *Server) run(w *replyConn, st *connState, def *command, args [][]byte) {
	// The framer stops oversized multibulk commands before they are
	// buffered; inline commands can still split into many arguments.
	if len(args) > MaxArgs {
		s.protocolError(w, st, msgTooManyArgs)
		return
	}
	if def == nil {
		w.WriteError("ERR unknown command '" + sanitize(args[0]) + "'")
		return
	}
	if n := len(args); (def.arity > 0 && n != def.arity) || (def.arity < 0 && n < -def.arity) {
		w.WriteError("ERR wrong number of arguments for '" + def.lower + "' command")
		return
	}
	if def.flags&flagNoBlock == 0 && s.cfg.Brute != nil {
		if blocked, _ := s.cfg.Brute.Blocked(st.ip); blocked {
			writeCode(w, apierr.AuthIPBlocked)
			return
		}
	}
	// The readiness / lease / maintenance gate (04 §3 step 5) comes before
	// the key checks (steps 10–13), as over HTTP: a node that cannot serve
	// says so to everyone, and refused commands spend no rate-limit tokens.
	if def.flags&flagGated != 0 && s.cfg.Gate != nil {
		if aerr := s.cfg.Gate(); aerr != nil {
			writeErr(w, aerr)
			return
		}
	}
	if def.cap == 0 && st.p != nil && def.flags&flagIdentity == 0 {
		// 03 §3: after authentication every command re-checks the key
		// and counts against its rate limit (04 §4) — PING, CLIENT,
		// SELECT and COMMAND too, so a disabled key stops working on an
		// open connection whatever the client sends.
		if err := s.cfg.Authenticator.Recheck(st.p); err != nil {
			writeErr(w, s.authError(st, err, false))
			return
		}
		st.failAudited = ""
	}
	if def.cap != 0 {
		if st.p == nil {
			s.m.AuthFailure("missing")
			writeErr(w, errAuthRequired)
			return
		}
		if err := s.cfg.Authenticator.Recheck(st.p); err != nil {
			writeErr(w, s.authError(st, err, false))
			return
		}
		st.failAudited = ""
		if !st.p.Can(def.cap) {
			s.m.AuthFailure("role")
			writeErr(w, errPermissionDenied)
			return
		}
		if def.flags&flagGated != 0 {
			// Like an HTTP business request, the command holds the
			// engine's business gate while it runs: a restore waits for
			// it, and no write interleaves with the store replacement.
			if !s.cfg.Engine.EnterBusiness() {
				writeErr(w, &apierr.Error{Code: apierr.AdminMaintenance, RetryAfter: 5})
				return
			}
			defer s.cfg.Engine.ExitBusiness()
		}
	}
	def.fn(w, st, args)
}

// protocolError answers a protocol error and closes the connection.
func (s *Server) protocolError(c redcon.Conn, st *connState, msg string) {
	c.WriteError("ERR Protocol error: " + msg)
	st.quitting = true
	c.Close()
}

// authError maps an Authenticate / Recheck failure to the catalogue, audits
// a failed verification and counts it against the brute-force guard.
func (s *Server) authError(st *connState, err error, atAuth bool) *apierr.Error {
	var af *auth.AuthFailure
	var rl *auth.RateLimitError
	switch {
	case errors.Is(err, auth.ErrIPNotAllowed):
		s.m.AuthFailure("ip_denied")
		return apierr.New(apierr.AuthIPNotAllowed)
	case errors.Is(err, auth.ErrNoCredential):
		s.m.AuthFailure("missing")
		return apierr.New(apierr.AuthNoCredential)
	case errors.As(err, &af):
		s.m.AuthFailure(af.Reason)
		switch {
		case atAuth:
			s.auditFailure(st, af)
			s.warnAuthFailure(st, af.KeyID, af.Reason)
			if af.BruteForce && s.cfg.Brute != nil && s.cfg.Brute.AuthFailure(st.ip) {
				s.auditBlock(st.ip, "auth_failures")
			}
		case st.failAudited != af.Reason:
			// The connection's key was disabled, expired or rotated out
			// after AUTH (04 §9 audits it for RESP too): once per reason
			// and connection, not once per pipelined command.
			s.auditFailure(st, af)
			s.warnAuthFailure(st, af.KeyID, af.Reason)
			st.failAudited = af.Reason
		}
		if af.Reason == auth.ReasonDisabled {
			return apierr.New(apierr.AuthKeyDisabled)
		}
		return apierr.New(apierr.AuthBadCredential)
	case errors.Is(err, auth.ErrBadCredential):
		s.m.AuthFailure("bad_secret") // an unparsable credential cannot name a key
		if atAuth {
			s.auditFailure(st, &auth.AuthFailure{Reason: auth.ReasonMalformed})
			s.warnAuthFailure(st, "", auth.ReasonMalformed)
		}
		return apierr.New(apierr.AuthBadCredential)
	case errors.As(err, &rl):
		s.m.RateLimitRejection()
		secs := max(int((rl.RetryAfter+time.Second-1)/time.Second), 1)
		return &apierr.Error{Code: apierr.SysRateLimited, RetryAfter: secs,
			Message: "rate limit exceeded, retry after " + strconv.Itoa(secs) + "s"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apierr.Error{Code: apierr.SysNotReady, Message: "authentication is overloaded, retry", RetryAfter: 1}
	}
	return &apierr.Error{Code: apierr.SysInternal, Err: err}
}

func (s *Server) warnAuthFailure(st *connState, keyID, reason string) {
	if f := s.cfg.OnAuthFailure; f != nil {
		f(st.ip, keyID, reason)
	}
}

func (s *Server) auditFailure(st *connState, af *auth.AuthFailure) {
	if s.cfg.Audit == nil {
		return
	}
	code := apierr.AuthBadCredential
	if af.Reason == auth.ReasonDisabled {
		code = apierr.AuthKeyDisabled
	}
	s.cfg.Audit.Record(audit.Record{Actor: af.KeyID, Action: "auth.failure", Resource: af.KeyID,
		Result: audit.ResultFailure, Code: string(code), TCPRemoteIP: st.ip.String(), ClientIP: st.ip.String(),
		UserAgent: st.name, Details: map[string]any{"reason": af.Reason, "protocol": "resp"}})
}

func (s *Server) auditBlock(ip netip.Addr, reason string) {
	s.m.BruteForceBlock()
	s.log.Warn("client IP blocked by the brute-force guard", "client_ip", ip.String(), "reason", reason)
	if s.cfg.Audit == nil {
		return
	}
	s.cfg.Audit.Record(audit.Record{Action: "auth.ip_blocked", Resource: ip.String(), Result: audit.ResultSuccess,
		ClientIP: ip.String(), Details: map[string]any{"reason": reason, "until": s.cfg.Brute.BlockedUntil(ip).UnixMilli()}})
}

// The two auth refusals of 03 §3 carry that section's wording; the codes
// are the catalogue's.
var (
	errAuthRequired     = &apierr.Error{Code: apierr.AuthNoCredential, Message: "authentication required"}
	errPermissionDenied = &apierr.Error{Code: apierr.AuthForbidden, Message: "permission denied"}
)

// writeCode writes "-<CODE> <catalogue message>".
func writeCode(c redcon.Conn, code apierr.Code) {
	c.WriteError(string(code) + " " + code.Message())
}

// writeErr writes "-<CODE> <message>"; 5xx causes are logged by the caller.
func writeErr(c redcon.Conn, e *apierr.Error) {
	c.WriteError(string(e.Code) + " " + sanitizeString(e.Msg()))
}

// sanitize makes a client-sent name safe inside an error line.
func sanitize(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		out[i] = c
	}
	return string(out)
}

func sanitizeString(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return sanitize([]byte(s))
		}
	}
	return s
}
