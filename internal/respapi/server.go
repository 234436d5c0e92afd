// Package respapi is TokMesh's Redis-compatible (RESP2) port on
// tidwall/redcon (03-resp-api). It shares the engine, the authenticator,
// the brute-force guard and the error catalogue (apierr) with the HTTP API.
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
	// Audit receives auth.failure and auth.ip_blocked records; nil = none.
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
}

// Server is one RESP listener's server. Create with New, run with Serve,
// stop with Close.
type Server struct {
	cfg   Config
	log   *slog.Logger
	start time.Time
	cmds  map[string]*command

	mu     sync.Mutex
	rs     *redcon.Server
	ln     net.Listener
	closed bool
	conns  sync.WaitGroup

	nextID atomic.Int64
	open   atomic.Int64

	// INFO stats.
	connsTotal, rejected, commands atomic.Uint64
	hits, misses                   atomic.Uint64
	valid, invalid                 atomic.Uint64
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
	s := &Server{cfg: cfg, log: log, start: time.Now()}
	s.cmds = commandTable(s)
	return s
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("respapi: server closed")

// Serve accepts connections on l until Close; it returns nil after Close
// (ErrServerClosed if Close came first) and closes l.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	if s.rs != nil {
		s.mu.Unlock()
		return errors.New("respapi: Serve called twice")
	}
	s.ln = l
	s.rs = redcon.NewServerNetwork(l.Addr().Network(), l.Addr().String(), s.handle, s.accept, s.closedConn)
	s.rs.AcceptError = func(err error) {
		s.log.Warn("resp accept failed", "error", err)
		time.Sleep(10 * time.Millisecond) // no busy loop on EMFILE
	}
	s.conns.Add(1) // held by the accept loop so Close waits for it
	rs := s.rs
	s.mu.Unlock()
	defer s.conns.Done()
	return rs.Serve(l)
}

// Addr is the listening address, nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
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
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		ln.Close() // the redcon loop sees net.ErrClosed and closes every conn
	}
	s.conns.Wait()
	return nil
}

// connState is the per-connection state (redcon's conn context).
type connState struct {
	id       int64
	ip       netip.Addr
	p        *auth.Principal
	name     string
	quitting bool
	buf      []byte // reused reply buffer (validate hot path)
}

func (s *Server) accept(c redcon.Conn) bool {
	s.connsTotal.Add(1)
	if n := s.open.Add(1); n > int64(s.cfg.MaxConns) {
		s.open.Add(-1)
		s.rejected.Add(1)
		nc := c.NetConn()
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write([]byte("-ERR max number of clients reached\r\n"))
		return false
	}
	st := &connState{id: s.nextID.Add(1), buf: make([]byte, 0, 512)}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr()); err == nil {
		st.ip = ap.Addr().Unmap()
	}
	c.SetContext(st)
	s.conns.Add(1)
	return true
}

func (s *Server) closedConn(c redcon.Conn, err error) {
	s.open.Add(-1)
	s.conns.Done()
}

// handle runs one command.
func (s *Server) handle(c redcon.Conn, cmd redcon.Command) {
	st, _ := c.Context().(*connState)
	if st == nil || st.quitting {
		return // after QUIT or a protocol error: the rest of the pipeline is dropped
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("resp command panicked", "panic", r, "stack", string(debug.Stack()))
			writeCode(c, apierr.SysInternal)
		}
	}()
	s.commands.Add(1)
	if len(cmd.Args) > MaxArgs {
		s.protocolError(c, st, "too many arguments")
		return
	}
	for _, a := range cmd.Args {
		if len(a) > MaxBulkLen {
			s.protocolError(c, st, "invalid bulk length")
			return
		}
	}
	var up [32]byte
	name := cmd.Args[0]
	var def *command
	if len(name) <= len(up) {
		for i, b := range name {
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			}
			up[i] = b
		}
		def = s.cmds[string(up[:len(name)])]
	}
	if def == nil {
		c.WriteError("ERR unknown command '" + sanitize(name) + "'")
		return
	}
	if n := len(cmd.Args); (def.arity > 0 && n != def.arity) || (def.arity < 0 && n < -def.arity) {
		c.WriteError("ERR wrong number of arguments for '" + def.lower + "' command")
		return
	}
	if def.flags&flagNoBlock == 0 && s.cfg.Brute != nil {
		if blocked, _ := s.cfg.Brute.Blocked(st.ip); blocked {
			writeCode(c, apierr.AuthIPBlocked)
			return
		}
	}
	if def.cap != 0 {
		if st.p == nil {
			writeCode(c, apierr.AuthNoCredential)
			return
		}
		if err := s.cfg.Authenticator.Recheck(st.p); err != nil {
			writeErr(c, s.authError(st, err, false))
			return
		}
		if !st.p.Can(def.cap) {
			writeCode(c, apierr.AuthForbidden)
			return
		}
		if def.flags&flagGated != 0 && s.cfg.Gate != nil {
			if aerr := s.cfg.Gate(); aerr != nil {
				writeErr(c, aerr)
				return
			}
		}
	}
	def.fn(c, st, cmd.Args)
}

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
		return apierr.New(apierr.AuthIPNotAllowed)
	case errors.Is(err, auth.ErrNoCredential):
		return apierr.New(apierr.AuthNoCredential)
	case errors.As(err, &af):
		if atAuth {
			s.auditFailure(st, af)
			if af.BruteForce && s.cfg.Brute != nil && s.cfg.Brute.AuthFailure(st.ip) {
				s.auditBlock(st.ip, "auth_failures")
			}
		}
		if af.Reason == auth.ReasonDisabled {
			return apierr.New(apierr.AuthKeyDisabled)
		}
		return apierr.New(apierr.AuthBadCredential)
	case errors.Is(err, auth.ErrBadCredential):
		return apierr.New(apierr.AuthBadCredential)
	case errors.As(err, &rl):
		secs := max(int((rl.RetryAfter+time.Second-1)/time.Second), 1)
		return &apierr.Error{Code: apierr.SysRateLimited, RetryAfter: secs,
			Message: "rate limit exceeded, retry after " + strconv.Itoa(secs) + "s"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apierr.Error{Code: apierr.SysNotReady, Message: "authentication is overloaded, retry", RetryAfter: 1}
	}
	return &apierr.Error{Code: apierr.SysInternal, Err: err}
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
	s.log.Warn("client IP blocked by the brute-force guard", "client_ip", ip.String(), "reason", reason)
	if s.cfg.Audit == nil {
		return
	}
	s.cfg.Audit.Record(audit.Record{Action: "auth.ip_blocked", Resource: ip.String(), Result: audit.ResultSuccess,
		ClientIP: ip.String(), Details: map[string]any{"reason": reason}})
}

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
