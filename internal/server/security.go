package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/auth"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/datadir"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/httpapi"
)

// AuthConfig maps the typed configuration onto the auth package's.
func AuthConfig(c *config.Config) (auth.Config, error) {
	ac := auth.DefaultConfig()
	var err error
	if ac.AllowList, err = auth.ParsePrefixes(c.Security.Auth.AllowList); err != nil {
		return ac, fmt.Errorf("security.auth.allow_list: %w", err)
	}
	if ac.TrustedProxies, err = auth.ParsePrefixes(c.Security.Network.TrustedProxies); err != nil {
		return ac, fmt.Errorf("security.network.trusted_proxies: %w", err)
	}
	ac.DefaultRateLimit = c.Security.Auth.DefaultRateLimit
	ac.RotationGrace = c.Security.Auth.RotationGrace
	ac.CacheCapacity = c.Security.Auth.CacheCapacity
	ac.CacheTTL = c.Security.Auth.CacheTTL
	ac.Argon2 = auth.Params{Memory: uint32(c.Security.Auth.Argon2.Memory), Iterations: uint32(c.Security.Auth.Argon2.Iterations),
		Parallelism: uint8(c.Security.Auth.Argon2.Parallelism)}
	bf := c.Security.BruteForce
	ac.BruteForce.Enabled = bf.Enabled
	ac.BruteForce.Window = bf.Window
	ac.BruteForce.MaxAuthFailures = bf.MaxAuthFailures
	ac.BruteForce.MaxTokenFailures = bf.MaxTokenFailures
	ac.BruteForce.BlockDuration = bf.BlockDuration
	if ac.BruteForce.Exempt, err = auth.ParsePrefixes(bf.Exempt); err != nil {
		return ac, fmt.Errorf("security.brute_force.exempt: %w", err)
	}
	ar := c.Security.AntiReplay
	ac.AntiReplay.Required = ar.Required
	ac.AntiReplay.TimestampWindow = ar.TimestampWindow
	ac.AntiReplay.NonceTTL = ar.NonceTTL
	ac.AntiReplay.NonceCacheSize = ar.NonceCacheSize
	return ac, nil
}

// security is the node's key store, authenticator, guards and audit log.
type security struct {
	store  *auth.Store
	authn  *auth.Authenticator
	keys   *auth.Manager
	brute  *auth.BruteForceGuard
	replay *auth.AntiReplay
	audit  *audit.Log
	tcp    *tcpGuard
	// admin and backups are shared by every listener's handler.
	admin   *httpapi.Admin
	backups *httpapi.Backups
}

func (s *Server) openSecurity(eng *engine.Engine) (*security, error) {
	cfg := s.config()
	ac, err := AuthConfig(cfg)
	if err != nil {
		return nil, &engine.StartupError{Code: engine.ExitConfig, Err: err}
	}
	ac.Logger = s.log.With("component", "auth")
	store, err := auth.OpenStore(auth.StoreOptions{Dir: filepath.Join(cfg.Storage.DataDir, datadir.ControlDir),
		MasterKey: eng.MasterKey(), Cipher: eng.Cipher(), Logger: ac.Logger})
	if err != nil {
		return nil, &engine.StartupError{Code: engine.ExitDataErr, Err: fmt.Errorf("control store: %w", err)}
	}
	authn, err := auth.NewAuthenticator(ac)
	if err != nil {
		store.Close()
		return nil, &engine.StartupError{Code: engine.ExitConfig, Err: err}
	}
	al, err := audit.Open(filepath.Join(cfg.Storage.DataDir, datadir.AuditDir), eng.Node().NodeID, audit.Options{
		BufferSize: cfg.Telemetry.Audit.BufferSize, RetentionDays: cfg.Telemetry.Audit.RetentionDays,
		Logger: s.log})
	if err != nil {
		store.Close()
		return nil, &engine.StartupError{Code: engine.ExitRuntime, Err: fmt.Errorf("audit log: %w (move the damaged audit file aside to start)", err)}
	}
	sec := &security{store: store, authn: authn, keys: auth.NewManager(ac, store, authn),
		brute: auth.NewBruteForceGuard(ac), replay: auth.NewAntiReplay(ac), audit: al}
	sec.tcp = &tcpGuard{authn: authn, brute: sec.brute, replay: sec.replay,
		audit: al, log: s.log.With("component", "auth"), timeout: cfg.Server.Timeouts.ReadHeader, m: s.metrics}
	sec.tcp.setTrusted(ac.TrustedProxies)
	s.metrics.SetAuthCacheSource(func() (uint64, uint64) { st := authn.Stats(); return st.CacheHits, st.CacheMisses })
	return sec, nil
}

func (sec *security) close() error {
	var first error
	for _, f := range []func() error{sec.keys.Close, sec.store.Close, sec.audit.Close} {
		if err := f(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// lazyGuard answers 503 until the key store is loaded (the TCP listener is
// up during recovery so /health and /ready answer).
type lazyGuard struct{ g atomic.Pointer[tcpGuard] }

func (l *lazyGuard) Check(r *http.Request, rt *httpapi.Route, rid string, own bool) (httpapi.Caller, *apierr.Error) {
	if g := l.g.Load(); g != nil {
		return g.Check(r, rt, rid, own)
	}
	if rt.Cap == httpapi.CapOpen { // no guard yet means no block yet
		return httpapi.Caller{}, nil
	}
	return httpapi.Caller{}, &apierr.Error{Code: apierr.SysNotReady, RetryAfter: 1}
}

func (l *lazyGuard) TokenFailure(r *http.Request, ip netip.Addr, rid string) {
	if g := l.g.Load(); g != nil {
		g.TokenFailure(r, ip, rid)
	}
}

// localGuard admits every caller of the admin socket as LOCAL_ADMIN:
// admin rights, no key, no rate limit, no brute-force guard; anti-replay
// only when the headers are present (04-security §7).
type localGuard struct{ replay *auth.AntiReplay }

func (g localGuard) Check(r *http.Request, rt *httpapi.Route, rid string, own bool) (httpapi.Caller, *apierr.Error) {
	if rt.Write && g.replay != nil && auth.ReplayHeadersSent(r.Header) {
		if aerr := replayError(g.replay.CheckHeader(r.Header, false)); aerr != nil {
			return httpapi.Caller{}, aerr
		}
	}
	return httpapi.Caller{KeyID: auth.LocalAdminID, Role: string(auth.RoleAdmin), UserAgent: r.UserAgent()}, nil
}

func (localGuard) TokenFailure(*http.Request, netip.Addr, string) {}

var _ = time.Second
