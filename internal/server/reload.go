package server

import (
	"errors"
	"strings"

	"github.com/yndnr/tokmesh-go/internal/apierr"
	"github.com/yndnr/tokmesh-go/internal/audit"
	"github.com/yndnr/tokmesh-go/internal/config"
	"github.com/yndnr/tokmesh-go/internal/session"
	"github.com/yndnr/tokmesh-go/internal/tlsutil"
)

// errReloadUnavailable is returned when a reload cannot run at all.
var errReloadUnavailable = errors.New("configuration reload is not available before the node is ready")

// Reload is the configuration hot reload of 08-config §4, for SIGHUP and
// POST /admin/v1/config/reload. It re-reads the configuration with
// Options.Reload (file, env and flags again) and validates it. If it is
// invalid nothing changes and err is the errors.Join of the *config.Error
// values. Otherwise every changed hot (H) key takes effect at once and is
// listed in applied; changed keys that need a restart are listed in
// restartRequired (and logged as WARN) and keep their running values. The
// TLS files are re-read on every reload, changed or not. Without
// Options.Reload only the TLS files are re-read. Reload does not audit:
// the admin handler writes config.reload.
func (s *Server) Reload() (applied, restartRequired []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	sec := s.sec
	s.mu.Unlock()
	eng := s.Engine()
	if sec == nil || eng == nil {
		return nil, nil, errReloadUnavailable
	}
	if s.reload == nil {
		if err := s.ReloadTLS(); err != nil {
			return nil, nil, tlsConfigError(err)
		}
		return []string{}, []string{}, nil
	}
	next, errs := s.reload()
	if len(errs) > 0 {
		return nil, nil, joinConfigErrors(errs)
	}
	cur := s.config()
	eff := cur.Clone() // cur with the hot changes applied: what will be in force
	applied, restartRequired = []string{}, []string{}
	s.mu.Lock()
	httpsRunning := s.tlsReloader != nil
	s.mu.Unlock()
	for _, k := range config.Changed(cur, next) {
		// The HTTPS listener starts (or not) at startup: new TLS files can
		// only replace the material of a running listener.
		tlsKey := strings.HasPrefix(k, "server.tls.")
		if !config.IsHot(k) || (tlsKey && (!httpsRunning || !next.Server.TLS.TLSConfigured())) {
			restartRequired = append(restartRequired, k)
			continue
		}
		v, _ := next.Lookup(k)
		if e := eff.Set(k, v); e != nil {
			return nil, nil, e
		}
		applied = append(applied, k)
	}
	// Mixing hot values into the running configuration must still satisfy
	// the cross-key rules (e.g. client_auth: require needs client_ca_file).
	if len(restartRequired) > 0 && len(applied) > 0 {
		if errs := eff.Validate(); len(errs) > 0 {
			return nil, nil, joinConfigErrors(errs)
		}
	}

	// Everything that can fail comes first, so a failure changes nothing.
	ac, err := AuthConfig(eff)
	if err != nil {
		return nil, nil, err
	}
	limits := sessionLimits(eff)
	if err := limits.Validate(); err != nil {
		return nil, nil, err
	}
	if err := s.reloadTLSFiles(cur.Server.TLS, eff.Server.TLS); err != nil {
		return nil, nil, err
	}

	// Apply: nothing below fails.
	s.cfg.Store(eff)
	if err := eng.Store().SetLimits(limits); err != nil { // checked above; never fails here
		s.log.Error("configuration reload: session limits", "error", err.Error())
	}
	eng.SetSnapshotPolicy(eff.Storage.Snapshot.Interval, eff.Storage.Snapshot.WALThreshold.Bytes())
	sec.keys.Reload(ac) // allow list, rotation grace
	sec.brute.SetConfig(ac.BruteForce)
	sec.replay.SetConfig(ac.AntiReplay)
	sec.tcp.setTrusted(ac.TrustedProxies)
	sec.audit.SetRetentionDays(eff.Telemetry.Audit.RetentionDays)
	if cur.Telemetry.Metrics.AuthEnabled != eff.Telemetry.Metrics.AuthEnabled {
		s.rebuildHandlers()
	}
	// storage.backup.* are read from the configuration in force at each
	// retention run.

	s.log.Info("configuration reloaded", "file", s.ConfigFile, "applied", applied, "restart_required", restartRequired)
	if len(restartRequired) > 0 {
		s.log.Warn("configuration keys changed that take effect only after a restart", "keys", restartRequired)
	}
	// Last, so that the lines above are logged at the level they were
	// asked for under.
	if s.logLevel != nil {
		s.logLevel.Set(eff.Telemetry.Logging.SlogLevel())
	}
	return applied, restartRequired, nil
}

// reloadTLSFiles re-reads the server TLS material: a new reloader when the
// file names changed, otherwise the same files again. A failure keeps the
// current material and is reported as the TM-CFG error of the file.
func (s *Server) reloadTLSFiles(cur, next config.ServerTLS) error {
	s.mu.Lock()
	running := s.tlsReloader != nil
	s.mu.Unlock()
	if !running {
		return nil
	}
	if cur.CertFile == next.CertFile && cur.KeyFile == next.KeyFile && cur.ClientCAFile == next.ClientCAFile {
		return tlsConfigError(s.ReloadTLS())
	}
	r, stop, err := s.newTLSReloader(next)
	if err != nil {
		return tlsConfigError(err)
	}
	s.setTLSReloader(r, stop)
	return nil
}

// tlsConfigError reports a TLS load failure as the configuration error of
// its key (TM-CFG-1003/1007/1008); other errors pass through.
// ReloadFromSignal is Reload for SIGHUP, audited as the API's reload is
// (08-config §4: "each reload is audited"; 04-security §9: config.reload,
// "SIGHUP or API"): actor system, resource the configuration file, an
// attempt record first and the outcome after it — success with the applied
// and restart-required keys, or failure with the error codes. Like the API
// it fails closed: when the attempt record cannot be written nothing is
// reloaded and the error is TM-SYS-5032.
func (s *Server) ReloadFromSignal() (applied, restartRequired []string, err error) {
	s.mu.Lock()
	sec := s.sec
	s.mu.Unlock()
	if sec == nil || sec.audit == nil {
		return s.Reload()
	}
	rec := audit.Record{Actor: audit.ActorSystem, Action: actionConfigReload, Resource: s.ConfigFile}
	if err := sec.audit.Attempt(rec); err != nil {
		return nil, nil, &apierr.Error{Code: apierr.SysAuditDown,
			Message: "audit log unavailable: the configuration reload was refused and nothing changed", Err: err}
	}
	applied, restartRequired, err = s.Reload()
	if err != nil {
		codes := reloadErrorCodes(err)
		rec.Result, rec.Code = audit.ResultFailure, codes[0]
		rec.Details = map[string]any{"error": codes}
	} else {
		rec.Result = audit.ResultSuccess
		rec.Details = map[string]any{"applied": applied, "restart_required": restartRequired}
	}
	sec.audit.Record(rec)
	return applied, restartRequired, err
}

// reloadErrorCodes lists the codes of a failed reload: one per
// configuration error, else the error's own code (TM-SYS-5000 if none).
func reloadErrorCodes(err error) []string {
	var codes []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ce *config.Error
		if errors.As(e, &ce) {
			codes = append(codes, ce.Code)
		}
	}
	walk(err)
	if len(codes) == 0 {
		c := ErrorCode(err)
		if c == "" {
			c = apierr.SysInternal
		}
		codes = []string{string(c)}
	}
	return codes
}

func tlsConfigError(err error) error {
	var le *tlsutil.LoadError
	if err == nil || !errors.As(err, &le) {
		return err
	}
	msg := "cannot load"
	if le.Err != nil {
		msg = le.Err.Error()
	}
	return &config.Error{Code: le.Code, Key: "server.tls." + le.Field, Value: le.File, Message: msg}
}

func joinConfigErrors(errs []*config.Error) error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// sessionLimits maps the hot session keys onto the store's limits.
func sessionLimits(c *config.Config) session.Limits {
	l := session.Limits{MaxPerUser: c.Session.Quota.MaxPerUser, OnExceed: session.QuotaReject,
		TTLDefault: int64(c.Session.TTL.Default.Seconds()), TTLMax: int64(c.Session.TTL.Max.Seconds()),
		IdleDefault: int64(c.Session.TTL.IdleDefault.Seconds())}
	if c.Session.Quota.OnExceed == "evict_oldest" {
		l.OnExceed = session.QuotaEvictOldest
	}
	return l
}
