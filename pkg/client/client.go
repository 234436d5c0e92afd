// Package client is the public Go client of TokMesh (07-tools §4). It
// speaks HTTP over TCP (http://, https://) or the node's local admin
// socket (unix:PATH, or "local"), and RESP (Protocol "resp", resp.go) for
// the business methods.
//
// Failures answered by the server come back as *Error; failures to reach it
// (connect, TLS, timeout) as *TransportError.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Default values.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRetries   = 2
	DefaultMaxRetryWait = 5 * time.Second
)

// LocalSocketCandidates are the admin sockets tried, in order, for the
// "local" target (07-tools §1.1).
var LocalSocketCandidates = []string{"./data/admin.sock", "/var/lib/tokmesh-server/admin.sock"}

// Config configures a Client.
type Config struct {
	// Target: "" or "local" (the local admin socket), "unix:PATH" or
	// "unix://PATH", "http://host:port" or "https://host:port".
	Target string
	// APIKey is "<key_id>:<secret>"; not needed on the admin socket.
	APIKey string
	// TLS configures https targets (nil: system roots). Verification
	// cannot be turned off by this package's own options.
	TLS *tls.Config
	// Timeout bounds each attempt (default 30 s).
	Timeout time.Duration
	// Protocol is "http" (default) or "resp" (Target "host:port",
	// "resp://host:port" or "resps://host:port"; business methods only).
	Protocol string
	// MaxRetries bounds retries of idempotent operations on 503/504
	// (default 2; negative: none). MaxRetryWait caps each wait, whatever
	// Retry-After says (default 5 s).
	MaxRetries   int
	MaxRetryWait time.Duration
	// UserAgent is sent on every request (default "tokmesh-go-client").
	UserAgent string
	// RoutePartitions sends each request that concerns one session (get,
	// validate, touch, renew, revoke, and create with a client-supplied
	// token) straight to the primary of its partition, found in the
	// routing table of GET /cluster/routing (route.go). The table is
	// fetched on first use and again after a routed request was refused
	// with TM-CLST-5030 or could not reach its node; such a request then
	// goes to the primary the new table names, or else through Target,
	// whose node forwards it. Other requests always go to Target. It applies to http and https targets; over
	// RESP and the local admin socket, where no routing table can be
	// fetched, requests go to Target and the node forwards them.
	RoutePartitions bool
}

// Client talks to one TokMesh node. Safe for concurrent use.
type Client struct {
	cfg    Config
	base   string // scheme://host, no trailing slash
	target string // resolved description (URL or unix:PATH)
	socket bool
	hc     *http.Client
	resp   *respPool // Protocol "resp" (resp.go); nil for http
	router *router   // RoutePartitions over http(s) (route.go); nil otherwise
}

// ResolveLocalSocket returns the first existing local admin socket, or the
// first candidate when none exists (so the connect error names it).
func ResolveLocalSocket() string {
	for _, p := range LocalSocketCandidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return p
		}
	}
	return LocalSocketCandidates[0]
}

// New validates cfg and builds a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	if cfg.Protocol != "" && cfg.Protocol != "http" && cfg.Protocol != "resp" {
		return nil, fmt.Errorf("client: protocol %q is not supported (http or resp)", cfg.Protocol)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = DefaultMaxRetryWait
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "tokmesh-go-client"
	}
	c := &Client{cfg: cfg}
	if cfg.Protocol == "resp" {
		return c.initRESP()
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	t := strings.TrimSpace(cfg.Target)
	switch {
	case (t == "" || t == "local") && runtime.GOOS == "windows":
		return c.pipe(DefaultPipe, tr)
	case t == "" || t == "local":
		return c.unix(ResolveLocalSocket(), tr)
	case strings.HasPrefix(t, "unix://"):
		return c.unix(strings.TrimPrefix(t, "unix://"), tr)
	case strings.HasPrefix(t, "unix:"):
		return c.unix(strings.TrimPrefix(t, "unix:"), tr)
	case strings.HasPrefix(t, "npipe:"):
		if runtime.GOOS != "windows" {
			return nil, fmt.Errorf("client: %q: %w", t, errNoPipes)
		}
		return c.pipe(PipePath(strings.TrimPrefix(t, "npipe:")), tr)
	case strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://"):
		u, err := url.Parse(t)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("client: invalid target URL %q (want scheme://host:port)", t)
		}
		if u.Scheme == "https" {
			if cfg.TLS != nil {
				tr.TLSClientConfig = cfg.TLS.Clone()
			} else {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.ForceAttemptHTTP2 = true
		}
		c.base = u.Scheme + "://" + u.Host
		c.target = c.base
		c.hc = &http.Client{Transport: tr, Timeout: cfg.Timeout}
		if cfg.RoutePartitions {
			c.router = &router{scheme: u.Scheme, host: u.Hostname()}
		}
		return c, nil
	}
	return nil, fmt.Errorf("client: unsupported target %q (want http://, https://, unix:PATH or local)", t)
}

func (c *Client) unix(path string, tr *http.Transport) (*Client, error) {
	if path == "" {
		return nil, errors.New("client: empty unix socket path")
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}
	c.socket = true
	c.base = "http://tokmesh-local"
	c.target = "unix:" + path
	c.hc = &http.Client{Transport: tr, Timeout: c.cfg.Timeout}
	return c, nil
}

var errNoPipes = errors.New("named pipes exist only on Windows; use unix:PATH")

// PipePath turns a pipe name into its path: "tokmesh-server" and
// `\\.\pipe\tokmesh-server` both name `\\.\pipe\tokmesh-server`.
func PipePath(name string) string {
	if strings.HasPrefix(name, `\\`) {
		return name
	}
	return `\\.\pipe\` + name
}

// pipe targets the server's admin named pipe (Windows).
func (c *Client) pipe(path string, tr *http.Transport) (*Client, error) {
	tr.Proxy = nil
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return dialPipe(ctx, path) }
	c.socket = true
	c.base = "http://tokmesh-local"
	c.target = "npipe:" + path
	c.hc = &http.Client{Transport: tr, Timeout: c.cfg.Timeout}
	return c, nil
}

// Target describes the resolved target ("unix:/abs/path" or the base URL).
func (c *Client) Target() string { return c.target }

// IsSocket reports whether the target is the local admin socket.
func (c *Client) IsSocket() bool { return c.socket }

// Close releases idle connections.
func (c *Client) Close() {
	if c.resp != nil {
		c.resp.close()
		return
	}
	c.hc.CloseIdleConnections()
}

// Error is a failure answered by the server with an error envelope.
type Error struct {
	Code       string         `json:"code"`
	Message    string         `json:"message"`
	RequestID  string         `json:"request_id"`
	Details    map[string]any `json:"details"`
	HTTPStatus int            `json:"-"`
	// RetryAfter is the Retry-After header, when sent.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	s := e.Message + " (code " + e.Code
	if e.RequestID != "" {
		s += ", request " + e.RequestID
	}
	return s + ")"
}

// TransportKind classifies a TransportError.
type TransportKind string

// Transport failure kinds.
const (
	KindConnect TransportKind = "connect"
	KindTLS     TransportKind = "tls"
	KindTimeout TransportKind = "timeout"
	KindBadData TransportKind = "bad_response" // the server's answer was not an envelope
)

// TransportError is a failure to get an answer from the server.
type TransportError struct {
	Kind   TransportKind
	Target string
	Err    error
}

func (e *TransportError) Error() string {
	switch e.Kind {
	case KindTLS:
		return fmt.Sprintf("TLS failure talking to %s: %v", e.Target, e.Err)
	case KindTimeout:
		return fmt.Sprintf("timed out talking to %s: %v", e.Target, e.Err)
	case KindBadData:
		return fmt.Sprintf("unexpected response from %s: %v", e.Target, e.Err)
	}
	return fmt.Sprintf("cannot connect to %s: %v", e.Target, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

func (c *Client) transportErr(err error) *TransportError {
	kind := KindConnect
	var (
		ne        net.Error
		ua        x509.UnknownAuthorityError
		hn        x509.HostnameError
		ci        x509.CertificateInvalidError
		cv        *tls.CertificateVerificationError
		rh        tls.RecordHeaderError
		alertErr  tls.AlertError
		echReject *tls.ECHRejectionError
	)
	switch {
	case errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci), errors.As(err, &cv),
		errors.As(err, &rh), errors.As(err, &alertErr), errors.As(err, &echReject),
		// net/http replaces the tls.RecordHeaderError of a plaintext HTTP
		// answer to the ClientHello ("HTTP/…") by this error.
		errors.Is(err, http.ErrSchemeMismatch):
		kind = KindTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		kind = KindTimeout
	}
	return &TransportError{Kind: kind, Target: c.target, Err: err}
}

type envelope struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data"`
	Details   map[string]any  `json:"details"`
}

// call describes one request.
type call struct {
	method     string
	path       string // already escaped
	query      url.Values
	body       any // nil: no body
	idempotent bool
	// key names the session the request concerns, for RoutePartitions.
	key routeKey
}

func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Do performs one request and decodes the envelope's data into out (may be
// nil). Exported for endpoints without a typed method yet; path must be
// escaped. GETs are retried on 503/504.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	return c.do(ctx, call{method: method, path: path, query: query, body: body, idempotent: method == http.MethodGet}, out)
}

func (c *Client) do(ctx context.Context, cl call, out any) error {
	if c.resp != nil {
		return errNotOverRESP
	}
	if c.router != nil && !cl.key.empty() {
		// At most two routed attempts: a refusal or an unreachable node
		// refreshes the table, which may name the new primary. When it
		// names none, or the same node again, the node at Target forwards.
		tried := ""
		for range 2 {
			base := c.router.primary(ctx, c, cl.key)
			if base == "" || base == c.base || base == tried {
				break
			}
			err := c.doAt(ctx, base, cl, out, true)
			if !c.router.refused(err, cl.idempotent) {
				var te *TransportError
				if errors.As(err, &te) {
					te.Target = base
				}
				return err
			}
			tried = base
		}
	}
	return c.doAt(ctx, c.base, cl, out, false)
}

// doAt performs one call against base (scheme://host). A routed call does
// not wait out TM-CLST-5030 (the node is not the partition's primary): do
// sends it through Target instead.
func (c *Client) doAt(ctx context.Context, base string, cl call, out any, routed bool) error {
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("client: encode request: %w", err)
		}
		payload = b
	}
	u := base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	retries := 0
	if cl.idempotent && c.cfg.MaxRetries > 0 {
		retries = c.cfg.MaxRetries
	}
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, cl.method, u, payload, out)
		var ae *Error
		if err == nil || attempt >= retries || !errors.As(err, &ae) ||
			(ae.HTTPStatus != http.StatusServiceUnavailable && ae.HTTPStatus != http.StatusGatewayTimeout) ||
			(routed && ae.Code == codeNoPrimary) {
			return err
		}
		wait := ae.RetryAfter
		if wait <= 0 {
			wait = time.Duration(200<<attempt) * time.Millisecond
		}
		wait = min(wait, c.cfg.MaxRetryWait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (c *Client) once(ctx context.Context, method, u string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		// Anti-replay headers on every write; fresh per attempt, since a
		// nonce may have been recorded by a failed attempt.
		req.Header.Set("X-Timestamp", strconv.FormatInt(time.Now().UnixMilli(), 10))
		req.Header.Set("X-Nonce", nonce())
	}
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(err)
	}
	defer resp.Body.Close()
	return c.decodeReply(resp, out)
}

// decodeReply decodes an envelope answer into out (may be nil), as do does.
func (c *Client) decodeReply(resp *http.Response, out any) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return c.transportErr(err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Code == "" {
		if err == nil {
			err = errors.New("no envelope code")
		}
		return &TransportError{Kind: KindBadData, Target: c.target, Err: fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)}
	}
	if env.Code != "OK" {
		e := &Error{Code: env.Code, Message: env.Message, RequestID: env.RequestID, Details: env.Details, HTTPStatus: resp.StatusCode}
		if e.RequestID == "" {
			e.RequestID = resp.Header.Get("X-Request-ID")
		}
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return &TransportError{Kind: KindBadData, Target: c.target, Err: fmt.Errorf("decode data: %w", err)}
	}
	return nil
}
