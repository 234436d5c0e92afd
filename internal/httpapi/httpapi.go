// Package httpapi is the HTTP adapter of a TokMesh node: the routes of
// 02-http-api on gorilla/mux, the flat JSON envelope, request IDs, strict
// JSON decoding and body limits. Authentication and authorization are
// delegated to a Guard so the TCP listeners and the local admin socket
// share one route set with different callers.
//
// Invariants: every response carries X-Request-ID and Cache-Control:
// no-store; the body is never read before the Guard accepted the caller;
// no token, secret or session data is ever logged.
package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/session"
)

// Capability is what a route needs from the caller's role (04-security §2).
type Capability uint8

// Capabilities of the business routes.
const (
	CapPublic Capability = iota
	CapValidate
	CapReadSession
	CapTouch
	CapWrite
	CapRevokeUser
	CapList
	CapRouting
	CapMetrics
	CapAdmin
	// CapOpen needs no credential, but the Guard still applies the
	// brute-force block (04 §3 step 4 exempts only /health, /ready and
	// /openapi.json): GET /metrics without metrics auth.
	CapOpen
)

// Route describes one route for the Guard, metrics and the OpenAPI test.
type Route struct {
	Name     string
	Method   string
	Template string
	Cap      Capability
	Write    bool  // anti-replay applies (every POST except validate)
	MaxBody  int64 // 0 = server default
	// NoQuery: the route takes no query parameters; the pipeline answers
	// any with TM-ARG-1001 (details.param) once the caller is admitted.
	// Routes that take parameters check them themselves.
	NoQuery bool
	// Stream: the handler reads the request body itself (not through
	// readBodyInto), so the pipeline wraps it in http.MaxBytesReader.
	// Other routes' bodies are bounded by readBodyInto, which needs no
	// wrapper (one allocation and one indirection less per request).
	Stream bool
}

// Caller is an authenticated caller.
type Caller struct {
	KeyID     string // API key ID or "LOCAL_ADMIN"
	Role      string // metrics | validator | issuer | admin
	ClientIP  netip.Addr
	UserAgent string
}

// Guard runs the request pipeline of 04-security §3 (client IP, brute-force
// block, allowlists, API key, rate limit, role, anti-replay) for one
// request before its body is read. listOwnUser is set for GET /sessions
// when a user_id filter is present (issuer may list then).
type Guard interface {
	// rid is the request's ID, for the audit records the check writes.
	Check(r *http.Request, rt *Route, rid string, listOwnUser bool) (Caller, *apierr.Error)
	// TokenFailure is told about failed token validations (brute-force
	// guard); r is the request, ip its client IP.
	TokenFailure(r *http.Request, ip netip.Addr, rid string)
}

// Engine is what the HTTP layer needs from the session engine.
type Engine interface {
	Create(req session.CreateRequest) (session.CreateResult, error)
	Get(id session.ID) (session.Session, error)
	Validate(token string, touch bool, ip netip.Addr, ua string) (session.Session, error)
	Touch(id session.ID, ip netip.Addr, ua string) (session.Session, error)
	Renew(id session.ID, ttlSeconds int64) (session.Session, error)
	Revoke(id session.ID) (bool, error)
	RevokeUser(userID string, except session.ID) (int, error)
	List(q session.ListQuery) (session.ListResult, error)
	Partitions() int
}

// Readiness reports the checks of /ready. ok=false with a code gates
// business routes with that code; ok=false with code "" is a node that
// takes no new traffic (/ready 503) but still serves what reaches it — a
// draining node after SIGTERM (04 §3 step 5, 09 §3).
type Readiness func() (ok bool, checks map[string]string, code apierr.Code)

// Config configures the handler.
type Config struct {
	Engine      Engine
	Guard       Guard
	Ready       Readiness
	Logger      *slog.Logger
	MaxBodySize int64 // server.limits.max_body_size (64 KiB)
	OnRequest   func(route, method string, status int, seconds float64)
	Backups     *Backups // backup and restore routes, registered with Admin (nil: none)
	// Business admits one business request (after authentication) and
	// returns its exit; ok=false means maintenance (TM-ADMIN-5031).
	Business func() (exit func(), ok bool)
	// Admin wires the admin API under /admin/v1 (nil: no admin routes).
	Admin *Admin
	// Audit receives audit records (nil: none are written).
	Audit *audit.Log
	// Metrics serves GET /metrics (nil: the route is absent, 404).
	Metrics http.Handler
	// MetricsAuth requires the metrics or admin role on /metrics
	// (telemetry.metrics.auth_enabled).
	MetricsAuth bool
	// Local marks the handler of the local admin socket (the emergency key
	// route exists only there).
	Local bool
	// Extra registers more routes on the same router (tests).
	Extra func(r *mux.Router, h *Handler)
	// Endpoints describes this node for GET /cluster/routing (nil: empty
	// node ID and endpoints).
	Endpoints func() NodeEndpoints
}

// NodeEndpoints is one node of GET /cluster/routing: its ID and the
// client-facing address of each listener ("" when that listener is off).
type NodeEndpoints struct {
	NodeID  string `json:"node_id"`
	HTTP    string `json:"http"`
	HTTPS   string `json:"https"`
	RESP    string `json:"resp"`
	RESPTLS string `json:"resp_tls"`
}

// Handler serves the TokMesh HTTP API.
type Handler struct {
	cfg    Config
	router *mux.Router
	log    *slog.Logger
	routes []Route
	// handlers are the pipeline routes in registration order; static maps
	// exact paths of those without variables (indexStatic).
	handlers []*routeHandler
	static   map[string][]staticRoute
}

// New builds the handler and its router.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = 64 << 10
	}
	if cfg.Ready == nil {
		cfg.Ready = func() (bool, map[string]string, apierr.Code) { return true, nil, "" }
	}
	h := &Handler{cfg: cfg, log: cfg.Logger}
	r := mux.NewRouter()
	r.SkipClean(true)
	r.UseEncodedPath()
	h.router = r

	h.Handle(Route{Name: "health", Method: "GET", Template: "/health", Cap: CapPublic}, h.health)
	h.Handle(Route{Name: "ready", Method: "GET", Template: "/ready", Cap: CapPublic}, h.ready)
	h.Handle(Route{Name: "openapi", Method: "GET", Template: "/openapi.json", Cap: CapPublic}, h.openAPI)
	h.Handle(Route{Name: "session.create", Method: "POST", Template: "/sessions", Cap: CapWrite, Write: true, NoQuery: true}, h.createSession)
	h.Handle(Route{Name: "session.list", Method: "GET", Template: "/sessions", Cap: CapList}, h.listSessions)
	h.Handle(Route{Name: "session.get", Method: "GET", Template: "/sessions/{session_id}", Cap: CapReadSession, NoQuery: true}, h.getSession)
	h.Handle(Route{Name: "session.touch", Method: "POST", Template: "/sessions/{session_id}/touch", Cap: CapTouch, Write: true, NoQuery: true}, h.touchSession)
	h.Handle(Route{Name: "session.renew", Method: "POST", Template: "/sessions/{session_id}/renew", Cap: CapWrite, Write: true, NoQuery: true}, h.renewSession)
	h.Handle(Route{Name: "session.revoke", Method: "POST", Template: "/sessions/{session_id}/revoke", Cap: CapWrite, Write: true, NoQuery: true}, h.revokeSession)
	h.Handle(Route{Name: "user.revoke_all", Method: "POST", Template: "/users/{user_id}/sessions/revoke", Cap: CapRevokeUser, Write: true, NoQuery: true}, h.revokeUser)
	h.Handle(Route{Name: "token.validate", Method: "POST", Template: "/tokens/validate", Cap: CapValidate, NoQuery: true}, h.validate)
	h.Handle(Route{Name: "cluster.routing", Method: "GET", Template: "/cluster/routing", Cap: CapRouting, NoQuery: true}, h.routing)
	if cfg.Admin != nil {
		h.registerAdmin()
		h.registerBackupRoutes()
	}
	h.registerMetrics()
	if cfg.Extra != nil {
		cfg.Extra(r, h)
	}
	r.NotFoundHandler = h.observeUnmatched(h.notFound)
	r.MethodNotAllowedHandler = h.observeUnmatched(h.methodNotAllowed)
	h.indexStatic()
	return h
}

// Routes lists the registered routes.
func (h *Handler) Routes() []Route { return append([]Route(nil), h.routes...) }

// request is the per-request context handed to route handlers.
type request struct {
	*http.Request
	id     string
	route  *Route
	caller Caller
	start  time.Time // when the pipeline took the request (also the envelope timestamp of the hot routes)
	limit  int64     // body limit of the route (readBodyInto)
}

// handlerFunc is a route handler after the pipeline.
type handlerFunc func(w http.ResponseWriter, rq *request)

// routeHandler is one route behind the common pipeline. It is a pointer
// type (not a func) so New can tell, by comparing mux's match, that a
// static route is what the router would pick anyway.
type routeHandler struct {
	h  *Handler
	rt Route
	fn handlerFunc
	mr *mux.Route
}

// Handle registers a route behind the common pipeline: request ID, panic
// recovery, readiness gate, Guard, body limit.
func (h *Handler) Handle(rt Route, fn handlerFunc) {
	h.routes = append(h.routes, rt)
	rh := &routeHandler{h: h, rt: rt, fn: fn}
	rh.mr = h.router.Handle(rt.Template, rh).Methods(rt.Method).Name(rt.Name)
	h.handlers = append(h.handlers, rh)
}

// pipelineRequest is the per-request state of the pipeline, allocated once:
// the request handed to the route handler and the status recorder.
type pipelineRequest struct {
	rq  request
	sw  statusWriter
	rid [1]string // the X-Request-ID header value
}

func (rh *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, rt := rh.h, &rh.rt
	start := time.Now()
	p := &pipelineRequest{rq: request{Request: r, id: requestIDAt(r, start), route: rt, start: start}}
	rq := &p.rq
	debug := h.log.Enabled(r.Context(), slog.LevelDebug)
	if h.cfg.OnRequest != nil || debug {
		p.sw.ResponseWriter = w
		w = &p.sw
		// Deferred before recoverPanic so it runs after it and sees the 500.
		defer func() {
			d := time.Since(start)
			if h.cfg.OnRequest != nil {
				h.cfg.OnRequest(rt.Template, rt.Method, p.sw.statusCode(), d.Seconds())
			}
			if debug {
				// One line per request at debug (09-observability §2): route
				// template only, never bodies, tokens or credentials.
				h.log.Debug("request", "request_id", rq.id, "method", rt.Method, "route", rt.Template,
					"status", p.sw.statusCode(), "duration_ms", float64(d.Microseconds())/1000, "key_id", rq.caller.KeyID)
			}
		}()
	}
	p.rid[0] = rq.id
	hdr := w.Header()
	hdr["X-Request-Id"] = p.rid[:1:1]
	hdr["Cache-Control"] = hdrNoStore
	hdr["Date"] = dateHeader(start)
	defer h.recoverPanic(w, rq)
	if rt.Cap != CapPublic {
		if ok, checks, code := h.cfg.Ready(); !ok && code != "" && isBusiness(rt.Cap) {
			e := apierr.New(code).WithDetail("checks", checks)
			if code == apierr.AdminMaintenance {
				e.RetryAfter = 5
			}
			writeError(w, rq.id, e)
			return
		}
		listOwn := rt.Name == "session.list" && r.URL.Query().Get("user_id") != ""
		switch {
		case h.cfg.Guard != nil:
			c, aerr := h.cfg.Guard.Check(r, rt, rq.id, listOwn)
			rq.caller = c // on a refusal, whatever the guard knew (the debug line's key_id)
			if aerr != nil {
				writeError(w, rq.id, aerr)
				return
			}
		case rt.Cap != CapOpen:
			writeError(w, rq.id, apierr.Newf(apierr.AuthNoCredential, "no credentials"))
			return
		}
		if rt.NoQuery && r.URL.RawQuery != "" {
			if aerr := noQuery(r.URL.Query()); aerr != nil {
				writeError(w, rq.id, aerr)
				return
			}
		}
		// Business requests are counted in, so a restore can wait for
		// the ones already past the gate before it replaces the store.
		if isBusiness(rt.Cap) && h.cfg.Business != nil {
			exit, ok := h.cfg.Business()
			if !ok {
				writeError(w, rq.id, &apierr.Error{Code: apierr.AdminMaintenance, RetryAfter: 5})
				return
			}
			defer exit()
		}
	}
	rq.limit = rt.MaxBody
	if rq.limit == 0 {
		rq.limit = h.cfg.MaxBodySize
	}
	if !rt.Stream {
		rh.fn(w, rq)
		return
	}
	// r may be the request net/http holds (routes without path variables
	// are dispatched without a copy): the limited body goes back after
	// the handler, so net/http sees its own body and nothing else.
	body := r.Body
	r.Body = http.MaxBytesReader(w, body, rq.limit)
	rh.fn(w, rq)
	r.Body = body
}

// Shared header values; net/http never writes into a value slice and the
// full slice expressions make an append copy.
var (
	hdrNoStore = []string{"no-store"}[:1:1]
	hdrJSON    = []string{"application/json"}[:1:1]
)

// noQuery rejects query parameters on a route that takes none, naming the
// first (by name) in details.param. A bare "?" has none.
func noQuery(q url.Values) *apierr.Error {
	if len(q) == 0 {
		return nil
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	return badParam(names[0], "unknown parameter")
}

// dateNow is the Date header of the current second. net/http formats the
// header on every response that lacks one (time.Format: about 1 % of a
// validate request's CPU); a route sets it from the clock read it already
// made. At most one second stale, which RFC 9110 §6.6.1 allows ("the best
// available approximation").
var dateNow atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	v   []string
}

func dateHeader(now time.Time) []string {
	sec := now.Unix()
	if d := dateNow.Load(); d != nil && d.sec == sec {
		return d.v
	}
	d := &dateValue{sec: sec, v: []string{now.UTC().Format(http.TimeFormat)}[:1:1]}
	dateNow.Store(d)
	return d.v
}

// setIDHeaders sets X-Request-ID and Cache-Control: no-store (canonical
// keys assigned directly, as Header.Set would store them).
func setIDHeaders(h http.Header, rid string) {
	h["X-Request-Id"] = []string{rid}
	h["Cache-Control"] = hdrNoStore
}

// staticRoute is a route without path variables, served without gorilla/mux.
type staticRoute struct {
	method string
	h      *routeHandler
}

// indexStatic builds the exact-path table of routes without variables,
// keeping a route only when mux itself picks it for its own method and
// path (so earlier routes, raw mux routes and middleware still win).
func (h *Handler) indexStatic() {
	h.static = map[string][]staticRoute{}
	for _, rh := range h.handlers {
		tpl := rh.rt.Template
		if strings.ContainsAny(tpl, "{}") {
			continue
		}
		probe := &http.Request{Method: rh.rt.Method, URL: &url.URL{Path: tpl}, Header: http.Header{}}
		var m mux.RouteMatch
		if !h.router.Match(probe, &m) || m.MatchErr != nil || m.Route != rh.mr || m.Handler != http.Handler(rh) {
			continue
		}
		h.static[tpl] = append(h.static[tpl], staticRoute{method: rh.rt.Method, h: rh})
	}
}
func isBusiness(c Capability) bool {
	return c != CapMetrics && c != CapAdmin && c != CapPublic && c != CapOpen
}

func (h *Handler) recoverPanic(w http.ResponseWriter, rq *request) {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		h.log.Error("panic in handler", "request_id", rq.id, "route", rq.route.Template, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		writeError(w, rq.id, apierr.New(apierr.SysInternal))
	}
}

// ServeHTTP implements http.Handler. Routes without path variables are
// looked up by exact path (what mux matches with UseEncodedPath and
// SkipClean when the path has no escapes); the rest go through mux.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" {
		for _, sr := range h.static[r.URL.Path] {
			if sr.method == r.Method {
				sr.h.ServeHTTP(w, r)
				return
			}
		}
	}
	h.router.ServeHTTP(w, r)
}

// notFound answers a path no route has; it returns the route label of
// the request (unmatchedRoute).
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) string {
	rid := requestID(r)
	setIDHeaders(w.Header(), rid)
	writeError(w, rid, apierr.New(apierr.SysNoRoute))
	return unmatchedRoute
}

// methodNotAllowed answers a known path asked with another method; it
// returns the route label: the path's route template (09 §1), or
// unmatchedRoute when no method serves the path after all (404).
func (h *Handler) methodNotAllowed(w http.ResponseWriter, r *http.Request) string {
	rid := requestID(r)
	setIDHeaders(w.Header(), rid)
	var allow []string
	route := unmatchedRoute
	for _, m := range []string{"GET", "POST"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if h.router.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
			if tpl, err := match.Route.GetPathTemplate(); err == nil && route == unmatchedRoute {
				route = tpl
			}
		}
	}
	if len(allow) == 0 {
		writeError(w, rid, apierr.New(apierr.SysNoRoute))
		return unmatchedRoute
	}
	v := allow[0]
	if len(allow) > 1 {
		v = allow[0] + ", " + allow[1]
	}
	w.Header().Set("Allow", v)
	writeError(w, rid, apierr.New(apierr.SysMethod))
	return route
}

// readBody reads the body up to the route's limit: larger → TM-SYS-4130
// (and the connection closes after the answer: the rest is not read).
func readBody(rq *request) ([]byte, *apierr.Error) { return readBodyInto(rq, nil) }

// readBodyInto is readBody appending to buf (a pooled buffer), sized from
// Content-Length when the client sent one.
func readBodyInto(rq *request, buf []byte) ([]byte, *apierr.Error) {
	limit := rq.limit
	if limit <= 0 {
		limit = 64 << 10
	}
	tooBig := func() *apierr.Error { return apierr.New(apierr.SysBodyTooBig).WithDetail("limit", limit) }
	if rq.ContentLength > limit {
		return buf[:0], tooBig() // refused before reading any of it
	}
	b := buf[:0]
	if n := rq.ContentLength; n > 0 && n < 64<<10 && int64(cap(b)) < n+1 {
		b = make([]byte, 0, n+1)
	}
	if cap(b) == 0 {
		b = make([]byte, 0, 512)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		// Never more than one byte past the limit (len(b) <= limit here).
		room := b[len(b):cap(b)]
		if rest := limit + 1 - int64(len(b)); int64(len(room)) > rest {
			room = room[:rest]
		}
		n, err := rq.Body.Read(room)
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, tooBig()
		}
		if err == io.EOF {
			// Closing a body read to EOF costs nothing and tells net/http
			// there is nothing left to discard after the handler (it
			// would otherwise copy the rest to io.Discard: ~1 % of a
			// validate request).
			_ = rq.Body.Close()
			return b, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return b, apierr.New(apierr.SysBodyTooBig).WithDetail("limit", mbe.Limit)
			}
			return b, apierr.Newf(apierr.SysMalformed, "could not read the request body")
		}
	}
}

// engineError maps engine/session errors for session routes (the one
// mapping shared with RESP).
func engineError(err error) *apierr.Error { return engine.APIError(err) }

func (h *Handler) fail(w http.ResponseWriter, rq *request, e *apierr.Error) {
	if e.Code.Status() >= 500 {
		msg := ""
		if e.Err != nil {
			msg = e.Err.Error()
		}
		h.log.Error("request failed", "request_id", rq.id, "route", rq.route.Template, "code", string(e.Code), "error", msg)
	}
	writeError(w, rq.id, e)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
