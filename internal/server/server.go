// Package server assembles a TokMesh node from its typed configuration:
// New(cfg) → Start(ctx) → Close(). Start opens the listeners first (so
// /health answers and /ready says "recovering"), then recovers the engine
// and turns ready. Ports ":0" are allowed; Addr reports what was bound.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/buildinfo"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/engine"
	"github.com/yndnr/tokmesh-go/internal/httpapi"
	"github.com/yndnr/tokmesh-go/internal/localadmin"
	"github.com/yndnr/tokmesh-go/internal/logging"
	"github.com/yndnr/tokmesh-go/internal/metrics"
	"github.com/yndnr/tokmesh-go/internal/respapi"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/tlsutil"
	"github.com/yndnr/tokmesh-go/internal/wal"
)

// Server is one node.
type Server struct {
	// cfg is the configuration in force: the startup configuration with
	// the hot keys of every successful reload applied (non-hot keys keep
	// their startup values until a restart). Read it with config().
	cfg      atomic.Pointer[config.Config]
	log      *slog.Logger     // every record carries component and node_id (logging.WithNode)
	nodeID   *logging.NodeID  // the node_id of s.log's records
	load     *config.LoadInfo // Options.LoadInfo
	getenv   func(string) string
	reload   func() (*config.Config, []*config.Error)
	logLevel *slog.LevelVar
	reloadMu sync.Mutex // one configuration reload at a time

	eng      atomic.Pointer[engine.Engine]
	state    atomic.Value // "recovering" | "ok" | "draining"
	fatalCh  chan error
	mu       sync.Mutex
	servers  []*http.Server
	addrs    map[string]net.Addr
	tcpGuard httpapi.Guard
	lazy     *lazyGuard
	swaps    []func() // rebuild early listeners' handlers once keys are loaded
	sec      *security
	started  time.Time
	metrics  *metrics.Metrics
	traffic  *traffic // business qps/p99 of the last 10 s (admin status)
	resp     *respapi.Server
	// ConfigFile is the file the configuration came from ("" = none).
	ConfigFile string
	stopBg     chan struct{} // stops background loops (backup retention)
	// tlsReloader serves the HTTPS certificates; stopTLS stops its watcher.
	tlsReloader *tlsutil.Reloader
	stopTLS     func()
	tlsConf     atomic.Pointer[tls.Config] // what HTTPS handshakes use (swapped by reloads)
	respTLSConf atomic.Pointer[tls.Config] // what RESP-TLS handshakes use (same material, no ALPN)
	closed      bool
	// startAudited is set once server.start is in the audit log; Close
	// then writes server.stop.
	startAudited atomic.Bool
}

// Options are the non-config inputs of a node.
type Options struct {
	Logger *slog.Logger
	Getenv func(string) string // nil = os.Getenv
	// TCPGuard replaces the API-key pipeline on the TCP listeners (tests).
	TCPGuard httpapi.Guard
	// ConfigFile is the configuration file path (audit resource of reloads).
	ConfigFile string
	// LoadInfo is where the configuration came from (config.Load): Start
	// logs it and audits it as config.load (08-config §2). nil: ConfigFile,
	// no env vars or flags, and the configuration's own warnings.
	LoadInfo *config.LoadInfo
	// Reload re-reads the configuration from the sources it was loaded
	// from (file, env, flags — the same config.LoadOptions) and validates
	// it, for SIGHUP and POST /admin/v1/config/reload (08-config §4). nil:
	// a reload only re-reads the TLS files.
	Reload func() (*config.Config, []*config.Error)
	// LogLevel is the level of Logger; a reload that changes
	// telemetry.logging.level sets it. nil: the level key has no effect.
	LogLevel *slog.LevelVar
}

// New records the inputs; Start does the work.
func New(cfg *config.Config, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log, nodeID := logging.WithNode(o.Logger, "server")
	s := &Server{log: log, nodeID: nodeID, load: o.LoadInfo, getenv: o.Getenv, reload: o.Reload, logLevel: o.LogLevel, fatalCh: make(chan error, 1),
		addrs: map[string]net.Addr{}, tcpGuard: o.TCPGuard, lazy: &lazyGuard{}, started: time.Now(), ConfigFile: o.ConfigFile,
		traffic: newTraffic()}
	s.cfg.Store(cfg)
	if s.tcpGuard == nil {
		s.tcpGuard = s.lazy
	}
	if cfg.Telemetry.Metrics.Enabled {
		s.metrics = metrics.New(metrics.Options{Version: buildinfo.Version, Commit: buildinfo.ResolvedCommit(), GoVersion: runtime.Version()})
		s.metrics.SetSessionSource(func() (int, int) {
			if e := s.Engine(); e != nil {
				st := e.Store().Stats()
				return st.Live, st.Tombstones
			}
			return 0, 0
		})
		s.metrics.SetWALSource(func() metrics.WALStats { return walStats(s.Engine()) })
	}
	s.state.Store("recovering")
	return s
}

// config returns the configuration in force (see Server.cfg).
func (s *Server) config() *config.Config { return s.cfg.Load() }

// Logger is the node's logger: the one of Options with component (default
// "server") and node_id on every record, for the code that runs the node
// to log its lifecycle with.
func (s *Server) Logger() *slog.Logger { return s.log }

// EngineConfig maps the typed configuration onto the engine's.
func EngineConfig(c *config.Config) (engine.Config, error) {
	ec := engine.DefaultConfig(c.Storage.DataDir)
	mode, err := wal.ParseSyncMode(c.Storage.WAL.SyncMode)
	if err != nil {
		return ec, err
	}
	ec.NodeID = c.Cluster.NodeID
	ec.Partitions = c.Cluster.Partitions
	ec.SyncMode = mode
	ec.SyncInterval = c.Storage.WAL.SyncInterval
	ec.SyncRevocations = c.Storage.WAL.SyncRevocations
	ec.SegmentSize = c.Storage.WAL.SegmentSize.Bytes()
	ec.SnapshotInterval = c.Storage.Snapshot.Interval
	ec.SnapshotWALThreshold = c.Storage.Snapshot.WALThreshold.Bytes()
	ec.SnapshotRetain = c.Storage.Snapshot.Retain
	ec.SweepInterval = c.Session.Sweeper.Interval
	ec.KeyFile = c.Security.Encryption.KeyFile
	ec.Cipher = c.Security.Encryption.Cipher
	l := sessionLimits(c)
	ec.Session.MaxPerUser, ec.Session.OnExceed = l.MaxPerUser, l.OnExceed
	ec.Session.TTLDefault, ec.Session.TTLMax, ec.Session.IdleDefault = l.TTLDefault, l.TTLMax, l.IdleDefault
	ec.Session.ExpiredGrace = c.Session.TTL.ExpiredGrace.Milliseconds()
	if ec.Session.ExpiredGrace == 0 {
		ec.Session.ExpiredGrace = -1 // the store reads 0 as "default"; a configured 0s means no grace
	}
	ec.Session.SweepSample = c.Session.Sweeper.SampleSize
	ec.Session.SweepMaxRounds = c.Session.Sweeper.MaxRounds
	return ec, nil
}

// Start opens the listeners, recovers the engine and turns ready. It
// returns a *engine.StartupError when the node must not start.
func (s *Server) Start(ctx context.Context) error {
	cfg := s.config()
	info := s.loadInfo(cfg)
	presetID, generated := s.presetNodeID(cfg)
	s.logStartup(cfg, info)
	ec, err := EngineConfig(cfg)
	if err != nil {
		return &engine.StartupError{Code: engine.ExitConfig, Err: err}
	}
	if generated {
		ec.NodeID = presetID // node.json is created with the ID logged so far
	}
	// The data-dir lock is taken by engine.Open; the admin socket must not
	// be touched before it, or a second server would delete the first's
	// socket. So: lock+recover first when the socket is enabled.
	ec.Logger = s.log.With(logging.ComponentKey, "engine")
	ec.Getenv = s.getenv
	ec.OnFsync = func(d time.Duration, records uint64) { s.metrics.ObserveFsync(d, int(records)) }
	s.observeEngine(&ec)
	ec.OnFatal = func(err error) {
		s.state.Store("failed")
		select {
		case s.fatalCh <- err:
		default:
		}
	}
	if cfg.Server.HTTP.Enabled {
		if err := s.listenHTTP("http", cfg.Server.HTTP.Address, s.tcpGuard); err != nil {
			s.Close()
			return &engine.StartupError{Code: engine.ExitRuntime, Err: err}
		}
	}
	eng, err := engine.Open(ec)
	if err != nil {
		s.Close()
		return err
	}
	s.nodeID.Set(eng.Node().NodeID)
	sec, err := s.openSecurity(eng)
	if err != nil {
		eng.Close()
		s.Close()
		return err
	}
	// First record of this run, before any admin request can be admitted.
	s.auditConfigLoad(sec.audit, info)
	s.observeSecurity(sec)
	// One Admin for every listener: the gc throttle and status cache live in it.
	sec.admin = &httpapi.Admin{Keys: sec.keys, Engine: s.Engine, Config: s.config,
		NodeID: eng.Node().NodeID, StartedAt: s.started, ConfigFile: s.ConfigFile, Reload: s.Reload,
		Traffic: s.traffic.snapshot}
	sec.backups = &httpapi.Backups{Engine: s.Engine, KeyTable: sec.keyTable, MergeKeys: sec.mergeKeys,
		MaxUploadSize: cfg.Server.Limits.MaxUploadSize.Bytes()}
	s.mu.Lock()
	s.sec = sec
	s.mu.Unlock()
	s.lazy.g.Store(sec.tcp)
	s.eng.Store(eng)
	s.mu.Lock()
	swaps := s.swaps
	s.mu.Unlock()
	for _, f := range swaps {
		f()
	}
	if cfg.Server.HTTPSActive() {
		if err := s.startHTTPS(ctx); err != nil {
			s.Close()
			return err
		}
	}
	if cfg.Server.RESP.Enabled || cfg.Server.RESPTLSActive() {
		if err := s.startRESP(eng, sec); err != nil {
			s.Close()
			return err
		}
	}
	// server.local.enabled: false is one of the configuration's warnings
	// (logged by logStartup).
	if cfg.Server.Local.Enabled {
		if err := s.listenLocal(cfg.Server.Local.PipeName, cfg.SocketPath()); err != nil {
			s.Close()
			return &engine.StartupError{Code: engine.ExitRuntime, Err: err}
		}
	}
	s.state.Store("ok")
	s.metrics.SetReady(true)
	s.stopBg = make(chan struct{})
	go s.backupRetention(s.stopBg)
	s.observeRecovery(eng)
	s.logReady(cfg, eng)
	s.auditLifecycle(sec.audit, actionServerStart, eng.Node().NodeID, lifecycleDetails())
	s.startAudited.Store(true)
	return nil
}

func (s *Server) listenerSummary() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for k, a := range s.addrs {
		m[k] = a.String()
	}
	return m
}

func (s *Server) handler(guard httpapi.Guard, local bool) http.Handler {
	hc := httpapi.Config{
		Engine:      engineRef{s},
		Guard:       guard,
		Ready:       s.readiness,
		Logger:      s.log.With("component", "httpapi"),
		MaxBodySize: s.config().Server.Limits.MaxBodySize.Bytes(),
		Local:       local,
		Business:    s.enterBusiness,
		Endpoints:   s.endpoints,
	}
	if s.metrics != nil {
		hc.Metrics = s.metrics.Handler()
		hc.MetricsAuth = s.config().Telemetry.Metrics.AuthEnabled
	}
	if !local { // the admin socket's own calls stay out of the series
		m, tr := s.metrics, s.traffic // Metrics methods are no-ops on nil
		hc.OnRequest = func(route, method string, status int, seconds float64) {
			m.ObserveHTTPSeconds(route, method, status, seconds)
			if isBusinessRoute(route) {
				tr.observe(seconds)
			}
		}
	}
	s.mu.Lock()
	sec := s.sec
	s.mu.Unlock()
	if sec != nil {
		hc.Audit = sec.audit
		hc.Admin, hc.Backups = sec.admin, sec.backups
	}
	return httpapi.New(hc)
}

// swapHandler lets a listener open before recovery (answering /health and
// /ready) and switch to the full route set (admin API) once keys are loaded.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (sw *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*sw.h.Load()).ServeHTTP(w, r)
}

func (sw *swapHandler) set(h http.Handler) { sw.h.Store(&h) }

// swappable returns a handler whose route set can be rebuilt later:
// listeners open before recovery (answering /health and /ready) switch to
// the full route set once keys are loaded, and a reload of
// telemetry.metrics.auth_enabled rebuilds every listener's routes.
func (s *Server) swappable(guard httpapi.Guard, local bool) http.Handler {
	sw := &swapHandler{}
	sw.set(s.handler(guard, local))
	s.mu.Lock()
	s.swaps = append(s.swaps, func() { sw.set(s.handler(guard, local)) })
	s.mu.Unlock()
	return sw
}

// rebuildHandlers rebuilds every listener's route set from the
// configuration in force.
func (s *Server) rebuildHandlers() {
	s.mu.Lock()
	swaps := append([]func(){}, s.swaps...)
	s.mu.Unlock()
	for _, f := range swaps {
		f()
	}
}

func (s *Server) listenHTTP(name, addr string, guard httpapi.Guard) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s listener %s: %w", name, addr, err)
	}
	s.serve(name, lazyDeadlineListener{l}, s.swappable(guard, false))
	return nil
}

// listenLocal opens the local admin endpoint: the named pipe on Windows
// (unless server.local.socket_path is set explicitly), else the Unix socket.
func (s *Server) listenLocal(pipe, path string) error {
	if runtime.GOOS == "windows" && s.config().Server.Local.SocketPath == "" {
		l, err := localadmin.ListenPipe(pipe)
		if err != nil {
			return fmt.Errorf("local admin pipe %s: %w", pipe, err)
		}
		s.serve("local", protocolErrorListener{l}, s.swappable(localGuard{replay: s.sec.replay}, true))
		return nil
	}
	l, err := localadmin.Listen(path)
	if err != nil {
		return fmt.Errorf("local admin socket %s: %w", path, err)
	}
	s.serve("local", protocolErrorListener{l}, s.swappable(localGuard{replay: s.sec.replay}, true))
	return nil
}

func (s *Server) serve(name string, l net.Listener, h http.Handler) {
	t := s.config().Server.Timeouts
	// DisableGeneralOptionsHandler: net/http would answer "OPTIONS *" itself
	// (200, no envelope, no X-Request-ID or Cache-Control); "*" is no route,
	// so the API answers it like any unknown path (02 §2: 404 TM-SYS-4040).
	hs := &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug), DisableGeneralOptionsHandler: true}
	if name != "local" {
		hs.ConnContext = withConnInfo
	}
	s.mu.Lock()
	s.servers = append(s.servers, hs)
	s.addrs[name] = l.Addr()
	s.mu.Unlock()
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener stopped", "listener", name, "error", err.Error())
		}
	}()
}

// Addr returns the bound address of a listener ("http", "local").
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// readyChecks is the answer while serving; shared and never modified.
var readyChecks = map[string]string{"storage": "ok", "cluster": "standalone", "maintenance": "off"}

func (s *Server) readiness() (bool, map[string]string, apierr.Code) {
	st, _ := s.state.Load().(string)
	e := s.eng.Load()
	maint := e != nil && e.Maintenance()
	s.metrics.SetMaintenance(maint)
	if st == "ok" && !maint { // the hot path: no allocation
		return true, readyChecks, ""
	}
	checks := map[string]string{"storage": "ok", "cluster": "standalone", "maintenance": "off"}
	if maint {
		checks["maintenance"] = "restoring"
		return false, checks, apierr.AdminMaintenance
	}
	switch st {
	case "draining":
		// /ready says 503 so load balancers move away; business requests
		// are still served until the listeners close (no gate code).
		checks["shutdown"] = "draining"
		return false, checks, ""
	case "failed":
		checks["storage"] = "failed"
		return false, checks, apierr.SysStorage
	default:
		checks["storage"] = "recovering"
		return false, checks, apierr.SysNotReady
	}
}

// Ready reports whether the node is ready for new traffic (/ready 200).
func (s *Server) Ready() bool { ok, _, _ := s.readiness(); return ok }

// serving reports whether business requests are served: when ready, and
// while draining after SIGTERM.
func (s *Server) serving() bool { ok, _, code := s.readiness(); return ok || code == "" }

// Engine returns the running engine (nil before recovery completed).
func (s *Server) Engine() *engine.Engine { return s.eng.Load() }

// Fatal delivers the fail-stop error of a storage failure.
func (s *Server) Fatal() <-chan error { return s.fatalCh }

// Shutdown drains gracefully (09-observability §3): /ready turns 503, the
// node keeps serving for the grace period, then listeners stop accepting,
// in-flight requests finish, and the WAL is flushed — all within timeout.
func (s *Server) Shutdown(ctx context.Context) error {
	if st, _ := s.state.Load().(string); st == "ok" {
		s.state.Store("draining")
		s.metrics.SetReady(false)
		select {
		case <-time.After(s.config().Server.Shutdown.GracePeriod):
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	servers := append([]*http.Server(nil), s.servers...)
	s.mu.Unlock()
	cut := 0
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			// server.shutdown.timeout reached with requests still in
			// flight: they are cut, and the node still stops cleanly.
			cut++
			hs.Close()
		}
	}
	if cut > 0 {
		s.log.Warn("shutdown timeout reached: connections with requests still in flight were closed",
			"listeners", cut, "timeout", s.config().Server.Shutdown.Timeout.String())
	}
	// Only a failure to stop cleanly (WAL flush, snapshot, audit close) is
	// an error: the exit code is 0 for a shutdown that cut slow clients.
	return s.Close()
}

// Close stops everything at once (no drain) and closes the engine.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	stopTLS := s.stopTLS
	resp := s.resp
	s.resp = nil
	if s.stopBg != nil {
		close(s.stopBg)
	}
	s.mu.Unlock()
	if stopTLS != nil {
		stopTLS()
	}
	if resp != nil {
		resp.Close()
	}
	for _, hs := range servers {
		hs.Close()
	}
	var errs []error
	s.mu.Lock()
	sec := s.sec
	s.sec = nil
	s.mu.Unlock()
	if sec != nil && s.startAudited.Load() {
		if eng := s.eng.Load(); eng != nil {
			auditStop(sec.audit, eng.Node().NodeID)
		}
	}
	if sec != nil {
		if err := sec.close(); err != nil {
			errs = append(errs, fmt.Errorf("close key store/audit: %w", err))
		}
	}
	if eng := s.eng.Swap(nil); eng != nil {
		if err := eng.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close engine: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ExitCode maps a Start error to the process exit code (08-config §2).
func ExitCode(err error) int {
	var se *engine.StartupError
	if errors.As(err, &se) {
		return se.Code
	}
	return engine.ExitRuntime
}

// engineRef lets the HTTP handlers exist before recovery finished; the
// readiness gate keeps business routes away until the engine is set.
type engineRef struct{ s *Server }

var errNoEngine = engine.ErrClosed

func (r engineRef) e() (*engine.Engine, error) {
	if e := r.s.eng.Load(); e != nil {
		return e, nil
	}
	return nil, errNoEngine
}

func (r engineRef) Create(req session.CreateRequest) (session.CreateResult, error) {
	e, err := r.e()
	if err != nil {
		return session.CreateResult{}, err
	}
	return e.Create(req)
}
func (r engineRef) Get(id session.ID) (session.Session, error) {
	e, err := r.e()
	if err != nil {
		return session.Session{}, err
	}
	return e.Get(id)
}
func (r engineRef) Validate(tok string, touch bool, ip netip.Addr, ua string) (session.Session, error) {
	e, err := r.e()
	if err != nil {
		return session.Session{}, err
	}
	return e.Validate(tok, touch, ip, ua)
}
func (r engineRef) Touch(id session.ID, ip netip.Addr, ua string) (session.Session, error) {
	e, err := r.e()
	if err != nil {
		return session.Session{}, err
	}
	return e.Touch(id, ip, ua)
}
func (r engineRef) Renew(id session.ID, ttl int64) (session.Session, error) {
	e, err := r.e()
	if err != nil {
		return session.Session{}, err
	}
	return e.Renew(id, ttl)
}
func (r engineRef) Revoke(id session.ID) (bool, error) {
	e, err := r.e()
	if err != nil {
		return false, err
	}
	return e.Revoke(id)
}
func (r engineRef) RevokeUser(uid string, except session.ID) (int, error) {
	e, err := r.e()
	if err != nil {
		return 0, err
	}
	return e.RevokeUser(uid, except)
}
func (r engineRef) List(q session.ListQuery) (session.ListResult, error) {
	e, err := r.e()
	if err != nil {
		return session.ListResult{}, err
	}
	return e.List(q)
}
func (r engineRef) Partitions() int {
	if e := r.s.eng.Load(); e != nil {
		return e.Partitions()
	}
	return r.s.config().Cluster.Partitions
}

// enterBusiness admits a business request unless a restore is running.
func (s *Server) enterBusiness() (func(), bool) {
	e := s.Engine()
	if e == nil {
		return func() {}, true // the readiness gate already answered
	}
	if !e.EnterBusiness() {
		return nil, false
	}
	return e.BusinessExit(), true
}
