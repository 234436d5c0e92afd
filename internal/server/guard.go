package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/httpapi"
	"github.com/yndnr/tokmesh-go/internal/metrics"
)

// tcpGuard is the request pipeline of 04-security §3 for the TCP listeners:
// client IP → brute-force block → global allowlist → credential → auth cache
// / Argon2 → disabled/expired → per-key allowlist → rate limit → role →
// anti-replay. The body has not been read when it runs.
type tcpGuard struct {
	authn   *auth.Authenticator
	brute   *auth.BruteForceGuard
	replay  *auth.AntiReplay
	trusted atomic.Pointer[[]netip.Prefix] // security.network.trusted_proxies (hot)
	audit   *audit.Log
	log     *slog.Logger
	timeout time.Duration // how long a request may wait for an Argon2 slot
	m       *metrics.Metrics

	warnMu   sync.Mutex
	lastWarn map[netip.Addr]time.Time // auth-failure WARN lines: ≤ 1 per client IP per 10 s
}

// warnAuthFailure logs an authentication failure at WARN, at most once per
// client IP per 10 s over HTTP and RESP together (09-observability §2).
// Only the key ID (public) and the reason are logged, never the
// credential. rid is the HTTP request's ID; "" for RESP, which has none.
func (g *tcpGuard) warnAuthFailure(rid string, ip netip.Addr, keyID, reason string) {
	now := time.Now()
	g.warnMu.Lock()
	if g.lastWarn == nil || len(g.lastWarn) > 10000 {
		g.lastWarn = map[netip.Addr]time.Time{}
	}
	last, seen := g.lastWarn[ip]
	if seen && now.Sub(last) < 10*time.Second {
		g.warnMu.Unlock()
		return
	}
	g.lastWarn[ip] = now
	g.warnMu.Unlock()
	if rid == "" {
		g.log.Warn("authentication failed", "protocol", "resp", "client_ip", ip.String(), "key_id", keyID, "reason", reason)
		return
	}
	g.log.Warn("authentication failed", "request_id", rid, "client_ip", ip.String(), "key_id", keyID, "reason", reason)
}

// setTrusted replaces the trusted proxies (startup and config reload).
func (g *tcpGuard) setTrusted(p []netip.Prefix) { g.trusted.Store(&p) }

var capOf = map[httpapi.Capability]auth.Capability{
	httpapi.CapValidate:    auth.CapValidate,
	httpapi.CapReadSession: auth.CapReadSession,
	httpapi.CapTouch:       auth.CapTouch,
	httpapi.CapWrite:       auth.CapWrite,
	httpapi.CapRevokeUser:  auth.CapRevokeUser,
	httpapi.CapRouting:     auth.CapRouting,
	httpapi.CapMetrics:     auth.CapMetrics,
	httpapi.CapAdmin:       auth.CapAdmin,
}

// connInfo is what the TCP listeners keep per connection (http.Server's
// ConnContext): the peer address, parsed once, and the auth memo of the
// credential that last authenticated on the connection.
type connInfo struct {
	peer netip.AddrPort
	memo auth.ConnMemo
}

type connInfoKey struct{}

// withConnInfo is the ConnContext of the TCP listeners.
func withConnInfo(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		ci.peer = ap
	}
	return context.WithValue(ctx, connInfoKey{}, ci)
}

// connInfoOf returns the request's connection info, nil when the request
// did not come through a listener with withConnInfo (tests, handlers
// called directly).
func connInfoOf(r *http.Request) *connInfo {
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	return ci
}

func peerAddr(r *http.Request, ci *connInfo) netip.AddrPort {
	if ci != nil && ci.peer.IsValid() {
		return ci.peer
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

func (g *tcpGuard) Check(r *http.Request, rt *httpapi.Route, rid string, listOwn bool) (httpapi.Caller, *apierr.Error) {
	ci := connInfoOf(r)
	peer := peerAddr(r, ci)
	ip := auth.ClientIP(peer, r.Header, *g.trusted.Load())
	if blocked, left := g.brute.Blocked(ip); blocked {
		return httpapi.Caller{}, &apierr.Error{Code: apierr.AuthIPBlocked, RetryAfter: ceilSeconds(left)}
	}
	if rt.Cap == httpapi.CapOpen {
		return httpapi.Caller{ClientIP: ip, UserAgent: r.UserAgent()}, nil
	}
	cred, _ := auth.CredentialFromHeader(r.Header)
	// No per-request timer: the request's own context (closed when the
	// client goes away, bounded by the server's read/write timeouts) bounds
	// the wait for an Argon2 slot on a cache miss.
	var memo *auth.ConnMemo
	if ci != nil {
		memo = &ci.memo
	}
	p, err := g.authn.AuthenticateConn(r.Context(), memo, cred, ip)
	if err != nil {
		return httpapi.Caller{}, g.authError(r, rid, peer, ip, err)
	}
	want := capOf[rt.Cap]
	if rt.Cap == httpapi.CapList {
		want = auth.CapListAny
		if listOwn {
			want = auth.CapListOwnUser
		}
	}
	caller := httpapi.Caller{KeyID: p.KeyID, Role: string(p.Role), ClientIP: ip, UserAgent: r.UserAgent()}
	if !p.Can(want) {
		g.m.AuthFailure("role")
		return caller, apierr.New(apierr.AuthForbidden)
	}
	if rt.Write {
		if aerr := replayError(g.replay.CheckHeader(r.Header, g.replay.Required())); aerr != nil {
			g.m.AntiReplayRejection(replayReason(aerr.Code))
			return caller, aerr
		}
	}
	return caller, nil
}

// replayError maps anti-replay failures (04-security §5).
func replayError(err error) *apierr.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrTimestamp):
		return &apierr.Error{Code: apierr.AuthTimestamp, Headers: map[string]string{"X-Server-Time": strconv.FormatInt(time.Now().UnixMilli(), 10)}}
	case errors.Is(err, auth.ErrNonceReused):
		return apierr.New(apierr.AuthNonceReused)
	case errors.Is(err, auth.ErrNonceCacheFull):
		return &apierr.Error{Code: apierr.SysRateLimited, RetryAfter: 1, Message: "nonce cache full"}
	default:
		return apierr.New(apierr.AuthReplayHeaders)
	}
}

func (g *tcpGuard) authError(r *http.Request, rid string, peer netip.AddrPort, ip netip.Addr, err error) *apierr.Error {
	var af *auth.AuthFailure
	var rl *auth.RateLimitError
	switch {
	case errors.Is(err, auth.ErrIPNotAllowed):
		g.m.AuthFailure("ip_denied")
		return apierr.New(apierr.AuthIPNotAllowed)
	case errors.Is(err, auth.ErrNoCredential):
		g.m.AuthFailure("missing")
		return apierr.New(apierr.AuthNoCredential)
	case errors.As(err, &af):
		g.m.AuthFailure(af.Reason)
		g.warnAuthFailure(rid, ip, af.KeyID, af.Reason)
		g.auditFailure(r, rid, peer, ip, af)
		if af.BruteForce && g.brute.AuthFailure(ip) {
			g.auditBlock(rid, peer.Addr(), ip, "auth_failures")
		}
		if af.Reason == auth.ReasonDisabled {
			return apierr.New(apierr.AuthKeyDisabled)
		}
		return apierr.New(apierr.AuthBadCredential)
	case errors.Is(err, auth.ErrBadCredential):
		g.m.AuthFailure("bad_secret") // an unparsable credential cannot name a key
		g.warnAuthFailure(rid, ip, "", "malformed")
		// Audited with no key (04 §9: resource "key ID if parsable"); not
		// a failed verification (step 9), so not a brute-force count.
		g.auditFailure(r, rid, peer, ip, &auth.AuthFailure{Reason: auth.ReasonMalformed})
		return apierr.New(apierr.AuthBadCredential)
	case errors.As(err, &rl):
		g.m.RateLimitRejection()
		return &apierr.Error{Code: apierr.SysRateLimited, RetryAfter: ceilSeconds(rl.RetryAfter)}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apierr.Error{Code: apierr.SysNotReady, Message: "authentication is overloaded, retry", RetryAfter: 1}
	}
	return &apierr.Error{Code: apierr.SysInternal, Err: err}
}

func (g *tcpGuard) auditFailure(r *http.Request, rid string, peer netip.AddrPort, ip netip.Addr, af *auth.AuthFailure) {
	if g.audit == nil {
		return
	}
	g.audit.Record(audit.Record{RequestID: rid, Actor: af.KeyID, Action: "auth.failure",
		Resource: af.KeyID, Result: audit.ResultFailure, Code: string(codeForReason(af.Reason)),
		TCPRemoteIP: addrString(peer.Addr()), ClientIP: ip.String(), UserAgent: r.UserAgent(),
		Details: map[string]any{"reason": af.Reason}})
}

func codeForReason(reason string) apierr.Code {
	if reason == auth.ReasonDisabled {
		return apierr.AuthKeyDisabled
	}
	return apierr.AuthBadCredential
}

func (g *tcpGuard) auditBlock(rid string, peer, ip netip.Addr, reason string) {
	g.m.BruteForceBlock()
	g.log.Warn("client IP blocked by the brute-force guard", "request_id", rid, "client_ip", ip.String(), "reason", reason)
	if g.audit == nil {
		return
	}
	g.audit.Record(audit.Record{RequestID: rid, Action: "auth.ip_blocked", Resource: ip.String(), Result: audit.ResultSuccess,
		TCPRemoteIP: addrString(peer), ClientIP: ip.String(), Details: map[string]any{"reason": reason, "until": g.brute.BlockedUntil(ip).UnixMilli()}})
}

// addrString is a's text, "" for the zero Addr (an unparsable peer).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// TokenFailure counts a malformed or unknown token against the caller's IP.
func (g *tcpGuard) TokenFailure(r *http.Request, ip netip.Addr, rid string) {
	if g.brute.TokenFailure(ip) {
		g.auditBlock(rid, peerAddr(r, connInfoOf(r)).Addr(), ip, "token_failures")
	}
}

func replayReason(c apierr.Code) string {
	switch c {
	case apierr.AuthTimestamp:
		return "timestamp"
	case apierr.AuthNonceReused:
		return "replay"
	case apierr.SysRateLimited:
		return "full"
	}
	return "missing"
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
