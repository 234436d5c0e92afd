// Package bench is tokmesh-bench (07-tools §2): a load generator for
// TokMesh's HTTP(S) and RESP(-TLS) ports with HDR latency percentiles,
// closed-loop and coordinated-omission-correct open-loop load, and an
// optional side-by-side run of the equivalent pattern against Redis.
//
// Invariants: the hot path of every protocol is a hand-written client on
// one connection per worker (pre-built request bytes, minimal reply
// parsing, no per-request allocation on the validate path); TokMesh and
// Redis are driven by the same RESP code, so a ratio compares servers, not
// clients. Tokens and API secrets never appear in output.
package bench

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Exit codes (07-tools §2).
const (
	ExitOK          = 0
	ExitFailed      = 1  // error rate above --max-error-rate, stale_valid_after_ack > 0, or the server refused the setup
	ExitUsage       = 64 // bad flags
	ExitUnavailable = 69 // target unreachable (connect, TLS, timeout)
)

// Error carries the exit code of a failed run.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func usageErr(format string, a ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, a...)}
}

func unavailableErr(err error) error { return &Error{Code: ExitUnavailable, Err: err} }

func failedErr(format string, a ...any) error {
	return &Error{Code: ExitFailed, Err: fmt.Errorf(format, a...)}
}

// ExitCode maps an error returned by Run to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitFailed
}

// Scenarios and protocols.
const (
	ScenarioValidate    = "validate"
	ScenarioCreate      = "create"
	ScenarioMixed       = "mixed"
	ScenarioRevokeStorm = "revoke-storm"

	ProtoHTTP    = "http"
	ProtoHTTPS   = "https"
	ProtoRESP    = "resp"
	ProtoRESPTLS = "resp-tls"
)

// Defaults of the flags (07-tools §2).
const (
	DefaultConcurrency  = 50
	DefaultDuration     = 30 * time.Second
	DefaultWarmup       = 5 * time.Second
	DefaultPreload      = 10000
	DefaultUsers        = 100000
	DefaultTTL          = 10 * time.Minute
	DefaultMix          = "validate=90,create=5,touch=3,renew=1,revoke=1"
	DefaultPipeline     = 1
	DefaultMaxErrorRate = 0.01
)

// DefaultTarget returns the default --target of a protocol.
func DefaultTarget(protocol string) string {
	switch protocol {
	case ProtoHTTPS:
		return "https://127.0.0.1:5443"
	case ProtoRESP:
		return "127.0.0.1:6379"
	case ProtoRESPTLS:
		return "127.0.0.1:6380"
	}
	return "http://127.0.0.1:5080"
}

// Config is one tokmesh-bench invocation: the flags of 07-tools §2.
type Config struct {
	Scenario string // validate | create | mixed | revoke-storm
	Protocol string // http | https | resp | resp-tls
	// Target: URL for http/https, host:port for resp/resp-tls; "" = the
	// protocol's default.
	Target string
	// APIKey is "<key_id>:<secret>".
	APIKey                     string
	CAFile, CertFile, KeyFile  string
	Concurrency                int           // workers (closed loop) or max in flight (open loop)
	Rate                       float64       // > 0: open loop at this many requests/s
	Duration                   time.Duration // measured phase; 0 = until Requests
	Requests                   int64         // measured requests; 0 = until Duration
	Warmup                     time.Duration // excluded from the results
	Preload                    int           // sessions created before measuring
	Users                      int           // distinct user IDs
	TTL                        time.Duration // session TTL (whole seconds)
	Touch                      bool          // validate with touch
	Mix                        string        // weights for mixed
	InvalidRatio               float64       // share of validations with unknown tokens
	Pipeline                   int           // commands in flight per RESP connection
	ReportFile, CompareFile    string
	NoProgress                 bool
	MaxErrorRate               float64
	TargetRedis, RedisPassword string
}

// DefaultConfig returns the flag defaults.
func DefaultConfig() Config {
	return Config{Scenario: ScenarioValidate, Protocol: ProtoHTTP, Concurrency: DefaultConcurrency,
		Duration: DefaultDuration, Warmup: DefaultWarmup, Preload: DefaultPreload, Users: DefaultUsers,
		TTL: DefaultTTL, Mix: DefaultMix, Pipeline: DefaultPipeline, MaxErrorRate: DefaultMaxErrorRate}
}

// op is one operation type.
type op uint8

const (
	opValidate op = iota
	opCreate
	opTouch
	opRenew
	opRevoke
	numOps
)

var opNames = [numOps]string{"validate", "create", "touch", "renew", "revoke"}

// mix is the weight of every operation of the mixed scenario.
type mix [numOps]int

func (m mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// parseMix parses "validate=90,create=5,…".
func parseMix(s string) (mix, error) {
	var m mix
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("--mix: %q is not op=weight", part)
		}
		name = strings.TrimSpace(name)
		idx := -1
		for i, n := range opNames {
			if n == name {
				idx = i
			}
		}
		if idx < 0 {
			return m, fmt.Errorf("--mix: unknown operation %q (validate, create, touch, renew, revoke)", name)
		}
		if seen[name] {
			return m, fmt.Errorf("--mix: %q given twice", name)
		}
		seen[name] = true
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 || w > 1000000 {
			return m, fmt.Errorf("--mix: weight of %q must be an integer 0..1000000", name)
		}
		m[idx] = w
	}
	if m.total() == 0 {
		return m, errors.New("--mix: the weights add up to 0")
	}
	return m, nil
}

// normalize fills defaults and checks every flag; failures are usage
// errors (exit 64).
func (c *Config) normalize() (mix, error) {
	var m mix
	switch c.Scenario {
	case ScenarioValidate, ScenarioCreate, ScenarioMixed, ScenarioRevokeStorm:
	default:
		return m, usageErr("--scenario must be validate, create, mixed or revoke-storm, not %q", c.Scenario)
	}
	switch c.Protocol {
	case ProtoHTTP, ProtoHTTPS, ProtoRESP, ProtoRESPTLS:
	default:
		return m, usageErr("--protocol must be http, https, resp or resp-tls, not %q", c.Protocol)
	}
	if c.Target == "" {
		c.Target = DefaultTarget(c.Protocol)
	}
	if err := c.checkTarget(); err != nil {
		return m, err
	}
	if c.APIKey == "" {
		return m, usageErr("an API key is required: --api-key <key_id>:<secret> or TOKMESH_API_KEY")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return m, usageErr("--cert-file and --key-file go together")
	}
	if (c.CAFile != "" || c.CertFile != "") && !c.tls() {
		return m, usageErr("--ca-file, --cert-file and --key-file need --protocol https or resp-tls")
	}
	switch {
	case c.Concurrency < 1 || c.Concurrency > 100000:
		return m, usageErr("--concurrency must be 1..100000")
	case c.Rate < 0:
		return m, usageErr("--rate must be ≥ 0")
	case c.Duration < 0 || c.Requests < 0 || c.Warmup < 0:
		return m, usageErr("--duration, --requests and --warmup must not be negative")
	case c.Duration == 0 && c.Requests == 0:
		return m, usageErr("one of --duration and --requests must be > 0")
	case c.Preload < 0 || c.Preload > 50_000_000:
		return m, usageErr("--preload must be 0..50000000")
	case c.Users < 1:
		return m, usageErr("--users must be ≥ 1")
	case c.TTL < time.Second || c.TTL%time.Second != 0:
		return m, usageErr("--ttl must be whole seconds, ≥ 1s")
	case c.InvalidRatio < 0 || c.InvalidRatio > 1:
		return m, usageErr("--invalid-ratio must be 0..1")
	case c.Pipeline < 1 || c.Pipeline > 10000:
		return m, usageErr("--pipeline must be 1..10000")
	case c.Pipeline > 1 && !c.resp():
		return m, usageErr("--pipeline > 1 needs --protocol resp or resp-tls (HTTP/1.1 keep-alive has one request in flight per connection)")
	case c.MaxErrorRate < 0 || c.MaxErrorRate > 1:
		return m, usageErr("--max-error-rate must be 0..1")
	case c.RedisPassword != "" && c.TargetRedis == "":
		return m, usageErr("--redis-password needs --target-redis")
	}
	if c.TargetRedis != "" {
		if _, _, err := net.SplitHostPort(c.TargetRedis); err != nil {
			return m, usageErr("--target-redis must be host:port: %v", err)
		}
	}
	switch c.Scenario {
	case ScenarioValidate:
		if c.Preload == 0 && c.InvalidRatio < 1 {
			return m, usageErr("scenario validate needs --preload > 0 (or --invalid-ratio 1)")
		}
	case ScenarioRevokeStorm:
		if c.Preload == 0 {
			return m, usageErr("scenario revoke-storm needs --preload > 0")
		}
		if c.Concurrency < 2 {
			return m, usageErr("scenario revoke-storm needs --concurrency ≥ 2 (validators and revokers)")
		}
	case ScenarioMixed:
		var err error
		if m, err = parseMix(c.Mix); err != nil {
			return m, usageErr("%v", err)
		}
		if c.Preload == 0 && (m[opValidate] > 0 || m[opTouch] > 0 || m[opRenew] > 0) {
			return m, usageErr("scenario mixed with validate/touch/renew weights needs --preload > 0")
		}
		if c.Preload == 0 && m[opRevoke] > 0 && m[opCreate] == 0 {
			return m, usageErr("scenario mixed with revokes needs --preload > 0 or creates")
		}
	}
	return m, nil
}

func (c *Config) tls() bool  { return c.Protocol == ProtoHTTPS || c.Protocol == ProtoRESPTLS }
func (c *Config) resp() bool { return c.Protocol == ProtoRESP || c.Protocol == ProtoRESPTLS }

// checkTarget checks the target form and reduces RESP targets to host:port.
func (c *Config) checkTarget() error {
	if c.resp() {
		t := strings.TrimPrefix(strings.TrimPrefix(c.Target, "resp://"), "resps://")
		if _, _, err := net.SplitHostPort(t); err != nil || strings.Contains(t, "/") {
			return usageErr("--target for %s must be host:port, not %q", c.Protocol, c.Target)
		}
		c.Target = t
		return nil
	}
	u, err := url.Parse(c.Target)
	if err != nil || u.Scheme != c.Protocol || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return usageErr("--target for %s must be %s://host:port, not %q", c.Protocol, c.Protocol, c.Target)
	}
	if u.Port() == "" {
		if c.Protocol == ProtoHTTPS {
			u.Host += ":443"
		} else {
			u.Host += ":80"
		}
	}
	c.Target = u.Scheme + "://" + u.Host
	return nil
}

// hostPort returns the address to dial.
func (c *Config) hostPort() string {
	if c.resp() {
		return c.Target
	}
	u, _ := url.Parse(c.Target)
	return u.Host
}
